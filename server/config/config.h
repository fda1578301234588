// config/config.h: the server's configuration: defaults that run out of the box on unprivileged
// loopback ports, a TOML file, then command-line flags, in that order of precedence.
#pragma once
#include "util/limits.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::config {

// Where plaintext logins (PLAIN, LOGIN, IMAP LOGIN, POP3 USER/PASS) are allowed without TLS.
enum class PlaintextAuth { Never, Loopback, Always };
// "never", "loopback" or "always"; nullopt otherwise.
std::optional<PlaintextAuth> parse_plaintext_auth(std::string_view s);

// Outbound TLS (Postfix's smtp_tls_security_level): none; may = opportunistic STARTTLS
// without certificate checks; encrypt = STARTTLS required; verify = required, with the
// certificate checked against the CA file and the host name.
enum class TlsPolicy { None, May, Encrypt, Verify };
std::optional<TlsPolicy> parse_tls_policy(std::string_view s);

// [outbound] (docs/submission.md, "Outbound delivery").
struct OutboundConfig {
    bool enabled = true;    // the queue runner delivers
    bool mx_lookup = true;  // without: a domain with no route and no relayhost stays deferred
    // Every outbound message goes through this smarthost ("host:port" or "host", port 25)
    // instead of the domains' MX hosts; with relay_user, AUTH PLAIN after STARTTLS.
    std::string relayhost;
    std::string relay_user;
    std::string relay_password;
    std::map<std::string, std::string> routes;  // domain (lower case) -> "host:port"
    TlsPolicy tls = TlsPolicy::May;
    std::map<std::string, TlsPolicy> tls_policy;  // per recipient domain (lower case)
    std::string tls_ca_file;                      // for verify; empty = the system's CAs
    std::string helo_name;                        // empty = hostname
    // The DNS server MX (and then MX hosts' address) lookups ask, "IPv4:port" or "IPv4" (port
    // 53); empty = the servers of /etc/resolv.conf.
    std::string nameserver;
    // The port MX hosts (and a domain's implicit MX) are contacted on: 25 except in test setups.
    unsigned short mx_port = 25;
    std::chrono::seconds retry_min = limits::kOutboundRetryMin;
    std::chrono::seconds retry_max = limits::kOutboundRetryMax;
    std::chrono::seconds max_queue_lifetime = limits::kOutboundMaxLifetime;
    std::size_t max_concurrent = limits::kOutboundMaxConcurrent;
    std::chrono::seconds connect_timeout = limits::kOutboundConnectTimeout;
    std::chrono::seconds greeting_timeout = limits::kOutboundGreetingTimeout;
    std::chrono::seconds command_timeout = limits::kOutboundCommandTimeout;
    std::chrono::seconds data_init_timeout = limits::kOutboundDataInitTimeout;
    std::chrono::seconds data_block_timeout = limits::kOutboundDataBlockTimeout;
    std::chrono::seconds data_done_timeout = limits::kOutboundDataDoneTimeout;
    // Caps every timeout above (tests).
    void cap_timeouts(std::chrono::seconds cap);
};

// Whether `s` is a valid [outbound] nameserver: "IPv4" or "IPv4:port".
bool valid_nameserver(const std::string& s);

// Where logins and passwords are checked (docs/auth.md): the store's SCRAM secrets, or an LDAP
// directory by simple bind (users are then created in the store at their first login).
enum class Directory { Store, Ldap };
// "store" or "ldap"; nullopt otherwise.
std::optional<Directory> parse_directory(std::string_view s);

// [ldap] (auth/ldap_directory.h).
struct LdapConfig {
    std::string uri = "ldap://127.0.0.1:389";
    std::string base_dn;                   // where users are searched (subtree)
    std::string user_filter = "(uid=%u)";  // %u: the login, escaped (RFC 4515)
    std::string bind_dn;                   // the search runs bound as this; empty = anonymous
    std::string bind_password;
    bool starttls = false;  // StartTLS (RFC 4513 §3) before any bind; failure is an error
    // PEM CA certificates that the server's certificate must chain to (StartTLS, ldaps://);
    // empty: libldap's defaults (ldap.conf TLS_CACERT).
    std::string ca_file;
    std::chrono::seconds timeout = limits::kLdapTimeout;  // connect and each operation
    // The entry's attribute that names the local user (its first value), and the one that holds
    // its mail address (RCPT TO lookups).
    std::string login_attribute = "uid";
    std::string mail_attribute = "mail";
};

struct Config {
    std::string data_dir = "./data";        // the SQLite store lives here (millipost.db)
    std::string store;                      // backend spec; empty = "sqlite:<data_dir>"
    std::string hostname = "localhost";     // greeting and Received: header
    std::string postmaster = "postmaster";  // login that receives mail for <postmaster>
    std::vector<std::string> domains;       // local mail domains besides hostname and localhost
    std::string listen = "127.0.0.1";       // address of every listener
    int smtp_port = 2525;                   // 0 = ephemeral, -1 = off
    int pop3_port = 1110;
    int imap_port = 1143;
    // TLS (docs/tls.md): a PEM certificate chain and key. With them, SMTP, IMAP and POP3 offer
    // STARTTLS/STLS and the listeners below open; without, they stay closed.
    std::string tls_cert;
    std::string tls_key;
    int submission_port = 1587;   // SMTP submission, plain + STARTTLS (RFC 6409; 587 in production)
    int submissions_port = 1465;  // SMTP submission over implicit TLS (RFC 8314; 465)
    int imaps_port = 1993;        // IMAP over implicit TLS (993)
    int pop3s_port = 1995;        // POP3 over implicit TLS (995)
    unsigned io_threads = 0;      // 0 = one per core
    unsigned store_threads = 4;   // blocking store calls run here
    std::size_t max_connections = limits::kMaxConnections;
    std::size_t max_connections_per_address = limits::kMaxConnectionsPerAddress;  // 0 = none
    std::size_t max_message_size = limits::kSmtpDefaultMaxMessage;
    std::size_t max_recipients = limits::kSmtpMaxRecipients;
    std::chrono::seconds smtp_timeout = limits::kSmtpIdleTimeout;
    std::chrono::seconds pop3_timeout = limits::kPop3IdleTimeout;
    std::chrono::seconds imap_timeout = limits::kImapIdleTimeout;  // after login
    // Before login (IMAP not-authenticated, POP3 AUTHORIZATION): shorter than after.
    std::chrono::seconds pop3_login_timeout = limits::kPop3PreLoginTimeout;
    std::chrono::seconds imap_login_timeout = limits::kImapPreLoginTimeout;
    // Before AUTH on the submission listeners (port 25 keeps smtp_timeout).
    std::chrono::seconds smtp_login_timeout = limits::kSmtpPreAuthTimeout;
    // [server]: the total time from accept to login (IMAP, POP3, SMTP submission), however
    // active the client is meanwhile.
    std::chrono::seconds prelogin_max_time = limits::kPreLoginMaxTime;
    // Creates Drafts, Sent, Trash, Junk and Archive (RFC 6154 attributes) at a user's login when
    // the user has none of these special-use mailboxes. Lazily, so that provisioning stays one
    // row per user.
    bool special_use_mailboxes = true;
    // Per-user quota over all mailboxes (RFC 9208): storage in KiB and a message count; 0 means
    // unlimited. Applies to IMAP APPEND/COPY and SMTP delivery.
    std::uint64_t quota_storage = 0;
    std::uint64_t quota_messages = 0;
    std::string log_level = "info";
    // [auth]: plaintext logins only over TLS, except from loopback by default (as Dovecot).
    PlaintextAuth plaintext_auth = PlaintextAuth::Loopback;
    Directory directory = Directory::Store;
    LdapConfig ldap;
    // Failed-login throttling (auth/throttle.h, limits.h for the meaning).
    std::chrono::milliseconds auth_fail_delay = limits::kAuthFailDelay;  // 0 = no delays
    std::chrono::milliseconds auth_fail_max_delay = limits::kAuthFailMaxDelay;
    unsigned auth_fail_limit = limits::kAuthFailLimit;  // 0 = never refuse
    std::chrono::seconds auth_lockout = limits::kAuthLockout;
    std::chrono::seconds auth_fail_window = limits::kAuthFailWindow;
    std::size_t auth_throttle_entries = limits::kAuthThrottleEntries;
    // [submission] (docs/submission.md): the addresses each login may use as envelope sender
    // and in From: besides its own (login -> addresses), and whether a client that
    // authenticated on the inbound SMTP port (25) may relay to other domains (default: no;
    // relaying is for the submission ports).
    std::map<std::string, std::vector<std::string>> sender_aliases;
    bool inbound_auth_relay = false;
    OutboundConfig outbound;

    bool tls_configured() const { return !tls_cert.empty() && !tls_key.empty(); }
    std::string store_spec() const { return store.empty() ? "sqlite:" + data_dir : store; }
    bool has_quota() const { return quota_storage != 0 || quota_messages != 0; }
    // Whether a user with `used` messages/octets may receive `add_messages` more holding
    // `add_bytes` octets. Storage is counted in KiB, rounded up, as RFC 9208 reports it.
    bool quota_allows(std::uint64_t used_messages, std::uint64_t used_bytes,
                      std::uint64_t add_messages, std::uint64_t add_bytes) const {
        if (quota_messages && used_messages + add_messages > quota_messages) return false;
        if (quota_storage && (used_bytes + add_bytes + 1023) / 1024 > quota_storage) return false;
        return true;
    }
};

// Reads a TOML file over `cfg` (keys: see docs/configuration.md). Throws std::runtime_error
// with the file, line and key on a bad value or an unknown key.
void load_toml(Config& cfg, const std::string& path);

}  // namespace millipost::config
