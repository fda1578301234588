// imap/context.h: the state of one IMAP session shared by the session loop and the command
// families (cmd_*.cpp), the command table's types, and small reply helpers.
#pragma once
#include "imap/mailbox_view.h"
#include "net/server.h"
#include "proto/imap/args.h"
#include "proto/imap/parser.h"
#include "proto/imap/search.h"
#include "proto/imap/writer.h"
#include "service.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::imap {

enum State : unsigned {
    kNotAuthenticated = 1u << 0,
    kAuthenticated = 1u << 1,
    kSelected = 1u << 2,
    kLogout = 1u << 3,
};
inline constexpr unsigned kAnyState = kNotAuthenticated | kAuthenticated | kSelected;
inline constexpr unsigned kLoggedIn = kAuthenticated | kSelected;

// Store events reach the session through this: the listener (on the store's thread) marks the
// selected mailbox dirty and expires `wake` on the session's strand, which ends an IDLE wait.
struct Notifier : std::enable_shared_from_this<Notifier> {
    explicit Notifier(net::asio::any_io_executor ex) : executor(ex), wake(ex) {
        wake.expires_at(std::chrono::steady_clock::time_point::max());
    }
    net::asio::any_io_executor executor;
    net::asio::steady_timer wake;  // touched on the strand only
    std::atomic<store::MailboxId> selected{0};
    std::atomic<bool> dirty{false};

    // NOTIFY (RFC 5465): events of the user's other mailboxes, kept while `watch_others` is set.
    std::atomic<bool> watch_others{false};
    std::mutex others_mutex;
    std::vector<store::Event> others;  // bounded by limits::kImapNotifyBacklog
    bool others_overflow = false;      // events were dropped: resend STATUS for everything

    // The store's listener: runs on the thread that made the change.
    void on_event(const store::Event& e);
};

// NOTIFY SET's choices (RFC 5465 §3, §5).
struct NotifySpec {
    enum Event : unsigned {
        kMessageNew = 1u << 0,
        kMessageExpunge = 1u << 1,
        kFlagChange = 1u << 2,
        kMailboxName = 1u << 3,
        kSubscriptionChange = 1u << 4,
    };
    struct Group {
        enum class Filter {
            Selected,
            SelectedDelayed,
            Inboxes,
            Personal,
            Subscribed,
            Subtree,
            Mailboxes
        };
        Filter filter = Filter::Personal;
        std::vector<std::string> names;  // Subtree, Mailboxes
        unsigned events = 0;             // 0: NONE
    };
    std::vector<Group> groups;
    // The events asked for a mailbox other than the selected one (0: none).
    unsigned events_for(std::string_view name, const std::vector<std::string>& subscribed) const;
};

FlagList to_flag_list(const std::vector<std::string>& flags);

struct Session {
    Session(std::shared_ptr<net::Connection> c, Service& s);
    ~Session();

    std::shared_ptr<net::Connection> conn;
    Service& svc;
    Parser parser;
    std::string out;      // untagged data and continuations, sent at the next read
    std::string tagged;   // the command's tagged reply, appended after the untagged updates
    bool closed = false;  // the connection ended inside a command (IDLE, AUTHENTICATE)
    int errors = 0;
    unsigned state = kNotAuthenticated;
    bool rev2 = false;       // ENABLE IMAP4rev2
    bool utf8 = false;       // ENABLE IMAP4rev2 or UTF8=ACCEPT: UTF-8 names and quoted strings
    bool condstore = false;  // CONDSTORE enabled (RFC 7162 §3.1): MODSEQ in FETCH updates
    bool qresync = false;    // ENABLE QRESYNC (RFC 7162 §3.2): VANISHED instead of EXPUNGE
    // The \Recent UIDs this session holds in the selected mailbox, as [first, end) ranges
    // claimed from the store (IMAP4rev1 only: one session gets each new message).
    std::vector<std::pair<std::uint32_t, std::uint32_t>> recent;
    store::User user;
    MailboxView view;
    std::shared_ptr<Notifier> notifier;
    store::MailStore::Subscription subscription;
    std::optional<NotifySpec> notify;  // NOTIFY SET in force
    // CONTEXT=SEARCH (RFC 5267): searches kept up to date with ESEARCH ADDTO/REMOVEFROM.
    struct LiveSearch {
        std::string tag;
        SearchKey key;
        bool uid = false;
        std::vector<std::uint32_t> uids;  // the current result: ascending, or in sort order
        // CONTEXT=SORT: the SORT criteria as (key, reverse), in cmd_sort.cpp's numbering.
        std::vector<std::pair<std::uint8_t, bool>> sort;
        bool sorted() const { return !sort.empty(); }
    };
    std::vector<LiveSearch> live;

    // Runs a store call on the blocking pool (see net::Server::blocking for the g++ 12 trap).
    template <class F>
    auto blocking(F f) {
        return conn->server().blocking(std::move(f));
    }

    void ok(const Command& c, std::string_view text, std::string_view code = {}) {
        write_status(tagged, c.tag, Condition::Ok, code, text);
    }
    void no(const Command& c, std::string_view text, std::string_view code = {}) {
        write_status(tagged, c.tag, Condition::No, code, text);
    }
    // A protocol error: counted; too many end the session.
    void bad(const Command& c, std::string_view text) {
        ++errors;
        write_status(tagged, c.tag, Condition::Bad, {}, text);
    }
    // An interpreter's error: BAD, or NO [code] when it names one.
    void arg_error(const Command& c, const ArgError& e) {
        if (e.code.empty())
            bad(c, e.text);
        else
            no(c, e.text, e.code);
    }
    // SEARCHRES (RFC 5182): the UIDs saved by the last SEARCH RETURN (SAVE), ascending; what
    // "$" names. Emptied when the mailbox is deselected.
    std::vector<std::uint32_t> saved;
    // Keywords the client has seen in the last FLAGS response of the selected mailbox.
    std::set<std::string> keywords;
    // Sends FLAGS and PERMANENTFLAGS again when `flags` holds a keyword the client has not seen
    // there: a FETCH FLAGS response must not name a keyword missing from FLAGS (RFC 9051
    // §7.3.5). Call before writing a FETCH response with these flags.
    void announce_keywords(const std::vector<std::string>& flags);
    void untagged(std::string_view line) {
        out += "* ";
        out += line;
        out += "\r\n";
    }

    bool is_recent(std::uint32_t uid) const {
        for (auto& [first, end] : recent)
            if (uid >= first && uid < end) return true;
        return false;
    }
    std::uint32_t recent_count() const;
    // The flags a FETCH shows for a message: the stored ones, and \Recent for IMAP4rev1.
    FlagList flags_of(const MailboxView::Entry& e) const {
        auto f = to_flag_list(e.flags);
        if (!rev2 && is_recent(e.uid)) f.system |= kFlagRecent;
        return f;
    }
    // A CONDSTORE-enabling command (RFC 7162 §3.1): from now on MODSEQ is reported, and with
    // a mailbox selected, its HIGHESTMODSEQ is announced now.
    void enable_condstore();

    // Reports changes of the selected mailbox (untagged EXPUNGE/EXISTS/FETCH); with
    // `allow_expunge` false only what RFC 9051 §7.5.1 allows during FETCH, STORE and SEARCH.
    net::awaitable<void> sync(bool allow_expunge, bool force = false);
    // Leaves the selected state without reporting anything more.
    void deselect();
};

using Handler = net::awaitable<void> (*)(Session&, Command&);
struct CommandSpec {
    std::string_view name;  // upper case; "FETCH" serves UID FETCH too (Command::uid)
    unsigned states;
    Handler handler;
    bool uid_form = false;  // UID <name> exists
};
// The command table (commands.cpp); nullptr for an unknown name.
const CommandSpec* find_command(std::string_view name);

// Helpers shared by the families.
std::string capabilities(const Session& s);
FlagList to_flag_list(const std::vector<std::string>& flags);
std::vector<std::string> from_flag_list(const FlagList& flags);
std::string render_flags(const std::vector<std::string>& flags);
// The sequence numbers a set names in the selected mailbox (UIDs when `uid`), ascending;
// ghosts of expunged messages excluded.
std::vector<std::uint32_t> resolve_set(const Session& s, const SequenceSet& set, bool uid);
// A mailbox name for the wire in this session's encoding.
std::string mailbox_name(const Session& s, std::string_view name);

// Command families.
net::awaitable<void> cmd_capability(Session&, Command&);
net::awaitable<void> cmd_noop(Session&, Command&);
net::awaitable<void> cmd_logout(Session&, Command&);
net::awaitable<void> cmd_id(Session&, Command&);
net::awaitable<void> cmd_enable(Session&, Command&);
net::awaitable<void> cmd_login(Session&, Command&);
net::awaitable<void> cmd_authenticate(Session&, Command&);
net::awaitable<void> cmd_starttls(Session&, Command&);
net::awaitable<void> cmd_select(Session&, Command&);
net::awaitable<void> cmd_create(Session&, Command&);
net::awaitable<void> cmd_delete(Session&, Command&);
net::awaitable<void> cmd_rename(Session&, Command&);
net::awaitable<void> cmd_subscribe(Session&, Command&);
net::awaitable<void> cmd_list(Session&, Command&);
net::awaitable<void> cmd_namespace(Session&, Command&);
net::awaitable<void> cmd_status(Session&, Command&);
net::awaitable<void> cmd_append(Session&, Command&);
net::awaitable<void> cmd_fetch(Session&, Command&);
net::awaitable<void> cmd_store(Session&, Command&);
net::awaitable<void> cmd_copy(Session&, Command&);
net::awaitable<void> cmd_check(Session&, Command&);
net::awaitable<void> cmd_close(Session&, Command&);
net::awaitable<void> cmd_expunge(Session&, Command&);
net::awaitable<void> cmd_search(Session&, Command&);
net::awaitable<void> cmd_sort(Session&, Command&);
net::awaitable<void> cmd_thread(Session&, Command&);
// The sequence numbers of the selected mailbox's messages that match `key`, ascending (SEARCH,
// SORT, THREAD): the full-text index narrows text keys, the messages are read where needed.
net::awaitable<std::vector<std::uint32_t>> search_messages(Session& s, const SearchKey& key);
net::awaitable<void> cmd_idle(Session&, Command&);
net::awaitable<void> cmd_notify(Session&, Command&);
net::awaitable<void> cmd_cancelupdate(Session&, Command&);
// CONTEXT=SEARCH: REMOVEFROM for live results losing messages that `expunged_uids` (ascending)
// names, with their numbers before the expunge (`expunged_seqs`, highest first), to be sent
// before the EXPUNGE responses; and, after a command, ADDTO/REMOVEFROM for what else changed.
void live_searches_expunged(Session& s, const std::vector<std::uint32_t>& expunged_seqs,
                            const std::vector<std::uint32_t>& expunged_uids);
net::awaitable<void> update_live_searches(Session& s);
// SORT's result for a live search (cmd_sort.cpp): sequence numbers in sort order.
net::awaitable<std::vector<std::uint32_t>> sort_live(Session& s, const Session::LiveSearch& l);

// NOTIFY: reports what happened in the user's other mailboxes (STATUS, LIST) as the NOTIFY
// SET in force asks; called with the selected mailbox's updates.
net::awaitable<void> report_other_mailboxes(Session& s);
net::awaitable<void> cmd_getquota(Session&, Command&);
net::awaitable<void> cmd_getquotaroot(Session&, Command&);
net::awaitable<void> cmd_setquota(Session&, Command&);

// At login: creates the default special-use mailboxes when the configuration asks for them and
// the user has none (cmd_mailbox.cpp).
net::awaitable<void> ensure_special_use_mailboxes(Session& s);
// QUOTA (cmd_quota.cpp): the untagged QUOTA response for the user's one quota root "", or ""
// when no limit is configured; and whether adding messages/octets stays within the limits,
// replying NO [OVERQUOTA] to `c` when it does not.
std::string quota_response(const Session& s, const store::Usage& usage);
bool check_quota(Session& s, const Command& c, const store::Usage& usage,
                 std::uint64_t add_messages, std::uint64_t add_bytes);

// Reads one raw line (AUTHENTICATE responses, IDLE's DONE) of at most `max` octets, without
// its CRLF; nullopt when the connection closed or the line was too long.
net::awaitable<std::optional<std::string>> read_raw_line(Session& s, std::size_t max);

}  // namespace millipost::imap
