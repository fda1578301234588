// imap/cmd_append.cpp: APPEND with flags and date (RFC 9051 §6.3.12), answered with APPENDUID
// (UIDPLUS, RFC 4315), binary content (literal8, RFC 3516) stored base64-encoded. One message
// per command: MULTIAPPEND is not offered.
#include "imap/context.h"

#include "mime/decode.h"

#include <fmt/format.h>

#include <chrono>

namespace millipost::imap {

net::awaitable<void> cmd_append(Session& s, Command& c) {
    auto args = parse_append(c, s.utf8);
    if (!args) {
        s.arg_error(c, args.error());
        co_return;
    }
    if (args->messages.size() != 1) {
        s.bad(c, "one message per APPEND (MULTIAPPEND is not supported)");
        co_return;
    }
    auto& m = args->messages[0];
    if (m.data.empty()) {
        s.no(c, "empty message", "CANNOT");
        co_return;
    }
    std::int64_t date = m.date ? m.date->epoch
                               : std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    auto flags = from_flag_list(m.flags);
    auto& store = s.svc.store();
    auto uid = s.user.id;
    auto name = args->mailbox;
    std::string data(m.data);
    // Binary content sent as literal8 is stored base64-encoded, so that BODY[] stays legal
    // (see mime::convert_binary_parts); BINARY[] decodes it back to the octets sent.
    if (m.binary) {
        if (auto converted = mime::convert_binary_parts(data)) data = std::move(*converted);
    }
    auto append = [&store, uid, name, data = std::move(data), date,
                   flags]() -> std::optional<std::pair<std::uint32_t, std::uint32_t>> {
        auto mb = store.find_mailbox(uid, name);
        if (!mb) return std::nullopt;
        std::vector<store::UserId> me{uid};
        auto d = store.deliver(me, mb->name, data, date, flags);
        return std::make_pair(mb->uidvalidity, d.at(0).uid);
    };
    std::optional<std::pair<std::uint32_t, std::uint32_t>> r;
    try {
        r = co_await s.blocking(std::move(append));
    } catch (const store::StoreError&) {
    }
    if (!r) {
        s.no(c, "no such mailbox", "TRYCREATE");
        co_return;
    }
    s.ok(c, "APPEND completed", fmt::format("APPENDUID {} {}", r->first, r->second));
}

}  // namespace millipost::imap
