// auth/sasl_session.cpp: SASL exchanges and password logins with the server's policies (see
// sasl_session.h).
#include "auth/sasl_session.h"

#include "auth/password.h"
#include "net/server.h"
#include "service.h"
#include "util/limits.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace millipost::auth {
namespace {

using Status = SaslOutcome::Status;

SecretLookup secret_lookup(Service& svc) {
    return [&svc](const std::string& login) -> std::optional<std::string> {
        auto u = svc.store().find_user(login);
        if (!u) return std::nullopt;
        return u->secret;
    };
}

// The user a PLAIN or LOGIN exchange authenticated, as the directory found it (LDAP may name
// the store's user otherwise than the client did).
using Found = std::shared_ptr<std::optional<store::User>>;

PasswordCheck password_check(Service& svc, Found found) {
    return [&svc, found](const std::string& login, std::string_view password) {
        try {
            *found = svc.authenticate(login, std::string(password));
        } catch (const DirectoryUnavailable&) {  // logged by the directory
            return PasswordVerdict::Unavailable;
        }
        return *found ? PasswordVerdict::Ok : PasswordVerdict::Invalid;
    };
}

SaslChannel channel_of(const net::Connection& conn) {
    return SaslChannel{conn.tls_exporter()};
}

// Waits out a failure's penalty without holding a thread.
net::awaitable<void> sleep_for(net::Connection& conn, std::chrono::steady_clock::duration d) {
    if (d <= std::chrono::steady_clock::duration::zero()) co_return;
    net::asio::steady_timer timer(conn.socket().get_executor());
    timer.expires_after(d);
    boost::system::error_code ec;
    co_await timer.async_wait(net::asio::redirect_error(net::asio::use_awaitable, ec));
}

// A refusal before any credential is checked: the address (or the account) is locked out.
bool refused(Service& svc, const net::Connection& conn, std::string_view proto,
             std::string_view login) {
    auto left = svc.throttle().refused(conn.client_key(), login);
    if (left <= std::chrono::steady_clock::duration::zero()) return false;
    ++svc.counters().auth_refused;
    spdlog::warn("{} {} login refused from {}{}{}: too many failures, locked for {}s more", proto,
                 conn.id(), conn.peer(), login.empty() ? "" : " for ", login,
                 std::chrono::duration_cast<std::chrono::seconds>(left).count() + 1);
    return true;
}

// Settles an exchange whose credentials were checked: throttling, counters, logs.
net::awaitable<SaslOutcome> settle(Service& svc, net::Connection& conn, std::string_view proto,
                                   SaslOutcome out) {
    auto& throttle = svc.throttle();
    if (out.status == Status::Success) {
        // A locked account stays locked even for the right password until the lockout ends:
        // otherwise guessing would go on, only the reply of a wrong guess would change.
        if (refused(svc, conn, proto, out.login)) {
            out.status = Status::Refused;
            out.reason = "too many failed logins, try again later";
            out.user.reset();
            co_return out;
        }
        throttle.success(conn.client_key(), out.login);
        ++svc.counters().auth_successes;
        spdlog::debug("{} {} login {}", proto, conn.id(), out.login);
        co_return out;
    }
    ++svc.counters().auth_failures;
    auto p = throttle.failure(conn.client_key(), out.login);
    spdlog::info("{} {} login failed for {} from {}: {}", proto, conn.id(), out.login, conn.peer(),
                 out.reason);
    if (p.locked) {
        ++svc.counters().auth_lockouts;
        spdlog::warn("{} {} {} failures from {} or for {}: refusing logins for {}s", proto,
                     conn.id(), p.failures, conn.peer(), out.login,
                     throttle.config().lockout.count());
    }
    if (p.delay > std::chrono::steady_clock::duration::zero()) {
        ++svc.counters().auth_delayed;
        co_await sleep_for(conn, p.delay);
    }
    co_return out;
}

}  // namespace

net::awaitable<std::optional<std::string>> read_sasl_line(
    net::Connection& conn, std::string& out, std::size_t max,
    std::chrono::steady_clock::duration timeout) {
    bool too_long = false;
    for (;;) {
        auto in = conn.input();
        auto pos = in.find('\n');
        if (pos != std::string_view::npos) {
            std::string line(in.substr(0, pos));
            conn.consume(pos + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (too_long || line.size() > max) co_return std::nullopt;
            co_return line;
        }
        if (in.size() > max) {  // skip the rest of the line as it comes
            too_long = true;
            conn.consume(in.size());
        }
        if (!co_await conn.flush_and_fill(out, timeout)) co_return std::nullopt;
    }
}

bool plaintext_allowed(const Service& svc, const net::Connection& conn) {
    using P = config::PlaintextAuth;
    switch (svc.config().plaintext_auth) {
        case P::Always:
            return true;
        case P::Loopback:
            return conn.tls_active() || conn.peer_is_loopback();
        case P::Never:
            break;
    }
    return conn.tls_active();
}

std::vector<std::string> advertised_mechanisms(const Service& svc, const net::Connection& conn) {
    return sasl_mechanisms(channel_of(conn), plaintext_allowed(svc, conn),
                           svc.directory().has_scram_secrets());
}

namespace {

// The checks before a mechanism runs (not coroutines: g++ 12 reports a false
// -Wmismatched-new-delete on a coroutine frame holding all of run_sasl).
struct Prepared {
    std::optional<SaslOutcome> refused;  // the exchange ends before it starts
    std::unique_ptr<SaslMechanism> mech;
    std::optional<std::string> first;  // the decoded initial response
    Found found = std::make_shared<std::optional<store::User>>();
};

Prepared prepare(Service& svc, const net::Connection& conn, std::string_view proto,
                 std::string mechanism, const std::optional<std::string>& initial) {
    Prepared p;
    auto stop = [&p](Status st, std::string why) {
        p.refused.emplace();
        p.refused->status = st;
        p.refused->reason = std::move(why);
        return std::move(p);
    };
    std::transform(mechanism.begin(), mechanism.end(), mechanism.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (sasl_is_plaintext(mechanism) && !plaintext_allowed(svc, conn))
        return stop(Status::EncryptionRequired, "plaintext authentication disallowed without TLS");
    // SCRAM needs the stored keys; a bind-only directory (LDAP) has none to offer.
    bool scram = mechanism.starts_with("SCRAM-");
    if (scram && !svc.directory().has_scram_secrets())
        return stop(Status::Unsupported, "unsupported authentication mechanism");
    p.mech = make_sasl_mechanism(mechanism, secret_lookup(svc), channel_of(conn),
                                 scram ? PasswordCheck{} : password_check(svc, p.found));
    if (!p.mech) return stop(Status::Unsupported, "unsupported authentication mechanism");
    if (refused(svc, conn, proto, {}))
        return stop(Status::Refused, "too many failed logins, try again later");
    if (initial) {
        if (*initial == "=") {
            p.first.emplace();
        } else {
            p.first = sasl_base64_decode(*initial);
            if (!p.first) return stop(Status::Malformed, "invalid base64 in initial response");
        }
    }
    return p;
}

// Reads one response to a challenge: the decoded bytes, or the outcome that ends the exchange.
struct Response {
    std::optional<std::string> data;
    SaslOutcome end;
};

Response decode_response(const std::optional<std::string>& line) {
    Response r;
    if (!line) {
        r.end.status = Status::Closed;
        r.end.reason = "authentication response too long";
    } else if (*line == "*") {
        r.end.status = Status::Cancelled;
        r.end.reason = "authentication cancelled";
    } else if (*line == "=") {  // tolerated for an empty response
        r.data.emplace();
    } else {
        r.data = sasl_base64_decode(*line);
        if (!r.data) {
            r.end.status = Status::Malformed;
            r.end.reason = "invalid base64 in authentication response";
        }
    }
    return r;
}

// The outcome of a failed step; `settle` (throttling) is the caller's when it counts.
SaslOutcome failure_outcome(const SaslStep& step, std::string login) {
    SaslOutcome out;
    out.login = std::move(login);
    out.reason = step.reason;
    using E = SaslStep::Error;
    switch (step.error) {
        case E::Malformed:
        case E::TooLong:
            out.status = Status::Malformed;  // a protocol error, not a guess: not throttled
            break;
        case E::Authorization:
            out.status = Status::AuthzFailed;
            break;
        case E::Unavailable:  // not the client's failure: not throttled
            out.status = Status::Unavailable;
            break;
        default:
            out.status = Status::Failed;
    }
    return out;
}

// Runs the challenge/response rounds; returns the last step, or sets `end` when the client
// ended the exchange (cancel, bad base64, connection gone).
net::awaitable<SaslStep> exchange(net::Connection& conn, SaslFraming& io, SaslMechanism& m,
                                  std::optional<std::string> first,
                                  std::optional<SaslOutcome>& end) {
    auto* mp = &m;
    auto start = [mp, first] { return mp->start(first); };
    SaslStep step = co_await conn.server().blocking(std::move(start));
    for (int round = 0; step.kind == SaslStep::Kind::Challenge; ++round) {
        if (round >= limits::kSaslMaxRounds) {
            step = SaslStep::fail(SaslStep::Error::Malformed, "too many SASL rounds");
            break;
        }
        io.challenge(base64_encode(step.data));
        auto line = co_await io.response();
        auto r = decode_response(line);
        if (!r.data) {
            end = std::move(r.end);
            break;
        }
        auto next = [mp, data = std::move(*r.data)] { return mp->step(data); };
        step = co_await conn.server().blocking(std::move(next));
    }
    co_return step;
}

// After a successful mechanism: sends its final data (SCRAM's server signature) as one more
// challenge, which the client answers with an empty response (none of our protocols carries
// data with the success reply); nullopt when that went well.
net::awaitable<std::optional<SaslOutcome>> final_data(SaslFraming& io, const std::string& data) {
    std::optional<SaslOutcome> end;
    if (data.empty()) co_return end;
    io.challenge(base64_encode(data));
    auto line = co_await io.response();
    auto r = decode_response(line);
    if (!r.data) {
        end = std::move(r.end);
    } else if (!r.data->empty()) {
        end.emplace();
        end->status = Status::Malformed;
        end->reason = "expected an empty response";
    }
    co_return end;
}

// The exchange proper, once prepare() let it start.
net::awaitable<SaslOutcome> run_prepared(Service& svc, net::Connection& conn, SaslFraming& io,
                                         std::string_view proto, SaslMechanism& mech,
                                         std::optional<std::string> first, Found found) {
    std::optional<SaslOutcome> end;
    SaslStep step = co_await exchange(conn, io, mech, std::move(first), end);
    if (!end && step.kind == SaslStep::Kind::Success) end = co_await final_data(io, step.data);
    SaslOutcome out;
    if (end) {
        out = std::move(*end);
    } else if (step.kind == SaslStep::Kind::Failure) {
        out = failure_outcome(step, mech.claimed_login());
        if (out.status != Status::Malformed && out.status != Status::Unavailable)
            out = co_await settle(svc, conn, proto, std::move(out));
    } else {
        out.login = mech.claimed_login();
        if (*found) {  // PLAIN, LOGIN: the directory's user
            out.user = std::move(*found);
        } else {  // SCRAM: the store's user of the login
            auto login = out.login;
            auto find = [&svc, login] { return svc.store().find_user(login); };
            out.user = co_await conn.server().blocking(std::move(find));
        }
        out.status = out.user ? Status::Success : Status::Failed;  // removed meanwhile: failed
        if (!out.user) out.reason = "invalid user name or password";
        out = co_await settle(svc, conn, proto, std::move(out));
    }
    co_return out;
}

}  // namespace

net::awaitable<SaslOutcome> run_sasl(Service& svc, std::shared_ptr<net::Connection> conn,
                                     SaslFraming& io, std::string_view proto, std::string mechanism,
                                     std::optional<std::string> initial) {
    auto p = std::make_shared<Prepared>(prepare(svc, *conn, proto, std::move(mechanism), initial));
    SaslOutcome out;
    if (p->refused)
        out = std::move(*p->refused);
    else
        out = co_await run_prepared(svc, *conn, io, proto, *p->mech, std::move(p->first), p->found);
    co_return out;
}

net::awaitable<SaslOutcome> password_login(Service& svc, std::shared_ptr<net::Connection> conn,
                                           std::string_view proto, std::string login,
                                           std::string password) {
    SaslOutcome out;
    out.login = login;
    if (refused(svc, *conn, proto, login)) {
        out.status = Status::Refused;
        out.reason = "too many failed logins, try again later";
        co_return out;
    }
    // The directory's verdict, or that it could not give one (not the client's failure: not
    // throttled, answered as a temporary failure).
    auto check = [&svc, login, password]() -> std::pair<std::optional<store::User>, bool> {
        try {
            return {svc.authenticate(login, password), true};
        } catch (const DirectoryUnavailable&) {  // logged by the directory
            return {std::nullopt, false};
        }
    };
    auto [user, answered] = co_await conn->server().blocking(std::move(check));
    if (!answered) {
        out.status = Status::Unavailable;
        out.reason = "authentication service unavailable, try again later";
        co_return out;
    }
    out.user = std::move(user);
    if (out.user) {
        out.status = Status::Success;
    } else {
        out.status = Status::Failed;
        out.reason = "invalid user name or password";
    }
    SaslOutcome settled = co_await settle(svc, *conn, proto, std::move(out));
    co_return settled;
}

}  // namespace millipost::auth
