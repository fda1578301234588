// imap/session.cpp: the IMAP session loop: greeting, parser feeding (literal continuations,
// errors and limits), dispatch through the command table, mailbox-change reporting, timeouts
// and shutdown.
#include "imap/session.h"

#include "imap/context.h"
#include "util/limits.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace millipost::imap {

namespace {

// Before login: small commands only; room for the largest valid ID (see util/limits.h).
Limits prelogin_limits() {
    Limits l;
    l.max_line = limits::kImapPreLoginMaxLine;
    l.max_literal = limits::kImapPreLoginMaxLiteral;
    l.max_command_literals = limits::kImapPreLoginMaxCommandLiterals;
    l.max_nonsync_literal = l.max_literal;  // LITERAL+ (RFC 7888), within the pre-login cap
    return l;
}

// Commands during which EXPUNGE may not be sent (RFC 9051 §7.5.1).
bool forbids_expunge(const Command& c) {
    return c.name == "FETCH" || c.name == "STORE" || c.name == "SEARCH" || c.name == "SORT" ||
           c.name == "THREAD";
}

}  // namespace

Session::Session(std::shared_ptr<net::Connection> c, Service& s)
    : conn(std::move(c)), svc(s), parser(prelogin_limits()) {}

Session::~Session() {
    subscription.reset();
}

void Session::deselect() {
    view.clear();
    saved.clear();
    live.clear();
    if (notifier) notifier->selected = 0;
    state = kAuthenticated;
}

std::uint32_t Session::recent_count() const {
    if (recent.empty()) return 0;
    std::uint32_t n = 0;
    for (std::uint32_t seq = 1; seq <= view.size(); ++seq)
        if (!view.at(seq).expunged && is_recent(view.at(seq).uid)) ++n;
    return n;
}

void Session::enable_condstore() {
    if (condstore) return;
    condstore = true;
    if (state == kSelected)
        untagged(fmt::format("OK [HIGHESTMODSEQ {}] highest", view.mailbox.highestmodseq));
}

net::awaitable<void> Session::sync(bool allow_expunge, bool force) {
    if (state == kNotAuthenticated || state == kLogout) co_return;
    bool dirty = notifier->dirty.exchange(false);
    if (notify && (dirty || force)) co_await report_other_mailboxes(*this);
    if (state != kSelected) co_return;
    bool owed = allow_expunge && view.has_ghosts();
    if (!dirty && !force && !owed) co_return;
    auto& store = svc.store();
    auto uid = user.id;
    auto mb = view.mailbox.id;
    auto since = view.mailbox.highestmodseq;
    auto load = [&store, uid, mb, since] { return store.mailbox_changes(uid, mb, since); };
    store::MailboxDelta delta;
    try {
        delta = co_await blocking(std::move(load));
    } catch (const store::StoreError&) {
        co_return;  // the mailbox was deleted meanwhile: nothing more to say about it
    }
    MailboxView::Update up;
    if (delta.vanished_complete) {
        up = view.apply(delta, allow_expunge);
    } else {
        // Older than the tombstones kept: compare the whole listing instead.
        auto list = [&store, uid, mb] { return store.messages(uid, mb); };
        std::vector<store::Message> now;
        try {
            now = co_await blocking(std::move(list));
        } catch (const store::StoreError&) {
            co_return;
        }
        up = view.sync(now, allow_expunge);
        view.mailbox = delta.mailbox;
    }
    if (up.exists && !rev2 && !view.read_only) {
        auto claim = [&store, uid, mb] { return store.claim_recent(uid, mb); };
        try {
            auto range = co_await blocking(std::move(claim));
            if (range.first != range.second) recent.push_back(range);
        } catch (const store::StoreError&) {
        }
    }
    live_searches_expunged(*this, up.expunged, up.expunged_uids);
    if (qresync) {
        if (!up.expunged_uids.empty())
            out += "* VANISHED " + compress_sequence(up.expunged_uids) + "\r\n";
    } else {
        for (auto n : up.expunged)
            out += fmt::format("* {} EXPUNGE\r\n", n);
    }
    if (up.exists) {
        out += fmt::format("* {} EXISTS\r\n", *up.exists);
        if (!rev2) out += fmt::format("* {} RECENT\r\n", recent_count());
    }
    for (auto seq : up.changed) {
        auto& e = view.at(seq);
        announce_keywords(e.flags);
        FetchResponse r(out, seq);
        r.uid(e.uid);
        r.flags(flags_of(e));
        if (condstore) r.modseq(e.modseq);
        r.finish();
    }
}

net::awaitable<std::optional<std::string>> read_raw_line(Session& s, std::size_t max) {
    for (;;) {
        auto in = s.conn->input();
        auto pos = in.find('\n');
        if (pos != std::string_view::npos) {
            std::string line(in.substr(0, pos));
            s.conn->consume(pos + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.size() > max) co_return std::nullopt;
            co_return line;
        }
        if (in.size() > max) {
            s.conn->consume(in.size());
            co_return std::nullopt;
        }
        auto timeout = s.state == kNotAuthenticated ? s.svc.config().imap_login_timeout
                                                    : s.svc.config().imap_timeout;
        if (!co_await s.conn->flush_and_fill(s.out, timeout)) co_return std::nullopt;
    }
}

namespace {

// The BYE (if any) for a connection that ended on its own; an idle timeout is counted.
std::string_view closing_bye(Service& svc, const net::Connection& conn) {
    using C = net::Connection::Closed;
    auto how = conn.closed();
    if (how == C::Timeout && conn.deadline_passed()) {
        ++svc.counters().prelogin_timeouts;
        return "* BYE autologout: no login within the time allowed\r\n";
    }
    if (how == C::Timeout) {
        ++svc.counters().idle_timeouts;
        return "* BYE autologout: idle for too long\r\n";
    }
    if (how == C::Shutdown) return "* BYE server shutting down\r\n";
    return {};
}

net::awaitable<void> dispatch(Session& s, Command& cmd) {
    const CommandSpec* spec = find_command(cmd.name);
    if (!spec || (cmd.uid && !spec->uid_form)) {
        s.bad(cmd, "unknown command");
        co_return;
    }
    if (!(spec->states & s.state)) {
        if (s.state == kNotAuthenticated)
            s.bad(cmd, "log in first (LOGIN or AUTHENTICATE)");
        else if (s.state == kAuthenticated && (spec->states & kSelected))
            s.bad(cmd, "no mailbox selected");
        else
            s.bad(cmd, "command not valid in this state");
        co_return;
    }
    // Handlers write untagged data to s.out; the tagged reply is held back in s.tagged so that
    // untagged updates found afterwards still precede it.
    co_await spec->handler(s, cmd);
}

// The session proper. serve() owns the Session in its own frame: with the whole loop in
// serve(), g++ 12 under -fsanitize reports a false -Wmismatched-new-delete on the frame.
net::awaitable<void> run(Session& s) {
    auto& conn = s.conn;
    auto& svc = s.svc;
    const auto& cfg = svc.config();
    if (auto a = svc.admit(*conn, "imap"); a != net::Connection::Admission::Ok) {
        co_await conn->send(
            a == net::Connection::Admission::TooManyFromAddress
                ? "* BYE too many connections from your address, try again later\r\n"
                : "* BYE too many connections, try again later\r\n");
        co_return;
    }
    ++svc.counters().imap_sessions;
    // Not logged in: at most [server] prelogin_max_time from accept, however busy the client.
    conn->set_deadline(conn->accepted() + cfg.prelogin_max_time);
    s.out = fmt::format("* OK [CAPABILITY {}] millipost IMAP4rev2 ready\r\n", capabilities(s));
    while (s.state != kLogout) {
        auto input = conn->input();
        if (input.empty()) {
            auto timeout = s.state == kNotAuthenticated ? cfg.imap_login_timeout : cfg.imap_timeout;
            if (s.notify) {
                // NOTIFY (RFC 5465 §3): changes are reported as they happen, also between
                // commands, so wait for input or a store event.
                if (!s.out.empty()) {
                    if (!co_await conn->send(s.out)) co_return;
                    s.out.clear();
                }
                s.notifier->wake.expires_at(std::chrono::steady_clock::time_point::max());
                if (!s.notifier->dirty) {
                    auto r = co_await conn->fill_or_wake(timeout, &s.notifier->wake);
                    if (r == net::Connection::Filled::Closed) {
                        auto bye = closing_bye(s.svc, *conn);
                        if (!bye.empty()) co_await conn->send(bye);
                        co_return;
                    }
                    if (r == net::Connection::Filled::Data) continue;
                }
                co_await s.sync(true);
                if (!s.live.empty()) co_await update_live_searches(s);
                continue;
            }
            if (!co_await conn->flush_and_fill(s.out, timeout)) {
                auto bye = closing_bye(s.svc, *conn);
                if (!bye.empty()) co_await conn->send(bye);
                co_return;
            }
            continue;
        }
        std::size_t used = 0;
        auto status = s.parser.feed(input, used);
        conn->consume(used);
        using P = Parser::Status;
        if (status == P::NeedMore) continue;
        if (status == P::NeedContinuation) {
            write_continuation(s.out, "Ready for literal data");
            continue;
        }
        if (status == P::Command) {
            Command cmd = s.parser.take_command();
            s.tagged.clear();
            co_await dispatch(s, cmd);
            if (s.state != kNotAuthenticated) conn->clear_deadline();
            if (s.closed) break;
            if (s.state == kSelected) co_await s.sync(!forbids_expunge(cmd));
            if (!s.live.empty()) co_await update_live_searches(s);
            s.out += s.tagged;
        } else {
            const auto& err = s.parser.error();
            std::string tag = err.tag.empty() ? "*" : err.tag;
            if (err.fatal) {
                write_status(s.out, "*", Condition::Bye, {}, err.text);
                break;
            }
            ++s.errors;
            if (status == P::LiteralTooBig)
                write_status(s.out, tag, Condition::No, "TOOBIG", err.text);
            else
                write_status(s.out, tag, Condition::Bad, {}, err.text);
        }
        if (s.errors >= (s.state == kNotAuthenticated ? limits::kImapPreLoginMaxErrors
                                                      : limits::kImapMaxErrors)) {
            s.out += "* BYE too many errors, closing connection\r\n";
            break;
        }
    }
    if (s.closed) {
        auto bye = closing_bye(s.svc, *conn);
        s.out += bye;
    }
    if (!s.out.empty()) co_await conn->send(s.out);
}

}  // namespace

net::awaitable<void> serve(std::shared_ptr<net::Connection> conn, Service& svc) {
    Session s(conn, svc);
    // The socket was accepted on the connection's strand: its executor is the strand.
    s.notifier = std::make_shared<Notifier>(conn->socket().get_executor());
    co_await run(s);
}

}  // namespace millipost::imap
