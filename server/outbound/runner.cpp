// outbound/runner.cpp: the outbound queue runner (see runner.h).
//
// One loop on a strand picks due entries (at most max_concurrent at once) and spawns one
// delivery coroutine per entry on the same strand; store calls go to the blocking pool. A
// delivery groups the entry's pending recipients by destination (relayhost, static route or the
// domain's MX hosts) and runs one SMTP transaction per group. Recipients the remote accepted are
// taken off the entry right after the reply to the final dot, before anything else happens, so a
// crash can at worst repeat the one transaction in flight (RFC 5321 §6.1 accepts a duplicate,
// never a loss). Bounced recipients get their DSN before they are taken off.
#include "outbound/runner.h"

#include "outbound/dns.h"
#include "outbound/dsn.h"
#include "service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <map>

namespace millipost::outbound {

// Where a group of recipients goes.
struct Destination {
    std::vector<Endpoint> hosts;  // in order; empty: `error` says why
    bool permanent = false;       // no host will ever take it (NXDOMAIN, null MX, bad route)
    std::string status;           // for a failure
    std::string error;
    config::TlsPolicy tls = config::TlsPolicy::May;
    bool relay = false;  // the relayhost (AUTH with its credentials)
};

namespace {

using Kind = RcptResult::Kind;

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string domain_of(const std::string& address) {
    auto at = address.rfind('@');
    return at == std::string::npos ? std::string() : lower(address.substr(at + 1));
}

std::int64_t now_seconds() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

// The group key of a recipient: recipients with the same key share a transaction.
std::string group_key(const config::OutboundConfig& o, const std::string& domain) {
    if (!o.relayhost.empty()) return "relayhost";
    if (o.routes.count(domain)) return "route " + domain;
    return "mx " + domain;
}

// Blocking (the MX lookup): run on the pool.
Destination destination(const config::OutboundConfig& o, const std::string& domain) {
    Destination d;
    auto pol = o.tls_policy.find(domain);
    d.tls = pol != o.tls_policy.end() ? pol->second : o.tls;
    auto fixed = [&](const std::string& spec, const char* what) {
        if (auto e = parse_endpoint(spec))
            d.hosts.push_back(*e);
        else {
            d.status = "4.3.5";
            d.error = fmt::format("bad {} \"{}\" in the configuration", what, spec);
        }
    };
    if (!o.relayhost.empty()) {
        d.relay = true;
        fixed(o.relayhost, "relayhost");
        return d;
    }
    if (auto r = o.routes.find(domain); r != o.routes.end()) {
        fixed(r->second, "route");
        return d;
    }
    if (domain.empty()) {
        d.permanent = true;
        d.status = "5.1.3";
        d.error = "recipient address has no domain";
        return d;
    }
    if (!o.mx_lookup) {
        d.status = "4.4.3";
        d.error = fmt::format(
            "no route to {} (no relayhost, no [outbound.routes] entry, MX "
            "lookup off)",
            domain);
        return d;
    }
    auto mx = lookup_mx(domain, o.nameserver);
    // With a nameserver configured, the hosts' addresses come from it too (not getaddrinfo,
    // which asks resolv.conf's servers).
    auto host = [&](const std::string& name) {
        Endpoint e;
        e.host = name;
        e.port = o.mx_port;
        if (!o.nameserver.empty()) {
            auto a = lookup_addresses(name, o.nameserver);
            e.resolved = true;
            e.addresses = std::move(a.addresses);
            e.lookup_error = std::move(a.error);
        }
        d.hosts.push_back(std::move(e));
    };
    switch (mx.kind) {
        case MxResult::Kind::Hosts:
            for (auto& h : mx.hosts)
                host(h);
            break;
        case MxResult::Kind::Implicit:
            host(domain);  // RFC 5321 §5.1: the implicit MX
            break;
        case MxResult::Kind::NoDomain:
            d.permanent = true;
            d.status = "5.4.4";
            d.error = mx.error;
            break;
        case MxResult::Kind::NullMx:
            d.permanent = true;
            d.status = "5.1.10";
            d.error = mx.error;
            break;
        case MxResult::Kind::TempFail:
            d.status = "4.4.3";
            d.error = mx.error;
            break;
    }
    return d;
}

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// The local user who sent `sender`: the address's user, else the owner of the alias.
std::optional<store::User> sender_user(Service& svc, const std::string& sender) {
    if (auto u = svc.resolve_recipient(sender)) return u;
    for (auto& [login, aliases] : svc.config().sender_aliases)
        for (auto& a : aliases)
            if (iequal(a, sender)) return svc.store().find_user(login);
    return std::nullopt;
}

const char* status_word(Kind k) {
    return k == Kind::Sent ? "sent" : k == Kind::Bounced ? "bounced" : "deferred";
}

}  // namespace

Runner::Runner(Service& svc)
    : svc_(svc), strand_(asio::make_strand(svc.net().io())), timer_(strand_) {
    const auto& o = svc_.config().outbound;
    tls_noverify_ = make_client_context(false, {});
    try {
        tls_verify_ = make_client_context(true, o.tls_ca_file);
    } catch (const std::exception& e) {
        // Routes with tls = "verify" then fail (deferred) with this in their error.
        spdlog::error("outbound: TLS CA file {}: {}", o.tls_ca_file, e.what());
    }
}

Runner::~Runner() {
    stop();
}

void Runner::start() {
    {
        std::lock_guard lock(mutex_);
        ++active_;
    }
    asio::co_spawn(strand_, loop(), asio::detached);
}

void Runner::wake() {
    wake_pending_ = true;
    asio::post(strand_, [this] { timer_.cancel(); });
}

void Runner::finished() {
    std::lock_guard lock(mutex_);
    if (--active_ == 0) idle_.notify_all();
}

bool Runner::stop() {
    if (!stopping_.exchange(true))
        asio::post(strand_, [this] {
            timer_.cancel();
            for (auto* c : clients_)
                c->cancel();
        });
    // Connections end at once; an MX lookup in progress finishes within the resolver's own
    // timeouts (dns.cpp), well within this.
    std::unique_lock lock(mutex_);
    if (!idle_.wait_for(lock, limits::kShutdownGrace, [this] { return active_ == 0; })) {
        spdlog::warn("outbound: {} deliveries still running at shutdown", active_);
        return false;
    }
    return true;
}

awaitable<void> Runner::loop() {
    struct Done {
        Runner& r;
        ~Done() { r.finished(); }
    } done{*this};
    auto& store = svc_.store();
    const auto& o = svc_.config().outbound;
    while (!stopping_) {
        wake_pending_ = false;
        auto now = now_seconds();
        std::chrono::seconds wait = limits::kOutboundPoll;
        try {
            if (in_flight_.size() < o.max_concurrent) {
                // The in-flight entries are due too (their schedule changes when they finish).
                auto n = o.max_concurrent + in_flight_.size();
                auto due = [&store, now, n] { return store.outbound_due(now, n); };
                auto ids = co_await svc_.net().blocking(std::move(due));
                for (auto id : ids) {
                    if (stopping_ || in_flight_.size() >= o.max_concurrent) break;
                    if (!in_flight_.insert(id).second) continue;
                    {
                        std::lock_guard lock(mutex_);
                        ++active_;
                    }
                    asio::co_spawn(strand_, deliver(id), asio::detached);
                }
            }
            auto next_due = [&store, now] { return store.outbound_next_due(now); };
            auto next = co_await svc_.net().blocking(std::move(next_due));
            if (next)
                wait = std::min(wait, std::chrono::seconds(std::max<std::int64_t>(1, *next - now)));
        } catch (const std::exception& e) {
            spdlog::error("outbound: reading the queue failed: {}", e.what());
        }
        if (stopping_ || wake_pending_) continue;
        timer_.expires_after(wait);
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

// What one attempt did (deliver() splits its work over small coroutines: g++ 12 reports a
// false -Wmismatched-new-delete on one large frame).
struct Runner::Outcome {
    std::vector<RcptResult> bounced, deferred;
    std::string last_error;
};

awaitable<void> Runner::deliver(std::int64_t id) {
    struct Done {
        Runner& r;
        std::int64_t id;
        ~Done() {
            r.in_flight_.erase(id);
            r.wake_pending_ = true;
            r.timer_.cancel();  // the loop may have room now
            r.finished();
        }
    } done{*this, id};
    auto& store = svc_.store();
    std::optional<store::OutboundMessage> entry;
    try {
        auto load = [&store, id] { return store.outbound_entry(id); };
        entry = co_await svc_.net().blocking(std::move(load));
    } catch (const std::exception& e) {
        spdlog::error("outbound {}: reading the entry failed: {}", id, e.what());
        co_return;
    }
    if (!entry || entry->recipients.empty()) co_return;

    // Groups of recipients that share a destination, in the order of their first recipient.
    std::vector<std::pair<std::string, std::vector<std::string>>> groups;
    for (auto& r : entry->recipients) {
        auto key = group_key(svc_.config().outbound, domain_of(r));
        auto it = std::find_if(groups.begin(), groups.end(),
                               [&key](const auto& g) { return g.first == key; });
        if (it == groups.end())
            groups.push_back({key, {r}});
        else
            it->second.push_back(r);
    }
    Outcome outcome;
    for (auto& group : groups) {
        if (stopping_) co_return;  // pending recipients stay due; retried after the restart
        co_await attempt(*entry, group.second, outcome);
    }
    if (stopping_) co_return;
    co_await conclude(*entry, outcome);
}

awaitable<void> Runner::attempt(const store::OutboundMessage& entry,
                                const std::vector<std::string>& rcpts, Outcome& outcome) {
    const auto& o = svc_.config().outbound;
    auto& counters = svc_.counters();
    auto id = entry.id;
    auto domain = domain_of(rcpts.front());
    auto resolve = [&o, domain] { return destination(o, domain); };
    Destination dest;
    try {
        dest = co_await svc_.net().blocking(std::move(resolve));
    } catch (const std::exception& e) {
        dest.status = "4.4.3";
        dest.error = e.what();
    }
    std::vector<RcptResult> results;
    std::string relay = "none";
    if (dest.hosts.empty()) {
        for (auto& r : rcpts)
            results.push_back({r, dest.permanent ? Kind::Bounced : Kind::Deferred, dest.status,
                               dest.error, dest.error});
    } else {
        results = co_await transact(entry, dest, rcpts, relay);
    }
    auto delay = now_seconds() - entry.queued_at;
    for (auto& r : results) {
        // Postfix's line: one per recipient and attempt.
        auto line =
            fmt::format("outbound {}: to=<{}>, relay={}, delay={}, tries={}, status={} ({})", id,
                        r.address, relay, delay, entry.attempts + 1, status_word(r.kind), r.detail);
        if (r.kind == Kind::Sent) {
            spdlog::info("{}", line);
            ++counters.outbound_sent;
        } else if (r.kind == Kind::Bounced) {
            spdlog::warn("{}", line);
            outcome.bounced.push_back(r);
        } else {
            spdlog::warn("{}", line);
            outcome.last_error = r.detail;
            outcome.deferred.push_back(r);
        }
    }
}

awaitable<std::vector<RcptResult>> Runner::transact(const store::OutboundMessage& entry,
                                                    const Destination& dest,
                                                    const std::vector<std::string>& rcpts,
                                                    std::string& relay) {
    auto& store = svc_.store();
    const auto& cfg = svc_.config();
    const auto& o = cfg.outbound;
    auto id = entry.id;
    ClientOptions opts;
    opts.helo = o.helo_name.empty() ? cfg.hostname : o.helo_name;
    opts.tls = dest.tls;
    if (dest.relay) {
        opts.auth_user = o.relay_user;
        opts.auth_password = o.relay_password;
    }
    opts.tls_noverify = tls_noverify_;
    opts.tls_verify = tls_verify_ ? tls_verify_ : tls_noverify_;
    opts.cfg = &o;
    // On the heap: with the client in the coroutine frame g++ 12 reports a false
    // -Wmismatched-new-delete on the frame.
    auto owned = std::make_unique<SmtpClient>(strand_, opts);
    auto& client = *owned;
    clients_.insert(&client);
    struct Unregister {
        std::set<SmtpClient*>& s;
        SmtpClient* c;
        ~Unregister() { s.erase(c); }
    } unregister{clients_, &client};
    std::optional<std::string> why = "no hosts";
    if (dest.tls == config::TlsPolicy::Verify && !tls_verify_)
        why = "TLS verification impossible: the CA file could not be loaded";
    else
        for (auto& host : dest.hosts) {
            if (stopping_) break;
            ++svc_.counters().outbound_connections;
            why = co_await client.open(host);
            if (!why) break;
            spdlog::info("outbound {}: {}", id, *why);
        }
    if (!client.relay().empty()) relay = client.relay();
    std::vector<RcptResult> results;
    if (why) {
        for (auto& r : rcpts)
            results.push_back({r, Kind::Deferred, "4.4.1", *why, *why});
        co_return results;
    }
    results = co_await client.send(entry.sender, rcpts, entry.bytes);
    // At once, before QUIT: the accepted recipients are never sent to again.
    std::vector<std::string> sent;
    for (auto& r : results)
        if (r.kind == Kind::Sent) sent.push_back(r.address);
    if (!sent.empty()) {
        auto mark = [&store, id, &sent] { store.outbound_done(id, sent); };
        try {
            co_await svc_.net().blocking(std::move(mark));
        } catch (const std::exception& e) {
            spdlog::error(
                "outbound {}: recording delivery failed, the message may be sent "
                "again: {}",
                id, e.what());
        }
    }
    co_await client.quit();
    co_return results;
}

// Blocking: the DSN into the sender's INBOX. False when none is due or possible.
bool Runner::return_dsn(const store::OutboundMessage& entry, std::span<const RcptResult> failed,
                        std::int64_t now) {
    if (entry.sender.empty()) {
        // RFC 5321 §6.1, RFC 3464: a bounce is never answered with a bounce.
        spdlog::warn("outbound {}: null sender, no DSN for {} failed recipients: dropped", entry.id,
                     failed.size());
        return false;
    }
    auto user = sender_user(svc_, entry.sender);
    if (!user) {
        spdlog::error("outbound {}: sender <{}> is not a local user, no DSN returned", entry.id,
                      entry.sender);
        return false;
    }
    DsnInput in{svc_.config().hostname,
                std::to_string(entry.id),
                entry.sender,
                entry.queued_at,
                now,
                failed,
                entry.bytes};
    auto msg = make_dsn(in);
    std::vector<store::UserId> to{user->id};
    svc_.store().deliver(to, store::kInbox, msg, now);
    spdlog::info("outbound {}: sender non-delivery notification to <{}> ({} recipients)", entry.id,
                 entry.sender, failed.size());
    return true;
}

awaitable<void> Runner::conclude(const store::OutboundMessage& entry, Outcome& outcome) {
    auto& store = svc_.store();
    const auto& o = svc_.config().outbound;
    auto& counters = svc_.counters();
    auto id = entry.id;
    int tries = entry.attempts + 1;
    // Past the queue lifetime, what is still deferred fails for good (Postfix's
    // maximal_queue_lifetime), with the last error in the DSN.
    auto now = now_seconds();
    if (now - entry.queued_at >= o.max_queue_lifetime.count()) {
        for (auto& r : outcome.deferred) {
            r.kind = Kind::Bounced;
            r.detail = "delivery time expired; last error: " + r.detail;
            spdlog::warn(
                "outbound {}: to=<{}>, delay={}, tries={}, status=expired, returned to "
                "sender ({})",
                id, r.address, now - entry.queued_at, tries, r.detail);
            outcome.bounced.push_back(r);
        }
        outcome.deferred.clear();
    }
    counters.outbound_bounced += outcome.bounced.size();
    counters.outbound_deferred += outcome.deferred.size();

    if (!outcome.bounced.empty()) {
        // The DSN first, then the recipients off the entry: a crash in between repeats the DSN
        // rather than losing it.
        std::vector<std::string> gone;
        for (auto& r : outcome.bounced)
            gone.push_back(r.address);
        auto finish = [this, &store, &entry, &outcome, &gone, now] {
            bool returned = return_dsn(entry, outcome.bounced, now);
            store.outbound_done(entry.id, gone);
            return returned;
        };
        try {
            bool returned = co_await svc_.net().blocking(std::move(finish));
            if (returned) ++counters.outbound_dsn;
        } catch (const std::exception& e) {
            spdlog::error("outbound {}: returning the DSN failed: {}", id, e.what());
            // The recipients stay pending: retried (and bounced again) later.
            if (outcome.deferred.empty()) outcome.last_error = e.what();
            outcome.deferred.insert(outcome.deferred.end(), outcome.bounced.begin(),
                                    outcome.bounced.end());
        }
    }
    if (outcome.deferred.empty()) co_return;
    auto delay = retry_delay(tries, o.retry_min, o.retry_max);
    auto next = now + delay.count();
    auto defer = [&store, id, next, &outcome] {
        store.outbound_defer(id, next, outcome.last_error);
    };
    try {
        co_await svc_.net().blocking(std::move(defer));
    } catch (const std::exception& e) {
        spdlog::error("outbound {}: recording the deferral failed: {}", id, e.what());
    }
    spdlog::info("outbound {}: {} recipients deferred, next attempt in {} s", id,
                 outcome.deferred.size(), delay.count());
}

}  // namespace millipost::outbound
