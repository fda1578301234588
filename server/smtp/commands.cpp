// smtp/commands.cpp: SMTP command handlers and the command table.
#include "auth/sasl_session.h"
#include "service.h"
#include "smtp/session.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace millipost::smtp {
namespace {

// STARTTLS is offered with a certificate configured, and only until TLS is active.
bool starttls_offered(const Session& s) {
    return !s.conn->tls_active() && s.svc.tls_available();
}

net::awaitable<void> cmd_helo(Session& s, Command& c) {
    s.reset_transaction();
    s.helo = c.arg;
    s.esmtp = c.verb == Verb::Ehlo;
    const auto& host = s.svc.config().hostname;
    if (!s.esmtp) {
        s.reply(250, "", host);
        co_return;
    }
    std::vector<std::string> ext = {host + " greets " + c.arg,
                                    "PIPELINING",
                                    fmt::format("SIZE {}", s.svc.config().max_message_size),
                                    "8BITMIME",
                                    "SMTPUTF8",
                                    "ENHANCEDSTATUSCODES",
                                    "HELP"};
    // RFC 3207 §4.2: STARTTLS is offered before TLS; RFC 4954 §3: the mechanisms this
    // connection may use (plaintext ones only where allowed).
    if (starttls_offered(s)) ext.push_back("STARTTLS");
    std::string auth = "AUTH";
    for (auto& m : auth::advertised_mechanisms(s.svc, *s.conn))
        auth += " " + m;
    ext.push_back(auth);
    s.reply_multi(250, ext);
}

// SMTP's SASL framing (RFC 4954 §4): "334 <base64>" challenges, one response line each.
class SmtpFraming : public auth::SaslFraming {
  public:
    explicit SmtpFraming(Session& s) : s_(s) {}
    void challenge(const std::string& b64) override { s_.out += "334 " + b64 + "\r\n"; }
    net::awaitable<std::optional<std::string>> response() override {
        auto line = co_await auth::read_sasl_line(*s_.conn, s_.out, limits::kSaslMaxResponseLine,
                                                  s_.timeout());
        co_return line;
    }

  private:
    Session& s_;
};

// AUTH (RFC 4954): replies and enhanced codes of its §6 and RFC 5248.
net::awaitable<void> cmd_auth(Session& s, Command& c) {
    if (!s.esmtp) {
        s.reply(503, "5.5.1", "Error: send EHLO first");
        co_return;
    }
    if (s.user) {
        s.reply(503, "5.5.1", "Error: already authenticated");
        co_return;
    }
    if (s.in_mail) {
        s.reply(503, "5.5.1", "Error: AUTH not allowed during a mail transaction");
        co_return;
    }
    auto sp = c.arg.find(' ');
    std::string mechanism = c.arg.substr(0, sp);
    std::optional<std::string> initial;
    if (sp != std::string::npos) initial = c.arg.substr(sp + 1);
    SmtpFraming io(s);
    auto o = co_await auth::run_sasl(s.svc, s.conn, io, "smtp", mechanism, std::move(initial));
    using St = auth::SaslOutcome::Status;
    switch (o.status) {
        case St::Success:
            s.user = o.user;
            s.reply(235, "2.7.0", "Authentication successful");
            break;
        case St::Failed:
        case St::AuthzFailed:
            ++s.auth_failures;
            s.reply(535, "5.7.8", "Authentication credentials invalid");
            break;
        case St::Refused:
            ++s.auth_failures;
            s.reply(454, "4.7.0", "Temporary authentication failure: " + o.reason);
            break;
        case St::Unavailable:
            s.reply(454, "4.7.0", "Temporary authentication failure: " + o.reason);
            break;
        case St::EncryptionRequired:
            s.reply(538, "5.7.11", "Encryption required for requested authentication mechanism");
            break;
        case St::Unsupported:
            s.reply(504, "5.5.4", "Unrecognized authentication type");
            break;
        case St::Cancelled:
            ++s.errors;
            s.reply(501, "5.0.0", "Authentication cancelled");
            break;
        case St::Malformed:
            ++s.errors;
            s.reply(501, "5.5.2", "Cannot decode response: " + o.reason);
            break;
        case St::Closed:
            if (s.conn->closed() == net::Connection::Closed::No) {
                ++s.errors;
                s.reply(500, "5.5.6", "Authentication Exchange line is too long");
            } else {
                s.quit = true;
                co_await s.goodbye();  // 421 for a timeout (or shutdown) mid-exchange
            }
            break;
    }
    // Guessing passwords over one connection ends after a few tries (the failed-login
    // throttle already slows each one and counts them across connections).
    if (s.auth_failures >= limits::kSmtpMaxAuthFailures && !s.quit) {
        s.reply(421, "4.7.0",
                s.svc.config().hostname + " Too many authentication failures, closing connection");
        s.quit = true;
    }
}

// RFC 3207: 220, then the handshake. The reply and anything before it are sent first; input
// the client pipelined after STARTTLS is discarded by start_tls (never run as if it came
// through TLS). Afterwards the session is as new: no HELO/EHLO, no transaction (§4.2).
net::awaitable<void> cmd_starttls(Session& s, Command&) {
    if (s.conn->tls_active()) {
        s.reply(503, "5.5.1", "Error: TLS already active");
        co_return;
    }
    auto ctx = s.svc.tls_context();
    if (!ctx) {
        s.reply(454, "4.7.0", "TLS not available");
        co_return;
    }
    s.reply(220, "2.0.0", "Ready to start TLS");
    bool up = co_await s.conn->send(s.out);
    s.out.clear();
    if (up) up = co_await s.conn->start_tls(std::move(ctx), limits::kTlsHandshakeTimeout);
    if (!up) {
        s.quit = true;  // the connection is unusable: closed without another word
        co_return;
    }
    s.lines = proto::LineParser(s.lines.max_line());
    s.reset_transaction();
    s.helo.clear();
    s.esmtp = false;
    s.user.reset();  // §4.2: nothing learnt before TLS is kept, an authentication included
}

net::awaitable<void> cmd_mail(Session& s, Command& c) {
    if (s.helo.empty()) {
        s.reply(503, "5.5.1", "Error: send HELO/EHLO first");
        co_return;
    }
    if (s.in_mail) {
        s.reply(503, "5.5.1", "Error: nested MAIL command");
        co_return;
    }
    // RFC 6409 §4.3 / RFC 4954 §6: submission takes mail only from authenticated users, and
    // only as themselves (§8.1 lets an MSA refuse a sender the user may not use).
    if (s.role == Role::Submission && !s.user) {
        s.reply(530, "5.7.0", "Authentication required");
        co_return;
    }
    if (s.submitting() && !owns_address(s.svc, *s.user, c.path)) {
        s.reply(553, "5.7.1", "Sender address <" + c.path + "> not owned by user " + s.user->login);
        co_return;
    }
    bool utf8 = false;
    for (auto& p : c.params) {
        if (p.key == "SIZE") {
            // RFC 1870: size-value = 1*20DIGIT; a value past 2^64 is still just too big.
            const auto& v = p.value;
            if (v.empty() || v.size() > 20 ||
                !std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
                s.reply(501, "5.5.4", "Bad SIZE parameter");
                co_return;
            }
            std::size_t n = 0;
            auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec == std::errc::result_out_of_range || n > s.svc.config().max_message_size) {
                s.reply(552, "5.3.4", "Message size exceeds fixed limit");
                co_return;
            }
        } else if (p.key == "BODY") {
            if (p.value != "7BIT" && p.value != "8BITMIME") {
                s.reply(501, "5.5.4", "Unsupported BODY type");
                co_return;
            }
        } else if (p.key == "SMTPUTF8" && p.value.empty()) {
            if (!s.esmtp) {
                s.reply(555, "5.5.4", "SMTPUTF8 requires EHLO");
                co_return;
            }
            utf8 = true;
        } else {
            s.reply(555, "5.5.4", "Unsupported parameter " + p.key);
            co_return;
        }
    }
    s.in_mail = true;
    s.reverse_path = c.path;
    s.smtputf8 = utf8;
    s.reply(250, "2.1.0", "Ok");
}

net::awaitable<void> cmd_rcpt(Session& s, Command& c) {
    if (!s.in_mail) {
        s.reply(503, "5.5.1", "Error: need MAIL command");
        co_return;
    }
    if (!c.params.empty()) {
        s.reply(555, "5.5.4", "Unsupported parameter " + c.params.front().key);
        co_return;
    }
    if (!s.smtputf8 && std::any_of(c.path.begin(), c.path.end(), [](char ch) {
            return static_cast<unsigned char>(ch) >= 0x80;
        })) {
        s.reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
        co_return;
    }
    if (s.forward_paths.size() >= s.svc.config().max_recipients) {
        s.reply(452, "4.5.3", "Error: too many recipients");
        co_return;
    }
    auto [local, domain] = split_address(c.path);
    std::string path = c.path;
    // The user, and whether the directory could answer (an LDAP server down is a temporary
    // failure, never "user unknown": the sender would bounce the mail).
    auto lookup = [&s, path]() -> std::pair<std::optional<store::User>, bool> {
        try {
            return {s.svc.resolve_recipient(path), true};
        } catch (const auth::DirectoryUnavailable&) {  // logged by the directory
            return {std::nullopt, false};
        }
    };
    auto found = co_await s.conn->server().blocking(std::move(lookup));
    if (!found.second) {
        s.reply(451, "4.4.3", "Directory server unavailable, try again later");
        co_return;
    }
    auto user = std::move(found.first);
    if (!user) {
        if (s.svc.is_local_domain(domain)) {
            s.reply(550, "5.1.1", "Recipient address rejected: user unknown");
        } else if (s.submitting() && !domain.empty()) {
            // Another domain, from an authenticated user: into the outbound queue at DATA.
            s.forward_paths.push_back(c.path);
            s.remote_paths.push_back(c.path);
            s.reply(250, "2.1.5", "Ok");
        } else {  // 550: RFC 5321 §4.3.2 lists no 554 for RCPT
            s.reply(550, "5.7.1", "Relay access denied");
        }
        co_return;
    }
    // A user at the quota (RFC 9208 limits from [imap]) cannot take any message: 552 5.2.2
    // "mailbox full" (RFC 3463). Whether this message fits is known only after DATA.
    if (s.svc.config().has_quota()) {
        auto id = user->id;
        auto usage = [&s, id] { return s.svc.store().usage(id); };
        auto u = co_await s.conn->server().blocking(std::move(usage));
        if (!s.svc.config().quota_allows(u.messages, u.bytes, 1, 1)) {
            s.reply(552, "5.2.2", "Mailbox full: quota exceeded");
            co_return;
        }
    }
    s.forward_paths.push_back(c.path);
    s.recipients.insert(user->id);
    s.reply(250, "2.1.5", "Ok");
}

net::awaitable<void> cmd_data(Session& s, Command&) {
    if (!s.in_mail) {
        s.reply(503, "5.5.1", "Error: need MAIL command");
        co_return;
    }
    if (s.recipients.empty() && s.remote_paths.empty()) {
        s.reply(554, "5.5.1", "Error: no valid recipients");
        co_return;
    }
    s.reply(354, "", "End data with <CR><LF>.<CR><LF>");
    co_await receive_data(s);
}

net::awaitable<void> cmd_rset(Session& s, Command&) {
    s.reset_transaction();
    s.reply(250, "2.0.0", "Ok");
    co_return;
}

net::awaitable<void> cmd_noop(Session& s, Command&) {
    s.reply(250, "2.0.0", "Ok");
    co_return;
}

net::awaitable<void> cmd_vrfy(Session& s, Command&) {
    s.reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
    co_return;
}

net::awaitable<void> cmd_expn(Session& s, Command&) {
    s.reply(502, "5.5.1", "EXPN not supported");
    co_return;
}

net::awaitable<void> cmd_help(Session& s, Command&) {
    s.reply_multi(
        214, {"2.0.0 Commands: EHLO HELO AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS",
              "2.0.0 See RFC 5321; this server: millipost"});
    co_return;
}

net::awaitable<void> cmd_quit(Session& s, Command&) {
    s.reply(221, "2.0.0", s.svc.config().hostname + " Bye");
    s.quit = true;
    co_return;
}

constexpr CommandSpec kCommands[] = {
    {Verb::Helo, cmd_helo},         {Verb::Ehlo, cmd_helo}, {Verb::Mail, cmd_mail},
    {Verb::Rcpt, cmd_rcpt},         {Verb::Data, cmd_data}, {Verb::Rset, cmd_rset},
    {Verb::Noop, cmd_noop},         {Verb::Vrfy, cmd_vrfy}, {Verb::Expn, cmd_expn},
    {Verb::Help, cmd_help},         {Verb::Quit, cmd_quit}, {Verb::Auth, cmd_auth},
    {Verb::Starttls, cmd_starttls},
};

}  // namespace

const CommandSpec* find_command(Verb verb) {
    for (auto& c : kCommands)
        if (c.verb == verb) return &c;
    return nullptr;
}

}  // namespace millipost::smtp
