// imap/cmd_selected.cpp: CHECK, CLOSE, UNSELECT, EXPUNGE and UID EXPUNGE (UIDPLUS).
#include "imap/context.h"

#include <algorithm>

namespace millipost::imap {

namespace {

// Removes the \Deleted messages (only those in `only` when given); returns how many.
// `only` by reference: no non-trivial temporaries in a co_await expression (g++ 12).
net::awaitable<std::size_t> expunge_deleted(Session& s, const std::optional<SequenceSet>& only) {
    auto& store = s.svc.store();
    auto user = s.user.id;
    auto mb = s.view.mailbox.id;
    auto max_uid = s.view.max_uid();
    auto remove = [&store, user, mb, only, max_uid] {
        std::vector<std::uint32_t> uids;
        for (auto& m : store.messages(user, mb)) {
            if (std::find(m.flags.begin(), m.flags.end(), "\\Deleted") == m.flags.end()) continue;
            if (only && !only->contains(m.uid, max_uid)) continue;
            uids.push_back(m.uid);
        }
        if (!uids.empty()) store.expunge(user, mb, uids);
        return uids.size();
    };
    auto n = co_await s.blocking(std::move(remove));
    co_return n;
}

}  // namespace

net::awaitable<void> cmd_check(Session& s, Command& c) {
    co_await s.sync(true, true);
    s.ok(c, "CHECK completed");
}

net::awaitable<void> cmd_close(Session& s, Command& c) {
    if (!c.args.empty()) {
        s.bad(c, c.name == "CLOSE" ? "CLOSE takes no arguments" : "UNSELECT takes no arguments");
        co_return;
    }
    const std::optional<SequenceSet> all;
    if (c.name == "CLOSE" && !s.view.read_only) co_await expunge_deleted(s, all);
    s.deselect();
    s.ok(c, c.name == "CLOSE" ? "CLOSE completed" : "UNSELECT completed");
}

net::awaitable<void> cmd_expunge(Session& s, Command& c) {
    std::optional<SequenceSet> only;
    if (c.uid) {
        if (c.args.size() != 1) {
            s.bad(c, "Syntax: UID EXPUNGE uid-set");
            co_return;
        }
        auto set = parse_sequence_set(c.args[0]);
        if (!set) {
            s.arg_error(c, set.error());
            co_return;
        }
        only = *set;
    } else if (!c.args.empty()) {
        s.bad(c, "EXPUNGE takes no arguments");
        co_return;
    }
    if (s.view.read_only) {
        s.no(c, "mailbox is read-only", "READ-ONLY");
        co_return;
    }
    co_await expunge_deleted(s, only);
    s.ok(c, "EXPUNGE completed");
}

}  // namespace millipost::imap
