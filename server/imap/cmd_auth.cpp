// imap/cmd_auth.cpp: LOGIN and AUTHENTICATE (RFC 9051 §6.2, SASL-IR RFC 4959) over the SASL
// mechanisms of auth/sasl.h; policies and throttling are auth/sasl_session.h's.
#include "auth/sasl_session.h"
#include "imap/context.h"
#include "util/limits.h"

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

// IMAP's SASL framing (RFC 9051 §6.2.2): "+ <base64>" continuations, one response per line.
class ImapFraming : public auth::SaslFraming {
  public:
    explicit ImapFraming(Session& s) : s_(s) {}
    void challenge(const std::string& b64) override { write_continuation(s_.out, b64); }
    net::awaitable<std::optional<std::string>> response() override {
        auto line = co_await read_raw_line(s_, limits::kImapMaxAuthResponse);
        co_return line;
    }

  private:
    Session& s_;
};

net::awaitable<void> finish_login(Session& s, Command& c, const store::User& user) {
    auto& svc = s.svc;
    s.user = user;
    s.state = kAuthenticated;
    s.parser.set_limits(session_limits(svc));
    std::weak_ptr<Notifier> weak = s.notifier;
    s.subscription = svc.store().subscribe(user.id, [weak](const store::Event& e) {
        if (auto n = weak.lock()) n->on_event(e);
    });
    co_await ensure_special_use_mailboxes(s);
    s.ok(c, "LOGIN completed", "CAPABILITY " + capabilities(s));
}

// The reply for an exchange that did not log in (RFC 5530 response codes).
void refuse(Session& s, Command& c, const auth::SaslOutcome& o) {
    using St = auth::SaslOutcome::Status;
    switch (o.status) {
        case St::Success:
            break;
        case St::Failed:
            s.no(c, "invalid user name or password", "AUTHENTICATIONFAILED");
            break;
        case St::AuthzFailed:
            s.no(c, o.reason, "AUTHORIZATIONFAILED");
            break;
        case St::Refused:
        case St::Unavailable:
            s.no(c, o.reason, "UNAVAILABLE");
            break;
        case St::EncryptionRequired:
            s.no(c, o.reason, "PRIVACYREQUIRED");
            break;
        case St::Unsupported:
            s.no(c, o.reason, "CANNOT");
            break;
        case St::Malformed:
        case St::Cancelled:  // RFC 9051 §6.2.2: a cancelled exchange is rejected with BAD
            s.bad(c, o.reason);
            break;
        case St::Closed:
            s.closed = s.conn->closed() != net::Connection::Closed::No;
            if (!s.closed) s.bad(c, "authentication response too long");
            break;
    }
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
    // RFC 9051 §6.2.3: LOGINDISABLED is advertised, and LOGIN refused, without TLS.
    if (!auth::plaintext_allowed(s.svc, *s.conn)) {
        s.no(c, "plaintext login disallowed without TLS", "PRIVACYREQUIRED");
        co_return;
    }
    auto outcome = co_await auth::password_login(s.svc, s.conn, "imap", std::string(*login),
                                                 std::string(*password));
    if (outcome.status != auth::SaslOutcome::Status::Success) {
        refuse(s, c, outcome);
        co_return;
    }
    co_await finish_login(s, c, *outcome.user);
}

net::awaitable<void> cmd_authenticate(Session& s, Command& c) {
    if (c.args.empty() || c.args.size() > 2 || !c.args[0].is_atom()) {
        s.bad(c, "Syntax: AUTHENTICATE mechanism [initial-response]");
        co_return;
    }
    std::optional<std::string> initial;
    if (c.args.size() == 2) {  // SASL-IR (RFC 4959); "=" is an empty initial response
        auto ir = astring(c.args[1]);
        if (!ir) {
            s.bad(c, "invalid initial response");
            co_return;
        }
        initial = std::string(*ir);
    }
    ImapFraming io(s);
    auto outcome = co_await auth::run_sasl(s.svc, s.conn, io, "imap", upper_atom(c.args[0]),
                                           std::move(initial));
    if (outcome.status != auth::SaslOutcome::Status::Success) {
        refuse(s, c, outcome);
        co_return;
    }
    co_await finish_login(s, c, *outcome.user);
}

}  // namespace millipost::imap
