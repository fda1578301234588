"""SASL authentication with real clients: SCRAM-SHA-256 (the PyPI ``scramp`` client), PLAIN and
LOGIN over IMAP AUTHENTICATE, SMTP AUTH and POP3 AUTH; ``plaintext_auth`` policies and the
capabilities that follow them; failed-login throttling (delays, lockout, counters).

Channel binding (SCRAM-SHA-256-PLUS) needs TLS: see test_sasl_tls.py.
"""
from __future__ import annotations

import base64
import imaplib
import poplib
import re
import smtplib
import time

import pytest
import scramp

from conftest import TIMEOUT

B64 = lambda b: base64.b64encode(b).decode()  # noqa: E731

# Throttling small enough for tests; delays off unless a test wants them.
NO_DELAY = {"auth_fail_delay": 0}


def imap_connect(srv) -> imaplib.IMAP4:
    return imaplib.IMAP4(srv.host, srv.imap_port, timeout=TIMEOUT)


def scram_authobject(login: str, password: str, mechanism="SCRAM-SHA-256"):
    """An imaplib/smtplib authobject driving a scramp client; the server's signature is checked
    by scramp (set_server_final raises on a wrong one)."""
    client = scramp.ScramClient([mechanism], login, password)
    state = {"step": 0, "verified": False}

    def step(challenge: bytes | None = None) -> str:
        s = state["step"]
        state["step"] += 1
        if s == 0:
            return client.get_client_first()
        if s == 1:
            client.set_server_first(challenge.decode())
            return client.get_client_final()
        client.set_server_final(challenge.decode())
        state["verified"] = True
        return ""

    return step, state


def pop3_auth(p: poplib.POP3, mechanism: str, responses, initial: str | None = None) -> bytes:
    """AUTH on a poplib connection: answers each "+ challenge" with responses(challenge)."""
    p._putcmd(f"AUTH {mechanism}" + (f" {initial}" if initial is not None else ""))
    while True:
        line, _ = p._getline()
        if not line.startswith(b"+ ") and line != b"+":
            return line
        challenge = base64.b64decode(line[2:])
        p._putcmd(responses(challenge))


# ---- SCRAM-SHA-256 -------------------------------------------------------------------------

def test_scram_imap(server):
    m = imap_connect(server)
    step, state = scram_authobject("alice", "secret")
    typ, data = m.authenticate("SCRAM-SHA-256", lambda ch: step(ch) if state["step"] else step())
    assert typ == "OK"
    assert state["verified"]
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def test_scram_imap_wrong_password(server):
    m = imap_connect(server)
    step, state = scram_authobject("alice", "wrong")
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.authenticate("SCRAM-SHA-256", lambda ch: step(ch) if state["step"] else step())
    # Unknown users fail the same way, at the proof.
    step, state = scram_authobject("nobody", "secret")
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.authenticate("SCRAM-SHA-256", lambda ch: step(ch) if state["step"] else step())


def test_scram_smtp(server, smtp):
    c = smtp()
    assert "SCRAM-SHA-256" in c.esmtp_features["auth"].split()
    step, state = scram_authobject("bob", "hunter2")
    code, resp = c.auth("SCRAM-SHA-256", step, initial_response_ok=True)
    assert code == 235 and resp.startswith(b"2.7.0")
    assert state["verified"]
    # Already authenticated.
    assert c.docmd("AUTH", "PLAIN " + B64(b"\0bob\0hunter2"))[0] == 503


def test_scram_smtp_without_initial_response(server, smtp):
    c = smtp()
    step, state = scram_authobject("bob", "hunter2")
    code, _ = c.auth("SCRAM-SHA-256", lambda ch=None: step(ch) if state["step"] else step(),
                     initial_response_ok=False)
    assert code == 235 and state["verified"]


def test_scram_smtp_wrong_password(server, smtp):
    c = smtp()
    step, _ = scram_authobject("bob", "nope")
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        c.auth("SCRAM-SHA-256", step)
    assert e.value.smtp_code == 535 and e.value.smtp_error.startswith(b"5.7.8")


def test_scram_pop3(server, pop3):
    p = pop3()
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "secret")
    first = client.get_client_first()
    answers = []

    def respond(challenge: bytes) -> str:
        if not answers:
            answers.append(1)
            client.set_server_first(challenge.decode())
            return B64(client.get_client_final().encode())
        client.set_server_final(challenge.decode())
        return ""

    assert pop3_auth(p, "SCRAM-SHA-256", respond, B64(first.encode())).startswith(b"+OK")
    assert p.stat()[0] == 0


def test_scram_pop3_wrong_password(server, pop3):
    p = pop3()
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "bad")

    def respond(challenge: bytes) -> str:
        client.set_server_first(challenge.decode())
        return B64(client.get_client_final().encode())

    line = pop3_auth(p, "SCRAM-SHA-256", respond, B64(client.get_client_first().encode()))
    assert line.startswith(b"-ERR [AUTH]")


# ---- PLAIN and LOGIN -----------------------------------------------------------------------

def test_plain_and_login_imap(server):
    m = imap_connect(server)
    assert m.authenticate("PLAIN", lambda _: b"\0alice\0secret")[0] == "OK"
    m.logout()
    m = imap_connect(server)
    answers = iter([b"bob", b"hunter2"])
    assert m.authenticate("LOGIN", lambda _: next(answers))[0] == "OK"
    m.logout()
    m = imap_connect(server)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHORIZATIONFAILED"):
        m.authenticate("PLAIN", lambda _: b"bob\0alice\0secret")


def test_imap_sasl_ir_cancel_and_bad_base64(server, raw):
    c = raw(server.imap_port)
    c.read_line()
    c.cmd("a1 AUTHENTICATE PLAIN " + B64(b"\0alice\0secret"))
    assert c.read_line().startswith(b"a1 OK [CAPABILITY ")
    c = raw(server.imap_port)
    c.read_line()
    c.cmd("a1 AUTHENTICATE PLAIN =")  # an empty initial response: malformed PLAIN
    assert c.read_line().startswith(b"a1 BAD")
    c.cmd("a2 AUTHENTICATE PLAIN")
    assert c.read_line() == b"+ \r\n"
    c.cmd("*")
    assert c.read_line().startswith(b"a2 BAD")
    c.cmd("a3 AUTHENTICATE PLAIN !!!!")
    assert c.read_line().startswith(b"a3 BAD")
    c.cmd("a4 AUTHENTICATE CRAM-MD5")
    assert c.read_line().startswith(b"a4 NO [CANNOT]")
    c.cmd("a5 AUTHENTICATE SCRAM-SHA-256-PLUS")  # no channel binding without TLS
    assert c.read_line().startswith(b"a5 NO [CANNOT]")
    c.cmd("a6 AUTHENTICATE SCRAM-SHA-256")
    assert c.read_line() == b"+ \r\n"
    c.cmd(B64(b"p=tls-exporter,,n=alice,r=abcdef"))  # -PLUS flag with the plain mechanism
    assert c.read_line().startswith(b"a6 NO [AUTHENTICATIONFAILED]")
    c.cmd("a7 AUTHENTICATE SCRAM-SHA-256 " + B64(b"n,,n=alice,r=abcdef"))
    assert c.read_line().startswith(b"+ ")
    c.cmd("*")
    assert c.read_line().startswith(b"a7 BAD")
    c.cmd("a8 NOOP")
    assert c.read_line().startswith(b"a8 OK")


def test_plain_and_login_smtp(server, smtp):
    c = smtp()
    assert c.esmtp_features["auth"].split() == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]
    assert c.login("alice", "secret")[0] == 235  # smtplib picks PLAIN
    c = smtp()
    c.user, c.password = "bob", "hunter2"
    assert c.auth("LOGIN", c.auth_login, initial_response_ok=False)[0] == 235
    c = smtp()
    c.user, c.password = "bob", "hunter2"
    assert c.auth("LOGIN", c.auth_login, initial_response_ok=True)[0] == 235
    c = smtp()
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        c.login("alice", "wrong")
    assert e.value.smtp_code == 535


def test_smtp_auth_edges(server, raw):
    c = raw(server.smtp_port)
    c.read_reply()
    c.cmd("AUTH PLAIN " + B64(b"\0alice\0secret"))
    assert c.read_reply()[0] == 503  # before EHLO
    c.cmd("EHLO client.test")
    c.read_reply()
    c.cmd("AUTH PLAIN")
    assert c.read_line() == b"334 \r\n"
    c.cmd("*")
    code, lines = c.read_reply()
    assert code == 501 and lines[0].startswith(b"5.0.0")
    c.cmd("AUTH PLAIN not-base64")
    assert c.read_reply()[0] == 501
    c.cmd("AUTH XOAUTH9")
    code, lines = c.read_reply()
    assert code == 504 and lines[0].startswith(b"5.5.4")
    c.cmd("AUTH")
    assert c.read_reply()[0] == 501
    c.cmd("AUTH PLAIN " + "A" * 20000)  # longer than a command line
    assert c.read_reply()[0] == 500
    c.cmd("AUTH LOGIN")
    assert c.read_line() == b"334 " + B64(b"Username:").encode() + b"\r\n"
    c.cmd("A" * 10000)  # a response line past the limit
    code, lines = c.read_reply()
    assert code == 500 and lines[0].startswith(b"5.5.6")
    c.cmd("AUTH PLAIN " + B64(b"\0alice\0secret"))
    assert c.read_reply()[0] == 235
    c.cmd("MAIL FROM:<alice@localhost>")
    assert c.read_reply()[0] == 250
    c.cmd("NOOP")
    assert c.read_reply()[0] == 250


def test_plain_and_login_pop3(server, pop3):
    p = pop3()
    assert pop3_auth(p, "PLAIN", None, B64(b"\0alice\0secret")).startswith(b"+OK")
    p.quit()
    p = pop3()
    answers = iter([B64(b"bob"), B64(b"hunter2")])
    assert pop3_auth(p, "LOGIN", lambda ch: next(answers)).startswith(b"+OK")
    p = pop3()
    assert pop3_auth(p, "PLAIN", lambda ch: "*").startswith(b"-ERR")
    assert pop3_auth(p, "PLAIN", None, "%%%%").startswith(b"-ERR")
    assert pop3_auth(p, "KERBEROS_V4", None).startswith(b"-ERR")
    # AUTH without a mechanism lists them.
    p._putcmd("AUTH")
    resp, lines, _ = p._getlongresp()
    assert resp.startswith(b"+OK") and lines == [b"SCRAM-SHA-256", b"PLAIN", b"LOGIN"]
    assert pop3_auth(p, "PLAIN", None, B64(b"\0alice\0wrong")).startswith(b"-ERR [AUTH]")


# ---- capabilities and plaintext_auth -------------------------------------------------------

def test_default_capabilities_on_loopback(server, smtp, pop3):
    m = imap_connect(server)
    caps = m.capabilities
    assert {"AUTH=SCRAM-SHA-256", "AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR"} <= set(caps)
    assert "LOGINDISABLED" not in caps and "AUTH=SCRAM-SHA-256-PLUS" not in caps
    assert smtp().esmtp_features["auth"].split() == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]
    capa = pop3().capa()
    assert capa["SASL"] == ["SCRAM-SHA-256", "PLAIN", "LOGIN"] and "USER" in capa
    m.login("alice", "secret")
    after = m.capability()[1][0].decode().split()
    assert "IMAP4rev2" in after and not any(c.startswith("AUTH=") for c in after)


def test_plaintext_never_refuses_plaintext(make_server, raw):
    srv = make_server(plaintext_auth="never")
    m = imap_connect(srv)
    caps = set(m.capabilities)
    assert "LOGINDISABLED" in caps and "AUTH=SCRAM-SHA-256" in caps
    assert "AUTH=PLAIN" not in caps and "AUTH=LOGIN" not in caps
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        m.login("alice", "secret")
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        m.authenticate("PLAIN", lambda _: b"\0alice\0secret")
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        m.authenticate("LOGIN", lambda _: b"alice")
    step, state = scram_authobject("alice", "secret")
    assert m.authenticate("SCRAM-SHA-256", lambda ch: step(ch) if state["step"] else step())[0] == "OK"

    s = smtplib.SMTP(srv.host, srv.smtp_port, timeout=TIMEOUT)
    s.ehlo("client.test")
    assert s.esmtp_features["auth"].split() == ["SCRAM-SHA-256"]
    code, resp = s.docmd("AUTH", "PLAIN " + B64(b"\0alice\0secret"))
    assert code == 538 and resp.startswith(b"5.7.11")
    code, resp = s.docmd("AUTH", "LOGIN")
    assert code == 538
    step, state = scram_authobject("alice", "secret")
    assert s.auth("SCRAM-SHA-256", step)[0] == 235
    s.close()

    p = poplib.POP3(srv.host, srv.pop3_port, timeout=TIMEOUT)
    capa = p.capa()
    assert "USER" not in capa and capa["SASL"] == ["SCRAM-SHA-256"]
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.user("alice")
    assert pop3_auth(p, "PLAIN", None, B64(b"\0alice\0secret")).startswith(b"-ERR [AUTH]")
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "secret")

    def respond(challenge: bytes) -> str:
        if client.stage.name == "get_client_first":
            client.set_server_first(challenge.decode())
            return B64(client.get_client_final().encode())
        client.set_server_final(challenge.decode())
        return ""

    assert pop3_auth(p, "SCRAM-SHA-256", respond,
                     B64(client.get_client_first().encode())).startswith(b"+OK")
    p.close()


@pytest.mark.parametrize("policy", ["always", "loopback"])
def test_plaintext_allowed_policies(make_server, policy):
    srv = make_server(plaintext_auth=policy)
    m = imap_connect(srv)
    assert "LOGINDISABLED" not in m.capabilities
    assert m.login("alice", "secret")[0] == "OK"


def test_plaintext_auth_rejects_unknown_values(make_server):
    with pytest.raises(ValueError):
        make_server(plaintext_auth="sometimes")


# ---- throttling ----------------------------------------------------------------------------

def timed(fn):
    t = time.monotonic()
    try:
        fn()
    except Exception:
        pass
    return time.monotonic() - t


def test_failures_are_delayed_and_doubled_successes_are_not(make_server):
    srv = make_server(auth_fail_delay=0.3, auth_fail_max_delay=0.6, auth_fail_limit=0)
    m = imap_connect(srv)
    first = timed(lambda: m.login("alice", "wrong"))
    second = timed(lambda: m.login("alice", "wrong"))
    third = timed(lambda: m.login("alice", "wrong"))
    assert first >= 0.3 and second >= 0.6 and 0.6 <= third < 1.1, (first, second, third)
    ok = timed(lambda: m.login("alice", "secret"))
    assert ok < 0.3 and m.state == "AUTH"
    c = srv.counters()
    assert c["auth_failures"] == 3 and c["auth_delayed"] == 3 and c["auth_successes"] == 1


def test_lockout_refuses_even_the_right_password_then_expires(make_server, smtp):
    srv = make_server(auth_fail_delay=0, auth_fail_limit=3, auth_lockout=2)
    m = imap_connect(srv)
    for _ in range(3):
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            m.login("alice", "wrong")
    with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
        m.login("alice", "secret")
    # The address is locked for every protocol and account.
    s = smtp(srv)
    code, resp = s.docmd("AUTH", "PLAIN " + B64(b"\0bob\0hunter2"))
    assert code == 454 and resp.startswith(b"4.7.0")
    p = poplib.POP3(srv.host, srv.pop3_port, timeout=TIMEOUT)
    p.user("bob")
    with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
        p.pass_("hunter2")
    c = srv.counters()
    assert c["auth_lockouts"] == 1 and c["auth_refused"] >= 3
    time.sleep(2.2)
    assert m.login("alice", "secret")[0] == "OK"
    p.close()


def test_malformed_exchanges_are_not_counted_as_guesses(make_server, raw):
    srv = make_server(auth_fail_delay=0, auth_fail_limit=2)
    c = raw(srv.imap_port)
    c.read_line()
    for i in range(5):
        c.cmd(f"a{i} AUTHENTICATE PLAIN !!!!")
        assert c.read_line().startswith(f"a{i} BAD".encode())
    c.cmd("z LOGIN alice secret")
    assert c.read_line().startswith(b"z OK")


# ---- contracts -----------------------------------------------------------------------------

def sasl_sessions(protocol: str, addr) -> int:
    """SCRAM, PLAIN, LOGIN, a cancel and a bad password through `addr` (valid client traffic:
    bad base64 would be the client breaking the contract); returns the
    number of connections made."""
    host, port = addr
    if protocol == "imap":
        m = imaplib.IMAP4(host, port, timeout=TIMEOUT)
        step, state = scram_authobject("alice", "secret")
        assert m.authenticate("SCRAM-SHA-256", step)[0] == "OK" and state["verified"]
        m.logout()
        m = imaplib.IMAP4(host, port, timeout=TIMEOUT)
        with pytest.raises(imaplib.IMAP4.error):
            m.authenticate("SCRAM-SHA-256", scram_authobject("alice", "nope")[0])
        with pytest.raises(imaplib.IMAP4.error):
            m.authenticate("PLAIN", lambda _: None)  # imaplib sends "*"
        answers = iter([b"alice", b"secret"])
        assert m.authenticate("LOGIN", lambda _: next(answers))[0] == "OK"
        m.logout()
        return 2
    if protocol == "smtp":
        c = smtplib.SMTP(host, port, timeout=TIMEOUT)
        c.ehlo("client.test")
        assert c.docmd("AUTH", "LOGIN")[0] == 334
        assert c.docmd("*")[0] == 501
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.auth("SCRAM-SHA-256", scram_authobject("alice", "nope")[0])
        step, state = scram_authobject("alice", "secret")
        assert c.auth("SCRAM-SHA-256", step, initial_response_ok=False)[0] == 235
        assert c.docmd("AUTH", "PLAIN " + B64(b"\0alice\0secret"))[0] == 503
        c.quit()
        return 1
    p = poplib.POP3(host, port, timeout=TIMEOUT)
    p.capa()
    assert pop3_auth(p, "PLAIN", lambda ch: "*").startswith(b"-ERR")
    p._putcmd("AUTH")
    p._getlongresp()
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "secret")

    def respond(challenge: bytes) -> str:
        if challenge == b"":
            return B64(client.get_client_first().encode())
        if client.stage.name == "get_client_first":
            client.set_server_first(challenge.decode())
            return B64(client.get_client_final().encode())
        client.set_server_final(challenge.decode())
        return ""

    assert pop3_auth(p, "SCRAM-SHA-256", respond).startswith(b"+OK")
    p.stat()
    p.quit()
    return 1


@pytest.mark.parametrize("protocol", ["imap", "smtp", "pop3"])
def test_sasl_exchanges_keep_the_contracts(make_server, protocol):
    from millipost import contracts as ct

    srv = make_server(auth_fail_delay=0)
    port = {"imap": srv.imap_port, "smtp": srv.smtp_port, "pop3": srv.pop3_port}[protocol]
    with ct.Proxy("127.0.0.1:0", ("127.0.0.1", port), protocol) as proxy:
        n = sasl_sessions(protocol, proxy.address)
        assert proxy.wait_idle(TIMEOUT, count=n)
    for conn in proxy.connections:  # each saw SASL challenges
        server = b"".join(data for who, data in conn.records if who == "S")
        assert re.search(rb"(^|\r\n)(\+ |334 )", server), ct.format_transcript(conn.records)
    assert not proxy.breaches, str(proxy.breaches[0])
