// imap/cmd_quota.cpp: QUOTA (RFC 9208) with the resources STORAGE and MESSAGE. Each user has
// one quota root, "", covering all of the user's mailboxes; the limits come from the
// configuration ([imap] quota_storage, quota_messages), so SETQUOTA is refused.
#include "imap/context.h"

#include <fmt/format.h>

namespace millipost::imap {

namespace {

// The quota root every mailbox of a user belongs to.
constexpr std::string_view kRoot = "\"\"";

net::awaitable<store::Usage> load_usage(Session& s) {
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto get = [&store, uid] { return store.usage(uid); };
    auto u = co_await s.blocking(std::move(get));
    co_return u;
}

}  // namespace

std::string quota_response(const Session& s, const store::Usage& usage) {
    const auto& cfg = s.svc.config();
    if (!cfg.has_quota()) return {};
    std::string res;
    // STORAGE in units of 1024 octets, rounded up (RFC 9208 §5.1).
    if (cfg.quota_storage)
        res += fmt::format("STORAGE {} {}", (usage.bytes + 1023) / 1024, cfg.quota_storage);
    if (cfg.quota_messages) {
        if (!res.empty()) res += ' ';
        res += fmt::format("MESSAGE {} {}", usage.messages, cfg.quota_messages);
    }
    return fmt::format("QUOTA {} ({})", kRoot, res);
}

bool check_quota(Session& s, const Command& c, const store::Usage& usage,
                 std::uint64_t add_messages, std::uint64_t add_bytes) {
    if (s.svc.config().quota_allows(usage.messages, usage.bytes, add_messages, add_bytes))
        return true;
    s.no(c, "quota exceeded", "OVERQUOTA");
    return false;
}

net::awaitable<void> cmd_getquota(Session& s, Command& c) {
    if (c.args.size() != 1 || !astring(c.args[0])) {
        s.bad(c, "Syntax: GETQUOTA root");
        co_return;
    }
    if (!astring(c.args[0])->empty() || !s.svc.config().has_quota()) {
        s.no(c, "no such quota root", "NONEXISTENT");
        co_return;
    }
    auto usage = co_await load_usage(s);
    s.untagged(quota_response(s, usage));
    s.ok(c, "GETQUOTA completed");
}

net::awaitable<void> cmd_getquotaroot(Session& s, Command& c) {
    if (c.args.size() != 1) {
        s.bad(c, "Syntax: GETQUOTAROOT mailbox");
        co_return;
    }
    auto name = parse_mailbox(c.args[0], s.utf8);
    if (!name) {
        s.arg_error(c, name.error());
        co_return;
    }
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto n = *name;
    auto find = [&store, uid, n] { return store.find_mailbox(uid, n); };
    auto mb = co_await s.blocking(std::move(find));
    if (!mb) {
        s.no(c, "no such mailbox", "NONEXISTENT");
        co_return;
    }
    // Without limits the mailbox has no quota root (RFC 9208 §4.1.2: an empty list).
    if (!s.svc.config().has_quota()) {
        s.untagged("QUOTAROOT " + mailbox_name(s, mb->name));
        s.ok(c, "GETQUOTAROOT completed");
        co_return;
    }
    s.untagged(fmt::format("QUOTAROOT {} {}", mailbox_name(s, mb->name), kRoot));
    auto usage = co_await load_usage(s);
    s.untagged(quota_response(s, usage));
    s.ok(c, "GETQUOTAROOT completed");
}

net::awaitable<void> cmd_setquota(Session& s, Command& c) {
    // quota root SP "(" [setquota-list] ")": checked so that garbage still gets BAD.
    if (c.args.size() != 2 || !astring(c.args[0]) || !c.args[1].is_list()) {
        s.bad(c, "Syntax: SETQUOTA root (resource limit ...)");
        co_return;
    }
    s.no(c, "quota limits are set in the server configuration", "NOPERM");
    co_return;
}

}  // namespace millipost::imap
