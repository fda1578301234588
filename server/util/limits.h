// util/limits.h: every protocol and resource limit of the server, named in one place.
// Each limit has a test that crosses it; the values are defaults that config may override.
#pragma once
#include <chrono>
#include <cstddef>

namespace millipost::limits {

// SMTP (RFC 5321 §4.5.3.1 sets 512 octets for a command line; extensions such as SMTPUTF8 and
// long ESMTP parameters need more, so we accept up to this before `500 5.5.6`).
inline constexpr std::size_t kSmtpMaxCommandLine = 2048;
// Default maximum message size advertised by `SIZE` (bytes, before our Received: header).
inline constexpr std::size_t kSmtpDefaultMaxMessage = 50u * 1024 * 1024;
// Recipients per transaction (RFC 5321 §4.5.3.1.8 requires at least 100).
inline constexpr std::size_t kSmtpMaxRecipients = 1000;
// Protocol errors in one SMTP session before it is closed with 421.
inline constexpr int kSmtpMaxErrors = 20;
// On the submission listeners, before a successful AUTH, as IMAP and POP3 before login: fewer
// errors (commands refused with 530 count too), and a silent client is dropped sooner
// (configurable, [smtp] login_timeout). Port 25 has no login and keeps kSmtpMaxErrors and the
// RFC 5321 timeout.
inline constexpr int kSmtpPreAuthMaxErrors = 10;
inline constexpr std::chrono::seconds kSmtpPreAuthTimeout{60};
// Failed AUTH exchanges (535, and 454 refusals of a locked-out address or account) on one SMTP
// connection before it is closed with 421; the failed-login throttle still counts each one.
inline constexpr int kSmtpMaxAuthFailures = 3;

// POP3 (RFC 2449 §4: 255 octets per command line; AUTH responses may be longer).
inline constexpr std::size_t kPop3MaxCommandLine = 512;
inline constexpr int kPop3MaxErrors = 20;
// Before login a client has done nothing to earn patience: protocol errors in the AUTHORIZATION
// (POP3) or not-authenticated (IMAP) state close the session sooner than afterwards. Failed
// logins are not counted here (the failed-login throttle, auth/throttle.h, handles those).
inline constexpr int kPop3PreLoginMaxErrors = 10;
inline constexpr int kImapPreLoginMaxErrors = 10;

// Idle timeouts (RFC 5321 §4.5.3.2.7 asks 5 minutes for SMTP; RFC 1939 §3 at least 10 for POP3).
inline constexpr std::chrono::seconds kSmtpIdleTimeout{300};
inline constexpr std::chrono::seconds kPop3IdleTimeout{600};
// Before login (POP3 AUTHORIZATION state), a silent client is dropped sooner: RFC 1939's
// 10-minute autologout protects a user's session, and an unauthenticated connection has none
// (Dovecot's login processes do the same). Configurable ([pop3] login_timeout).
inline constexpr std::chrono::seconds kPop3PreLoginTimeout{60};

// IMAP: the autologout timer after login is at least 30 minutes (RFC 9051 §5.4); before login a
// silent client is dropped sooner. Protocol errors (BAD) per session before BYE.
inline constexpr std::chrono::seconds kImapIdleTimeout{30 * 60};
inline constexpr std::chrono::seconds kImapPreLoginTimeout{60};
inline constexpr int kImapMaxErrors = 20;

// Total time an IMAP, POP3 or SMTP-submission connection may spend without logging in, however
// busy it keeps itself (a NOOP every minute resets the idle timeout, not this). Counted from
// accept, so an implicit-TLS handshake is included. Configurable ([server] prelogin_max_time).
inline constexpr std::chrono::seconds kPreLoginMaxTime{180};
// NOTIFY: events of other mailboxes held for a session between reports; beyond this the session
// reports every watched mailbox's STATUS once instead (RFC 5465 §5.8 allows coalescing).
inline constexpr std::size_t kImapNotifyBacklog = 1000;
// CONTEXT=SEARCH: searches one session keeps up to date at once (each is re-run after every
// command that may change its result).
inline constexpr std::size_t kImapMaxLiveSearches = 16;
// NOTIFY SET: event groups and mailbox names in one command.
inline constexpr std::size_t kImapNotifyMaxGroups = 64;
inline constexpr std::size_t kImapNotifyMaxNames = 1000;
// ID (RFC 2971 §3.3): at most 30 field-value pairs, fields of at most 30 octets, values of at
// most 1024; ID with more is refused with BAD.
inline constexpr std::size_t kImapIdMaxPairs = 30;
inline constexpr std::size_t kImapIdMaxField = 30;
inline constexpr std::size_t kImapIdMaxValue = 1024;
// Before login (ID, CAPABILITY, LOGIN, AUTHENTICATE) commands are small, with one exception: the
// largest valid ID, 30 pairs of quoted 30- and 1024-octet strings, is about 31 KiB of command
// text. So the pre-login command line is 32 KiB; one literal (a password, an ID value) at most
// 8 KiB, all literals of one command at most 32 KiB, and an AUTHENTICATE response line
// 8 KiB (base64 of a PLAIN response with generous credentials).
inline constexpr std::size_t kImapPreLoginMaxLine = 32 * 1024;
inline constexpr std::size_t kImapPreLoginMaxLiteral = 8 * 1024;
inline constexpr std::size_t kImapPreLoginMaxCommandLiterals = 32 * 1024;
inline constexpr std::size_t kImapMaxAuthResponse = 8 * 1024;

// SASL (auth/sasl.h): a decoded client message, a login and a SCRAM client nonce at most; an
// exchange of more challenge/response rounds than any of our mechanisms needs is cut off.
inline constexpr std::size_t kSaslMaxMessage = 4096;
inline constexpr std::size_t kSaslMaxLogin = 256;
inline constexpr std::size_t kSaslMaxNonce = 256;
inline constexpr int kSaslMaxRounds = 4;
// An SMTP AUTH or POP3 AUTH response line (base64 of kSaslMaxMessage, with room to spare).
inline constexpr std::size_t kSaslMaxResponseLine = 8 * 1024;

// Failed-login throttling (auth/throttle.h; config [auth]): the first failure's delay, doubling
// per failure up to the cap; after `limit` failures of one address or account, attempts are
// refused for `lockout`; counts are forgotten after `window` without failures. At most
// `entries` addresses and accounts are tracked (least recently used ones are dropped).
inline constexpr std::chrono::milliseconds kAuthFailDelay{500};
inline constexpr std::chrono::milliseconds kAuthFailMaxDelay{8000};
inline constexpr unsigned kAuthFailLimit = 10;
inline constexpr std::chrono::seconds kAuthLockout{300};
inline constexpr std::chrono::seconds kAuthFailWindow{900};
inline constexpr std::size_t kAuthThrottleEntries = 100000;

// [ldap] (auth/ldap_directory.h): the default bound on connecting to the directory and on each
// operation, so that an unreachable or stuck server turns into a temporary failure quickly.
inline constexpr std::chrono::seconds kLdapTimeout{5};
// Idle directory connections kept for reuse (one per blocking thread is the useful most).
inline constexpr std::size_t kLdapPoolSize = 8;

// Connections in total; each costs one file descriptor.
inline constexpr std::size_t kMaxConnections = 10000;
// Connections from one client IP address, all protocols together (loopback included), so that
// one host cannot take every slot of the total. 100 leaves room for a NATed office of IMAP
// clients (a desktop client opens about five). 0 in the config means no per-address limit.
// An IPv6 client counts by its /64 (one host usually has a whole /64 to pick addresses from;
// IPv4-mapped addresses count as the IPv4 address), in this limit and in the login throttle.
inline constexpr std::size_t kMaxConnectionsPerAddress = 100;

// TLS: a client has this long to complete its handshake (after STARTTLS or on an implicit-TLS
// port) before the connection is closed; a slow or silent handshake holds a connection slot.
inline constexpr std::chrono::seconds kTlsHandshakeTimeout{30};
// A connection to an implicit-TLS port that is already refused (over a connection limit) still
// gets its handshake, so that the refusal reaches the client in TLS and not as plaintext garbage
// in a TLS stream, but only this long: a refused connection should not hold its slot for 30 s.
inline constexpr std::chrono::seconds kTlsRefusalHandshakeTimeout{5};
// At the end of a TLS session, how long close_notify may take to send before the socket closes.
inline constexpr std::chrono::milliseconds kTlsShutdownTimeout{500};

// Shutdown: how long in-flight sessions may take to finish after SIGTERM.
inline constexpr std::chrono::seconds kShutdownGrace{10};

// Full-text indexing at delivery: UIDs waiting for the background indexer; beyond this a
// mailbox is marked for one comparison with the store instead (SEARCH also catches up itself).
inline constexpr std::size_t kIndexQueue = 100000;

// Expunge tombstones (UID + MODSEQ, for QRESYNC and incremental syncs) kept per mailbox; older
// ones are dropped and a resync from before them compares UID lists instead.
inline constexpr std::size_t kTombstonesPerMailbox = 10000;

// Mailbox names (decoded, UTF-8 bytes): longer names are refused by every command with
// NO [LIMIT], so no row, log line or LIST reply carries one. Hierarchy levels and mailboxes per
// user bound what one CREATE (which also creates every superior level) or a script can add.
inline constexpr std::size_t kMaxMailboxNameBytes = 1024;
inline constexpr std::size_t kMaxMailboxDepth = 32;
inline constexpr std::size_t kMaxMailboxesPerUser = 10000;

// Outbound delivery (server/outbound/, docs/submission.md). Queue entries being delivered at
// once (each holds one SMTP client connection at a time).
inline constexpr std::size_t kOutboundMaxConcurrent = 20;
// Retry after a temporary failure: the first delay, doubling per attempt up to the cap, until
// the message has been queued for the lifetime; then it bounces (Postfix's defaults:
// minimal_backoff_time 300 s, maximal_backoff_time 4000 s, maximal_queue_lifetime 5 d).
inline constexpr std::chrono::seconds kOutboundRetryMin{60};
inline constexpr std::chrono::seconds kOutboundRetryMax{3600};
inline constexpr std::chrono::seconds kOutboundMaxLifetime{5 * 24 * 3600};
// The queue is looked at at least this often, whatever the wake-ups said.
inline constexpr std::chrono::seconds kOutboundPoll{60};
// SMTP client timeouts (RFC 5321 §4.5.3.2: 5 min for the greeting, MAIL and RCPT, 2 min for the
// DATA command, 3 min per data block, 10 min for the final dot), and 30 s to connect (Postfix's
// smtp_connect_timeout). All configurable ([outbound]), so that tests can shorten them.
inline constexpr std::chrono::seconds kOutboundConnectTimeout{30};
inline constexpr std::chrono::seconds kOutboundGreetingTimeout{300};
inline constexpr std::chrono::seconds kOutboundCommandTimeout{300};
inline constexpr std::chrono::seconds kOutboundDataInitTimeout{120};
inline constexpr std::chrono::seconds kOutboundDataBlockTimeout{180};
inline constexpr std::chrono::seconds kOutboundDataDoneTimeout{600};
// A server's reply: one line at most this long (RFC 5321 §4.5.3.1.5 says 512 octets; we allow
// for verbose servers), at most this many lines. Beyond either the reply is bad: a temporary
// failure, never a crash or an unbounded buffer.
inline constexpr std::size_t kSmtpClientMaxReplyLine = 2048;
inline constexpr std::size_t kSmtpClientMaxReplyLines = 100;
// MX records used per domain, and addresses tried per host.
inline constexpr std::size_t kOutboundMaxMx = 10;
inline constexpr std::size_t kOutboundMaxAddressesPerHost = 4;
// A DSN quotes the bounced message's header section up to this many octets (RFC 3462
// text/rfc822-headers); the rest is left out.
inline constexpr std::size_t kDsnMaxQuotedHeaders = 64 * 1024;

// Users provisioned per SQLite transaction on the bulk path.
inline constexpr std::size_t kProvisionBatch = 50000;
// SQLite page cache (KiB) of the connection doing a bulk load: the users' indexes of a
// million-user load stay in memory (~250 MB of database), instead of the default 2 MB.
inline constexpr std::size_t kBulkLoadCacheKiB = 256 * 1024;

// THREAD REFERENCES (RFC 5256): deeper reply chains are cut into threads of their own, so that
// the recursive tree walks stay within a thread's stack whatever References mail carries.
inline constexpr std::size_t kMaxThreadDepth = 1000;

}  // namespace millipost::limits
