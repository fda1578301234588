// auth/sasl_session.h: runs a SASL exchange or a plain USER/PASS-style login on a connection,
// with the server's policies: plaintext mechanisms only where allowed (config plaintext_auth),
// failed-login throttling (auth/throttle.h), logs and counters. The protocols supply only the
// framing of challenges and responses (SaslFraming) and turn the outcome into their replies.
#pragma once
#include "auth/sasl.h"
#include "net/connection.h"
#include "store/mail_store.h"

#include <optional>
#include <string>

namespace millipost {
class Service;
}

namespace millipost::auth {

class SaslFraming {
  public:
    virtual ~SaslFraming() = default;
    // Queues a challenge; `b64` is already base64 (possibly empty).
    virtual void challenge(const std::string& b64) = 0;
    // Sends what is queued and reads the client's response line, without its CRLF; nullopt
    // when the connection ended or the line was longer than kSaslMaxResponseLine.
    virtual net::awaitable<std::optional<std::string>> response() = 0;
};

struct SaslOutcome {
    enum class Status {
        Success,
        Failed,              // wrong credentials (already delayed by the throttle)
        AuthzFailed,         // authorization identity other than the login
        Refused,             // throttled: too many failures from this address or for this account
        Unavailable,         // the user directory cannot answer now (LDAP down): try later
        Malformed,           // a response that is not base64 or not the mechanism's syntax
        Cancelled,           // the client sent "*"
        Unsupported,         // unknown mechanism, or -PLUS without channel binding data
        EncryptionRequired,  // a plaintext mechanism without TLS where that is not allowed
        Closed,              // the connection ended (or a response line was too long)
    };
    Status status = Status::Failed;
    std::optional<store::User> user;
    std::string login;   // as claimed by the client, when known
    std::string reason;  // for the reply text
};

// For line-based framings (SMTP, POP3): sends `out` (then empties it) and reads one line
// without its CRLF. nullopt when the connection ended (conn.closed() says so) or the line was
// longer than `max` (it is then skipped).
net::awaitable<std::optional<std::string>> read_sasl_line(
    net::Connection& conn, std::string& out, std::size_t max,
    std::chrono::steady_clock::duration timeout);

// Whether plaintext logins (PLAIN, LOGIN, IMAP LOGIN, POP3 USER/PASS) are allowed on `conn`.
bool plaintext_allowed(const Service& svc, const net::Connection& conn);
// The SASL mechanisms to advertise on `conn`.
std::vector<std::string> advertised_mechanisms(const Service& svc, const net::Connection& conn);

// `mechanism` as the client named it; `initial` the initial response as sent (base64, "=" for
// an empty one), if any. `proto` names the protocol in logs.
net::awaitable<SaslOutcome> run_sasl(Service& svc, std::shared_ptr<net::Connection> conn,
                                     SaslFraming& io, std::string_view proto, std::string mechanism,
                                     std::optional<std::string> initial);
// A login with a cleartext password (IMAP LOGIN, POP3 USER/PASS); the caller checks
// plaintext_allowed() first.
net::awaitable<SaslOutcome> password_login(Service& svc, std::shared_ptr<net::Connection> conn,
                                           std::string_view proto, std::string login,
                                           std::string password);

}  // namespace millipost::auth
