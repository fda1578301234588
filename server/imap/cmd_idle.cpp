// imap/cmd_idle.cpp: IDLE (RFC 2177, RFC 9051 §6.3.13): reports mailbox changes as the store
// announces them until the client sends DONE.
#include "imap/context.h"

#include <algorithm>

namespace millipost::imap {

net::awaitable<void> cmd_idle(Session& s, Command& c) {
    if (!c.args.empty()) {
        s.bad(c, "IDLE takes no arguments");
        co_return;
    }
    write_continuation(s.out, "idling");
    auto& n = *s.notifier;
    for (;;) {
        co_await s.sync(true);
        if (!s.live.empty()) co_await update_live_searches(s);
        auto in = s.conn->input();
        if (auto pos = in.find('\n'); pos != std::string_view::npos) {
            std::string line(in.substr(0, pos));
            s.conn->consume(pos + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            std::transform(line.begin(), line.end(), line.begin(),
                           [](unsigned char ch) { return std::toupper(ch); });
            if (line == "DONE")
                s.ok(c, "IDLE terminated");
            else
                s.bad(c, "expected DONE");
            co_return;
        }
        if (in.size() > 1024) {
            s.conn->consume(in.size());
            s.bad(c, "expected DONE");
            co_return;
        }
        if (!s.out.empty()) {
            if (!co_await s.conn->send(s.out)) {
                s.closed = true;
                co_return;
            }
            s.out.clear();
        }
        // Re-arm, then look at `dirty`: an event either set it before (seen here) or expires
        // the timer after (ends the wait).
        n.wake.expires_at(std::chrono::steady_clock::time_point::max());
        if (n.dirty) continue;
        auto r = co_await s.conn->fill_or_wake(s.svc.config().imap_timeout, &n.wake);
        if (r == net::Connection::Filled::Closed) {
            s.closed = true;
            co_return;
        }
    }
}

}  // namespace millipost::imap
