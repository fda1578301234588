// imap/cmd_auth.cpp: LOGIN and AUTHENTICATE PLAIN (RFC 4616, with SASL-IR RFC 4959 and the
// continuation form). Passwords are checked on the blocking pool.
#include "imap/context.h"
#include "util/limits.h"

#include "mime/decode.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace millipost::imap {

namespace {

// Limits once logged in: APPEND may carry a whole message.
Limits session_limits(const Service& svc) {
    Limits l;
    l.max_literal = svc.config().max_message_size;
    l.max_command_literals = svc.config().max_message_size + 65536;
    l.max_nonsync_literal = l.max_literal;  // LITERAL+ (RFC 7888): {n+} up to the literal limit
    return l;
}

net::awaitable<void> finish_login(Session& s, Command& c, std::string login, std::string password) {
    auto& svc = s.svc;
    auto check = [&svc, login, password] { return svc.authenticate(login, password); };
    auto user = co_await s.blocking(std::move(check));
    if (!user) {
        spdlog::info("imap {} login failed for {} from {}", s.conn->id(), login, s.conn->peer());
        s.no(c, "invalid user name or password", "AUTHENTICATIONFAILED");
        co_return;
    }
    s.user = *user;
    s.state = kAuthenticated;
    s.parser.set_limits(session_limits(svc));
    std::weak_ptr<Notifier> weak = s.notifier;
    s.subscription = svc.store().subscribe(user->id, [weak](const store::Event& e) {
        if (auto n = weak.lock()) n->on_event(e);
    });
    co_await ensure_special_use_mailboxes(s);
    spdlog::debug("imap {} login {}", s.conn->id(), login);
    s.ok(c, "LOGIN completed", "CAPABILITY " + capabilities(s));
}

}  // namespace

net::awaitable<void> cmd_login(Session& s, Command& c) {
    if (c.args.size() != 2) {
        s.bad(c, "Syntax: LOGIN user password");
        co_return;
    }
    auto login = astring(c.args[0]);
    auto password = astring(c.args[1]);
    if (!login || !password) {
        s.bad(c, "Syntax: LOGIN user password");
        co_return;
    }
    std::string user(*login), pass(*password);
    co_await finish_login(s, c, user, pass);
}

net::awaitable<void> cmd_authenticate(Session& s, Command& c) {
    if (c.args.empty() || c.args.size() > 2 || !c.args[0].is_atom()) {
        s.bad(c, "Syntax: AUTHENTICATE mechanism [initial-response]");
        co_return;
    }
    if (upper_atom(c.args[0]) != "PLAIN") {
        s.no(c, "unsupported mechanism", "CANNOT");
        co_return;
    }
    std::string response;
    if (c.args.size() == 2) {
        auto ir = astring(c.args[1]);
        if (!ir) {
            s.bad(c, "invalid initial response");
            co_return;
        }
        response = *ir == "=" ? std::string() : std::string(*ir);
    } else {
        write_continuation(s.out, "");
        auto line = co_await read_raw_line(s, limits::kImapMaxAuthResponse);
        if (!line) {
            s.closed = s.conn->closed() != net::Connection::Closed::No;
            if (!s.closed) s.bad(c, "authentication response too long");
            co_return;
        }
        if (*line == "*") {
            s.bad(c, "authentication cancelled");
            co_return;
        }
        response = *line;
    }
    // PLAIN: authzid NUL authcid NUL passwd. An authzid other than the authcid is refused.
    std::string plain = mime::decode_base64(response);
    auto p1 = plain.find('\0');
    auto p2 = p1 == std::string::npos ? p1 : plain.find('\0', p1 + 1);
    if (p2 == std::string::npos) {
        s.bad(c, "malformed PLAIN response");
        co_return;
    }
    std::string authz = plain.substr(0, p1);
    std::string login = plain.substr(p1 + 1, p2 - p1 - 1);
    std::string password = plain.substr(p2 + 1);
    if (!authz.empty() && authz != login) {
        s.no(c, "authorization identity not allowed", "AUTHORIZATIONFAILED");
        co_return;
    }
    co_await finish_login(s, c, login, password);
}

}  // namespace millipost::imap
