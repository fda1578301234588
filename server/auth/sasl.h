// auth/sasl.h: server-side SASL mechanisms (RFC 4422) as protocol-independent state machines:
// PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login), SCRAM-SHA-256 (RFC 5802, RFC 7677) and
// SCRAM-SHA-256-PLUS with tls-exporter channel binding (RFC 9266).
//
// A mechanism takes the client's messages already base64-decoded and answers with a challenge
// to send, success or failure. IMAP, SMTP and POP3 differ only in framing, which the sessions
// do (auth/sasl_session.h). Passwords are checked against the stored SCRAM secrets
// (auth/password.h): PLAIN and LOGIN derive StoredKey from the password, SCRAM verifies the
// client proof with StoredKey and signs with ServerKey; no cleartext is kept or needed.
//
// Steps may run PBKDF2 and look secrets up in the store: call step() on the blocking pool.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::auth {

// The stored secret of a login (auth/password.h format), or nothing for an unknown login.
using SecretLookup = std::function<std::optional<std::string>(const std::string& login)>;
// A cleartext password check for PLAIN and LOGIN where the passwords are not ours to verify
// (an LDAP directory, auth/directory.h): whether the credentials log in, or that the directory
// cannot tell now. Without one, PLAIN and LOGIN check the SecretLookup's secrets.
enum class PasswordVerdict { Ok, Invalid, Unavailable };
using PasswordCheck =
    std::function<PasswordVerdict(const std::string& login, std::string_view password)>;

// What a mechanism knows about the connection it runs on.
struct SaslChannel {
    // RFC 9266 tls-exporter data of the connection, when TLS 1.3 is up; SCRAM-*-PLUS needs it.
    std::optional<std::string> tls_exporter;
    // Tests only (the RFC 7677 vector): SCRAM's server nonce part instead of a random one.
    std::string fixed_server_nonce;
    // Whether the server offers SCRAM-SHA-256-PLUS here: then a client that says "y" (it could
    // bind but thinks the server cannot) is seeing a downgrade (RFC 5802 §6).
    bool plus_offered() const { return tls_exporter.has_value(); }
};

struct SaslStep {
    enum class Kind { Challenge, Success, Failure };
    // Why an exchange failed: protocols map these to their replies.
    enum class Error {
        None,
        Malformed,       // not the mechanism's syntax (protocol-level "bad")
        Credentials,     // wrong user name or password, or a bad proof
        Authorization,   // authzid other than the authenticated user
        ChannelBinding,  // channel binding mismatch, unsupported type or downgrade
        TooLong,         // a message past the mechanism's size limit
        Unavailable,     // the password check could not be done now (directory down)
    };
    Kind kind = Kind::Challenge;
    std::string data;  // Challenge: the raw challenge; Success: final server data (may be empty)
    Error error = Error::None;
    std::string reason;  // Failure: a human-readable reason for the log and the reply

    static SaslStep challenge(std::string d) { return {Kind::Challenge, std::move(d), {}, {}}; }
    static SaslStep fail(Error e, std::string why) {
        return {Kind::Failure, {}, e, std::move(why)};
    }
};

class SaslMechanism {
  public:
    virtual ~SaslMechanism() = default;
    // The first step, with the initial response if the client sent one (SASL-IR, AUTH's
    // argument; an empty one is "="). Without one, a client-first mechanism asks for it with an
    // empty challenge (RFC 4422 §5).
    virtual SaslStep start(const std::optional<std::string>& initial) {
        if (!initial) return SaslStep::challenge({});
        return step(*initial);
    }
    // The client's answer to the last challenge.
    virtual SaslStep step(std::string_view client_message) = 0;
    // After Success: the authenticated login (authcid) and the authorization identity (empty
    // or the same login: we do not let one user act as another).
    const std::string& login() const { return login_; }
    const std::string& authzid() const { return authzid_; }
    // The login the client claimed so far, even after a failure (logs, throttling); empty when
    // the exchange did not get that far.
    const std::string& claimed_login() const { return login_; }

  protected:
    std::string login_;
    std::string authzid_;
};

// Whether a mechanism sends the password in the clear (PLAIN, LOGIN): refused without TLS
// unless plaintext authentication is allowed (config plaintext_auth).
bool sasl_is_plaintext(std::string_view mechanism);

// The mechanism for an upper-case name, or nullptr when it is unknown or not offered on this
// channel (the -PLUS variant needs tls_exporter). `lookup` must outlive the mechanism. With
// `check`, PLAIN and LOGIN use it instead of `lookup`.
std::unique_ptr<SaslMechanism> make_sasl_mechanism(std::string_view name, SecretLookup lookup,
                                                   SaslChannel channel, PasswordCheck check = {});

// The mechanisms offered on a channel, strongest first; plaintext ones only if allowed, SCRAM
// only with stored secrets (`scram`).
std::vector<std::string> sasl_mechanisms(const SaslChannel& channel, bool plaintext_allowed,
                                         bool scram = true);

// Strict base64 (RFC 4648 §4) of a client's SASL response; nullopt when it is not base64.
std::optional<std::string> sasl_base64_decode(std::string_view b64);

// SCRAM's saslname escaping (RFC 5802 §5.1: "=" is "=3D", "," is "=2C"); nullopt on a bad
// escape. Exposed for the tests.
std::optional<std::string> scram_unescape(std::string_view saslname);

}  // namespace millipost::auth
