// imap/cmd_tls.cpp: STARTTLS (RFC 9051 §6.2.1, RFC 2595). The tagged OK goes out in the clear,
// then the handshake; commands the client pipelined after STARTTLS are discarded (start_tls),
// never run as if they had come through TLS. Capabilities change (no STARTTLS any more): the
// client asks again with CAPABILITY (RFC 9051 §6.2.1), and LOGIN/AUTHENTICATE's OK carries them.
#include "imap/context.h"
#include "service.h"

namespace millipost::imap {

net::awaitable<void> cmd_starttls(Session& s, Command& c) {
    if (!c.args.empty()) {
        s.bad(c, "Syntax: STARTTLS");
        co_return;
    }
    if (s.conn->tls_active()) {
        s.bad(c, "TLS already active");
        co_return;
    }
    auto ctx = s.svc.tls_context();
    if (!ctx) {
        s.bad(c, "STARTTLS not available");
        co_return;
    }
    s.ok(c, "Begin TLS negotiation now");
    s.out += s.tagged;
    s.tagged.clear();
    bool up = co_await s.conn->send(s.out);
    s.out.clear();
    if (up) up = co_await s.conn->start_tls(std::move(ctx), limits::kTlsHandshakeTimeout);
    // A failed handshake leaves nothing to talk over: the session ends without a BYE.
    if (!up) s.state = kLogout;
}

}  // namespace millipost::imap
