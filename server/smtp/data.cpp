// smtp/data.cpp: DATA: read the message after 354, add Received:, deliver durably, then 250.
#include "mime/envelope.h"
#include "service.h"
#include "smtp/session.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <random>

namespace millipost::smtp {
namespace {

std::string rfc5322_date(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return buf;
}

// The same in the server's local time with its zone (RFC 5322 §3.3), for a Date: we add: the
// time as the user's client would have written it.
std::string rfc5322_local_date(std::time_t t) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;  // minutes east of UTC
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    // Spelled out rather than strftime: the names must not follow a locale.
    return fmt::format("{}, {:02d} {} {} {:02d}:{:02d}:{:02d} {}{:02d}{:02d}", kDays[tm.tm_wday],
                       tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, sign, off / 60, off % 60);
}

// A Message-ID (RFC 5322 §3.6.4) we add: the queue id and 64 random bits, unique without
// any state, at the server's hostname.
std::string new_message_id(const Session& s, const std::string& id) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return fmt::format("<{}.{:016x}@{}>", id, rng(), s.svc.config().hostname);
}

std::string received_header(const Session& s, const std::string& id, std::time_t now) {
    // RFC 5321 §4.1.3: an IPv6 address literal is tagged "IPv6:".
    auto peer = s.conn->peer_address();
    if (peer.find(':') != std::string::npos) peer = "IPv6:" + peer;
    std::string with = s.smtputf8 ? "UTF8SMTP" : s.esmtp ? "ESMTP" : "SMTP";
    // RFC 3848 (and RFC 6531 §3.7.3): an "S" for a message received over TLS, an "A" for one
    // from an authenticated client (ESMTPSA: a submission over TLS).
    if (s.esmtp && s.conn->tls_active()) with += 'S';
    if (s.esmtp && s.user) with += 'A';
    std::string h = fmt::format("Received: from {} ([{}])\r\n\tby {} (millipost) with {} id {}",
                                s.helo, peer, s.svc.config().hostname, with, id);
    if (s.forward_paths.size() == 1) h += fmt::format("\r\n\tfor <{}>", s.forward_paths.front());
    h += fmt::format(";\r\n\t{}\r\n", rfc5322_date(now));
    return h;
}

// RFC 6409 §8.1 (and RFC 5322 §3.6.2): a submitted message names its author in From:, and the
// author must be the authenticated user (or an alias). Returns why not, or "" when it does.
std::string from_problem(const Session& s, const mime::Message& parsed) {
    auto from = parsed.root.header("From");
    if (!from) return "Message has no From: header";
    auto list = mime::parse_address_list(from->unfolded());
    std::size_t n = 0;
    for (auto& a : list) {
        if (a.is_group_start() || a.is_group_end()) return "From: holds a group";
        if (!a.mailbox || !a.host || *a.host == mime::kMissingDomain)
            return "From: address without a domain";
        std::string addr = *a.mailbox + "@" + *a.host;
        if (!owns_address(s.svc, *s.user, addr))
            return "From: address <" + addr + "> not owned by user " + s.user->login;
        ++n;
    }
    if (n == 0) return "Message has no From: address";
    return {};
}

}  // namespace

net::awaitable<void> receive_data(Session& s) {
    const auto& cfg = s.svc.config();
    auto now = std::time(nullptr);
    auto id = s.svc.next_queue_id();
    std::string message = received_header(s, id, now);
    const std::size_t received_size = message.size();
    DataReader reader(cfg.max_message_size);
    struct Protect {  // a shutdown lets this transfer finish (within the grace period)
        net::Connection& c;
        explicit Protect(net::Connection& conn) : c(conn) { c.set_protected(true); }
        ~Protect() { c.set_protected(false); }
    } protect(*s.conn);
    while (true) {
        auto input = s.conn->input();
        std::size_t used = 0;
        if (!input.empty() && reader.feed(input, used, message) == DataReader::Status::Done) {
            s.conn->consume(used);
            break;
        }
        s.conn->consume(used);
        // The 354 must reach the client before it sends the message.
        if (!co_await s.conn->flush_and_fill(s.out, cfg.smtp_timeout)) {
            // Disconnect, timeout or shutdown mid-DATA: nothing was acknowledged, nothing kept.
            spdlog::info("smtp {} id={} aborted during DATA after {} bytes", s.conn->id(), id,
                         reader.size());
            s.quit = true;
            co_await s.goodbye();
            co_return;
        }
    }
    auto reject = [&](int code, const char* status, const std::string& why) {
        ++s.svc.counters().messages_rejected;
        spdlog::info("smtp {} id={} rejected: {}", s.conn->id(), id, why);
        s.reply(code, status, why);
        s.reset_transaction();
    };
    if (reader.too_big()) co_return reject(552, "5.3.4", "Message size exceeds fixed limit");
    if (reader.bare_newline())
        co_return reject(554, "5.6.0",
                         "Message contains bare CR or LF (RFC 5321 2.3.8); not delivered");
    if (reader.nul()) co_return reject(554, "5.6.0", "Message contains NUL bytes; not delivered");

    if (s.submitting()) {
        auto parsed = mime::parse(message);
        auto why = from_problem(s, parsed);
        if (!why.empty()) co_return reject(550, "5.7.1", why);
        // RFC 6409 §8.2, §8.3: a submission server may add a missing Date: and Message-ID:.
        // Only on the submission listeners (never on port 25, even for an authenticated relay
        // client, whose message is not ours to complete). They go right after our Received:,
        // at the top of the header section, where a header section without them starts.
        if (s.role == Role::Submission) {
            std::string add;
            if (!parsed.root.header("Date")) add += "Date: " + rfc5322_local_date(now) + "\r\n";
            if (!parsed.root.header("Message-ID"))
                add += "Message-ID: " + new_message_id(s, id) + "\r\n";
            if (!add.empty()) message.insert(received_size, add);
        }
    }

    std::vector<store::UserId> users(s.recipients.begin(), s.recipients.end());
    if (cfg.has_quota() && !users.empty()) {
        // DATA has one reply for all recipients: refuse the message (552 5.2.2) when it fits
        // no recipient's quota; when it fits some, all get it (the quota is soft by at most
        // one message rather than mail being lost for the others).
        std::size_t size = message.size();
        auto fits_any = [&s, &users, &cfg, size] {
            for (auto u : users) {
                auto usage = s.svc.store().usage(u);
                if (cfg.quota_allows(usage.messages, usage.bytes, 1, size)) return true;
            }
            return false;
        };
        bool fits = false;
        try {
            fits = co_await s.conn->server().blocking(std::move(fits_any));
        } catch (const std::exception&) {
            fits = true;  // the delivery below reports a store failure
        }
        if (!fits) co_return reject(552, "5.2.2", "Mailbox full: quota exceeded");
    }
    try {
        // Remote recipients first into the outbound queue, then the local delivery; should
        // that fail, the queue entry is taken back, so that the client's retry after the 451
        // does not send the message twice.
        auto deliver = [&s, &users, &message, now] {
            auto& store = s.svc.store();
            std::optional<std::int64_t> queued;
            if (!s.remote_paths.empty())
                queued = store.enqueue_outbound(s.reverse_path, s.remote_paths, message,
                                                static_cast<std::int64_t>(now));
            try {
                if (!users.empty())
                    store.deliver(users, store::kInbox, message, static_cast<std::int64_t>(now));
            } catch (...) {
                if (queued) store.remove_outbound(*queued);
                throw;
            }
        };
        co_await s.conn->server().blocking(std::move(deliver));
    } catch (const std::exception& e) {
        spdlog::error("smtp {} id={} store failed: {}", s.conn->id(), id, e.what());
        s.reply(451, "4.3.0", "Local error in processing; try again later");
        s.reset_transaction();
        co_return;
    }
    ++s.svc.counters().messages_accepted;
    s.svc.counters().deliveries += users.size();
    if (!s.remote_paths.empty()) s.svc.outbound_queued();
    spdlog::info("smtp {} id={} from=<{}> nrcpt={} size={} delivered{}", s.conn->id(), id,
                 s.reverse_path, s.forward_paths.size(), message.size(),
                 s.remote_paths.empty()
                     ? std::string()
                     : fmt::format(", {} queued for outbound delivery", s.remote_paths.size()));
    s.reply(250, "2.0.0", "Ok: queued as " + id);
    s.reset_transaction();
}

}  // namespace millipost::smtp
