"""Connection limits (per client address and in total), idle timeouts per protocol state, and
pre-login limits tighter than post-login ones (docs/limits.md). Each test crosses its limit
over real sockets. Source addresses: any address of 127.0.0.0/8 reaches this host, so a test
connects "from another client" by binding 127.0.0.x."""
from __future__ import annotations

import socket
import ssl
import time

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
