// outbound/client.cpp: the outbound SMTP client (see client.h).
#include "outbound/client.h"

#include "auth/password.h"
#include "util/limits.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace millipost::outbound {

using namespace asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;
using std::chrono::seconds;

namespace {

// The enhanced status code (RFC 3463) at the start of a reply's text, or one derived from the
// basic code.
std::string status_of(const Reply& r) {
    if (!r.lines.empty()) {
        std::string_view t = r.lines.front();
        auto sp = t.find(' ');
        auto word = t.substr(0, sp);
        int dots = static_cast<int>(std::count(word.begin(), word.end(), '.'));
        if (dots == 2 && !word.empty() && word.front() == static_cast<char>('0' + r.code / 100) &&
            std::all_of(word.begin(), word.end(), [](char c) {
                return c == '.' || std::isdigit(static_cast<unsigned char>(c));
            }))
            return std::string(word);
    }
    return fmt::format("{}.0.0", r.code / 100);
}

RcptResult from_reply(const std::string& rcpt, const Reply& r, const std::string& relay,
                      const char* in_reply_to) {
    RcptResult res;
    res.address = rcpt;
    res.kind = r.completed()   ? RcptResult::Kind::Sent
               : r.permanent() ? RcptResult::Kind::Bounced
                               : RcptResult::Kind::Deferred;
    res.status = status_of(r);
    std::string text;
    for (auto& l : r.lines)
        text += (text.empty() ? "" : " ") + l;
    res.reply = fmt::format("{} {}", r.code, text);
    res.detail =
        res.kind == RcptResult::Kind::Sent
            ? res.reply
            : fmt::format("host {} said: {} (in reply to {})", relay, res.reply, in_reply_to);
    return res;
}

RcptResult local_result(const std::string& rcpt, RcptResult::Kind kind, std::string status,
                        std::string detail) {
    RcptResult res;
    res.address = rcpt;
    res.kind = kind;
    res.status = std::move(status);
    res.reply = detail;
    res.detail = std::move(detail);
    return res;
}

bool has_8bit(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return (c & 0x80) != 0; });
}

template <class Stream>
awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(Stream& s, char* buf,
                                                                       std::size_t n,
                                                                       seconds timeout) {
    asio::steady_timer timer(s.get_executor());
    timer.expires_after(timeout);
    auto read = s.async_read_some(asio::buffer(buf, n), asio::as_tuple(asio::use_awaitable));
    auto r = co_await (std::move(read) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) co_return std::pair{boost::system::error_code(asio::error::timed_out), 0};
    auto [ec, got] = std::get<0>(r);
    co_return std::pair{ec, got};
}

template <class Stream>
awaitable<boost::system::error_code> write_all(Stream& s, std::string_view data, seconds timeout) {
    asio::steady_timer timer(s.get_executor());
    timer.expires_after(timeout);
    auto write = asio::async_write(s, asio::buffer(data), asio::as_tuple(asio::use_awaitable));
    auto r = co_await (std::move(write) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) co_return boost::system::error_code(asio::error::timed_out);
    auto [ec, n] = std::get<0>(r);
    co_return ec;
}

}  // namespace

std::optional<Endpoint> parse_endpoint(std::string_view s) {
    Endpoint e;
    std::string_view host = s, port;
    if (!s.empty() && s.front() == '[') {  // [host]:port, [::1]:port
        auto close = s.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = s.substr(1, close - 1);
        auto rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port = rest.substr(1);
        }
    } else if (auto colon = s.rfind(':'); colon != std::string_view::npos && s.find(':') == colon) {
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    if (host.empty()) return std::nullopt;
    e.host = std::string(host);
    if (!port.empty()) {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
        if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535)
            return std::nullopt;
        e.port = static_cast<unsigned short>(v);
    }
    return e;
}

std::shared_ptr<asio::ssl::context> make_client_context(bool verify, const std::string& ca_file) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    if (verify) {
        ctx->set_verify_mode(asio::ssl::verify_peer);
        if (ca_file.empty())
            ctx->set_default_verify_paths();
        else
            ctx->load_verify_file(ca_file);
    } else {
        // Opportunistic TLS (RFC 7435, Postfix's "may" and "encrypt"): encryption against
        // passive eavesdropping; a certificate check would only make delivery fail where
        // plaintext would have been used instead.
        ctx->set_verify_mode(asio::ssl::verify_none);
    }
    return ctx;
}

SmtpClient::SmtpClient(asio::any_io_executor ex, ClientOptions opts)
    : ex_(ex),
      opts_(std::move(opts)),
      socket_(ex),
      parser_(limits::kSmtpClientMaxReplyLine, limits::kSmtpClientMaxReplyLines) {}

SmtpClient::~SmtpClient() {
    close();
}

void SmtpClient::close() {
    usable_ = false;
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
}

void SmtpClient::cancel() {
    cancelled_ = true;
    close();
}

awaitable<bool> SmtpClient::write(std::string_view data, seconds timeout) {
    auto ec = tls_ ? co_await write_all(*tls_, data, timeout)
                   : co_await write_all(socket_, data, timeout);
    if (ec) {
        error_ = ec == asio::error::timed_out ? "conversation timed out" : ec.message();
        usable_ = false;
        co_return false;
    }
    co_return true;
}

awaitable<std::optional<Reply>> SmtpClient::read_reply(seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (!in_.empty()) {
            std::size_t used = 0;
            auto st = parser_.feed(in_, used);
            in_.erase(0, used);
            if (st == ReplyParser::Status::Done) co_return parser_.reply();
            if (st == ReplyParser::Status::Bad) {
                error_ = "bad reply from server: " + parser_.error();
                usable_ = false;
                co_return std::nullopt;
            }
        }
        auto left =
            std::chrono::duration_cast<seconds>(deadline - std::chrono::steady_clock::now());
        if (left <= seconds(0)) left = seconds(0);
        char buf[4096];
        auto [ec, n] = tls_ ? co_await read_some(*tls_, buf, sizeof buf, left + seconds(1))
                            : co_await read_some(socket_, buf, sizeof buf, left + seconds(1));
        if (n > 0) {
            in_.append(buf, n);
            continue;
        }
        error_ = ec == asio::error::timed_out ? "conversation timed out"
                 : ec == asio::error::eof     ? "lost connection"
                                              : "lost connection: " + ec.message();
        usable_ = false;
        co_return std::nullopt;
    }
}

awaitable<std::optional<Reply>> SmtpClient::command(const std::string& line, seconds timeout) {
    spdlog::debug("outbound {} > {}", relay_, line.starts_with("AUTH ") ? "AUTH PLAIN ..." : line);
    if (!co_await write(line + "\r\n", timeout)) co_return std::nullopt;
    auto r = co_await read_reply(timeout);
    co_return r;
}

awaitable<std::optional<std::string>> SmtpClient::open(const Endpoint& e) {
    const auto& cfg = *opts_.cfg;
    close();
    if (cancelled_) co_return "shutting down";
    socket_ = tcp::socket(ex_);
    tls_.reset();
    in_.clear();
    parser_.reset();
    ext_ = {};
    host_ = e.host;
    relay_ = fmt::format("{}[?]:{}", e.host, e.port);
    std::vector<tcp::endpoint> endpoints;
    if (e.resolved) {
        // Looked up through [outbound] nameserver (runner.cpp): the literals given.
        if (e.addresses.empty()) co_return e.lookup_error;
        for (auto& a : e.addresses) {
            boost::system::error_code aec;
            auto addr = asio::ip::make_address(a, aec);
            if (!aec) endpoints.emplace_back(addr, e.port);
        }
    } else {
        // Resolve (an address literal resolves at once; a name through getaddrinfo).
        tcp::resolver resolver(ex_);
        asio::steady_timer timer(ex_);
        timer.expires_after(cfg.connect_timeout);
        auto resolve = resolver.async_resolve(e.host, std::to_string(e.port),
                                              asio::as_tuple(asio::use_awaitable));
        auto rr =
            co_await (std::move(resolve) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (cancelled_) co_return "shutting down";
        if (rr.index() == 1) co_return fmt::format("Host {}: name lookup timed out", e.host);
        auto [rec, results] = std::get<0>(rr);
        if (rec || results.empty())
            co_return fmt::format(
                "Host or domain name not found. Name service error for name={}: {}", e.host,
                rec ? rec.message() : "no addresses");
        for (auto& entry : results)
            endpoints.push_back(entry.endpoint());
    }
    std::string last = "no addresses";
    std::size_t tried = 0;
    for (auto& ep : endpoints) {
        if (tried++ == limits::kOutboundMaxAddressesPerHost) break;
        relay_ = fmt::format("{}[{}]:{}", e.host, ep.address().to_string(), ep.port());
        socket_ = tcp::socket(ex_);
        asio::steady_timer t(ex_);
        t.expires_after(cfg.connect_timeout);
        auto connect = socket_.async_connect(ep, asio::as_tuple(asio::use_awaitable));
        auto cr =
            co_await (std::move(connect) || t.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (cancelled_) co_return "shutting down";
        if (cr.index() == 1) {
            last = fmt::format("connect to {}: Connection timed out", relay_);
            continue;
        }
        auto [cec] = std::get<0>(cr);
        if (cec) {
            last = fmt::format("connect to {}: {}", relay_, cec.message());
            continue;
        }
        last.clear();
        break;
    }
    if (!last.empty()) co_return last;
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    usable_ = true;
    auto greeting = co_await read_reply(cfg.greeting_timeout);
    if (!greeting)
        co_return fmt::format("{} while receiving the initial server greeting from {}", error_,
                              relay_);
    if (greeting->code != 220) {
        close();
        co_return fmt::format("host {} refused to talk to me: {}", relay_, greeting->summary());
    }
    auto why = co_await hello();
    if (why) co_return why;
    using config::TlsPolicy;
    bool want = opts_.tls != TlsPolicy::None;
    bool required = opts_.tls == TlsPolicy::Encrypt || opts_.tls == TlsPolicy::Verify ||
                    !opts_.auth_user.empty();  // credentials never go in the clear
    if (want && ext_.starttls) {
        why = co_await starttls(e.host);
        if (why) co_return why;
        why = co_await hello();  // RFC 3207 §4.2: everything learnt before is forgotten
        if (why) co_return why;
    } else if (required) {
        close();
        co_return fmt::format("TLS is required, but was not offered by host {}", relay_);
    }
    if (!opts_.auth_user.empty()) {
        why = co_await auth();
        if (why) co_return why;
    }
    co_return std::nullopt;
}

awaitable<std::optional<std::string>> SmtpClient::hello() {
    auto t = opts_.cfg->command_timeout;
    auto r = co_await command("EHLO " + opts_.helo, t);
    if (!r) co_return fmt::format("{} while sending EHLO to {}", error_, relay_);
    if (r->code == 250) {
        ext_ = parse_ehlo(*r);
        co_return std::nullopt;
    }
    // RFC 5321 §3.2: a server that does not know EHLO gets HELO, and no extensions are used.
    ext_ = {};
    r = co_await command("HELO " + opts_.helo, t);
    if (!r) co_return fmt::format("{} while sending HELO to {}", error_, relay_);
    if (r->code != 250) {
        close();
        co_return fmt::format("host {} refused to talk to me: {} (in reply to HELO)", relay_,
                              r->summary());
    }
    co_return std::nullopt;
}

awaitable<std::optional<std::string>> SmtpClient::starttls(const std::string& host) {
    auto r = co_await command("STARTTLS", opts_.cfg->command_timeout);
    if (!r) co_return fmt::format("{} while sending STARTTLS to {}", error_, relay_);
    if (r->code != 220) {
        if (opts_.tls == config::TlsPolicy::May) co_return std::nullopt;  // go on in the clear
        close();
        co_return fmt::format("host {} refused STARTTLS: {}", relay_, r->summary());
    }
    // Bytes that came with the 220 were sent in the clear: never read as if through TLS.
    in_.clear();
    bool verify = opts_.tls == config::TlsPolicy::Verify;
    auto ctx = verify ? opts_.tls_verify : opts_.tls_noverify;
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *ctx);
    SSL* ssl = tls_->native_handle();
    SSL_set_tlsext_host_name(ssl, host.c_str());  // SNI
    if (verify) {
        // The certificate must name the host we connected to (RFC 6125 as OpenSSL checks it).
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        boost::system::error_code ec;
        asio::ip::make_address(host, ec);
        if (ec)
            SSL_set1_host(ssl, host.c_str());
        else
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
    }
    asio::steady_timer timer(ex_);
    timer.expires_after(opts_.cfg->command_timeout);
    auto hs =
        tls_->async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
    auto hr = co_await (std::move(hs) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    std::string fail;
    if (hr.index() == 1)
        fail = "TLS handshake timed out";
    else if (auto [ec] = std::get<0>(hr); ec)
        fail = "TLS handshake failed: " + ec.message();
    if (!fail.empty()) {
        tls_.reset();
        close();
        co_return fmt::format("{} with host {}", fail, relay_);
    }
    spdlog::debug("outbound {}: {} {}", relay_, SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    co_return std::nullopt;
}

awaitable<std::optional<std::string>> SmtpClient::auth() {
    if (!ext_.auth_plain) {
        close();
        co_return fmt::format("host {} does not offer AUTH PLAIN", relay_);
    }
    std::string token;
    token += '\0';
    token += opts_.auth_user;
    token += '\0';
    token += opts_.auth_password;
    auto r =
        co_await command("AUTH PLAIN " + auth::base64_encode(token), opts_.cfg->command_timeout);
    if (!r) co_return fmt::format("{} while authenticating to {}", error_, relay_);
    if (r->code != 235) {
        close();
        co_return fmt::format("SASL authentication failed; server {} said: {}", relay_,
                              r->summary());
    }
    co_return std::nullopt;
}

awaitable<std::vector<RcptResult>> SmtpClient::send(const std::string& sender,
                                                    std::span<const std::string> recipients,
                                                    const std::string& message) {
    const auto& cfg = *opts_.cfg;
    std::vector<RcptResult> out;
    auto all = [&](RcptResult::Kind kind, const std::string& status, const std::string& why) {
        out.clear();
        for (auto& r : recipients)
            out.push_back(local_result(r, kind, status, why));
        return out;
    };
    auto failed = [&](const char* step) {
        return all(RcptResult::Kind::Deferred, "4.4.2",
                   fmt::format("{} with {} while sending {}", error_, relay_, step));
    };
    // SIZE (RFC 1870): a message over the server's limit would only be refused after the upload.
    if (ext_.size && ext_.max_size != 0 && message.size() > ext_.max_size)
        co_return all(RcptResult::Kind::Bounced, "5.3.4",
                      fmt::format("message size {} exceeds size limit {} of server {}",
                                  message.size(), ext_.max_size, relay_));
    std::string mail = "MAIL FROM:<" + sender + ">";
    if (ext_.size) mail += fmt::format(" SIZE={}", message.size());
    if (ext_.eightbitmime && has_8bit(message)) mail += " BODY=8BITMIME";
    auto r = co_await command(mail, cfg.command_timeout);
    if (!r) co_return failed("MAIL FROM");
    if (!r->completed()) {
        out.clear();
        for (auto& rc : recipients)
            out.push_back(from_reply(rc, *r, relay_, "MAIL FROM command"));
        co_return out;
    }
    std::vector<std::size_t> accepted;
    for (std::size_t i = 0; i < recipients.size(); ++i) {
        r = co_await command("RCPT TO:<" + recipients[i] + ">", cfg.command_timeout);
        if (!r) co_return failed("RCPT TO");
        out.push_back(from_reply(recipients[i], *r, relay_, "RCPT TO command"));
        if (r->completed()) accepted.push_back(i);
    }
    if (accepted.empty()) {
        auto rs = co_await command("RSET", cfg.command_timeout);
        (void)rs;
        co_return out;
    }
    // Until the reply to the final dot, no accepted recipient has the message.
    auto mark_accepted = [&](RcptResult res) {
        for (auto i : accepted) {
            res.address = recipients[i];
            out[i] = res;
        }
    };
    r = co_await command("DATA", cfg.data_init_timeout);
    if (!r) {
        mark_accepted(local_result("", RcptResult::Kind::Deferred, "4.4.2",
                                   fmt::format("{} with {} while sending DATA", error_, relay_)));
        co_return out;
    }
    if (r->code != 354) {
        auto res = from_reply("", *r, relay_, "DATA command");
        if (res.kind == RcptResult::Kind::Sent) res.kind = RcptResult::Kind::Deferred;
        mark_accepted(res);
        co_return out;
    }
    auto body = dot_stuff(message);
    constexpr std::size_t kBlock = 64 * 1024;
    for (std::size_t pos = 0; pos < body.size(); pos += kBlock) {
        auto chunk = std::string_view(body).substr(pos, kBlock);
        if (!co_await write(chunk, cfg.data_block_timeout)) {
            mark_accepted(
                local_result("", RcptResult::Kind::Deferred, "4.4.2",
                             fmt::format("{} with {} while sending message body", error_, relay_)));
            co_return out;
        }
    }
    r = co_await read_reply(cfg.data_done_timeout);
    if (!r) {
        mark_accepted(local_result(
            "", RcptResult::Kind::Deferred, "4.4.2",
            fmt::format(
                "{} with {} while sending end of data -- message may be sent more than once",
                error_, relay_)));
        co_return out;
    }
    mark_accepted(from_reply("", *r, relay_, "end of DATA command"));
    co_return out;
}

awaitable<void> SmtpClient::quit() {
    if (usable_) {
        auto r = co_await command("QUIT",
                                  seconds(std::min<long>(opts_.cfg->command_timeout.count(), 10)));
        (void)r;
    }
    if (tls_) {
        asio::steady_timer timer(ex_);
        timer.expires_after(limits::kTlsShutdownTimeout);
        auto sd = tls_->async_shutdown(asio::as_tuple(asio::use_awaitable));
        co_await (std::move(sd) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    }
    close();
}

}  // namespace millipost::outbound
