// imap/cmd_append.cpp: APPEND with flags and date (RFC 9051 §6.3.12), several messages in one
// command stored atomically (MULTIAPPEND, RFC 3502), messages built from text and IMAP URLs of
// the user's own messages (CATENATE, RFC 4469), answered with APPENDUID (UIDPLUS, RFC 4315) and
// checked against the user's quota (RFC 9208) and the message size limit. Binary content
// (literal8, RFC 3516) is stored base64-encoded.
#include "imap/context.h"

#include "mime/decode.h"
#include "mime/message.h"
#include "mime/section.h"

#include <fmt/format.h>

#include <chrono>

namespace millipost::imap {

namespace {

struct AppendResult {
    enum class Status { Ok, TryCreate, BadUrl, TooBig, OverQuota, Empty };
    Status status = Status::Ok;
    std::string text;  // for the NO
    std::uint32_t uidvalidity = 0;
    std::vector<std::uint32_t> uids;
};

// The bytes a CATENATE URL names (RFC 4469 §5, RFC 5092): a message of one of the user's
// mailboxes (with the right UIDVALIDITY when given), a section of it, a range of that. Nullopt
// when the URL names nothing: NO [BADURL].
std::optional<std::string> resolve_url(store::MailStore& store, store::UserId user,
                                       const ImapUrl& url) {
    auto mb = store.find_mailbox(user, url.mailbox);
    if (!mb || (url.uidvalidity && *url.uidvalidity != mb->uidvalidity)) return std::nullopt;
    std::string raw;
    try {
        raw = store.read_message(user, mb->id, url.uid);
    } catch (const store::StoreError&) {
        return std::nullopt;
    }
    std::string data;
    if (url.section.empty()) {
        data = std::move(raw);
    } else {
        auto sec = mime::parse_section(url.section);
        if (!sec) return std::nullopt;
        auto msg = mime::parse(raw);
        auto d = mime::fetch_section(msg, *sec);
        if (!d.exists) return std::nullopt;
        data = std::string(d.bytes(raw));
    }
    if (url.partial) {
        auto [offset, length] = *url.partial;
        if (offset >= data.size()) return std::string();
        data = data.substr(offset, length ? *length : std::string::npos);
    }
    return data;
}

}  // namespace

net::awaitable<void> cmd_append(Session& s, Command& c) {
    auto args = parse_append(c, s.utf8);
    if (!args) {
        s.arg_error(c, args.error());
        co_return;
    }
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    auto& store = s.svc.store();
    const auto& cfg = s.svc.config();
    auto uid = s.user.id;
    // The blocking call reads the URLs' messages, checks size and quota and appends, so that the
    // command sees one state of the store. The AppendMessage views point into `c`, which
    // outlives the call.
    auto& a = *args;
    auto append = [&store, &cfg, &a, uid, now]() -> AppendResult {
        using S = AppendResult::Status;
        AppendResult r;
        auto mb = store.find_mailbox(uid, a.mailbox);
        if (!mb) return {S::TryCreate, "no such mailbox"};
        std::vector<std::string> built(a.messages.size());
        std::vector<store::NewMessage> batch;
        std::uint64_t total = 0;
        for (std::size_t i = 0; i < a.messages.size(); ++i) {
            auto& m = a.messages[i];
            std::string_view bytes = m.data;
            if (m.catenate) {
                for (auto& part : m.parts) {
                    if (!part.is_url) {
                        built[i] += part.text;
                    } else {
                        auto data = resolve_url(store, uid, part.url);
                        if (!data)
                            return {S::BadUrl, fmt::format("URL {} names no message of yours",
                                                           part.url_text.substr(0, 200))};
                        built[i] += *data;
                    }
                    if (built[i].size() > cfg.max_message_size)
                        return {S::TooBig, "the message would be too big"};
                }
                bytes = built[i];
            } else if (m.binary) {
                // Binary content sent as literal8 is stored base64-encoded, so that BODY[]
                // stays legal (see mime::convert_binary_parts); BINARY[] decodes it back.
                if (auto converted = mime::convert_binary_parts(bytes)) {
                    built[i] = std::move(*converted);
                    bytes = built[i];
                }
            }
            if (bytes.empty()) return {S::Empty, "empty message"};
            total += bytes.size();
            batch.push_back(
                store::NewMessage{bytes, m.date ? m.date->epoch : now, from_flag_list(m.flags)});
        }
        if (cfg.has_quota()) {
            auto u = store.usage(uid);
            if (!cfg.quota_allows(u.messages, u.bytes, batch.size(), total))
                return {S::OverQuota, "quota exceeded"};
        }
        r.uidvalidity = mb->uidvalidity;
        r.uids = store.append(uid, mb->id, batch);
        return r;
    };
    AppendResult r;
    try {
        r = co_await s.blocking(std::move(append));
    } catch (const store::StoreError& e) {
        if (e.kind() == store::StoreError::Kind::NotFound)
            r = {AppendResult::Status::TryCreate, "no such mailbox"};
        else
            r = {AppendResult::Status::Empty, e.what()};
    }
    using S = AppendResult::Status;
    switch (r.status) {
        case S::Ok:
            s.ok(c, "APPEND completed",
                 fmt::format("APPENDUID {} {}", r.uidvalidity, compress_sequence(r.uids)));
            break;
        case S::TryCreate:
            s.no(c, r.text, "TRYCREATE");
            break;
        case S::BadUrl:
            s.no(c, r.text, "BADURL");
            break;
        case S::TooBig:
            s.no(c, r.text, "TOOBIG");
            break;
        case S::OverQuota:
            s.no(c, r.text, "OVERQUOTA");
            break;
        case S::Empty:
            s.no(c, r.text, "CANNOT");
            break;
    }
}

}  // namespace millipost::imap
