// smtp/session.cpp: the SMTP session loop: greet, read a line, parse, dispatch, reply.
#include "smtp/session.h"

#include "service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace millipost::smtp {

Session::Session(std::shared_ptr<net::Connection> c, Service& s, Role r)
    : conn(std::move(c)), svc(s), lines(limits::kSmtpMaxCommandLine), role(r) {}

bool Session::submitting() const {
    return user && (role == Role::Submission || svc.config().inbound_auth_relay);
}

std::chrono::seconds Session::timeout() const {
    return pre_auth() ? svc.config().smtp_login_timeout : svc.config().smtp_timeout;
}

void Session::reply(int code, std::string_view status, std::string_view text) {
    out += fmt::format("{} {}{}{}\r\n", code, status, status.empty() ? "" : " ", text);
}

void Session::reply_multi(int code, const std::vector<std::string>& ls) {
    for (std::size_t i = 0; i < ls.size(); ++i)
        out += fmt::format("{}{}{}\r\n", code, i + 1 == ls.size() ? ' ' : '-', ls[i]);
}

void Session::reset_transaction() {
    in_mail = false;
    reverse_path.clear();
    smtputf8 = false;
    forward_paths.clear();
    recipients.clear();
    remote_paths.clear();
}

net::awaitable<void> Session::goodbye() {
    using C = net::Connection::Closed;
    const auto& host = svc.config().hostname;
    if (conn->closed() == C::Timeout && conn->deadline_passed()) {
        ++svc.counters().prelogin_timeouts;
        reply(421, "4.7.0", host + " Error: no authentication within the time allowed");
    } else if (conn->closed() == C::Timeout) {
        ++svc.counters().idle_timeouts;
        reply(421, "4.4.2", host + " Error: timeout exceeded");
    } else if (conn->closed() == C::Shutdown)
        reply(421, "4.3.2", host + " Service shutting down");
    else
        co_return;
    co_await conn->send(out);
    out.clear();
}

net::awaitable<void> serve(std::shared_ptr<net::Connection> conn, Service& svc, Role role) {
    Session s(conn, svc, role);
    const auto& cfg = svc.config();
    if (auto a = svc.admit(*conn, "smtp"); a != net::Connection::Admission::Ok) {
        s.reply(421, "4.7.0",
                cfg.hostname + (a == net::Connection::Admission::TooManyFromAddress
                                    ? " Too many connections from your address, try again later"
                                    : " Too many connections, try again later"));
        co_await conn->send(s.out);
        co_return;
    }
    ++svc.counters().smtp_sessions;
    // A submission client has [server] prelogin_max_time from accept to authenticate, however
    // busy it keeps itself; port 25 has no login.
    if (s.pre_auth()) conn->set_deadline(conn->accepted() + cfg.prelogin_max_time);
    spdlog::debug("smtp {} connect from {}", conn->id(), conn->peer());
    s.reply(220, "", cfg.hostname + " ESMTP millipost");
    while (!s.quit) {
        auto input = conn->input();
        if (input.empty()) {
            if (!co_await conn->flush_and_fill(s.out, s.timeout())) {
                co_await s.goodbye();
                co_return;
            }
            continue;
        }
        std::size_t used = 0;
        auto status = s.lines.feed(input, used);
        conn->consume(used);
        switch (status) {
            case proto::LineParser::Status::NeedMore:
                continue;
            case proto::LineParser::Status::TooLong:
                ++s.errors;
                s.reply(500, "5.5.6", "Line too long");
                break;
            case proto::LineParser::Status::BareLF:
                ++s.errors;
                s.reply(500, "5.5.2", "Syntax error: bare LF; lines end with CRLF");
                break;
            case proto::LineParser::Status::Nul:
                ++s.errors;
                s.reply(500, "5.5.2", "Syntax error: NUL byte in command");
                break;
            case proto::LineParser::Status::Line: {
                auto parsed = parse_command(s.lines.line());
                if (!parsed.command) {
                    ++s.errors;
                    s.reply(parsed.error.code, parsed.error.status, parsed.error.text);
                    break;
                }
                auto verb = parsed.command->verb;
                // RFC 4954 §6 / RFC 6409 §4.3: before AUTH, a submission server serves only
                // what leads to it. Each refusal counts as an error, so a client that keeps
                // trying a transaction without logging in is soon dropped.
                if (s.pre_auth() && verb != Verb::Ehlo && verb != Verb::Helo &&
                    verb != Verb::Starttls && verb != Verb::Auth && verb != Verb::Noop &&
                    verb != Verb::Rset && verb != Verb::Quit) {
                    ++s.errors;
                    s.reply(530, "5.7.0", "Authentication required");
                    break;
                }
                auto spec = find_command(verb);
                co_await spec->fn(s, *parsed.command);
                if (s.user) conn->clear_deadline();
                break;
            }
        }
        if (s.errors >= (s.pre_auth() ? limits::kSmtpPreAuthMaxErrors : limits::kSmtpMaxErrors)) {
            s.reply(421, "4.7.0", cfg.hostname + " Too many errors, closing connection");
            break;
        }
    }
    if (!s.out.empty()) co_await conn->send(s.out);
    spdlog::debug("smtp {} disconnect", conn->id());
}

}  // namespace millipost::smtp
