// service.h: one running mail server: configuration, store, network core and the protocol
// listeners, plus the state sessions share (maildrop locks, counters). Used by millipost-server's
// main, by the Python module and by the property tests, so all three run the same server.
#pragma once
#include "auth/directory.h"
#include "auth/throttle.h"
#include "config/config.h"
#include "net/server.h"
#include "search/index.h"
#include "search/indexer.h"
#include "store/mail_store.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace millipost {

namespace outbound {
class Runner;
}

struct Counters {
    std::atomic<std::uint64_t> smtp_sessions{0}, pop3_sessions{0}, imap_sessions{0};
    std::atomic<std::uint64_t> messages_accepted{0}, deliveries{0}, messages_rejected{0};
    std::atomic<std::uint64_t> pop3_retrieved{0}, pop3_deleted{0};
    std::atomic<std::uint64_t> auth_failures{0};
    // Logins (all protocols and mechanisms) that succeeded; failures answered late by the
    // throttle; attempts refused by a lockout; lockouts started (auth/throttle.h).
    std::atomic<std::uint64_t> auth_successes{0}, auth_delayed{0}, auth_refused{0};
    std::atomic<std::uint64_t> auth_lockouts{0};
    // Connections refused at accept: over the total limit, over the per-address limit.
    std::atomic<std::uint64_t> connections_refused{0}, connections_refused_address{0};
    // Sessions closed for idling past their state's timeout.
    std::atomic<std::uint64_t> idle_timeouts{0};
    // Sessions closed because they did not log in within [server] prelogin_max_time.
    std::atomic<std::uint64_t> prelogin_timeouts{0};
    // Outbound delivery (server/outbound/): connections opened, recipients sent, deferred (per
    // attempt), bounced, and DSNs returned to senders.
    std::atomic<std::uint64_t> outbound_connections{0}, outbound_sent{0}, outbound_deferred{0};
    std::atomic<std::uint64_t> outbound_bounced{0}, outbound_dsn{0};
};

class Service {
  public:
    explicit Service(config::Config cfg);
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // Opens the store (unless one was given) and binds the listeners; throws on failure.
    void start();
    // Graceful: stop accepting, let in-flight deliveries finish, close the store.
    void stop();
    bool running() const { return net_ != nullptr; }

    unsigned short smtp_port() const;
    unsigned short pop3_port() const;
    unsigned short imap_port() const;
    // The TLS listeners' ports (docs/tls.md); 0 when off (no certificate configured).
    unsigned short submission_port() const;
    unsigned short submissions_port() const;
    unsigned short imaps_port() const;
    unsigned short pop3s_port() const;

    // The TLS context new handshakes use, or nullptr when no certificate is configured. STARTTLS
    // is advertised only with one (and only before TLS is active).
    std::shared_ptr<boost::asio::ssl::context> tls_context() const;
    bool tls_available() const { return tls_context() != nullptr; }
    // Reloads the certificate and key from the configured paths (SIGHUP): sessions that start
    // TLS afterwards use the new ones; established ones keep theirs. On a bad file the old
    // context stays and the error is logged. Returns whether the new files were taken.
    bool reload_tls();

    const config::Config& config() const { return cfg_; }
    store::MailStore& store() { return *store_; }
    net::Server& net() { return *net_; }
    Counters& counters() { return counters_; }
    // The connection's admission (net::Connection::admission()); a refusal is logged and
    // counted here, and the session answers it in its protocol's words, then closes.
    net::Connection::Admission admit(const net::Connection& c, std::string_view protocol);
    // Failed-login throttling shared by all protocols.
    auth::Throttle& throttle() { return throttle_; }
    // The full-text index behind IMAP SEARCH (<data_dir>/search.db), or nullptr when it could
    // not be opened: SEARCH then scans the messages.
    search::FullTextIndex* search_index() { return index_.get(); }
    // Waits until mail stored so far is in the full-text index (tests, benchmarks).
    void drain_index() {
        if (indexer_) indexer_->drain();
    }

    // Where logins are checked ([auth] directory: the store, or LDAP); set by start().
    auth::UserDirectory& directory() { return *directory_; }
    const auth::UserDirectory& directory() const { return *directory_; }
    // The user whose login and password these are, or nothing. Runs PBKDF2 or asks the LDAP
    // server: call it on the blocking pool. Throws auth::DirectoryUnavailable.
    std::optional<store::User> authenticate(const std::string& login, const std::string& password);
    // The local user an address delivers to: the whole address as a login, else the local part
    // when the domain is one of ours, else (LDAP) the directory's entry with that mail address.
    // Blocking; throws auth::DirectoryUnavailable when the directory cannot answer.
    std::optional<store::User> resolve_recipient(const std::string& address);
    bool is_local_domain(std::string_view domain) const;

    // POP3 maildrop locks (RFC 1939 §8: one session per maildrop).
    bool lock_maildrop(store::UserId user);
    void unlock_maildrop(store::UserId user);

    // A unique, sortable id for a transaction ("queued as ...").
    std::string next_queue_id();
    // A message was put into the outbound queue: the queue runner looks at once.
    void outbound_queued();

  private:
    config::Config cfg_;
    std::unique_ptr<store::MailStore> store_;
    std::unique_ptr<auth::UserDirectory> directory_;
    std::unique_ptr<net::Server> net_;
    mutable std::mutex tls_mutex_;
    std::shared_ptr<boost::asio::ssl::context> tls_;
    std::unique_ptr<search::FullTextIndex> index_;
    std::unique_ptr<search::BackgroundIndexer> indexer_;  // indexes mail as it is stored
    Counters counters_;
    auth::Throttle throttle_;
    std::mutex locks_mutex_;
    std::set<store::UserId> locked_;
    std::atomic<std::uint64_t> queue_seq_{0};
    std::unique_ptr<outbound::Runner> outbound_;  // the queue runner ([outbound] enabled)
};

}  // namespace millipost
