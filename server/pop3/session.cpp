// pop3/session.cpp: the POP3 session loop and its commands. A maildrop is a snapshot of the
// user's INBOX taken at login; deletions are marks applied only in the UPDATE state (QUIT).
#include "pop3/session.h"

#include "auth/sasl_session.h"
#include "proto/line.h"
#include "proto/pop3/parser.h"
#include "service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <limits>

namespace millipost::pop3 {
namespace {

struct Item {
    std::uint32_t uid;
    std::uint64_t size;
    bool deleted = false;
};

struct Session {
    Session(std::shared_ptr<net::Connection> c, Service& s)
        : conn(std::move(c)), svc(s), lines(limits::kPop3MaxCommandLine) {}
    ~Session() {
        if (locked) svc.unlock_maildrop(user.id);
    }

    std::shared_ptr<net::Connection> conn;
    Service& svc;
    proto::LineParser lines;
    std::string out;
    int errors = 0;
    bool quit = false;

    enum class State { Authorization, Transaction } state = State::Authorization;
    std::string pending_user;
    store::User user;
    bool locked = false;
    store::Mailbox inbox;
    std::vector<Item> items;

    void ok(std::string_view text) {
        out += text.empty() ? std::string("+OK\r\n") : fmt::format("+OK {}\r\n", text);
    }
    void err(std::string_view text) { out += fmt::format("-ERR {}\r\n", text); }
    // A protocol error: counted, and too many close the session.
    void bad(std::string_view text) {
        ++errors;
        err(text);
    }
    // The message a number names, or nullptr after saying why not.
    Item* item(const Command& c, std::size_t arg = 0) {
        if (c.args.size() <= arg) {
            err("message number required");
            return nullptr;
        }
        auto n = parse_number(c.args[arg]);
        if (!n || *n > items.size()) {
            err("no such message");
            return nullptr;
        }
        auto& it = items[*n - 1];
        if (it.deleted) {
            err(fmt::format("message {} already deleted", *n));
            return nullptr;
        }
        return &it;
    }
    std::string uidl(const Item& it) const {
        return fmt::format("{}.{}", inbox.uidvalidity, it.uid);
    }
};

void capa(Session& s) {
    s.ok("Capability list follows");
    // RFC 2595 §4: STLS only in the AUTHORIZATION state, with a certificate, not yet in TLS.
    if (s.state == Session::State::Authorization && !s.conn->tls_active() && s.svc.tls_available())
        s.out += "STLS\r\n";
    // USER and the plaintext SASL mechanisms only where plaintext logins are allowed (RFC 2595
    // §4 practice; RFC 5034 §5's SASL line lists the mechanisms). Both only before login.
    if (s.state == Session::State::Authorization) {
        if (auth::plaintext_allowed(s.svc, *s.conn)) s.out += "USER\r\n";
        s.out += "SASL";
        for (auto& m : auth::advertised_mechanisms(s.svc, *s.conn))
            s.out += " " + m;
        s.out += "\r\n";
    }
    s.out +=
        "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\n"
        "LOGIN-DELAY 0\r\nIMPLEMENTATION millipost\r\n.\r\n";
}

// POP3's SASL framing (RFC 5034 §4): "+ <base64>" challenges, one response line each.
class Pop3Framing : public auth::SaslFraming {
  public:
    explicit Pop3Framing(Session& s) : s_(s) {}
    void challenge(const std::string& b64) override { s_.out += "+ " + b64 + "\r\n"; }
    net::awaitable<std::optional<std::string>> response() override {
        auto line = co_await auth::read_sasl_line(*s_.conn, s_.out, limits::kSaslMaxResponseLine,
                                                  s_.svc.config().pop3_login_timeout);
        co_return line;
    }

  private:
    Session& s_;
};

// Locks the maildrop of a user who has just authenticated and enters TRANSACTION.
net::awaitable<void> enter_transaction(Session& s, const store::User& user) {
    auto& svc = s.svc;
    if (!svc.lock_maildrop(user.id)) {
        s.err("[IN-USE] maildrop is locked by another session");
        co_return;
    }
    s.user = user;
    s.locked = true;
    auto uid = user.id;
    auto load = [&svc, uid] {
        auto mb = svc.store().find_mailbox(uid, store::kInbox);
        if (!mb) mb = svc.store().create_mailbox(uid, store::kInbox);
        return std::make_pair(*mb, svc.store().messages(uid, mb->id));
    };
    auto snapshot = co_await s.conn->server().blocking(std::move(load));
    s.inbox = snapshot.first;
    std::uint64_t total = 0;
    for (auto& m : snapshot.second) {
        s.items.push_back({m.uid, m.size});
        total += m.size;
    }
    s.state = Session::State::Transaction;
    s.ok(fmt::format("maildrop has {} messages ({} octets)", s.items.size(), total));
}

// The -ERR for a login that failed (RFC 2449 §8 and RFC 3206 response codes).
void refuse(Session& s, const auth::SaslOutcome& o) {
    using St = auth::SaslOutcome::Status;
    switch (o.status) {
        case St::Success:
            break;
        case St::Failed:
        case St::AuthzFailed:
            s.err("[AUTH] invalid user name or password");
            break;
        case St::Refused:
        case St::Unavailable:
            s.err("[SYS/TEMP] " + o.reason);
            break;
        case St::EncryptionRequired:
            s.err("[AUTH] " + o.reason);
            break;
        case St::Unsupported:
            s.err(o.reason);
            break;
        case St::Malformed:
        case St::Cancelled:
            s.bad(o.reason);
            break;
        case St::Closed:
            if (s.conn->closed() == net::Connection::Closed::No)
                s.bad("authentication response too long");
            else
                s.quit = true;
            break;
    }
}

// RFC 2595 §4: +OK, then the handshake. Input pipelined after STLS is discarded (start_tls);
// afterwards the session is back at the start of AUTHORIZATION (no pending USER).
net::awaitable<void> stls(Session& s) {
    if (s.conn->tls_active()) {
        s.err("TLS already active");
        co_return;
    }
    auto ctx = s.svc.tls_context();
    if (!ctx) {
        s.err("STLS not available");
        co_return;
    }
    s.ok("Begin TLS negotiation");
    bool up = co_await s.conn->send(s.out);
    s.out.clear();
    if (up) up = co_await s.conn->start_tls(std::move(ctx), limits::kTlsHandshakeTimeout);
    if (!up) {
        s.quit = true;
        co_return;
    }
    s.lines = proto::LineParser(s.lines.max_line());
    s.pending_user.clear();
}

net::awaitable<void> authorization(Session& s, Command& c) {
    switch (c.verb) {
        case Verb::Capa:
            capa(s);
            break;
        case Verb::Quit:
            s.ok("millipost POP3 server signing off");
            s.quit = true;
            break;
        case Verb::User:
            if (c.args.size() != 1) {
                s.err("Syntax: USER name");
                break;
            }
            if (!auth::plaintext_allowed(s.svc, *s.conn)) {
                s.err("[AUTH] plaintext authentication disallowed without TLS");
                break;
            }
            s.pending_user = c.args[0];
            s.ok("send PASS");
            break;
        case Verb::Pass: {
            if (s.pending_user.empty()) {
                s.err("send USER first");
                break;
            }
            std::string login = std::exchange(s.pending_user, {});
            std::string password = c.args.empty() ? std::string() : c.args[0];
            auto o = co_await auth::password_login(s.svc, s.conn, "pop3", login, password);
            if (o.status != auth::SaslOutcome::Status::Success) {
                refuse(s, o);
                break;
            }
            co_await enter_transaction(s, *o.user);
            break;
        }
        case Verb::Auth: {
            if (c.args.empty()) {  // the mechanism list (RFC 1734 practice)
                s.ok("SASL mechanisms follow");
                for (auto& m : auth::advertised_mechanisms(s.svc, *s.conn))
                    s.out += m + "\r\n";
                s.out += ".\r\n";
                break;
            }
            if (c.args.size() > 2) {
                s.bad("Syntax: AUTH mechanism [initial-response]");
                break;
            }
            std::optional<std::string> initial;
            if (c.args.size() == 2) initial = c.args[1];
            Pop3Framing io(s);
            auto o =
                co_await auth::run_sasl(s.svc, s.conn, io, "pop3", c.args[0], std::move(initial));
            if (o.status != auth::SaslOutcome::Status::Success) {
                refuse(s, o);
                break;
            }
            co_await enter_transaction(s, *o.user);
            break;
        }
        case Verb::Stls:
            co_await stls(s);
            break;
        case Verb::Unknown:
            s.bad("unknown command");
            break;
        default:
            s.bad("command not valid in AUTHORIZATION state; log in with USER/PASS");
    }
}

net::awaitable<void> update(Session& s) {
    std::vector<std::uint32_t> uids;
    for (auto& it : s.items)
        if (it.deleted) uids.push_back(it.uid);
    std::size_t left = s.items.size() - uids.size();
    if (!uids.empty()) {
        auto& svc = s.svc;
        auto user = s.user.id, mb = s.inbox.id;
        try {
            auto remove = [&svc, user, mb, uids] { svc.store().expunge(user, mb, uids); };
            co_await s.conn->server().blocking(std::move(remove));
        } catch (const std::exception& e) {
            spdlog::error("pop3 {} update failed: {}", s.conn->id(), e.what());
            s.err("[SYS/TEMP] some deleted messages not removed");
            s.quit = true;
            co_return;
        }
        svc.counters().pop3_deleted += uids.size();
    }
    // Unlocked before the reply is sent: a client that logs in again as soon as it reads the
    // +OK must not find its maildrop still locked.
    if (s.locked) {
        s.svc.unlock_maildrop(s.user.id);
        s.locked = false;
    }
    s.ok(fmt::format("millipost POP3 server signing off ({} messages left)", left));
    s.quit = true;
}

net::awaitable<void> transaction(Session& s, Command& c) {
    switch (c.verb) {
        case Verb::Stat: {
            std::size_t n = 0;
            std::uint64_t size = 0;
            for (auto& it : s.items)
                if (!it.deleted) ++n, size += it.size;
            s.ok(fmt::format("{} {}", n, size));
            break;
        }
        case Verb::List:
        case Verb::Uidl: {
            bool uidl = c.verb == Verb::Uidl;
            if (!c.args.empty()) {
                if (auto it = s.item(c)) {
                    auto n = static_cast<std::size_t>(it - s.items.data()) + 1;
                    s.ok(uidl ? fmt::format("{} {}", n, s.uidl(*it))
                              : fmt::format("{} {}", n, it->size));
                }
                break;
            }
            s.ok(uidl ? "unique-id listing follows" : "scan listing follows");
            for (std::size_t i = 0; i < s.items.size(); ++i) {
                auto& it = s.items[i];
                if (it.deleted) continue;
                s.out += uidl ? fmt::format("{} {}\r\n", i + 1, s.uidl(it))
                              : fmt::format("{} {}\r\n", i + 1, it.size);
            }
            s.out += ".\r\n";
            break;
        }
        case Verb::Retr:
        case Verb::Top: {
            long lines = -1;
            if (c.verb == Verb::Top) {
                // n is any count of lines; past the message's length it means all of them.
                const std::string* n = c.args.size() == 2 ? &c.args[1] : nullptr;
                if (!n || n->empty() || n->size() > 20 ||
                    !std::all_of(n->begin(), n->end(),
                                 [](char ch) { return ch >= '0' && ch <= '9'; })) {
                    s.err("Syntax: TOP msg n");
                    break;
                }
                lines = n->size() > 9 ? std::numeric_limits<long>::max() : std::stol(*n);
            }
            auto it = s.item(c);
            if (!it) break;
            auto& svc = s.svc;
            auto user = s.user.id, mb = s.inbox.id;
            auto uid = it->uid;
            std::string body;
            try {
                auto read = [&svc, user, mb, uid] {
                    return svc.store().read_message(user, mb, uid);
                };
                body = co_await s.conn->server().blocking(std::move(read));
            } catch (const store::StoreError&) {
                // Removed by another protocol since the snapshot (RFC 2449 says so is allowed).
                s.err("[SYS/TEMP] message was removed; log in again");
                break;
            }
            s.ok(fmt::format("{} octets", it->size));
            append_multiline(s.out, body, lines);
            if (c.verb == Verb::Retr) ++svc.counters().pop3_retrieved;
            break;
        }
        case Verb::Dele:
            if (auto it = s.item(c)) {
                it->deleted = true;
                s.ok("message deleted");
            }
            break;
        case Verb::Rset: {
            for (auto& it : s.items)
                it.deleted = false;
            s.ok(fmt::format("maildrop has {} messages", s.items.size()));
            break;
        }
        case Verb::Noop:
            s.ok("");
            break;
        case Verb::Capa:
            capa(s);
            break;
        case Verb::Quit:
            co_await update(s);
            break;
        case Verb::Unknown:
            s.bad("unknown command");
            break;
        default:
            s.bad("command not valid in TRANSACTION state");
    }
}

}  // namespace

net::awaitable<void> serve(std::shared_ptr<net::Connection> conn, Service& svc) {
    Session s(conn, svc);
    const auto& cfg = svc.config();
    if (auto a = svc.admit(*conn, "pop3"); a != net::Connection::Admission::Ok) {
        co_await conn->send(a == net::Connection::Admission::TooManyFromAddress
                                ? "-ERR [SYS/TEMP] too many connections from your address, try "
                                  "again later\r\n"
                                : "-ERR [SYS/TEMP] too many connections, try again later\r\n");
        co_return;
    }
    ++svc.counters().pop3_sessions;
    // In AUTHORIZATION at most [server] prelogin_max_time from accept, however busy the client.
    conn->set_deadline(conn->accepted() + cfg.prelogin_max_time);
    s.ok("millipost POP3 server ready");
    while (!s.quit) {
        auto input = conn->input();
        if (input.empty()) {
            // Before login, a silent client is dropped sooner (limits.h).
            auto timeout = s.state == Session::State::Authorization ? cfg.pop3_login_timeout
                                                                    : cfg.pop3_timeout;
            if (!co_await conn->flush_and_fill(s.out, timeout)) {
                // RFC 1939 §3: an autologout does not enter UPDATE; no message is removed.
                using C = net::Connection::Closed;
                if (conn->closed() == C::Timeout && conn->deadline_passed()) {
                    ++svc.counters().prelogin_timeouts;
                    co_await conn->send(
                        "-ERR [SYS/TEMP] autologout: no login within the time allowed\r\n");
                } else if (conn->closed() == C::Timeout) {
                    ++svc.counters().idle_timeouts;
                    co_await conn->send("-ERR [SYS/TEMP] autologout: idle for too long\r\n");
                } else if (conn->closed() == C::Shutdown)
                    co_await conn->send("-ERR [SYS/TEMP] server shutting down\r\n");
                co_return;
            }
            continue;
        }
        std::size_t used = 0;
        auto status = s.lines.feed(input, used);
        conn->consume(used);
        using P = proto::LineParser::Status;
        if (status == P::NeedMore) continue;
        if (status == P::TooLong) {
            s.bad("line too long");
        } else if (status == P::Nul) {
            s.bad("NUL byte in command");
        } else {  // a Line, or a bare-LF line from a lenient client (accepted, as most servers do)
            auto cmd = parse_command(s.lines.line());
            if (s.state == Session::State::Authorization)
                co_await authorization(s, cmd);
            else
                co_await transaction(s, cmd);
            if (s.state != Session::State::Authorization) conn->clear_deadline();
        }
        if (s.errors >= (s.state == Session::State::Authorization ? limits::kPop3PreLoginMaxErrors
                                                                  : limits::kPop3MaxErrors)) {
            s.out += "-ERR too many errors, closing connection\r\n";
            break;
        }
    }
    if (!s.out.empty()) co_await conn->send(s.out);
}

}  // namespace millipost::pop3
