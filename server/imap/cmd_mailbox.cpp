// imap/cmd_mailbox.cpp: mailbox commands: SELECT/EXAMINE, CREATE (with CREATE-SPECIAL-USE,
// RFC 6154), DELETE, RENAME (INBOX moves its messages), SUBSCRIBE/UNSUBSCRIBE, LIST/LSUB with
// '*'/'%' patterns, LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE, NAMESPACE
// and STATUS; the default special-use mailboxes made at login.
#include "imap/context.h"
#include "proto/imap/list.h"
#include "util/ascii.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

namespace millipost::imap {

namespace {

using store::StoreError;

// '*' matches anything, '%' anything but the hierarchy separator (RFC 9051 §6.3.9).
bool wildcard_match(std::string_view pat, std::string_view name) {
    if (pat.empty()) return name.empty();
    char p = pat.front();
    if (p == '*' || p == '%') {
        for (std::size_t i = 0; i <= name.size(); ++i) {
            if (wildcard_match(pat.substr(1), name.substr(i))) return true;
            if (i < name.size() && p == '%' && name[i] == '/') return false;
        }
        return false;
    }
    return !name.empty() && name.front() == p && wildcard_match(pat.substr(1), name.substr(1));
}

bool list_match(std::string_view pattern, std::string_view name) {
    if (wildcard_match(pattern, name)) return true;
    // INBOX is case-insensitive, also when a pattern spells it otherwise ("inbox", "Inbox/%").
    if (pattern.size() >= 5) {
        std::string head(pattern.substr(0, 5));
        std::transform(head.begin(), head.end(), head.begin(),
                       [](unsigned char ch) { return std::toupper(ch); });
        if (head == "INBOX") return wildcard_match("INBOX" + std::string(pattern.substr(5)), name);
    }
    return false;
}

// The special-use attributes CREATE accepts (RFC 6154 §2), in their canonical spelling. \All and
// \Flagged name virtual mailboxes, which a stored mailbox cannot be.
constexpr std::string_view kSupportedSpecialUse[] = {"\\Archive", "\\Drafts", "\\Junk", "\\Sent",
                                                     "\\Trash"};

std::optional<std::string> canonical_special_use(std::string_view attr) {
    for (auto name : kSupportedSpecialUse)
        if (ascii::iequals(attr, name)) return std::string(name);
    return std::nullopt;
}

// What special_use_mailboxes creates at login.
constexpr std::pair<std::string_view, std::string_view> kDefaultSpecialUse[] = {
    {"Drafts", "\\Drafts"}, {"Sent", "\\Sent"},       {"Trash", "\\Trash"},
    {"Junk", "\\Junk"},     {"Archive", "\\Archive"},
};

// The STATUS data of a mailbox: "(MESSAGES 3 UIDNEXT 4)".
std::string status_data(const Session& s, const store::Mailbox& mb,
                        const std::vector<store::Message>& msgs,
                        const std::vector<StatusItem>& items) {
    std::string out = "(";
    for (auto item : items) {
        if (out.size() > 1) out += ' ';
        out += status_item_name(item);
        out += ' ';
        std::uint64_t v = 0;
        switch (item) {
            case StatusItem::Messages:
                v = msgs.size();
                break;
            case StatusItem::UidNext:
                v = mb.uidnext;
                break;
            case StatusItem::UidValidity:
                v = mb.uidvalidity;
                break;
            case StatusItem::Unseen:
            case StatusItem::Deleted: {
                std::string_view flag = item == StatusItem::Unseen ? "\\Seen" : "\\Deleted";
                bool want = item == StatusItem::Deleted;
                for (auto& m : msgs) {
                    bool has = std::find(m.flags.begin(), m.flags.end(), flag) != m.flags.end();
                    if (has == want) ++v;
                }
                break;
            }
            case StatusItem::Size:
                v = mb.size;
                break;
            case StatusItem::Recent:
                v = mb.recent;  // not yet claimed by a session (\Recent, IMAP4rev1)
                break;
            case StatusItem::HighestModSeq:
                v = mb.highestmodseq;
                break;
            case StatusItem::AppendLimit:
                // RFC 7889: the largest message APPEND accepts into this mailbox.
                v = s.svc.config().max_message_size;
                break;
            case StatusItem::DeletedStorage: {
                // RFC 9208 §4.2: in units of 1024 octets, what EXPUNGE would free.
                std::uint64_t bytes = 0;
                for (auto& m : msgs)
                    if (std::find(m.flags.begin(), m.flags.end(), "\\Deleted") != m.flags.end())
                        bytes += m.size;
                v = (bytes + 1023) / 1024;
                break;
            }
        }
        out += std::to_string(v);
    }
    out += ')';
    return out;
}

net::awaitable<std::optional<std::pair<store::Mailbox, std::vector<store::Message>>>> load_mailbox(
    Session& s, const std::string& name) {
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto load = [&store, uid,
                 name]() -> std::optional<std::pair<store::Mailbox, std::vector<store::Message>>> {
        auto mb = store.find_mailbox(uid, name);
        if (!mb) return std::nullopt;
        return std::make_pair(*mb, store.messages(uid, mb->id));
    };
    auto r = co_await s.blocking(std::move(load));
    co_return r;
}

// The one mailbox argument of SELECT, EXAMINE, CREATE, DELETE, SUBSCRIBE and UNSUBSCRIBE;
// nothing after replying BAD/NO when it is missing or malformed.
std::optional<std::string> one_mailbox(Session& s, Command& c) {
    if (c.args.size() != 1) {
        s.bad(c, fmt::format("Syntax: {} mailbox", c.name));
        return std::nullopt;
    }
    auto name = parse_mailbox(c.args[0], s.utf8);
    if (!name) {
        s.arg_error(c, name.error());
        return std::nullopt;
    }
    return *name;
}

}  // namespace

namespace {

// SELECT/EXAMINE parameters (RFC 4466 §2.4): (CONDSTORE) and (QRESYNC (uidvalidity modseq
// [known-uids [seq-match-data]])) of RFC 7162 §3.1.8 and §3.2.5.
struct SelectParams {
    bool condstore = false;
    struct Qresync {
        std::uint32_t uidvalidity = 0;
        std::uint64_t modseq = 0;
        std::optional<SequenceSet> known;
    };
    std::optional<Qresync> qresync;
};

Parsed<SelectParams> parse_select_params(const Session& s, const Arg& list) {
    SelectParams p;
    if (!list.is_list()) return bad("Syntax: SELECT mailbox [(parameter ...)]");
    for (std::size_t i = 0; i < list.items.size(); ++i) {
        auto name = upper_atom(list.items[i]);
        if (name == "CONDSTORE") {
            p.condstore = true;
        } else if (name == "QRESYNC") {
            if (!s.qresync) return bad("QRESYNC needs ENABLE QRESYNC first");
            if (i + 1 >= list.items.size() || !list.items[i + 1].is_list())
                return bad("Syntax: QRESYNC (uidvalidity modseq [known-uids [seq-match-data]])");
            auto& q = list.items[++i].items;
            if (q.size() < 2 || q.size() > 4 || !q[0].is_atom() || !q[1].is_atom())
                return bad("Syntax: QRESYNC (uidvalidity modseq [known-uids [seq-match-data]])");
            SelectParams::Qresync r;
            auto v = parse_nz_number(q[0].text);
            if (!v) return v.error();
            r.uidvalidity = *v;
            auto m = parse_mod_sequence(q[1].text, false);
            if (!m) return m.error();
            r.modseq = *m;
            if (q.size() >= 3) {
                if (q[2].is_list()) return bad("QRESYNC: known-uids must precede seq-match-data");
                auto set = parse_sequence_set(q[2]);
                if (!set) return set.error();
                r.known = *set;
            }
            // seq-match-data only helps servers without exact expunge records: ours has them.
            if (q.size() == 4 && (!q[3].is_list() || q[3].items.size() != 2))
                return bad("QRESYNC: seq-match-data is (sequence-set uid-set)");
            p.qresync = r;
        } else {
            return bad("unknown SELECT parameter");
        }
    }
    return p;
}

struct Selected {
    store::Mailbox mailbox;
    std::vector<store::Message> messages;
    std::pair<std::uint32_t, std::uint32_t> recent{0, 0};
    std::vector<std::uint32_t> vanished;  // QRESYNC: expunged after the client's MODSEQ
    bool vanished_complete = true;        // false: older than the tombstones kept
};

}  // namespace

net::awaitable<void> cmd_select(Session& s, Command& c) {
    bool examine = c.name == "EXAMINE";
    if (c.args.empty() || c.args.size() > 2) {
        s.bad(c, fmt::format("Syntax: {} mailbox [(parameters)]", c.name));
        co_return;
    }
    auto name = parse_mailbox(c.args[0], s.utf8);
    if (!name) {
        s.arg_error(c, name.error());
        co_return;
    }
    SelectParams params;
    if (c.args.size() == 2) {
        auto p = parse_select_params(s, c.args[1]);
        if (!p) {
            s.arg_error(c, p.error());
            co_return;
        }
        params = *p;
    }
    if (s.state == kSelected) {
        s.deselect();
        s.untagged("OK [CLOSED] previous mailbox closed");
    }
    if (params.condstore || params.qresync) s.enable_condstore();
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto n = *name;
    // The listing first, then the \Recent claim: a message arriving in between is claimed
    // too and reaches this session as new at its next sync.
    bool claim = !examine && !s.rev2;
    std::optional<std::uint64_t> since;
    if (params.qresync) since = params.qresync->modseq;
    auto open = [&store, uid, n, claim, since]() -> std::optional<Selected> {
        auto mb = store.find_mailbox(uid, n);
        if (!mb) return std::nullopt;
        Selected r;
        r.messages = store.messages(uid, mb->id);
        if (claim) r.recent = store.claim_recent(uid, mb->id);
        if (since) {
            auto d = store.mailbox_changes(uid, mb->id, *since);
            r.vanished = std::move(d.vanished);
            r.vanished_complete = d.vanished_complete;
        }
        r.mailbox = *mb;
        return r;
    };
    s.notifier->dirty = false;
    std::optional<Selected> sel;
    try {
        sel = co_await s.blocking(std::move(open));
    } catch (const StoreError&) {
    }
    if (!sel) {
        s.no(c, "no such mailbox", "NONEXISTENT");
        co_return;
    }
    auto& mb = sel->mailbox;
    s.notifier->selected = mb.id;
    // Changes after this snapshot are found by the first sync (the listing may be newer than
    // the counters: a sync that finds nothing new is harmless).
    s.notifier->dirty = true;
    std::set<std::string> keywords;
    std::uint32_t first_unseen = 0;
    auto& msgs = sel->messages;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        bool seen = false;
        for (auto& f : msgs[i].flags) {
            if (f == "\\Seen") seen = true;
            if (!system_flag(f)) keywords.insert(f);
        }
        if (!seen && !first_unseen) first_unseen = static_cast<std::uint32_t>(i + 1);
    }
    // The view's MODSEQ must cover the listing: take the highest MODSEQ in it if newer.
    for (auto& m : msgs)
        mb.highestmodseq = std::max(mb.highestmodseq, m.modseq);
    s.view.reset(mb, std::move(msgs));
    s.view.read_only = examine;
    s.state = kSelected;
    s.recent.clear();
    if (claim && sel->recent.first != sel->recent.second) {
        s.recent.push_back(sel->recent);
    } else if (examine && !s.rev2 && mb.recent > 0) {
        // EXAMINE claims nothing but shows what nobody has claimed: the newest messages.
        auto n_recent = std::min(mb.recent, s.view.size());
        s.recent.emplace_back(s.view.at(s.view.size() - n_recent + 1).uid, s.view.max_uid() + 1);
    }
    std::string kw;
    for (auto& k : keywords)
        kw += " " + k;
    s.keywords = std::move(keywords);
    s.untagged("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft" + kw + ")");
    s.untagged(examine ? std::string("OK [PERMANENTFLAGS ()] read-only")
                       : "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft" + kw +
                             " \\*)] flags permitted");
    s.untagged(fmt::format("{} EXISTS", s.view.size()));
    if (!s.rev2) {
        s.untagged(fmt::format("{} RECENT", s.recent_count()));
        if (first_unseen) s.untagged(fmt::format("OK [UNSEEN {}] first unseen", first_unseen));
    }
    s.untagged(fmt::format("OK [UIDVALIDITY {}] UIDs valid", mb.uidvalidity));
    s.untagged(fmt::format("OK [UIDNEXT {}] predicted next UID", mb.uidnext));
    s.untagged(fmt::format("OK [HIGHESTMODSEQ {}] highest", s.view.mailbox.highestmodseq));
    if (s.rev2) s.untagged("LIST () \"/\" " + mailbox_name(s, mb.name));
    if (params.qresync && params.qresync->uidvalidity == mb.uidvalidity) {
        // RFC 7162 §3.2.5.1: what vanished among the UIDs the client knows, then every
        // message changed after its MODSEQ.
        auto& q = *params.qresync;
        std::vector<std::uint32_t> gone;
        if (sel->vanished_complete) {
            for (auto u : sel->vanished)
                if (!q.known || q.known->contains(u, s.view.max_uid())) gone.push_back(u);
        } else {
            // Tombstones that old are gone: every UID the client may know that does not exist
            // now (RFC 7162 §3.2.5.1 allows reporting UIDs the client never saw).
            auto top = mb.uidnext - 1;
            std::uint32_t seq = 1;
            for (std::uint32_t u = 1; u <= top; ++u) {
                while (seq <= s.view.size() && s.view.at(seq).uid < u)
                    ++seq;
                bool exists = seq <= s.view.size() && s.view.at(seq).uid == u;
                if (!exists && (!q.known || q.known->contains(u, top))) gone.push_back(u);
            }
        }
        if (!gone.empty()) s.untagged("VANISHED (EARLIER) " + compress_sequence(gone));
        for (std::uint32_t seq = 1; seq <= s.view.size(); ++seq) {
            auto& e = s.view.at(seq);
            if (e.modseq <= q.modseq) continue;
            s.announce_keywords(e.flags);
            FetchResponse r(s.out, seq);
            r.uid(e.uid);
            r.flags(s.flags_of(e));
            r.modseq(e.modseq);
            r.finish();
        }
    }
    s.ok(c, fmt::format("{} completed", c.name), examine ? "READ-ONLY" : "READ-WRITE");
}

net::awaitable<void> cmd_create(Session& s, Command& c) {
    auto args = parse_create(c, s.utf8);
    if (!args) {
        s.arg_error(c, args.error());
        co_return;
    }
    // One supported attribute at most: the store keeps one per mailbox, and \All, \Flagged
    // (virtual mailboxes) cannot be honoured by a real one (RFC 6154 §3: NO [USEATTR]).
    std::string use;
    if (args->use.size() > 1) {
        s.no(c, "one special-use attribute per mailbox", "USEATTR");
        co_return;
    }
    if (args->use.size() == 1) {
        auto canonical = canonical_special_use(args->use[0]);
        if (!canonical) {
            s.no(c, fmt::format("special-use attribute {} is not supported", args->use[0]),
                 "USEATTR");
            co_return;
        }
        use = *canonical;
    }
    std::string n = args->mailbox;
    while (!n.empty() && n.back() == '/')
        n.pop_back();
    if (n.empty() || n.find("//") != std::string::npos || n.front() == '/' ||
        n.find_first_of("*%") != std::string::npos) {
        s.no(c, "invalid mailbox name", "CANNOT");
        co_return;
    }
    if (static_cast<std::size_t>(std::count(n.begin(), n.end(), '/')) >= limits::kMaxMailboxDepth) {
        s.no(c, fmt::format("more than {} hierarchy levels", limits::kMaxMailboxDepth), "LIMIT");
        co_return;
    }
    auto& store = s.svc.store();
    auto uid = s.user.id;
    // Superior names are created too (RFC 9051 §6.3.4), within the user's mailbox count.
    auto create = [&store, uid, n, use] {
        if (store.list_mailboxes(uid).size() +
                static_cast<std::size_t>(std::count(n.begin(), n.end(), '/')) >=
            limits::kMaxMailboxesPerUser)
            return false;
        for (auto pos = n.find('/'); pos != std::string::npos; pos = n.find('/', pos + 1)) {
            auto parent = n.substr(0, pos);
            if (!store.find_mailbox(uid, parent)) {
                try {
                    store.create_mailbox(uid, parent);
                } catch (const StoreError&) {
                }
            }
        }
        store.create_mailbox(uid, n, use);
        return true;
    };
    try {
        bool created = co_await s.blocking(std::move(create));
        if (!created) {
            s.no(c, fmt::format("no more than {} mailboxes per user", limits::kMaxMailboxesPerUser),
                 "LIMIT");
            co_return;
        }
    } catch (const StoreError& e) {
        if (e.kind() == StoreError::Kind::Exists)
            s.no(c, "mailbox already exists", "ALREADYEXISTS");
        else
            s.no(c, e.what(), "CANNOT");
        co_return;
    }
    s.ok(c, "CREATE completed");
}

net::awaitable<void> ensure_special_use_mailboxes(Session& s) {
    if (!s.svc.config().special_use_mailboxes) co_return;
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto ensure = [&store, uid] {
        auto boxes = store.list_mailboxes(uid);
        std::set<std::string> names;
        for (auto& mb : boxes) {
            if (!mb.special_use.empty()) return;  // the user (or a client) has set some up
            names.insert(mb.name);
        }
        for (auto& [name, use] : kDefaultSpecialUse) {
            if (names.count(std::string(name))) continue;
            try {
                store.create_mailbox(uid, name, use);
            } catch (const StoreError&) {
                // Another session of the same user got there first.
            }
        }
    };
    try {
        co_await s.blocking(std::move(ensure));
    } catch (const StoreError&) {
        // Not worth failing the login over: the user simply has no special-use mailboxes.
    }
}

net::awaitable<void> cmd_delete(Session& s, Command& c) {
    auto name = one_mailbox(s, c);
    if (!name) co_return;
    if (*name == store::kInbox) {
        s.no(c, "INBOX cannot be deleted", "CANNOT");
        co_return;
    }
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto n = *name;
    auto* index = s.svc.search_index();
    auto remove = [&store, uid, n, index]() -> store::MailboxId {
        auto mb = store.find_mailbox(uid, n);
        if (!mb) return 0;
        store.delete_mailbox(uid, mb->id);
        // The store may reuse the id for a new mailbox: its index rows must not survive.
        if (index) {
            try {
                index->drop_mailbox(uid, mb->id);
            } catch (const std::exception&) {
            }
        }
        return mb->id;
    };
    store::MailboxId removed = 0;
    try {
        removed = co_await s.blocking(std::move(remove));
    } catch (const StoreError&) {
    }
    if (!removed) {
        s.no(c, "no such mailbox", "NONEXISTENT");
        co_return;
    }
    if (s.state == kSelected && s.view.mailbox.id == removed) s.deselect();
    s.ok(c, "DELETE completed");
}

net::awaitable<void> cmd_rename(Session& s, Command& c) {
    if (c.args.size() != 2) {
        s.bad(c, "Syntax: RENAME from to");
        co_return;
    }
    auto from = parse_mailbox(c.args[0], s.utf8);
    auto to = parse_mailbox(c.args[1], s.utf8);
    if (!from || !to) {
        s.arg_error(c, !from ? from.error() : to.error());
        co_return;
    }
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto f = *from, t = *to;
    if (static_cast<std::size_t>(std::count(t.begin(), t.end(), '/')) >= limits::kMaxMailboxDepth) {
        s.no(c, fmt::format("more than {} hierarchy levels", limits::kMaxMailboxDepth), "LIMIT");
        co_return;
    }
    // Renaming INBOX moves its messages to a new mailbox and leaves INBOX empty (RFC 9051
    // §6.3.6).
    auto rename = [&store, uid, f, t]() -> int {
        auto src = store.find_mailbox(uid, f);
        if (!src) return 1;
        if (store.find_mailbox(uid, t)) return 2;
        if (src->name == store::kInbox) {
            auto dst = store.create_mailbox(uid, t);
            std::vector<std::uint32_t> uids;
            for (auto& m : store.messages(uid, src->id))
                uids.push_back(m.uid);
            store.move_messages(uid, src->id, uids, dst.id);
        } else {
            store.rename_mailbox(uid, src->id, t);
        }
        return 0;
    };
    int r = 0;
    try {
        r = co_await s.blocking(std::move(rename));
    } catch (const StoreError& e) {
        r = e.kind() == StoreError::Kind::Exists ? 2 : 3;
    }
    if (r == 1)
        s.no(c, "no such mailbox", "NONEXISTENT");
    else if (r == 2)
        s.no(c, "target mailbox exists", "ALREADYEXISTS");
    else if (r == 3)
        s.no(c, "cannot rename to that name", "CANNOT");
    else
        s.ok(c, "RENAME completed");
}

net::awaitable<void> cmd_subscribe(Session& s, Command& c) {
    bool sub = c.name == "SUBSCRIBE";
    auto name = one_mailbox(s, c);
    if (!name) co_return;
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto n = *name;
    auto change = [&store, uid, n, sub] {
        if (sub)
            store.add_subscription(uid, n);
        else
            store.remove_subscription(uid, n);
    };
    co_await s.blocking(std::move(change));
    s.ok(c, fmt::format("{} completed", c.name));
}

net::awaitable<void> cmd_list(Session& s, Command& c) {
    auto args = parse_list(c, s.utf8);
    if (!args) {
        s.arg_error(c, args.error());
        co_return;
    }
    auto& a = *args;
    std::string_view verb = a.lsub ? "LSUB" : "LIST";
    if (!a.lsub && a.patterns.size() == 1 && a.patterns[0].empty()) {
        // The hierarchy delimiter and root (RFC 9051 §6.3.9).
        s.untagged("LIST (\\Noselect) \"/\" \"\"");
        s.ok(c, "LIST completed");
        co_return;
    }
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto load = [&store, uid] {
        return std::make_pair(store.list_mailboxes(uid), store.subscriptions(uid));
    };
    auto [boxes, subs] = co_await s.blocking(std::move(load));
    std::set<std::string> subscribed(subs.begin(), subs.end());
    // Existing mailboxes, and the names their paths imply.
    std::map<std::string, const store::Mailbox*> names;
    std::set<std::string> implied;
    for (auto& mb : boxes) {
        names[mb.name] = &mb;
        for (auto pos = mb.name.find('/'); pos != std::string::npos;
             pos = mb.name.find('/', pos + 1))
            implied.insert(mb.name.substr(0, pos));
    }
    for (auto& n : implied)
        names.try_emplace(n, nullptr);
    auto has_children = [&](const std::string& n) {
        auto prefix = n + "/";
        auto lb = names.lower_bound(prefix);
        return lb != names.end() && lb->first.compare(0, prefix.size(), prefix) == 0;
    };
    auto matches = [&](const std::string& n) {
        for (auto& p : a.patterns)
            if (list_match(a.reference + p, n)) return true;
        return false;
    };

    // What to report, by name: whether the name itself satisfies the selection, and whether a
    // descendant that satisfies it was left out because the pattern does not reach it. The
    // latter is what LSUB's '%' rule (RFC 3501 §6.3.9: a subscribed "foo/bar" makes "foo/%"
    // return "foo" as \Noselect) and RECURSIVEMATCH's CHILDINFO (RFC 5258 §3.5) report.
    struct Hit {
        bool selected = false;
        bool child_selected = false;
    };
    std::map<std::string, Hit> hits;
    bool by_subscription = a.lsub || a.select_subscribed;
    auto select = [&](const std::string& n) {
        bool reported = matches(n);
        if (reported) hits[n].selected = true;
        if (reported) return;
        // Ancestors the pattern reaches while it does not reach the name itself.
        for (auto pos = n.rfind('/'); pos != std::string::npos && pos > 0;
             pos = n.rfind('/', pos - 1))
            if (auto parent = n.substr(0, pos); matches(parent)) hits[parent].child_selected = true;
    };
    if (by_subscription) {
        for (auto& n : subscribed)
            select(n);
    } else if (a.select_special_use) {
        for (auto& mb : boxes)
            if (!mb.special_use.empty()) select(mb.name);
    } else {
        for (auto& [n, mb] : names)
            if (matches(n)) hits[n].selected = true;
    }

    for (auto& [n, hit] : hits) {
        auto it = names.find(n);
        const store::Mailbox* mb = it == names.end() ? nullptr : it->second;
        bool exists_as_name = it != names.end();
        if (a.lsub) {
            // LSUB: \Noselect for a name reported only for its subscribed descendants, and for
            // a subscribed name that is no mailbox.
            bool noselect = !hit.selected || !mb;
            s.untagged(fmt::format("LSUB ({}) \"/\" {}", noselect ? "\\Noselect" : "",
                                   mailbox_name(s, n)));
            continue;
        }
        // Without RECURSIVEMATCH only names that satisfy the selection are reported
        // (RFC 5258 §3: the '%' rule above is LSUB's).
        if (!hit.selected && !a.select_recursive_match) continue;
        if (!hit.selected && !by_subscription) continue;  // CHILDINFO exists for SUBSCRIBED only
        std::string attrs;
        auto add = [&](std::string_view attr) {
            if (!attrs.empty()) attrs += ' ';
            attrs += attr;
        };
        if (!mb) {
            if (!exists_as_name)
                add("\\NonExistent");
            else
                add(s.rev2 || a.extended ? "\\NonExistent" : "\\Noselect");
        }
        if (exists_as_name) add(has_children(n) ? "\\HasChildren" : "\\HasNoChildren");
        if (mb && !mb->special_use.empty()) add(mb->special_use);
        if ((a.return_subscribed || by_subscription) && hit.selected && subscribed.count(n))
            add("\\Subscribed");
        std::string line = fmt::format("LIST ({}) \"/\" {}", attrs, mailbox_name(s, n));
        if (hit.child_selected && a.select_recursive_match)
            line += " (\"CHILDINFO\" (\"SUBSCRIBED\"))";
        s.untagged(line);
        if (a.return_status && mb) {
            auto id = mb->id;
            auto msgs_fn = [&store, uid, id] { return store.messages(uid, id); };
            std::vector<store::Message> msgs;
            try {
                msgs = co_await s.blocking(std::move(msgs_fn));
            } catch (const StoreError&) {
                continue;  // deleted meanwhile: no STATUS for it (RFC 5819 §2 allows that)
            }
            s.untagged(fmt::format("STATUS {} {}", mailbox_name(s, n),
                                   status_data(s, *mb, msgs, a.status_items)));
        }
    }
    s.ok(c, fmt::format("{} completed", verb));
}

net::awaitable<void> cmd_namespace(Session& s, Command& c) {
    s.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
    s.ok(c, "NAMESPACE completed");
    co_return;
}

net::awaitable<void> cmd_status(Session& s, Command& c) {
    auto args = parse_status(c, s.utf8);
    if (!args) {
        s.arg_error(c, args.error());
        co_return;
    }
    auto loaded = co_await load_mailbox(s, args->mailbox);
    if (!loaded) {
        s.no(c, "no such mailbox", "NONEXISTENT");
        co_return;
    }
    if (std::find(args->items.begin(), args->items.end(), StatusItem::HighestModSeq) !=
        args->items.end())
        s.enable_condstore();  // RFC 7162 §3.1
    s.untagged(fmt::format("STATUS {} {}", mailbox_name(s, loaded->first.name),
                           status_data(s, loaded->first, loaded->second, args->items)));
    s.ok(c, "STATUS completed");
}

}  // namespace millipost::imap
