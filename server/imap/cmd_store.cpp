// imap/cmd_store.cpp: STORE and UID STORE (+/-FLAGS[.SILENT]), COPY/UID COPY with COPYUID
// (UIDPLUS, RFC 4315) and MOVE/UID MOVE (RFC 6851).
#include "imap/context.h"

#include <fmt/format.h>

#include <algorithm>

namespace millipost::imap {

net::awaitable<void> cmd_store(Session& s, Command& c) {
    auto args = parse_store(c);
    if (!args) {
        s.arg_error(c, args.error());
        co_return;
    }
    if (!c.uid && args->set.max_number() > s.view.size()) {
        s.bad(c, "invalid message sequence number");
        co_return;
    }
    if (s.view.read_only) {
        s.no(c, "mailbox is read-only", "READ-ONLY");
        co_return;
    }
    if (args->unchanged_since) s.enable_condstore();
    auto seqs = resolve_set(s, args->set, c.uid);
    std::vector<std::uint32_t> uids;
    for (auto seq : seqs)
        uids.push_back(s.view.at(seq).uid);
    auto op = args->mode == StoreArgs::Mode::Replace ? store::FlagOp::Replace
              : args->mode == StoreArgs::Mode::Add   ? store::FlagOp::Add
                                                     : store::FlagOp::Remove;
    auto flags = from_flag_list(args->flags);
    auto& store = s.svc.store();
    auto user = s.user.id;
    auto mb = s.view.mailbox.id;
    auto since = args->unchanged_since;
    auto apply = [&store, user, mb, uids, op, flags, since] {
        return store.update_flags(user, mb, uids, op, flags, since);
    };
    auto result = co_await s.blocking(std::move(apply));
    // One response per message named that still exists: its flags after the change (RFC 9051
    // §6.4.6), also when nothing changed; with CONDSTORE its MODSEQ, and for .SILENT only
    // that, for the messages this STORE changed (RFC 7162 §3.1.3).
    std::vector<std::uint32_t> modified;
    for (auto& m : result.messages) {
        auto seq = s.view.seq_of(m.uid);
        if (!seq) continue;
        bool refused = std::binary_search(result.modified.begin(), result.modified.end(), m.uid);
        bool changed = std::binary_search(result.changed.begin(), result.changed.end(), m.uid);
        if (refused) {
            modified.push_back(c.uid ? m.uid : seq);
            continue;
        }
        // The flags now, including a concurrent change, which this response reports.
        s.view.set_flags(m.uid, m.flags, m.modseq);
        s.announce_keywords(m.flags);  // before any FETCH that names a new keyword
        if (args->silent && !(s.condstore && changed)) continue;
        FetchResponse r(s.out, seq);
        if (!args->silent) r.flags(s.flags_of(s.view.at(seq)));
        if (c.uid) r.uid(m.uid);
        if (s.condstore) r.modseq(m.modseq);
        r.finish();
    }
    if (!modified.empty()) {
        std::sort(modified.begin(), modified.end());
        s.ok(c, "conditional STORE failed for some messages",
             "MODIFIED " + compress_sequence(modified));
    } else {
        s.ok(c, "STORE completed");
    }
}

net::awaitable<void> cmd_copy(Session& s, Command& c) {
    bool move = c.name == "MOVE";
    if (c.args.size() != 2) {
        s.bad(c, fmt::format("Syntax: {} sequence-set mailbox", c.name));
        co_return;
    }
    auto set = parse_sequence_set(c.args[0]);
    if (!set) {
        s.arg_error(c, set.error());
        co_return;
    }
    auto name = parse_mailbox(c.args[1], s.utf8);
    if (!name) {
        s.arg_error(c, name.error());
        co_return;
    }
    if (!c.uid && set->max_number() > s.view.size()) {
        s.bad(c, "invalid message sequence number");
        co_return;
    }
    if (move && s.view.read_only) {
        s.no(c, "mailbox is read-only", "READ-ONLY");
        co_return;
    }
    std::vector<std::uint32_t> uids;
    for (auto seq : resolve_set(s, *set, c.uid))
        uids.push_back(s.view.at(seq).uid);
    auto& store = s.svc.store();
    auto user = s.user.id;
    auto from = s.view.mailbox.id;
    auto n = *name;
    const auto& cfg = s.svc.config();
    bool over_quota = false;
    // COPY adds to the user's usage (QUOTA, RFC 9208 §4.3): refused with NO [OVERQUOTA] when it
    // would cross a limit. MOVE stays within the one quota root and changes nothing.
    auto transfer = [&store, &cfg, &over_quota, user, from, uids, n,
                     move]() -> std::optional<std::pair<std::uint32_t, store::MailStore::UidMap>> {
        auto dst = store.find_mailbox(user, n);
        if (!dst) return std::nullopt;
        if (!move && cfg.has_quota()) {
            std::uint64_t count = 0, bytes = 0;
            for (auto& m : store.messages(user, from))
                if (std::binary_search(uids.begin(), uids.end(), m.uid)) {
                    ++count;
                    bytes += m.size;
                }
            auto u = store.usage(user);
            if (!cfg.quota_allows(u.messages, u.bytes, count, bytes)) {
                over_quota = true;
                return std::nullopt;
            }
        }
        auto map = move ? store.move_messages(user, from, uids, dst->id)
                        : store.copy_messages(user, from, uids, dst->id);
        return std::make_pair(dst->uidvalidity, std::move(map));
    };
    std::optional<std::pair<std::uint32_t, store::MailStore::UidMap>> r;
    try {
        r = co_await s.blocking(std::move(transfer));
    } catch (const store::StoreError&) {
    }
    if (over_quota) {
        s.no(c, "quota exceeded", "OVERQUOTA");
        co_return;
    }
    if (!r) {
        s.no(c, "no such mailbox", "TRYCREATE");
        co_return;
    }
    std::string code;
    if (!r->second.empty()) {
        std::vector<std::uint32_t> src, dst;
        for (auto& [a, b] : r->second) {
            src.push_back(a);
            dst.push_back(b);
        }
        code = fmt::format("COPYUID {} {} {}", r->first, compress_sequence(src),
                           compress_sequence(dst));
    }
    if (move) {
        // RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs.
        if (!code.empty()) s.untagged("OK [" + code + "] moved");
        s.ok(c, "MOVE completed");
    } else {
        s.ok(c, "COPY completed", code);
    }
}

}  // namespace millipost::imap
