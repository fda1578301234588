"""TLS: STARTTLS (SMTP RFC 3207, IMAP, POP3 STLS RFC 2595) and implicit TLS (RFC 8314) with real
clients (smtplib, imaplib, poplib, curl, openssl s_client); the STARTTLS command-injection
defence; TLS 1.2+ only; certificate reload; garbage instead of a handshake. See docs/tls.md."""
from __future__ import annotations

import imaplib
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings

import pytest

import millipost
from conftest import TIMEOUT, USERS, RawClient, message, retr, wait_for


def context(srv: millipost.Server) -> ssl.SSLContext:
    """A client context that trusts exactly the server's certificate and checks the name."""
    assert srv.tls_cert_path and os.path.exists(srv.tls_cert_path)
    return ssl.create_default_context(cafile=srv.tls_cert_path)


@pytest.fixture
def tls_server(make_server):
    return make_server(tls="self-signed")


def tool(name: str) -> str:
    path = shutil.which(name) or os.path.join(os.path.dirname(sys.executable), name)
    if not os.access(path, os.X_OK):
        pytest.skip(f"{name} not installed")
    return path


# --- without a certificate nothing changes ---------------------------------------------------

def test_no_tls_without_certificate(server, raw):
    assert server.tls_cert_path is None
    assert (server.submission_port, server.submissions_port, server.imaps_port,
            server.pop3s_port) == (0, 0, 0, 0)
    c = raw(server.smtp_port)
    c.read_reply()
    c.cmd("EHLO client.test")
    code, lines = c.read_reply()
    assert code == 250 and b"STARTTLS" not in lines
    c.cmd("STARTTLS")
    assert c.read_reply()[0] == 454
    c.cmd("NOOP")  # still talking in the clear
    assert c.read_reply()[0] == 250

    i = raw(server.imap_port)
    assert b"STARTTLS" not in i.read_line()
    i.cmd("a CAPABILITY")
    assert b"STARTTLS" not in i.read_line()
    assert i.read_line().startswith(b"a OK")
    i.cmd("b STARTTLS")
    assert i.read_line().startswith(b"b BAD")

    p = raw(server.pop3_port)
    p.read_line()
    p.cmd("CAPA")
    assert p.read_line().startswith(b"+OK")
    assert b"STLS" not in p.read_multiline()
    p.cmd("STLS")
    assert p.read_line().startswith(b"-ERR")


# --- SMTP ------------------------------------------------------------------------------------

@pytest.mark.parametrize("port", ["smtp_port", "submission_port"])
def test_smtp_starttls_then_deliver(tls_server, port, pop3):
    assert getattr(tls_server, port) > 0
    with smtplib.SMTP(tls_server.host, getattr(tls_server, port), timeout=TIMEOUT) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=context(tls_server))
        assert code == 220
        s.ehlo("client.test")
        assert not s.has_extn("starttls")  # RFC 3207 §4.2: not offered again
        sender, msg = "x@example.org", message("over tls")
        if port == "submission_port":  # submission: AUTH required, the user's own address
            s.login("bob", USERS["bob"])
            sender, msg = "bob@localhost", msg.replace(b"sender@example.org", b"bob@localhost")
        assert s.sendmail(sender, ["alice@localhost"], msg) == {}
    p = pop3("alice", srv=tls_server)
    stored = retr(p, 1)
    assert b"Subject: over tls" in stored
    # RFC 3848: ESMTPS over TLS, ESMTPSA when the client also authenticated (submission).
    want = b"with ESMTPSA id" if port == "submission_port" else b"with ESMTPS id"
    assert want in stored


def test_smtp_state_reset_after_starttls(tls_server, raw):
    c = raw(tls_server.smtp_port)
    c.read_reply()
    c.cmd("EHLO client.test")
    c.read_reply()
    c.cmd("MAIL FROM:<x@example.org>")
    assert c.read_reply()[0] == 250
    c.cmd("STARTTLS")
    assert c.read_reply()[0] == 220
    t = TlsRaw(c, context(tls_server))
    # RFC 3207 §4.2: back to the start: no EHLO, no transaction.
    t.cmd("MAIL FROM:<x@example.org>")
    assert t.read_smtp()[0] == 503
    t.cmd("EHLO client.test")
    code, lines = t.read_smtp()
    assert code == 250 and b"STARTTLS" not in lines
    t.cmd("MAIL FROM:<x@example.org>")
    assert t.read_smtp()[0] == 250
    t.cmd("STARTTLS")  # not twice
    assert t.read_smtp()[0] == 503


def test_smtp_ssl_submissions(tls_server, pop3):
    with smtplib.SMTP_SSL(tls_server.host, tls_server.submissions_port, timeout=TIMEOUT,
                          context=context(tls_server)) as s:
        s.ehlo("client.test")
        assert not s.has_extn("starttls")
        s.login("bob", USERS["bob"])  # submission: AUTH required
        # A large message: many TLS records through fill(), none lost or reordered.
        body = b"".join(b"line %06d of a long message over implicit TLS\r\n" % i
                        for i in range(40000))
        msg = message("big", body).replace(b"sender@example.org", b"bob@localhost")
        assert s.sendmail("bob@localhost", ["alice@localhost"], msg) == {}
    p = pop3("alice", srv=tls_server)
    stored = retr(p, 1)
    assert stored.endswith(body)
    assert b"with ESMTPSA id" in stored.split(b"\r\n\r\n")[0]  # RFC 3848: TLS + AUTH


# --- IMAP ------------------------------------------------------------------------------------

def test_imap_starttls(tls_server):
    m = imaplib.IMAP4(tls_server.host, tls_server.imap_port, timeout=TIMEOUT)
    try:
        assert "STARTTLS" in m.capabilities
        typ, _ = m.starttls(ssl_context=context(tls_server))
        assert typ == "OK"
        # imaplib asks CAPABILITY again after STARTTLS (RFC 9051 §6.2.1).
        assert "STARTTLS" not in m.capabilities and "IMAP4REV2" in m.capabilities
        assert m.login("alice", USERS["alice"])[0] == "OK"
        assert m.select("INBOX")[0] == "OK"
    finally:
        m.logout()


def test_starttls_not_offered_after_login(tls_server):
    m = imaplib.IMAP4(tls_server.host, tls_server.imap_port, timeout=TIMEOUT)
    try:
        m.login("alice", USERS["alice"])  # in the clear: loopback (plaintext_auth's default)
        typ, data = m.capability()
        assert typ == "OK" and b"STARTTLS" not in data[0]
        with pytest.raises(imaplib.IMAP4.error):
            m._simple_command("STARTTLS")
    finally:
        m.logout()
    p = poplib.POP3(tls_server.host, tls_server.pop3_port, timeout=TIMEOUT)
    try:
        p.user("alice")
        p.pass_(USERS["alice"])
        assert "STLS" not in p.capa()  # RFC 2595 §4: AUTHORIZATION state only
        with pytest.raises(poplib.error_proto):
            p._shortcmd("STLS")
    finally:
        p.quit()


def test_imaps_idle_sees_delivery(tls_server):
    """IDLE over TLS: fill_or_wake's wake-up path (a mailbox change) and its read path (DONE)."""
    m = imaplib.IMAP4_SSL(tls_server.host, tls_server.imaps_port, timeout=TIMEOUT,
                          ssl_context=context(tls_server))
    try:
        assert "STARTTLS" not in m.capabilities
        m.login("alice", USERS["alice"])
        m.select("INBOX")
        tag = m._new_tag().decode()
        m.send(f"{tag} IDLE\r\n".encode())
        assert m.readline().startswith(b"+")
        with smtplib.SMTP(tls_server.host, tls_server.smtp_port, timeout=TIMEOUT) as s:
            s.sendmail("x@example.org", ["alice@localhost"], message("during idle"))
        assert m.readline().strip() == b"* 1 EXISTS"
        m.send(b"DONE\r\n")
        line = m.readline()
        while line.startswith(b"*"):
            line = m.readline()
        assert line.startswith(f"{tag} OK".encode()), line
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK" and b"during idle" in data[0][1]
    finally:
        m.logout()


def test_notify_over_tls_never_loses_a_command_that_arrives_with_an_event(tls_server, raw):
    """fill_or_wake over TLS: when a store event wins the race against a read, ciphertext already
    received stays in the TLS engine and the command is still read (the plain-TCP version of this
    test is in test_imap_condstore.py)."""
    from test_imap_condstore import Session
    ctx = context(tls_server)

    def tls_raw(port: int) -> RawClient:
        c = raw(port)
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        return c

    class Imaps:
        imap_port = tls_server.imaps_port

    a, b = Session(tls_raw, Imaps), Session(tls_raw, Imaps)
    a.run("CREATE Race")
    assert a.run("NOTIFY SET STATUS (mailboxes Race (MessageNew))")[1].startswith("OK")
    for i in range(1000):  # as in the plain-TCP test: the race is narrow
        go = threading.Barrier(2)

        def append() -> None:
            go.wait()
            assert b.run("APPEND Race", message(f"r{i}"))[1].startswith("OK")

        t = threading.Thread(target=append)
        t.start()
        go.wait()
        untagged, tagged = a.run("NOOP")  # the read timeout fails the test if the OK is lost
        t.join()
        assert tagged.startswith("OK"), (i, untagged, tagged)
        assert all(line.startswith("* STATUS Race") for line in untagged), untagged


# --- POP3 ------------------------------------------------------------------------------------

def test_pop3_stls_and_pop3s(tls_server):
    with smtplib.SMTP(tls_server.host, tls_server.smtp_port, timeout=TIMEOUT) as s:
        s.sendmail("x@example.org", ["alice@localhost"], message("pop over tls"))
    p = poplib.POP3(tls_server.host, tls_server.pop3_port, timeout=TIMEOUT)
    try:
        assert "STLS" in p.capa()
        assert p.stls(context=context(tls_server)).startswith(b"+OK")
        assert "STLS" not in p.capa()
        p.user("alice")
        p.pass_(USERS["alice"])
        assert p.stat()[0] == 1
    finally:
        p.quit()
    p = poplib.POP3_SSL(tls_server.host, tls_server.pop3s_port, timeout=TIMEOUT,
                        context=context(tls_server))
    try:
        assert "STLS" not in p.capa()
        p.user("alice")
        p.pass_(USERS["alice"])
        assert b"Subject: pop over tls" in retr(p, 1)
    finally:
        p.quit()


# --- the STARTTLS command-injection defence --------------------------------------------------

class TlsRaw:
    """A RawClient's socket after its plaintext part, wrapped in TLS."""

    def __init__(self, raw: RawClient, ctx: ssl.SSLContext):
        assert raw.buf == b"", f"unread plaintext before the handshake: {raw.buf!r}"
        self.sock = ctx.wrap_socket(raw.sock, server_hostname="localhost")
        raw.sock = self.sock  # closed with the RawClient after the test
        self.sock.settimeout(TIMEOUT)
        self.buf = b""

    def cmd(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def read_line(self, timeout: float = TIMEOUT) -> bytes:
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def read_smtp(self) -> tuple[int, list[bytes]]:
        lines = []
        while True:
            line = self.read_line().rstrip(b"\r\n")
            lines.append(line[4:])
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def nothing_pending(self, wait: float = 0.5) -> bool:
        if self.buf:
            return False
        try:
            self.sock.settimeout(wait)
            return not self.sock.recv(65536)  # EOF would be wrong too, but it is not "data"
        except (socket.timeout, TimeoutError):
            return True


def test_smtp_injection_after_starttls_is_discarded(tls_server, raw):
    c = raw(tls_server.smtp_port)
    c.read_reply()
    c.cmd("EHLO client.test")
    c.read_reply()
    c.send(b"STARTTLS\r\nRSET\r\n")  # one write: RSET arrives with STARTTLS, in the clear
    assert c.read_reply()[0] == 220
    t = TlsRaw(c, context(tls_server))
    assert t.nothing_pending()  # no "250 Ok" for RSET inside TLS
    t.cmd("EHLO again.test")
    code, lines = t.read_smtp()
    assert code == 250 and b"greets again.test" in lines[0], lines
    t.cmd("NOOP")
    assert t.read_smtp()[0] == 250
    assert t.nothing_pending()


def test_imap_injection_after_starttls_is_discarded(tls_server, raw):
    c = raw(tls_server.imap_port)
    c.read_line()
    c.send(b"a STARTTLS\r\nb NOOP\r\n")
    assert c.read_line().startswith(b"a OK")
    t = TlsRaw(c, context(tls_server))
    assert t.nothing_pending()
    t.cmd("c CAPABILITY")
    lines = [t.read_line()]
    while not lines[-1].startswith(b"c "):
        lines.append(t.read_line())
    assert lines[-1].startswith(b"c OK")
    assert not any(line.startswith(b"b ") for line in lines), lines
    caps = lines[0]
    assert caps.startswith(b"* CAPABILITY") and b"STARTTLS" not in caps


def test_pop3_injection_after_stls_is_discarded(tls_server, raw):
    c = raw(tls_server.pop3_port)
    c.read_line()
    c.cmd("USER alice")  # pending USER is forgotten at STLS (RFC 2595 §4)
    assert c.read_line().startswith(b"+OK")
    c.send(b"STLS\r\nCAPA\r\n")
    assert c.read_line().startswith(b"+OK")
    t = TlsRaw(c, context(tls_server))
    assert t.nothing_pending()  # no capability list for the injected CAPA
    t.cmd("PASS " + USERS["alice"])
    assert t.read_line().startswith(b"-ERR")
    t.cmd("USER alice")
    assert t.read_line().startswith(b"+OK")
    t.cmd("PASS " + USERS["alice"])
    assert t.read_line().startswith(b"+OK")


# --- protocol versions, garbage --------------------------------------------------------------

def old_tls_context(srv: millipost.Server, version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = context(srv)
    with warnings.catch_warnings():  # TLSv1_1 is deprecated, which is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = version
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that it is the server that refuses
    return ctx


def test_tls_11_refused_tls_12_accepted(tls_server):
    with socket.create_connection((tls_server.host, tls_server.imaps_port), TIMEOUT) as sock:
        with pytest.raises(ssl.SSLError) as e:
            old_tls_context(tls_server, ssl.TLSVersion.TLSv1_1).wrap_socket(
                sock, server_hostname="localhost")
    # The server's protocol_version alert (or the client finding no common version).
    assert re.search(r"PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS", str(e.value)), e.value
    ctx = old_tls_context(tls_server, ssl.TLSVersion.TLSv1_2)
    m = imaplib.IMAP4_SSL(tls_server.host, tls_server.imaps_port, ssl_context=ctx,
                          timeout=TIMEOUT)
    try:
        assert m.sock.version() == "TLSv1.2"
        assert m.login("alice", USERS["alice"])[0] == "OK"
    finally:
        m.logout()
    m = imaplib.IMAP4_SSL(tls_server.host, tls_server.imaps_port, ssl_context=context(tls_server),
                          timeout=TIMEOUT)
    try:
        assert m.sock.version() == "TLSv1.3"
    finally:
        m.logout()


def test_openssl_tls_11_refused(tls_server):
    openssl = tool("openssl")
    r = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{tls_server.imaps_port}",
                        "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile",
                        tls_server.tls_cert_path], input="", capture_output=True, text=True,
                       timeout=TIMEOUT * 2)
    assert r.returncode != 0
    assert "CONNECTION ESTABLISHED" not in r.stdout and "BEGIN CERTIFICATE" not in r.stdout


@pytest.mark.parametrize("port", ["imaps_port", "pop3s_port", "submissions_port", "imap_port"])
def test_garbage_instead_of_client_hello(tls_server, raw, port):
    c = raw(getattr(tls_server, port))
    if port == "imap_port":  # the same after STARTTLS
        c.read_line()
        c.cmd("a STARTTLS")
        assert c.read_line().startswith(b"a OK")
    c.send(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n" + b"\x16\x03\x01\x00\x05hello" * 10)
    c.read_until_eof()  # closed (after an alert, perhaps), not left hanging
    # The server is fine and keeps serving.
    m = imaplib.IMAP4_SSL(tls_server.host, tls_server.imaps_port, timeout=TIMEOUT,
                          ssl_context=context(tls_server))
    try:
        assert m.login("alice", USERS["alice"])[0] == "OK"
    finally:
        m.logout()


def test_client_that_never_handshakes_does_not_block_others(tls_server, raw):
    silent = [raw(tls_server.imaps_port) for _ in range(3)]
    m = imaplib.IMAP4_SSL(tls_server.host, tls_server.imaps_port, timeout=TIMEOUT,
                          ssl_context=context(tls_server))
    try:
        assert m.login("alice", USERS["alice"])[0] == "OK"
    finally:
        m.logout()
    assert len(silent) == 3


# --- real clients: curl and openssl s_client -------------------------------------------------

def curl(srv: millipost.Server, *args: str, input: bytes | None = None):
    return subprocess.run([tool("curl"), "--silent", "--show-error", "--ssl-reqd", "--cacert",
                           srv.tls_cert_path, "--max-time", str(int(TIMEOUT)), *args],
                          input=input, capture_output=True, timeout=TIMEOUT * 2)


def test_curl_smtps_pop3s_imaps(tls_server):
    # Submission: AUTH as bob (curl picks a mechanism), sending as bob.
    mail = b"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: from curl\r\n\r\nhi\r\n"
    r = curl(tls_server, f"smtps://127.0.0.1:{tls_server.submissions_port}",
             "-u", f"bob:{USERS['bob']}",
             "--mail-from", "bob@localhost", "--mail-rcpt", "alice@localhost",
             "--upload-file", "-", input=mail)
    assert r.returncode == 0, r.stderr
    # STARTTLS on the plain ports: --ssl-reqd makes curl upgrade or fail.
    r = curl(tls_server, f"smtp://127.0.0.1:{tls_server.submission_port}",
             "-u", f"bob:{USERS['bob']}",
             "--mail-from", "bob@localhost", "--mail-rcpt", "alice@localhost",
             "--upload-file", "-", input=mail.replace(b"from curl", b"from curl starttls"))
    assert r.returncode == 0, r.stderr
    r = curl(tls_server, f"pop3s://127.0.0.1:{tls_server.pop3s_port}/1", "-u",
             f"alice:{USERS['alice']}")
    assert r.returncode == 0, r.stderr
    assert b"Subject: from curl" in r.stdout
    r = curl(tls_server, f"imaps://127.0.0.1:{tls_server.imaps_port}/INBOX;UID=2", "-u",
             f"alice:{USERS['alice']}")
    assert r.returncode == 0, r.stderr
    assert b"Subject: from curl starttls" in r.stdout
    r = curl(tls_server, f"imap://127.0.0.1:{tls_server.imap_port}/INBOX;UID=1", "-u",
             f"alice:{USERS['alice']}")
    assert r.returncode == 0, r.stderr
    assert b"Subject: from curl" in r.stdout
    r = curl(tls_server, f"pop3://127.0.0.1:{tls_server.pop3_port}/", "-u",
             f"alice:{USERS['alice']}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"1", r.stdout.split()[1], b"2", r.stdout.split()[3]]


def test_curl_ssl_reqd_fails_without_tls(server):
    r = subprocess.run([tool("curl"), "--silent", "--ssl-reqd", "--max-time", str(int(TIMEOUT)),
                        f"imap://127.0.0.1:{server.imap_port}/", "-u", "alice:secret"],
                       capture_output=True, timeout=TIMEOUT * 2)
    assert r.returncode != 0  # the server offers no STARTTLS: curl refuses to go on


@pytest.mark.parametrize("proto,port", [("smtp", "smtp_port"), ("smtp", "submission_port"),
                                        ("imap", "imap_port"), ("pop3", "pop3_port")])
def test_openssl_s_client_starttls(tls_server, proto, port):
    r = subprocess.run([tool("openssl"), "s_client", "-brief", "-starttls", proto, "-connect",
                        f"127.0.0.1:{getattr(tls_server, port)}", "-CAfile",
                        tls_server.tls_cert_path, "-verify_return_error",
                        "-verify_hostname", "localhost"],
                       input="", capture_output=True, text=True, timeout=TIMEOUT * 2)
    out = r.stdout + r.stderr
    assert "CONNECTION ESTABLISHED" in out, out
    assert "Verification: OK" in out, out
    assert "Protocol version: TLSv1.3" in out, out


# --- certificates: the CLI, reloading --------------------------------------------------------

def served_cert(port: int) -> str:
    return ssl.get_server_certificate(("127.0.0.1", port), timeout=TIMEOUT)


def same_pem(a: str, b: str) -> bool:
    return ssl.PEM_cert_to_DER_cert(a) == ssl.PEM_cert_to_DER_cert(b)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def test_reload_tls_in_process(make_server, tmp_path):
    a = millipost._core.write_self_signed(str(tmp_path / "a"), "a.test")
    b = millipost._core.write_self_signed(str(tmp_path / "b"), "b.test")
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(a[0], live / "cert.pem")
    shutil.copy(a[1], live / "key.pem")
    s = make_server(tls=(str(live / "cert.pem"), str(live / "key.pem")))
    assert same_pem(served_cert(s.imaps_port), read(a[0]))
    shutil.copy(b[0], live / "cert.pem")
    shutil.copy(b[1], live / "key.pem")
    assert s.reload_tls()
    assert same_pem(served_cert(s.imaps_port), read(b[0]))
    (live / "cert.pem").write_text("garbage\n")
    assert not s.reload_tls()  # a bad file keeps the certificate in use
    assert same_pem(served_cert(s.pop3s_port), read(b[0]))


def test_bad_certificate_fails_start(tmp_path):
    (tmp_path / "cert.pem").write_text("garbage\n")
    (tmp_path / "key.pem").write_text("garbage\n")
    with pytest.raises(Exception, match="cert.pem"):
        millipost.Server(tls=(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")))
    with pytest.raises(ValueError):
        millipost.Server(tls="bogus")


def test_cli_self_signed_and_sighup_reload(tmp_path):
    server = tool("millipost-server")
    for name in ("one", "two"):
        r = subprocess.run([server, "cert", "--self-signed", "--out", str(tmp_path / name),
                            "--cn", f"{name}.test"], capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert os.stat(tmp_path / name / "key.pem").st_mode & 0o077 == 0
    one = (tmp_path / "one" / "cert.pem").read_text()
    two = (tmp_path / "two" / "cert.pem").read_text()
    assert not same_pem(one, two)
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(tmp_path / "one" / "cert.pem", live / "cert.pem")
    shutil.copy(tmp_path / "one" / "key.pem", live / "key.pem")
    cfg = tmp_path / "m.toml"
    cfg.write_text(f'[tls]\ncert = "{live / "cert.pem"}"\nkey = "{live / "key.pem"}"\n'
                   "submission = 0\nsubmissions = 0\nimaps = 0\npop3s = 0\n")
    proc = subprocess.Popen([server, "--config", str(cfg), "--data", str(tmp_path / "d"),
                             "--smtp", "0", "--pop3", "0", "--imap", "0", "--log-level", "info"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        ports = wait_for(lambda: next((re.search(r"imaps (\d+) pop3s (\d+)", line)
                                       for line in list(log) if "imaps" in line), None))
        assert ports, "".join(log)
        imaps = int(ports.group(1))
        assert same_pem(served_cert(imaps), one)
        shutil.copy(tmp_path / "two" / "cert.pem", live / "cert.pem")
        shutil.copy(tmp_path / "two" / "key.pem", live / "key.pem")
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: same_pem(served_cert(imaps), two))
        (live / "key.pem").write_text("garbage\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: any("reload failed" in line for line in list(log))), "".join(log)
        assert same_pem(served_cert(imaps), two)  # the old one stays
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=5)
        proc.stdout.close()
    assert proc.returncode == 0, "".join(log)


def test_cli_help_mentions_tls():
    r = subprocess.run([tool("millipost-server"), "--help"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    for flag in ("--tls-cert", "--tls-key", "--submission", "--submissions", "--imaps", "--pop3s",
                 "cert"):
        assert flag in r.stdout, flag
    r = subprocess.run([tool("millipost-server"), "cert", "--help"], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert "--self-signed" in r.stdout and "--out" in r.stdout and "--cn" in r.stdout


# --- the conformance suite and the contracts with STARTTLS advertised ------------------------

@pytest.mark.parametrize("protocol,capability", [("imap", "STARTTLS"), ("smtp", "STARTTLS"),
                                                 ("pop3", "STLS")])
def test_conformance_suite_passes_with_starttls_advertised(make_server, protocol, capability):
    from test_conform import NOT_OFFERED, ROOT, smtp_url, url
    server = make_server(tls="self-signed")
    report = millipost.conform(url(server, protocol), users=[("bob", "hunter2")],
                               deliver_via=smtp_url(server), root=ROOT)
    assert capability in report.capabilities
    failures = [f"{r.id}: {r.message}" for r in report.results
                if r.status != "PASS" and not (r.status == "SKIPPED" and r.id in NOT_OFFERED)]
    assert not failures, "\n\n".join(failures)
    assert report.ok


@pytest.mark.parametrize("scheme,port", [("imaps", "imaps_port"), ("smtps", "submissions_port"),
                                         ("pop3s", "pop3s_port")])
def test_conformance_suite_passes_over_implicit_tls(make_server, scheme, port):
    from test_conform import NOT_OFFERED, ROOT, smtp_url
    server = make_server(tls="self-signed")
    protocol = scheme[:-1]
    report = millipost.conform(f"{scheme}://alice:secret@{server.host}:{getattr(server, port)}",
                               users=[("bob", "hunter2")], deliver_via=smtp_url(server),
                               root=ROOT)
    assert {r.id.split("/")[0] for r in report.results} == {protocol}
    failures = [f"{r.id}: {r.message}" for r in report.results
                if r.status != "PASS" and not (r.status == "SKIPPED" and r.id in NOT_OFFERED)]
    if scheme == "smtps":
        # The implicit-TLS SMTP listener is submission (RFC 8314 §3.3), where RFC 6409 §4.3 has
        # MAIL refused with 530 before AUTH, and after AUTH a sender the user does not own
        # refused with 553 5.7.1 (the scenarios written for a port-25 MTA send as
        # conform@example.org): they fail exactly there; all others must pass.
        policy = [f for f in failures if "530" in f or "553 5.7.1" in f]
        assert policy, "no scenario met the submission policy"
        failures = [f for f in failures if f not in policy]
        assert not failures, "\n\n".join(failures)
        return
    assert not failures, "\n\n".join(failures)
    assert report.ok
