"""Connection limits (per client address and in total), idle timeouts per protocol state, and
pre-login limits tighter than post-login ones (docs/limits.md). Each test crosses its limit
over real sockets. Source addresses: any address of 127.0.0.0/8 reaches this host, so a test
connects "from another client" by binding 127.0.0.x."""
from __future__ import annotations

import base64
import imaplib
import poplib
import smtplib
import socket
import ssl
import time

import pytest

from conftest import TIMEOUT, wait_for


def greeted(c, proto: str) -> bytes:
    line = c.read_line()
    want = {"imap": b"* OK", "pop3": b"+OK", "smtp": b"220"}[proto]
    assert line.startswith(want), line
    return line


# --- connections per client address -----------------------------------------------------------

def test_per_address_limit_refuses_in_each_protocol(make_server, raw):
    srv = make_server(max_connections_per_address=3)
    held = [raw(srv.imap_port, source="127.0.0.5") for _ in range(2)]
    held.append(raw(srv.smtp_port, source="127.0.0.5"))
    for c, proto in zip(held, ("imap", "imap", "smtp")):
        greeted(c, proto)
    # The fourth from the same address, whatever the protocol: a refusal in its words, then EOF.
    imap = raw(srv.imap_port, source="127.0.0.5")
    data = imap.read_until_eof()
    assert data == b"* BYE too many connections from your address, try again later\r\n", data
    smtp = raw(srv.smtp_port, source="127.0.0.5")
    code, lines = smtp.read_reply()
    assert code == 421 and lines[0].startswith(b"4.7.0 ") and b"from your address" in lines[0]
    assert smtp.read_until_eof() == b""
    pop3 = raw(srv.pop3_port, source="127.0.0.5")
    data = pop3.read_until_eof()
    assert data.startswith(b"-ERR [SYS/TEMP] too many connections from your address"), data
    # Another address is not affected.
    other = raw(srv.imap_port, source="127.0.0.6")
    greeted(other, "imap")
    other.cmd("a LOGIN alice secret")
    assert other.read_line().startswith(b"a OK")
    c = srv.counters()
    assert c["connections_refused_address"] == 3, c
    assert c["connections_refused"] == 0, c
    # Once one of the three leaves, the address has room again.
    held[0].cmd("a LOGOUT")
    held[0].read_until_eof()

    def room() -> bool:
        r = raw(srv.imap_port, source="127.0.0.5")
        return r.read_line().startswith(b"* OK")
    assert wait_for(room, timeout=5)


def test_default_per_address_limit_covers_loopback(make_server, raw):
    # The default (limits::kMaxConnectionsPerAddress, 100) applies to loopback clients too.
    srv = make_server()
    held = [raw(srv.smtp_port, source="127.0.0.7") for _ in range(100)]
    for c in held:
        assert c.read_reply()[0] == 220
    extra = raw(srv.smtp_port, source="127.0.0.7")
    code, lines = extra.read_reply()
    assert code == 421 and b"from your address" in lines[0], lines
    assert extra.read_until_eof() == b""
    greeted(raw(srv.smtp_port, source="127.0.0.8"), "smtp")


def test_per_address_limit_zero_means_none(make_server, raw):
    srv = make_server(max_connections_per_address=0, max_connections=50)
    held = [raw(srv.pop3_port, source="127.0.0.9") for _ in range(20)]
    for c in held:
        greeted(c, "pop3")
    assert srv.counters()["connections_refused_address"] == 0


# --- connections in total ---------------------------------------------------------------------

def test_total_limit_refuses_across_addresses(make_server, raw):
    srv = make_server(max_connections=3, max_connections_per_address=0)
    for i in range(3):
        greeted(raw(srv.imap_port, source=f"127.0.1.{i + 1}"), "imap")
    fourth = raw(srv.imap_port, source="127.0.1.9")
    data = fourth.read_until_eof()
    assert data == b"* BYE too many connections, try again later\r\n", data
    pop3 = raw(srv.pop3_port, source="127.0.1.10")
    assert pop3.read_until_eof().startswith(b"-ERR [SYS/TEMP] too many connections, try")
    c = srv.counters()
    assert c["connections_refused"] == 2 and c["connections_refused_address"] == 0, c


# --- idle timeouts per protocol state ---------------------------------------------------------

def test_imap_pre_login_timeout_is_shorter_than_after_login(make_server, raw):
    srv = make_server(imap_login_timeout=1, imap_timeout=30)
    silent = raw(srv.imap_port)
    greeted(silent, "imap")
    user = raw(srv.imap_port)
    greeted(user, "imap")
    user.cmd("a LOGIN alice secret")
    assert user.read_line().startswith(b"a OK")
    started = time.monotonic()
    data = silent.read_until_eof(timeout=TIMEOUT)
    assert data == b"* BYE autologout: idle for too long\r\n", data
    assert 0.5 < time.monotonic() - started < 5
    # The logged-in session outlives the pre-login timeout by far.
    time.sleep(2.5)
    user.cmd("b NOOP")
    assert user.read_line().startswith(b"b OK")
    assert srv.counters()["idle_timeouts"] == 1


def test_imap_idle_is_held_past_the_login_timeout_until_the_session_timeout(make_server, raw):
    # IDLE waits under the post-login timeout (RFC 9051 §6.3.13: clients re-issue IDLE at
    # least every 29 minutes), not the shorter pre-login one; past it, autologout.
    srv = make_server(imap_login_timeout=1, imap_timeout=4)
    c = raw(srv.imap_port)
    greeted(c, "imap")
    c.cmd("a LOGIN alice secret")
    assert c.read_line().startswith(b"a OK")
    c.cmd("b SELECT INBOX")
    while not c.read_line().startswith(b"b OK"):
        pass
    c.cmd("c IDLE")
    assert c.read_line().startswith(b"+ ")
    started = time.monotonic()
    data = c.read_until_eof(timeout=TIMEOUT)
    assert b"* BYE autologout: idle for too long\r\n" in data, data
    assert 3 < time.monotonic() - started < 8


def test_pop3_pre_login_timeout_is_shorter_than_after_login(make_server, raw):
    srv = make_server(pop3_login_timeout=1, pop3_timeout=30)
    silent = raw(srv.pop3_port)
    greeted(silent, "pop3")
    half = raw(srv.pop3_port)  # USER given, not yet PASS: still AUTHORIZATION
    greeted(half, "pop3")
    half.cmd("USER bob")
    assert half.read_line().startswith(b"+OK")
    user = raw(srv.pop3_port)
    greeted(user, "pop3")
    for line in ("USER alice", "PASS secret"):
        user.cmd(line)
        assert user.read_line().startswith(b"+OK")
    started = time.monotonic()
    for c in (silent, half):
        data = c.read_until_eof(timeout=TIMEOUT)
        assert data == b"-ERR [SYS/TEMP] autologout: idle for too long\r\n", data
    assert 0.5 < time.monotonic() - started < 5
    time.sleep(2.5)
    user.cmd("STAT")
    assert user.read_line().startswith(b"+OK")
    assert srv.counters()["idle_timeouts"] == 2


def test_smtp_idle_timeout_421(make_server, raw):
    # SMTP has no login on port 25; one timeout between commands (RFC 5321 §4.5.3.2.7).
    srv = make_server(smtp_timeout=1)
    c = raw(srv.smtp_port)
    greeted(c, "smtp")
    code, lines = c.read_reply(timeout=TIMEOUT)
    assert code == 421 and lines[0].startswith(b"4.4.2 "), lines
    assert c.read_until_eof() == b""
    assert srv.counters()["idle_timeouts"] == 1


# --- protocol errors before and after login ---------------------------------------------------

def test_imap_pre_login_error_limit_is_tighter(server, raw):
    # kImapPreLoginMaxErrors = 10 before login; kImapMaxErrors = 20 after.
    before = raw(server.imap_port)
    greeted(before, "imap")
    before.send(b"".join(b"t%d BOGUS\r\n" % i for i in range(9)))
    for _ in range(9):
        assert b" BAD " in before.read_line()
    before.cmd("x CAPABILITY")  # nine errors: still open
    assert before.read_line().startswith(b"* CAPABILITY")
    assert before.read_line().startswith(b"x OK")
    before.cmd("t9 BOGUS")
    data = before.read_until_eof()
    assert data.endswith(b"* BYE too many errors, closing connection\r\n"), data

    after = raw(server.imap_port)
    greeted(after, "imap")
    after.cmd("a LOGIN alice secret")
    assert after.read_line().startswith(b"a OK")
    after.send(b"".join(b"t%d BOGUS\r\n" % i for i in range(15)))
    for _ in range(15):
        assert b" BAD " in after.read_line()
    after.cmd("y NOOP")
    assert after.read_line().startswith(b"y OK")
    after.send(b"".join(b"u%d BOGUS\r\n" % i for i in range(5)))
    assert after.read_until_eof().endswith(b"* BYE too many errors, closing connection\r\n")


def test_pop3_pre_login_error_limit_is_tighter(server, raw):
    before = raw(server.pop3_port)
    greeted(before, "pop3")
    before.send(b"FROB\r\n" * 10)
    lines = before.read_until_eof().split(b"\r\n")
    assert lines[-1] == b"" and len(lines) - 1 == 11, lines  # ten -ERR, then the closing one
    assert lines[-2] == b"-ERR too many errors, closing connection"

    after = raw(server.pop3_port)
    greeted(after, "pop3")
    for line in ("USER alice", "PASS secret"):
        after.cmd(line)
        assert after.read_line().startswith(b"+OK")
    after.send(b"FROB\r\n" * 15)
    for _ in range(15):
        assert after.read_line().startswith(b"-ERR")
    after.cmd("NOOP")
    assert after.read_line().startswith(b"+OK")
    after.send(b"FROB\r\n" * 5)
    assert after.read_until_eof().endswith(b"-ERR too many errors, closing connection\r\n")


def test_per_address_limit_on_an_implicit_tls_port(make_server):
    # The refusal comes after the handshake, as a BYE through TLS, then close_notify/EOF.
    srv = make_server(tls="self-signed", max_connections_per_address=1)
    ctx = ssl.create_default_context(cafile=srv.tls_cert_path)

    def connect():
        raw_sock = socket.create_connection((srv.host, srv.imaps_port), timeout=TIMEOUT,
                                            source_address=("127.0.0.11", 0))
        return ctx.wrap_socket(raw_sock, server_hostname="localhost")

    first = connect()
    try:
        assert first.recv(4096).startswith(b"* OK")
        second = connect()
        try:
            data = b""
            while True:
                chunk = second.recv(4096)
                if not chunk:
                    break
                data += chunk
            assert data == b"* BYE too many connections from your address, try again later\r\n"
        finally:
            second.close()
    finally:
        first.close()
    assert srv.counters()["connections_refused_address"] == 1


# --- SMTP submission before AUTH --------------------------------------------------------------

def b64plain(login: str, password: str) -> str:
    return base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode()


def smtp_greeted(srv, port: str, raw, source=None):
    c = raw(getattr(srv, port), source=source)
    greeted(c, "smtp")
    c.cmd("EHLO client.test")
    assert c.read_reply()[0] == 250
    return c


def test_submission_serves_only_the_way_to_auth(make_server, raw):
    srv = make_server(tls="self-signed")
    c = smtp_greeted(srv, "submission_port", raw)
    for line in ("MAIL FROM:<bob@localhost>", "RCPT TO:<alice@localhost>", "DATA",
                 "VRFY alice", "EXPN staff", "HELP"):
        c.cmd(line)
        code, lines = c.read_reply()
        assert code == 530 and lines[0].startswith(b"5.7.0"), (line, code, lines)
    for line, want in (("NOOP", 250), ("RSET", 250), ("HELO client.test", 250),
                       ("EHLO client.test", 250)):
        c.cmd(line)
        assert c.read_reply()[0] == want, line
    c.cmd("AUTH PLAIN " + b64plain("bob", "hunter2"))
    assert c.read_reply()[0] == 235
    for line, want in (("VRFY alice", 252), ("HELP", 214), ("MAIL FROM:<bob@localhost>", 250)):
        c.cmd(line)
        assert c.read_reply()[0] == want, line
    # Port 25 is unchanged: no AUTH needed for VRFY, HELP and mail to local users.
    p = smtp_greeted(srv, "smtp_port", raw)
    for line, want in (("VRFY alice", 252), ("HELP", 214), ("MAIL FROM:<x@remote.example>", 250)):
        p.cmd(line)
        assert p.read_reply()[0] == want, line


def test_submission_pre_auth_error_limit_is_tighter(make_server, raw):
    # kSmtpPreAuthMaxErrors = 10 before AUTH on submission (530 refusals count); 20 after, and
    # always on port 25.
    srv = make_server(tls="self-signed")
    before = smtp_greeted(srv, "submission_port", raw)
    before.send(b"MAIL FROM:<bob@localhost>\r\n" * 9)
    for _ in range(9):
        assert before.read_reply()[0] == 530
    before.cmd("NOOP")
    assert before.read_reply()[0] == 250
    before.cmd("BOGUS")
    assert before.read_reply()[0] == 500
    code, lines = before.read_reply()
    assert code == 421 and b"Too many errors" in lines[0], lines
    assert before.read_until_eof() == b""

    for port, auth in (("submission_port", True), ("smtp_port", False)):
        after = smtp_greeted(srv, port, raw)
        if auth:
            after.cmd("AUTH PLAIN " + b64plain("bob", "hunter2"))
            assert after.read_reply()[0] == 235
        after.send(b"BOGUS\r\n" * 15)
        for _ in range(15):
            assert after.read_reply()[0] == 500
        after.cmd("NOOP")
        assert after.read_reply()[0] == 250, port
        after.send(b"BOGUS\r\n" * 5)
        assert after.read_until_eof().endswith(b"Too many errors, closing connection\r\n")


def test_submission_pre_auth_timeout_is_shorter(make_server, raw):
    srv = make_server(tls="self-signed", smtp_login_timeout=1, smtp_timeout=30)
    silent = smtp_greeted(srv, "submission_port", raw)
    user = smtp_greeted(srv, "submission_port", raw)
    user.cmd("AUTH PLAIN " + b64plain("bob", "hunter2"))
    assert user.read_reply()[0] == 235
    inbound = smtp_greeted(srv, "smtp_port", raw)
    started = time.monotonic()
    code, lines = silent.read_reply(timeout=TIMEOUT)
    assert code == 421 and lines[0].startswith(b"4.4.2 "), lines
    assert 0.5 < time.monotonic() - started < 5
    assert silent.read_until_eof() == b""
    # Within an AUTH exchange, too: the client owes its response within the short timeout.
    half = smtp_greeted(srv, "submission_port", raw)
    half.cmd("AUTH PLAIN")
    assert half.read_reply()[0] == 334
    assert half.read_reply(timeout=TIMEOUT)[0] == 421
    time.sleep(1.5)
    for c in (user, inbound):  # after AUTH and on port 25: the 30 s timeout
        c.cmd("NOOP")
        assert c.read_reply()[0] == 250
    assert srv.counters()["idle_timeouts"] == 2


@pytest.mark.parametrize("port", ["submission_port", "smtp_port"])
def test_smtp_auth_failures_per_connection(make_server, raw, port):
    # kSmtpMaxAuthFailures = 3: the third 535 is followed by 421 and the close.
    srv = make_server(tls="self-signed", auth_fail_delay=0, auth_fail_limit=0)
    c = smtp_greeted(srv, port, raw)
    for i in range(2):
        c.cmd("AUTH PLAIN " + b64plain("bob", f"wrong{i}"))
        assert c.read_reply()[0] == 535
    c.cmd("NOOP")
    assert c.read_reply()[0] == 250
    c.cmd("AUTH PLAIN " + b64plain("bob", "wrong2"))
    assert c.read_reply()[0] == 535
    code, lines = c.read_reply()
    assert code == 421 and lines[0].startswith(b"4.7.0 ") and b"authentication failures" in lines[0]
    assert c.read_until_eof() == b""
    assert srv.counters()["auth_failures"] == 3
    # Two failures and then the right password: fine.
    ok = smtp_greeted(srv, port, raw)
    for i in range(2):
        ok.cmd("AUTH PLAIN " + b64plain("bob", f"wrong{i}"))
        assert ok.read_reply()[0] == 535
    ok.cmd("AUTH PLAIN " + b64plain("bob", "hunter2"))
    assert ok.read_reply()[0] == 235


def test_smtplib_login_failures_end_the_connection(make_server):
    srv = make_server(tls="self-signed", auth_fail_delay=0, auth_fail_limit=0)
    ctx = ssl.create_default_context(cafile=srv.tls_cert_path)
    with smtplib.SMTP_SSL(srv.host, srv.submissions_port, timeout=TIMEOUT, context=ctx) as s:
        # smtplib's login() tries each mechanism it knows (PLAIN, then LOGIN): two failures.
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("bob", "wrong")
        assert e.value.smtp_code == 535
        # The third failure ends the connection: smtplib sees the 421 (or the close).
        with pytest.raises((smtplib.SMTPAuthenticationError, smtplib.SMTPServerDisconnected)):
            s.login("bob", "wrong again")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.noop()
    assert srv.counters()["auth_failures"] == 3


# --- total time before login ------------------------------------------------------------------

def test_prelogin_max_time_closes_busy_unauthenticated_clients(make_server, raw):
    # prelogin_max_time bounds the time from accept to login, however busy the client keeps
    # itself: each NOOP/CAPA resets the (longer) idle timeout, not this.
    srv = make_server(tls="self-signed", prelogin_max_time=2, imap_login_timeout=30,
                      pop3_login_timeout=30, smtp_login_timeout=30)
    imap = raw(srv.imap_port)
    greeted(imap, "imap")
    pop = raw(srv.pop3_port)
    greeted(pop, "pop3")
    sub = smtp_greeted(srv, "submission_port", raw)
    inbound = smtp_greeted(srv, "smtp_port", raw)  # port 25 has no login: no such limit
    logged = raw(srv.imap_port)
    greeted(logged, "imap")
    logged.cmd("a LOGIN alice secret")
    assert logged.read_line().startswith(b"a OK")
    started = time.monotonic()
    closed = {}
    n = 0
    while len(closed) < 3 and time.monotonic() - started < TIMEOUT:
        n += 1
        for name, c, line in (("imap", imap, f"n{n} NOOP"), ("pop3", pop, "CAPA"),
                              ("smtp", sub, "NOOP")):
            if name in closed:
                continue
            try:
                c.cmd(line)
            except OSError:
                pass
            try:
                data = c.read_until_eof(timeout=0.4)
            except (TimeoutError, socket.timeout):
                continue
            closed[name] = (time.monotonic() - started, data)
    assert set(closed) == {"imap", "pop3", "smtp"}, closed
    for name, (when, data) in closed.items():
        assert 1.0 < when < 5.0, (name, when)  # 2 s, seen within one polling round
    assert closed["imap"][1].endswith(b"* BYE autologout: no login within the time allowed\r\n")
    assert closed["pop3"][1].endswith(
        b"-ERR [SYS/TEMP] autologout: no login within the time allowed\r\n")
    assert b"421 4.7.0 localhost Error: no authentication within the time allowed\r\n" in \
        closed["smtp"][1]
    # The logged-in session and port 25 go on.
    for c, line, ok in ((logged, "b NOOP", b"b OK"), (inbound, "NOOP", b"250")):
        c.cmd(line)
        got = c.read_line()
        assert got.startswith(ok), got
    cnt = srv.counters()
    assert cnt["prelogin_timeouts"] == 3 and cnt["idle_timeouts"] == 0, cnt


def test_prelogin_max_time_ends_with_the_login(make_server, raw):
    srv = make_server(tls="self-signed", prelogin_max_time=1)
    imap = raw(srv.imap_port)
    greeted(imap, "imap")
    imap.cmd("a LOGIN alice secret")
    assert imap.read_line().startswith(b"a OK")
    pop = raw(srv.pop3_port)
    greeted(pop, "pop3")
    for line in ("USER alice", "PASS secret"):
        pop.cmd(line)
        assert pop.read_line().startswith(b"+OK")
    sub = smtp_greeted(srv, "submission_port", raw)
    sub.cmd("AUTH PLAIN " + b64plain("bob", "hunter2"))
    assert sub.read_reply()[0] == 235
    time.sleep(2)
    for c, line, ok in ((imap, "b NOOP", b"b OK"), (pop, "STAT", b"+OK"), (sub, "NOOP", b"250")):
        c.cmd(line)
        assert c.read_line().startswith(ok)
    assert srv.counters()["prelogin_timeouts"] == 0


# --- refusals on implicit-TLS ports -----------------------------------------------------------

def test_refusal_on_every_implicit_tls_port_comes_through_tls(make_server):
    # Python's own clients see the protocol's refusal, not a TLS record error.
    srv = make_server(tls="self-signed", max_connections_per_address=1)
    ctx = ssl.create_default_context(cafile=srv.tls_cert_path)
    holder = socket.create_connection((srv.host, srv.smtp_port), timeout=TIMEOUT,
                                      source_address=("127.0.0.12", 0))
    try:
        assert holder.recv(4096).startswith(b"220")
        src = ("127.0.0.12", 0)
        with pytest.raises(smtplib.SMTPConnectError) as e:
            smtplib.SMTP_SSL(srv.host, srv.submissions_port, timeout=TIMEOUT, context=ctx,
                             source_address=src)
        assert e.value.smtp_code == 421 and b"from your address" in e.value.smtp_error
        with pytest.raises(poplib.error_proto) as e:
            _pop3s_from(srv, ctx, "127.0.0.12")
        assert b"-ERR [SYS/TEMP] too many connections from your address" in e.value.args[0]
        with pytest.raises(imaplib.IMAP4.error) as e:
            _imaps_from(srv, ctx, "127.0.0.12")
        assert "too many connections from your address" in str(e.value)
    finally:
        holder.close()
    assert srv.counters()["connections_refused_address"] == 3


def _pop3s_from(srv, ctx, source):
    class P(poplib.POP3_SSL):
        def _create_socket(self, timeout):
            sock = socket.create_connection((self.host, self.port), timeout,
                                            source_address=(source, 0))
            return self.context.wrap_socket(sock, server_hostname=self.host)
    return P(srv.host, srv.pop3s_port, timeout=TIMEOUT, context=ctx)


def _imaps_from(srv, ctx, source):
    class I(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout):
            sock = socket.create_connection((self.host, self.port), timeout,
                                            source_address=(source, 0))
            return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
    return I(srv.host, srv.imaps_port, ssl_context=ctx, timeout=TIMEOUT)


@pytest.mark.parametrize("port", ["imaps_port", "pop3s_port", "submissions_port"])
def test_refused_connection_on_a_tls_port_gets_no_plaintext_and_a_short_handshake(
        make_server, port):
    # Refused on a TLS port: never plaintext (a client speaking plain protocol to it sees no
    # refusal text), and a silent client is dropped after kTlsRefusalHandshakeTimeout (5 s),
    # not the 30 s an admitted handshake gets.
    srv = make_server(tls="self-signed", max_connections=1, max_connections_per_address=0)
    holder = socket.create_connection((srv.host, srv.smtp_port), timeout=TIMEOUT)
    try:
        assert holder.recv(4096).startswith(b"220")
        plain = socket.create_connection((srv.host, getattr(srv, port)), timeout=TIMEOUT)
        plain.sendall(b"EHLO client.test\r\nCAPA\r\na CAPABILITY\r\n")
        data = b""
        while True:
            chunk = plain.recv(4096)
            if not chunk:
                break
            data += chunk
        plain.close()
        assert b"too many" not in data and not data.startswith((b"421", b"* BYE", b"-ERR")), data
        silent = socket.create_connection((srv.host, getattr(srv, port)), timeout=TIMEOUT)
        started = time.monotonic()
        assert silent.recv(4096) == b""
        assert 3 < time.monotonic() - started < 8.5
        silent.close()
    finally:
        holder.close()
    assert wait_for(lambda: srv.counters()["connections_refused"] == 2)


# --- IPv6: clients counted by /64, IPv4-mapped ones as IPv4 -----------------------------------

def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")


def _connect6(port: int) -> socket.socket:
    s = socket.create_connection(("::1", port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def _read_all(s: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


@needs_ipv6
def test_per_address_limit_over_ipv6(make_server):
    # (::1 is the only IPv6 address here, so the /64 grouping itself is tested in C++,
    # net/address_test.cpp; this is the limit and the trace header over a real IPv6 socket.)
    srv = make_server(listen="::1", max_connections_per_address=2)
    held = [_connect6(srv.imap_port) for _ in range(2)]
    try:
        for s in held:
            assert s.recv(4096).startswith(b"* OK")
        third = _connect6(srv.pop3_port)
        assert _read_all(third).startswith(
            b"-ERR [SYS/TEMP] too many connections from your address")
        third.close()
    finally:
        for s in held:
            s.close()
    assert srv.counters()["connections_refused_address"] == 1

    assert wait_for(lambda: _probe6(srv.smtp_port), timeout=5)  # the held ones have gone
    with smtplib.SMTP("::1", srv.smtp_port, timeout=TIMEOUT) as s:
        s.sendmail("x@remote.example", ["alice@localhost"], b"Subject: six\r\n\r\nhi\r\n")
    with imaplib.IMAP4("::1", srv.imap_port, timeout=TIMEOUT) as m:
        m.login("alice", "secret")
        m.select("INBOX")
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (RECEIVED)])")
        assert typ == "OK"
        # RFC 5321 §4.1.3: an IPv6 address literal.
        assert b"([IPv6:::1])" in data[0][1], data


def _probe6(port: int) -> bool:
    s = _connect6(port)
    try:
        return s.recv(4096).startswith(b"220")
    finally:
        s.close()


@needs_ipv6
def test_dual_stack_counts_ipv4_clients_by_their_ipv4_address(make_server, raw):
    # On a dual-stack listener IPv4 clients arrive as ::ffff:a.b.c.d, which all share one /64;
    # they must still count per IPv4 address, not as one client.
    srv = make_server(listen="::", max_connections_per_address=2)
    for _ in range(2):
        greeted(raw(srv.imap_port, source="127.0.0.21"), "imap")
    refused = raw(srv.imap_port, source="127.0.0.21")
    assert refused.read_until_eof() == \
        b"* BYE too many connections from your address, try again later\r\n"
    greeted(raw(srv.imap_port, source="127.0.0.22"), "imap")
    six = _connect6(srv.imap_port)
    try:
        assert six.recv(4096).startswith(b"* OK")
    finally:
        six.close()
    assert srv.counters()["connections_refused_address"] == 1
