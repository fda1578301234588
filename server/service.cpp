// service.cpp: a running mail server assembled from its parts (see service.h).
#include "service.h"

#include "auth/ldap_directory.h"
#include "auth/password.h"
#include "imap/session.h"
#include "net/tls.h"
#include "outbound/runner.h"
#include "pop3/session.h"
#include "proto/smtp/parser.h"
#include "search/fts5_index.h"
#include "smtp/session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace millipost {

namespace {

auth::ThrottleConfig throttle_config(const config::Config& c) {
    return {c.auth_fail_delay, c.auth_fail_max_delay, c.auth_fail_limit,
            c.auth_lockout,    c.auth_fail_window,    c.auth_throttle_entries};
}

using Serve = net::awaitable<void> (*)(std::shared_ptr<net::Connection>, Service&);

// An implicit-TLS listener (RFC 8314): the handshake comes first, then the plain protocol.
// (No call returning a non-trivial temporary inside a co_await expression: g++ 12 destroys
// such temporaries twice.)
// A connection over a limit is refused after the handshake too (the session's first act):
// plaintext on a TLS port is garbage to the client (its TLS library reports a record error,
// not the reason), so the refusal goes through TLS, as on the plain ports in the protocol's
// words. Only its handshake gets less time, since a refused connection holds its slot while
// it lasts.
net::awaitable<void> serve_tls(std::shared_ptr<net::Connection> conn, Service& svc, Serve serve) {
    auto ctx = svc.tls_context();
    auto timeout = conn->admission() == net::Connection::Admission::Ok
                       ? std::chrono::seconds(limits::kTlsHandshakeTimeout)
                       : std::chrono::seconds(limits::kTlsRefusalHandshakeTimeout);
    bool up = co_await conn->start_tls(std::move(ctx), timeout);
    if (!up) {
        // Counted and logged as refused all the same (the session would have done it).
        if (conn->admission() != net::Connection::Admission::Ok) svc.admit(*conn, "tls");
        co_return;
    }
    co_await serve(conn, svc);
}

// The submission listeners' session: SMTP with the submission policy (docs/submission.md).
net::awaitable<void> serve_submission(std::shared_ptr<net::Connection> conn, Service& svc) {
    return smtp::serve(std::move(conn), svc, smtp::Role::Submission);
}

}  // namespace

Service::Service(config::Config cfg) : cfg_(std::move(cfg)), throttle_(throttle_config(cfg_)) {}

Service::~Service() {
    stop();
}

void Service::start() {
    if (net_) return;
    if (!store_) store_ = store::open_store(cfg_.store_spec());
    if (!directory_) {
        if (cfg_.directory == config::Directory::Ldap) {
            if (cfg_.ldap.base_dn.empty())
                throw std::runtime_error("[auth] directory = \"ldap\" needs [ldap] base_dn");
            if (cfg_.ldap.user_filter.find("%u") == std::string::npos)
                throw std::runtime_error("[ldap] user_filter must contain %u");
            if (cfg_.ldap.timeout.count() <= 0)
                throw std::runtime_error("[ldap] timeout must be at least 1 second");
            directory_ = std::make_unique<auth::LdapDirectory>(cfg_.ldap, *store_);
        } else {
            directory_ = std::make_unique<auth::StoreDirectory>(*store_);
        }
    }
    if (!index_) {
        // Derived data, rebuilt from the store on demand: a server without it still answers
        // SEARCH, by scanning.
        try {
            index_ = std::make_unique<search::Fts5Index>(cfg_.data_dir + "/search.db");
        } catch (const std::exception& e) {
            spdlog::warn("full-text index unavailable, SEARCH will scan: {}", e.what());
        }
    }
    if (index_ && !indexer_)
        indexer_ = std::make_unique<search::BackgroundIndexer>(*store_, *index_);

    if (cfg_.tls_configured() && !tls_) {
        auto ctx = net::make_server_context(cfg_.tls_cert, cfg_.tls_key);  // throws: fail fast
        std::lock_guard lock(tls_mutex_);
        tls_ = std::move(ctx);
    }
    unsigned threads =
        cfg_.io_threads ? cfg_.io_threads : std::max(1u, std::thread::hardware_concurrency());
    net_ = std::make_unique<net::Server>(threads, cfg_.store_threads, cfg_.max_connections,
                                         cfg_.max_connections_per_address);
    std::vector<net::Listener> listeners;
    if (cfg_.smtp_port >= 0)
        listeners.push_back(
            {"smtp", cfg_.listen, static_cast<unsigned short>(cfg_.smtp_port), [this](auto conn) {
                 return smtp::serve(std::move(conn), *this, smtp::Role::Inbound);
             }});
    if (cfg_.pop3_port >= 0)
        listeners.push_back({"pop3", cfg_.listen, static_cast<unsigned short>(cfg_.pop3_port),
                             [this](auto conn) { return pop3::serve(std::move(conn), *this); }});
    if (cfg_.imap_port >= 0)
        listeners.push_back({"imap", cfg_.listen, static_cast<unsigned short>(cfg_.imap_port),
                             [this](auto conn) { return imap::serve(std::move(conn), *this); }});
    if (tls_) {
        auto add = [&](const char* name, int port, Serve serve, bool implicit) {
            if (port < 0) return;
            auto p = static_cast<unsigned short>(port);
            if (implicit)
                listeners.push_back({name, cfg_.listen, p, [this, serve](auto conn) {
                                         return serve_tls(std::move(conn), *this, serve);
                                     }});
            else
                listeners.push_back({name, cfg_.listen, p, [this, serve](auto conn) {
                                         return serve(std::move(conn), *this);
                                     }});
        };
        // Submission (RFC 6409): AUTH required, senders owned by the user, relaying allowed.
        add("submission", cfg_.submission_port, serve_submission, false);
        add("submissions", cfg_.submissions_port, serve_submission, true);
        add("imaps", cfg_.imaps_port, imap::serve, true);
        add("pop3s", cfg_.pop3s_port, pop3::serve, true);
    }
    // Made before the listeners open (sessions wake it as soon as they queue mail), started
    // after.
    if (cfg_.outbound.enabled) outbound_ = std::make_unique<outbound::Runner>(*this);
    try {
        net_->start(std::move(listeners));
    } catch (...) {
        outbound_.reset();
        net_.reset();
        throw;
    }
    if (outbound_) outbound_->start();
    spdlog::info("millipost listening on {}: smtp {} pop3 {} imap {}; store {}", cfg_.listen,
                 smtp_port(), pop3_port(), imap_port(), cfg_.store_spec());
    if (tls_)
        spdlog::info("TLS with {}: submission {} submissions {} imaps {} pop3s {}", cfg_.tls_cert,
                     submission_port(), submissions_port(), imaps_port(), pop3s_port());
}

void Service::stop() {
    if (!net_) return;
    spdlog::info("millipost shutting down: {} connections open", net_->connections());
    // The queue runner stops first (its connections are dropped, pending recipients stay
    // queued); it is destroyed after the network threads are gone (sessions still finishing
    // DATA wake it) and before the io_context its timer and coroutines live on.
    bool runner_idle = !outbound_ || outbound_->stop();
    net_->stop(limits::kShutdownGrace);
    if (runner_idle)
        outbound_.reset();
    else
        (void)outbound_.release();  // still referred to by frames the io_context destroys
    net_.reset();
    indexer_.reset();
    index_.reset();
    directory_.reset();  // before the store it refers to
    store_.reset();      // closes SQLite cleanly (checkpoints the WAL)
    spdlog::info("millipost stopped");
}

net::Connection::Admission Service::admit(const net::Connection& c, std::string_view protocol) {
    using A = net::Connection::Admission;
    auto a = c.admission();
    if (a == A::TooManyInTotal) {
        ++counters_.connections_refused;
        spdlog::warn("{} {} {}: refused, {} connections in total (limit {})", protocol, c.id(),
                     c.peer(), net_->connections(), cfg_.max_connections);
    } else if (a == A::TooManyFromAddress) {
        ++counters_.connections_refused_address;
        spdlog::warn("{} {} {}: refused, too many connections from {} (limit {})", protocol, c.id(),
                     c.peer(), c.client_key(), cfg_.max_connections_per_address);
    }
    return a;
}

unsigned short Service::smtp_port() const {
    return net_ ? net_->port("smtp") : 0;
}
unsigned short Service::pop3_port() const {
    return net_ ? net_->port("pop3") : 0;
}

unsigned short Service::imap_port() const {
    return net_ ? net_->port("imap") : 0;
}

unsigned short Service::submission_port() const {
    return net_ ? net_->port("submission") : 0;
}
unsigned short Service::submissions_port() const {
    return net_ ? net_->port("submissions") : 0;
}
unsigned short Service::imaps_port() const {
    return net_ ? net_->port("imaps") : 0;
}
unsigned short Service::pop3s_port() const {
    return net_ ? net_->port("pop3s") : 0;
}

std::shared_ptr<boost::asio::ssl::context> Service::tls_context() const {
    std::lock_guard lock(tls_mutex_);
    return tls_;
}

bool Service::reload_tls() {
    if (!cfg_.tls_configured()) {
        spdlog::info("TLS reload: no [tls] certificate configured");
        return false;
    }
    try {
        auto ctx = net::make_server_context(cfg_.tls_cert, cfg_.tls_key);
        std::lock_guard lock(tls_mutex_);
        tls_ = std::move(ctx);
    } catch (const std::exception& e) {
        spdlog::error("TLS reload failed, keeping the previous certificate: {}", e.what());
        return false;
    }
    spdlog::info("TLS certificate reloaded from {}", cfg_.tls_cert);
    return true;
}

std::optional<store::User> Service::authenticate(const std::string& login,
                                                 const std::string& password) {
    return directory_->authenticate(login, password);
}

bool Service::is_local_domain(std::string_view domain) const {
    auto eq = [](std::string_view a, std::string_view b) {
        return a.size() == b.size() &&
               std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
                   return std::tolower(static_cast<unsigned char>(x)) ==
                          std::tolower(static_cast<unsigned char>(y));
               });
    };
    if (eq(domain, cfg_.hostname) || eq(domain, "localhost")) return true;
    return std::any_of(cfg_.domains.begin(), cfg_.domains.end(),
                       [&](const std::string& d) { return eq(domain, d); });
}

std::optional<store::User> Service::resolve_recipient(const std::string& address) {
    auto [local, domain] = smtp::split_address(address);
    auto is_postmaster = [](std::string_view l) {
        return l.size() == 10 && std::equal(l.begin(), l.end(), "postmaster", [](char a, char b) {
                   return std::tolower(static_cast<unsigned char>(a)) == b;
               });
    };
    // RFC 5321 §4.5.1: <postmaster> and postmaster@<our domains> always reach someone.
    // The account is created on first use, with no usable password until one is set
    // (`millipost-server user passwd`), so that mail to postmaster is never refused.
    if (is_postmaster(local) && (domain.empty() || is_local_domain(domain))) {
        if (auto u = store_->find_user(cfg_.postmaster)) return u;
        try {
            store_->add_user(cfg_.postmaster, "!");
        } catch (const store::StoreError&) {  // created meanwhile by another session
        }
        return store_->find_user(cfg_.postmaster);
    }
    if (auto u = store_->find_user(address)) return u;
    if (!is_local_domain(domain) || local.empty() || local.front() == '"') return std::nullopt;
    if (auto u = store_->find_user(local)) return u;
    std::string lower(local);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (lower != local)
        if (auto u = store_->find_user(lower)) return u;
    // An LDAP user who never logged in: created now, so that mail waits in the mailbox.
    return directory_->find_recipient(address);
}

bool Service::lock_maildrop(store::UserId user) {
    std::lock_guard lock(locks_mutex_);
    return locked_.insert(user).second;
}

void Service::unlock_maildrop(store::UserId user) {
    std::lock_guard lock(locks_mutex_);
    locked_.erase(user);
}

void Service::outbound_queued() {
    if (outbound_) outbound_->wake();
}

std::string Service::next_queue_id() {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    return fmt::format("{:08X}{:06X}", static_cast<std::uint32_t>(secs),
                       static_cast<std::uint32_t>(++queue_seq_ & 0xffffff));
}

}  // namespace millipost
