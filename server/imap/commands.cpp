// imap/commands.cpp: the IMAP command table (name, allowed states, handler) and the helpers
// the command families share.
#include "auth/sasl_session.h"
#include "imap/context.h"

#include <algorithm>
#include <array>

namespace millipost::imap {

namespace {

constexpr std::array kCommands{
    CommandSpec{"CAPABILITY", kAnyState, cmd_capability},
    CommandSpec{"NOOP", kAnyState, cmd_noop},
    CommandSpec{"LOGOUT", kAnyState, cmd_logout},
    CommandSpec{"ID", kAnyState, cmd_id},
    CommandSpec{"ENABLE", kLoggedIn, cmd_enable},
    CommandSpec{"LOGIN", kNotAuthenticated, cmd_login},
    CommandSpec{"AUTHENTICATE", kNotAuthenticated, cmd_authenticate},
    CommandSpec{"STARTTLS", kNotAuthenticated, cmd_starttls},
    CommandSpec{"SELECT", kLoggedIn, cmd_select},
    CommandSpec{"EXAMINE", kLoggedIn, cmd_select},
    CommandSpec{"CREATE", kLoggedIn, cmd_create},
    CommandSpec{"DELETE", kLoggedIn, cmd_delete},
    CommandSpec{"RENAME", kLoggedIn, cmd_rename},
    CommandSpec{"SUBSCRIBE", kLoggedIn, cmd_subscribe},
    CommandSpec{"UNSUBSCRIBE", kLoggedIn, cmd_subscribe},
    CommandSpec{"LIST", kLoggedIn, cmd_list},
    CommandSpec{"LSUB", kLoggedIn, cmd_list},
    CommandSpec{"NAMESPACE", kLoggedIn, cmd_namespace},
    CommandSpec{"STATUS", kLoggedIn, cmd_status},
    CommandSpec{"APPEND", kLoggedIn, cmd_append},
    CommandSpec{"IDLE", kLoggedIn, cmd_idle},
    CommandSpec{"NOTIFY", kLoggedIn, cmd_notify},
    CommandSpec{"CANCELUPDATE", kSelected, cmd_cancelupdate},
    CommandSpec{"GETQUOTA", kLoggedIn, cmd_getquota},
    CommandSpec{"GETQUOTAROOT", kLoggedIn, cmd_getquotaroot},
    CommandSpec{"SETQUOTA", kLoggedIn, cmd_setquota},
    CommandSpec{"FETCH", kSelected, cmd_fetch, true},
    CommandSpec{"STORE", kSelected, cmd_store, true},
    CommandSpec{"COPY", kSelected, cmd_copy, true},
    CommandSpec{"MOVE", kSelected, cmd_copy, true},
    CommandSpec{"SEARCH", kSelected, cmd_search, true},
    CommandSpec{"SORT", kSelected, cmd_sort, true},
    CommandSpec{"THREAD", kSelected, cmd_thread, true},
    CommandSpec{"EXPUNGE", kSelected, cmd_expunge, true},
    CommandSpec{"CHECK", kSelected, cmd_check},
    CommandSpec{"CLOSE", kSelected, cmd_close},
    CommandSpec{"UNSELECT", kSelected, cmd_close},
};

}  // namespace

const CommandSpec* find_command(std::string_view name) {
    for (auto& c : kCommands)
        if (c.name == name) return &c;
    return nullptr;
}

std::string capabilities(const Session& s) {
    std::string caps = "IMAP4rev2 IMAP4rev1";
    if (s.state == kNotAuthenticated) {
        // RFC 9051 §6.2.3: without TLS (where plaintext logins are refused) LOGINDISABLED, and
        // only the mechanisms that do not reveal the password.
        if (!auth::plaintext_allowed(s.svc, *s.conn)) caps += " LOGINDISABLED";
        for (auto& m : auth::advertised_mechanisms(s.svc, *s.conn))
            caps += " AUTH=" + m;
        caps += " SASL-IR";
    }
    // RFC 9051 §6.2.1: STARTTLS before login, with a certificate, until TLS is active.
    if (s.state == kNotAuthenticated && !s.conn->tls_active() && s.svc.tls_available())
        caps += " STARTTLS";
    caps +=
        " LITERAL+ ENABLE ID IDLE NAMESPACE UNSELECT UIDPLUS MOVE ESEARCH BINARY CHILDREN "
        "UTF8=ACCEPT CONDSTORE QRESYNC NOTIFY";
    // Search family (cmd_search.cpp, cmd_sort.cpp).
    caps +=
        " CONTEXT=SEARCH CONTEXT=SORT SEARCHRES PARTIAL SORT SORT=DISPLAY ESORT "
        "THREAD=ORDEREDSUBJECT "
        "THREAD=REFERENCES";
    // Mailbox-level extensions (cmd_mailbox.cpp, cmd_append.cpp, cmd_quota.cpp).
    caps +=
        " LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE MULTIAPPEND CATENATE "
        "QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE";
    caps += " APPENDLIMIT=" + std::to_string(s.svc.config().max_message_size);
    return caps;
}

FlagList to_flag_list(const std::vector<std::string>& flags) {
    FlagList out;
    for (auto& f : flags) {
        if (auto bit = system_flag(f))
            out.system |= bit;
        else
            out.keywords.push_back(f);
    }
    return out;
}

std::vector<std::string> from_flag_list(const FlagList& flags) {
    std::vector<std::string> out;
    static constexpr std::pair<std::uint8_t, std::string_view> kNames[] = {
        {kFlagSeen, "\\Seen"},       {kFlagAnswered, "\\Answered"}, {kFlagFlagged, "\\Flagged"},
        {kFlagDeleted, "\\Deleted"}, {kFlagDraft, "\\Draft"},
    };
    for (auto& [bit, name] : kNames)
        if (flags.system & bit) out.emplace_back(name);
    for (auto& k : flags.keywords)
        out.push_back(k);
    return out;
}

void Session::announce_keywords(const std::vector<std::string>& flags) {
    bool added = false;
    for (auto& f : flags)
        if (!system_flag(f) && keywords.insert(f).second) added = true;
    if (!added) return;
    std::string kw;
    for (auto& k : keywords)
        kw += " " + k;
    untagged("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft" + kw + ")");
    if (!view.read_only)
        untagged("OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft" + kw +
                 " \\*)] flags permitted");
}

std::string render_flags(const std::vector<std::string>& flags) {
    std::string out;
    write_flags(out, to_flag_list(flags));
    return out;
}

std::vector<std::uint32_t> resolve_set(const Session& s, const SequenceSet& set, bool uid) {
    std::vector<std::uint32_t> seqs;
    auto n = s.view.size();
    if (set.saved()) {  // "$": the saved UIDs still in the mailbox, in SEARCH and UID forms alike
        for (std::uint32_t seq = 1; seq <= n; ++seq) {
            auto& e = s.view.at(seq);
            if (!e.expunged && std::binary_search(s.saved.begin(), s.saved.end(), e.uid))
                seqs.push_back(seq);
        }
        return seqs;
    }
    if (!uid) {
        for (auto seq : set.expand(n))
            if (!s.view.at(seq).expunged) seqs.push_back(seq);
        return seqs;
    }
    auto intervals = set.resolve(s.view.max_uid());
    for (std::uint32_t seq = 1; seq <= n; ++seq) {
        auto& e = s.view.at(seq);
        if (e.expunged) continue;
        auto it = std::upper_bound(
            intervals.begin(), intervals.end(), e.uid,
            [](std::uint32_t u, const SequenceSet::Interval& iv) { return u < iv.first; });
        if (it != intervals.begin() && std::prev(it)->second >= e.uid) seqs.push_back(seq);
    }
    return seqs;
}

std::string mailbox_name(const Session& s, std::string_view name) {
    std::string out;
    write_mailbox(out, name, s.utf8);
    return out;
}

}  // namespace millipost::imap
