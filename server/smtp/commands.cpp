// smtp/commands.cpp: SMTP command handlers and the command table.
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
    if (starttls_offered(s)) ext.push_back("STARTTLS");
    s.reply_multi(250, ext);
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
    auto lookup = [&s, path] { return s.svc.resolve_recipient(path); };
    auto user = co_await s.conn->server().blocking(std::move(lookup));
    if (!user) {
        if (!s.svc.is_local_domain(domain))  // 550: RFC 5321 §4.3.2 lists no 554 for RCPT
            s.reply(550, "5.7.1", "Relay access denied");
        else
            s.reply(550, "5.1.1", "Recipient address rejected: user unknown");
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
    if (s.recipients.empty()) {
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
    s.reply_multi(214,
                  {"2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS",
                   "2.0.0 See RFC 5321; this server: millipost"});
    co_return;
}

net::awaitable<void> cmd_quit(Session& s, Command&) {
    s.reply(221, "2.0.0", s.svc.config().hostname + " Bye");
    s.quit = true;
    co_return;
}

constexpr CommandSpec kCommands[] = {
    {Verb::Helo, cmd_helo}, {Verb::Ehlo, cmd_helo}, {Verb::Mail, cmd_mail},
    {Verb::Rcpt, cmd_rcpt}, {Verb::Data, cmd_data}, {Verb::Rset, cmd_rset},
    {Verb::Noop, cmd_noop}, {Verb::Vrfy, cmd_vrfy}, {Verb::Expn, cmd_expn},
    {Verb::Help, cmd_help}, {Verb::Quit, cmd_quit}, {Verb::Starttls, cmd_starttls},
};

}  // namespace

const CommandSpec* find_command(Verb verb) {
    for (auto& c : kCommands)
        if (c.verb == verb) return &c;
    return nullptr;
}

}  // namespace millipost::smtp
