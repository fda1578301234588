"""Outbound delivery of the submission queue (docs/submission.md, "Outbound delivery"): the queue
runner delivers by SMTP to Postfix's smtp-sink and to a second millipost, STARTTLS when offered,
retries temporary failures with backoff, bounces permanent ones with an RFC 3464 DSN into the
sender's INBOX, survives kill -9, and never sends twice to a recipient already accepted."""
from __future__ import annotations

import email
import email.policy
import glob
import os
import shutil
import signal
import smtplib
import socket
import sqlite3
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import pytest

import millipost
from conftest import TIMEOUT, USERS, retr, wait_for

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
needs_sink = pytest.mark.skipif(not os.path.exists(SMTP_SINK),
                                reason="Postfix's smtp-sink not installed")

#: Delivery waits: retries are scheduled in whole seconds.
WAIT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """Postfix's smtp-sink on a loopback port, dumping each message to a file in ``dir``."""

    def __init__(self, port: int | None = None, *flags: str):
        self.port = port or free_port()
        # smtp-sink drops privileges to -u's user (as root: nobody), who must reach the
        # directory: not under pytest's private tmp_path.
        self.dir = tempfile.mkdtemp(prefix=f"millipost-sink-{self.port}-")
        os.chmod(self.dir, 0o777)
        user = "nobody" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", user, "-d", f"{self.dir}/%M.", *flags,
             f"127.0.0.1:{self.port}", "100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, self.proc.stderr.read().decode()
                assert time.monotonic() < deadline, "smtp-sink did not start"
                time.sleep(0.05)

    def messages(self) -> list[bytes]:
        """The dumped transactions, oldest first (smtp-sink's headers, then the message)."""
        files = sorted(glob.glob(f"{self.dir}/*"), key=os.path.getmtime)
        return [open(f, "rb").read() for f in files]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sinks():
    made: list[Sink] = []

    def make(port: int | None = None, *flags: str) -> Sink:
        s = Sink(port, *flags)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def sink_parts(dump: bytes) -> tuple[list[str], bytes]:
    """(the X-Rcpt-Args addresses, the message as received) of one smtp-sink dump."""
    head, _, rest = dump.partition(b"\n\t")  # Received: from ... \n\tby ... \n\tdate\n
    rcpts = [line.split(b": ", 1)[1].strip(b"<>").decode()
             for line in head.split(b"\n") if line.startswith(b"X-Rcpt-Args: ")]
    rest = rest.split(b"\n", 2)[2]  # after the Received: header's last line
    return rcpts, rest


def mail(subject: str, to: str = "carol@far.example", body: bytes = b"hello\r\n") -> bytes:
    return (f"From: bob@localhost\r\nTo: {to}\r\nSubject: {subject}\r\n"
            "Message-ID: <" + subject.replace(" ", "-") + "@localhost>\r\n\r\n").encode() + body


def submit(srv: millipost.Server, recipients: list[str], message: bytes,
           sender: str = "bob@localhost") -> None:
    """Submits as bob over implicit TLS (RFC 8314), as a mail client does."""
    ctx = ssl.create_default_context(cafile=srv.tls_cert_path)
    with smtplib.SMTP_SSL(srv.host, srv.submissions_port, timeout=TIMEOUT, context=ctx) as c:
        c.login("bob", USERS["bob"])
        assert c.sendmail(sender, recipients, message) == {}


@pytest.fixture
def sender(make_server):
    """Factory: the submitting server (TLS for submission), fast retries and timeouts."""

    def make(**options) -> millipost.Server:
        options.setdefault("retry_min", 1)
        options.setdefault("retry_max", 2)
        options.setdefault("outbound_timeout", 5)
        return make_server(tls="self-signed", **options)

    return make


def inbox(srv: millipost.Server, login: str, password: str | None = None) -> list[bytes]:
    import poplib
    p = poplib.POP3(srv.host, srv.pop3_port, timeout=TIMEOUT)
    try:
        p.user(login)
        p.pass_(password or USERS[login])
        return [retr(p, i) for i in range(1, len(p.list()[1]) + 1)]
    finally:
        p.quit()


def dsn_of(raw: bytes):
    """A DSN parsed with Python's email package: (message, human text, per-message fields,
    per-recipient field blocks, quoted headers)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    human, status, headers = msg.get_payload()
    assert human.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    assert headers.get_content_type() == "text/rfc822-headers"
    blocks = status.get_payload()  # the per-message block, then one per recipient
    return msg, human.get_payload(), blocks[0], blocks[1:], headers.get_payload()


# --- delivery ---------------------------------------------------------------------------------

@needs_sink
def test_delivers_to_smtp_sink_with_dot_stuffing(sender, sinks):
    sink = sinks()
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{sink.port}"})
    body = b"line one\r\n.leading dot\r\n..two dots\r\n.\r\nlast\r\n"
    submit(srv, ["carol@far.example", "dave@FAR.example"], mail("to sink", body=body))
    # Woken by the enqueue: the runner's next poll would be a minute away.
    assert wait_for(lambda: srv.outbound_queue() == [], 5), srv.outbound_queue()
    assert wait_for(lambda: len(sink.messages()) == 1)
    rcpts, received = sink_parts(sink.messages()[0])
    assert rcpts == ["carol@far.example", "dave@FAR.example"]  # one transaction for the domain
    assert b"X-Mail-Args: <bob@localhost>" in sink.messages()[0]
    # The message as queued (our Received: first), dots intact after smtp-sink un-stuffs them.
    assert received.startswith(b"Received: from ")
    assert b"\nSubject: to sink\n" in received
    assert received.endswith(b"\n\nline one\n.leading dot\n..two dots\n.\nlast\n\n")
    c = srv.counters()
    assert c["outbound_sent"] == 2 and c["outbound_bounced"] == 0


def test_bytes_arrive_intact_at_a_second_millipost_over_starttls(sender, make_server):
    far = make_server(users={"carol": "pw"}, tls="self-signed", domains=["far.example"])
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{far.smtp_port}"})
    body = "Grüße, 8-bit body\r\n.dot\r\n".encode()
    msg = mail("to far", body=body)
    submit(srv, ["carol@far.example"], msg)
    assert wait_for(lambda: srv.outbound_queue() == [], WAIT), srv.outbound_queue()
    got = wait_for(lambda: inbox(far, "carol", "pw"))
    assert len(got) == 1
    # far's Received: (ESMTPS: it came over TLS), then ours, then the submitted bytes unchanged.
    first_end = got[0].index(b"\r\nReceived: ")
    theirs, rest = got[0][:first_end], got[0][first_end + 2:]
    assert b"with ESMTPS" in theirs, theirs
    assert rest.startswith(b"Received: from ") and rest.endswith(msg)


@needs_sink
def test_helo_when_the_server_knows_no_ehlo(sender, sinks):
    sink = sinks(None, "-e")  # no ESMTP: EHLO is refused
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{sink.port}"})
    submit(srv, ["carol@far.example"], mail("old server"))
    assert wait_for(lambda: len(sink.messages()) == 1, WAIT)
    assert b"X-Client-Proto: SMTP\n" in sink.messages()[0]
    assert wait_for(lambda: srv.outbound_queue() == [])


def test_size_announced_by_the_server_is_respected(sender, make_server):
    far = make_server(users={"carol": "pw"}, domains=["far.example"], max_message_size=500)
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{far.smtp_port}"})
    submit(srv, ["carol@far.example"], mail("too big", body=b"x" * 1000 + b"\r\n"))
    got = wait_for(lambda: inbox(srv, "bob"), WAIT)
    assert len(got) == 1
    _, human, _, per_rcpt, _ = dsn_of(got[0])
    assert per_rcpt[0]["Status"] == "5.3.4"
    assert "exceeds size limit 500" in human
    assert inbox(far, "carol", "pw") == []


def test_opportunistic_tls_off_sends_in_the_clear(sender, make_server):
    far = make_server(users={"carol": "pw"}, tls="self-signed", domains=["far.example"])
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{far.smtp_port}"},
                 outbound_tls="none")
    submit(srv, ["carol@far.example"], mail("clear"))
    got = wait_for(lambda: inbox(far, "carol", "pw"), WAIT)
    assert len(got) == 1
    assert b"with ESMTP id" in got[0].split(b"\r\n\r\n")[0]  # no S: not over TLS


def test_encrypt_policy_defers_when_starttls_is_not_offered(sender, make_server):
    far = make_server(users={"carol": "pw"}, domains=["far.example"])  # no TLS
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{far.smtp_port}"},
                 outbound_tls_policy={"far.example": "encrypt"})
    submit(srv, ["carol@far.example"], mail("must be encrypted"))
    q = wait_for(lambda: [m for m in srv.outbound_queue() if m["attempts"] >= 1], WAIT)
    assert q and "TLS is required, but was not offered" in q[0]["last_error"], q
    assert inbox(far, "carol", "pw") == []


def test_verify_policy_checks_the_certificate(sender, make_server):
    far = make_server(users={"carol": "pw"}, tls="self-signed", domains=["far.example"])
    # The certificate names localhost and 127.0.0.1: verified against it as the CA, it passes.
    ok = sender(outbound_routes={"far.example": f"127.0.0.1:{far.smtp_port}"},
                outbound_tls="verify", outbound_tls_ca_file=far.tls_cert_path)
    submit(ok, ["carol@far.example"], mail("verified"))
    assert wait_for(lambda: len(inbox(far, "carol", "pw")) == 1, WAIT)
    # Against the system's CAs it fails, and the message waits (deferred, not sent).
    bad = sender(outbound_routes={"far.example": f"127.0.0.1:{far.smtp_port}"},
                 outbound_tls_policy={"far.example": "verify"})
    submit(bad, ["carol@far.example"], mail("unverified"))
    q = wait_for(lambda: [m for m in bad.outbound_queue() if m["attempts"] >= 1], WAIT)
    assert q and "TLS handshake failed" in q[0]["last_error"], q
    assert len(inbox(far, "carol", "pw")) == 1


def test_relayhost_with_auth_plain_over_starttls(sender, make_server):
    smart = make_server(users={"bob": USERS["bob"], "carol": "pw"}, tls="self-signed",
                        domains=["far.example"])
    srv = sender(relayhost=f"127.0.0.1:{smart.submission_port}", relay_user="bob",
                 relay_password=USERS["bob"])
    submit(srv, ["carol@far.example"], mail("via smarthost"))
    got = wait_for(lambda: inbox(smart, "carol", "pw"), WAIT)
    assert len(got) == 1 and b"Subject: via smarthost" in got[0]
    assert b"with ESMTPS" in got[0].split(b"\r\nReceived:")[0]  # over TLS
    # A wrong password is a temporary failure: the message waits.
    bad = sender(relayhost=f"127.0.0.1:{smart.submission_port}", relay_user="bob",
                 relay_password="wrong")
    submit(bad, ["carol@far.example"], mail("bad auth"))
    q = wait_for(lambda: [m for m in bad.outbound_queue() if m["attempts"] >= 1], WAIT)
    assert q and "SASL authentication failed" in q[0]["last_error"], q


# --- temporary failures and retries --------------------------------------------------------

@needs_sink
def test_temporary_failure_retried_with_backoff_then_delivered_once(sender, sinks):
    port = free_port()  # nothing listens yet
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{port}"})
    submit(srv, ["carol@far.example"], mail("retried"))
    q = wait_for(lambda: [m for m in srv.outbound_queue() if m["attempts"] >= 2], WAIT)
    assert q, srv.outbound_queue()
    assert "Connection refused" in q[0]["last_error"], q[0]["last_error"]
    assert q[0]["next_attempt_at"] > q[0]["queued_at"]
    assert q[0]["recipients"] == ["carol@far.example"]
    sink = sinks(port)
    assert wait_for(lambda: srv.outbound_queue() == [], WAIT), srv.outbound_queue()
    time.sleep(2.5)  # past another retry interval: nothing is sent again
    assert len(sink.messages()) == 1
    assert srv.counters()["outbound_deferred"] >= 2


@needs_sink
def test_soft_reject_is_deferred(sender, sinks):
    sink = sinks(None, "-r", "RCPT")
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{sink.port}"})
    submit(srv, ["carol@far.example"], mail("soft"))
    q = wait_for(lambda: [m for m in srv.outbound_queue() if m["attempts"] >= 1], WAIT)
    assert q and "450 4.3.0" in q[0]["last_error"] and "RCPT TO" in q[0]["last_error"], q
    assert sink.messages() == []


def test_bad_server_replies_are_temporary_failures(sender):
    """A server that answers EHLO with an endless reply line: a bounded read, a deferral, no
    crash; the server goes on working."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    lst.settimeout(WAIT)
    port = lst.getsockname()[1]
    served = []

    def serve():
        while len(served) < 2:
            try:
                c, _ = lst.accept()
            except OSError:
                return
            served.append(c)
            c.sendall(b"220 evil ESMTP\r\n")
            c.settimeout(5)
            try:
                c.recv(1000)
                c.sendall(b"250-" + b"x" * 100000 + b"\r\n")
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{port}"})
    submit(srv, ["carol@far.example"], mail("evil"))
    q = wait_for(lambda: [m for m in srv.outbound_queue() if m["attempts"] >= 1], WAIT)
    assert q and "bad reply from server: reply line too long" in q[0]["last_error"], q
    lst.close()
    for c in served:
        c.close()
    assert srv.outbound_queue()[0]["recipients"] == ["carol@far.example"]
    with smtplib.SMTP(srv.host, srv.smtp_port, timeout=TIMEOUT) as c:  # still serving
        assert c.noop()[0] == 250


@needs_sink
def test_concurrency_limit_and_greeting_timeout(sender, sinks):
    """outbound_max_concurrent=1: while one entry waits on a host that never greets, the next
    entry waits too; the greeting times out (a deferral), then the next one goes."""
    silent = socket.socket()  # accepts, never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    sink = sinks()
    srv = sender(outbound_max_concurrent=1, outbound_timeout=3, retry_min=30, retry_max=30,
                 outbound_routes={"silent.example": f"127.0.0.1:{silent.getsockname()[1]}",
                                  "far.example": f"127.0.0.1:{sink.port}"})
    try:
        submit(srv, ["x@silent.example"], mail("to the silent host", to="x@silent.example"))
        silent.settimeout(WAIT)
        conn, _ = silent.accept()  # the first entry's connection is open
        submit(srv, ["carol@far.example"], mail("waits its turn"))
        time.sleep(1.5)
        assert sink.messages() == []  # the only delivery slot is taken
        assert wait_for(lambda: len(sink.messages()) == 1, WAIT)
        # smtp-sink writes its file before its 250 reaches us: the entry leaves the queue a
        # moment after the file appears.
        assert wait_for(lambda: len(srv.outbound_queue()) == 1, WAIT), srv.outbound_queue()
        q = srv.outbound_queue()
        assert [m["recipients"] for m in q] == [["x@silent.example"]]
        assert "while receiving the initial server greeting" in q[0]["last_error"], q
        conn.close()
    finally:
        silent.close()


# --- permanent failures and DSNs -----------------------------------------------------------

def test_5xx_bounces_that_recipient_with_a_dsn(sender, make_server):
    far = make_server(users={"carol": "pw"}, domains=["far.example"])
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{far.smtp_port}"})
    msg = mail("partly unknown")
    submit(srv, ["carol@far.example", "nobody@far.example"], msg)
    assert wait_for(lambda: srv.outbound_queue() == [], WAIT), srv.outbound_queue()
    assert len(wait_for(lambda: inbox(far, "carol", "pw"))) == 1  # the known one got it
    got = wait_for(lambda: inbox(srv, "bob"), WAIT)
    assert len(got) == 1
    assert got[0].startswith(b"Return-Path: <>\r\n")  # null reverse-path: never bounced again
    dsn, human, per_msg, per_rcpt, headers = dsn_of(got[0])
    assert dsn["From"].endswith("<MAILER-DAEMON@localhost>")
    assert dsn["To"] == "<bob@localhost>"
    assert dsn["Auto-Submitted"] == "auto-replied"
    assert per_msg["Reporting-MTA"] == "dns; localhost"
    assert len(per_rcpt) == 1  # only the failed recipient
    r = per_rcpt[0]
    assert r["Final-Recipient"] == "rfc822; nobody@far.example"
    assert r["Action"] == "failed"
    assert r["Status"].startswith("5.")
    assert r["Diagnostic-Code"].startswith("smtp; 550")
    assert "<nobody@far.example>" in human and "RCPT TO" in human
    assert "Subject: partly unknown" in headers and "Message-ID: <partly-unknown@localhost>" in headers
    assert "hello" not in headers  # headers only, not the body
    c = srv.counters()
    assert c["outbound_sent"] == 1 and c["outbound_bounced"] == 1 and c["outbound_dsn"] == 1


def test_dsn_for_an_alias_sender_reaches_its_user(sender, make_server):
    far = make_server(users={}, domains=["far.example"])
    srv = sender(sender_aliases={"bob": ["Sales@Example.COM"]},
                 outbound_routes={"far.example": f"127.0.0.1:{far.smtp_port}"})
    submit(srv, ["nobody@far.example"], mail("from alias"), sender="sales@example.com")
    got = wait_for(lambda: inbox(srv, "bob"), WAIT)
    assert len(got) == 1
    dsn, _, _, per_rcpt, _ = dsn_of(got[0])
    assert dsn["To"] == "<sales@example.com>"
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; nobody@far.example"


@needs_sink
def test_hard_reject_of_mail_from_bounces_all(sender, sinks):
    sink = sinks(None, "-f", "MAIL")
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{sink.port}"})
    submit(srv, ["carol@far.example", "dave@far.example"], mail("hard"))
    got = wait_for(lambda: inbox(srv, "bob"), WAIT)
    assert len(got) == 1
    _, _, _, per_rcpt, _ = dsn_of(got[0])
    assert [r["Final-Recipient"] for r in per_rcpt] == [
        "rfc822; carol@far.example", "rfc822; dave@far.example"]
    assert all(r["Diagnostic-Code"].startswith("smtp; 500 5.3.0") for r in per_rcpt)
    assert srv.outbound_queue() == []


def test_queue_lifetime_ends_in_a_dsn(sender):
    port = free_port()  # never listens
    srv = sender(outbound_routes={"far.example": f"127.0.0.1:{port}"}, max_queue_lifetime=3)
    submit(srv, ["carol@far.example"], mail("expires"))
    got = wait_for(lambda: inbox(srv, "bob"), WAIT)
    assert len(got) == 1, srv.outbound_queue()
    _, human, _, per_rcpt, _ = dsn_of(got[0])
    assert per_rcpt[0]["Action"] == "failed"
    assert per_rcpt[0]["Status"].startswith("4.")  # the last temporary error's status
    assert "delivery time expired" in human and "Connection refused" in human
    assert srv.outbound_queue() == []


def test_a_bounce_is_never_bounced(make_server, sender, tmp_path):
    """A queue entry with the null sender that fails for good is dropped, no DSN (RFC 3464)."""
    data = tmp_path / "null"
    with millipost.Server(data_dir=str(data), outbound_delivery=False, tls="self-signed") as s:
        s.add_user("bob", USERS["bob"])
        submit(s, ["carol@far.example"], mail("null sender"))
    db = sqlite3.connect(data / "millipost.db")
    db.execute("UPDATE outbound SET sender = ''")
    db.commit()
    db.close()
    far = make_server(users={}, domains=["far.example"])  # carol unknown there: 550
    srv = sender(users={}, data_dir=str(data),
                 outbound_routes={"far.example": f"127.0.0.1:{far.smtp_port}"})
    assert wait_for(lambda: srv.outbound_queue() == [], WAIT), srv.outbound_queue()
    c = srv.counters()
    assert c["outbound_bounced"] == 1 and c["outbound_dsn"] == 0
    assert inbox(srv, "bob") == []


# --- exactly once ----------------------------------------------------------------------------

@needs_sink
def test_partial_success_is_not_resent(sender, sinks):
    up = sinks()
    down_port = free_port()
    srv = sender(outbound_routes={"up.example": f"127.0.0.1:{up.port}",
                                  "down.example": f"127.0.0.1:{down_port}"})
    submit(srv, ["a@up.example", "b@down.example"], mail("partial", to="a@up.example"))
    q = wait_for(lambda: [m for m in srv.outbound_queue() if m["attempts"] >= 2], WAIT)
    assert q and q[0]["recipients"] == ["b@down.example"], srv.outbound_queue()
    assert len(up.messages()) == 1  # a retry of b does not send to a again
    down = sinks(down_port)
    assert wait_for(lambda: srv.outbound_queue() == [], WAIT), srv.outbound_queue()
    assert [sink_parts(m)[0] for m in up.messages()] == [["a@up.example"]]
    assert [sink_parts(m)[0] for m in down.messages()] == [["b@down.example"]]


class Binary:
    """millipost-server as a child process with a config file."""

    def __init__(self, tmp_path, route_port: int):
        self.data = tmp_path / "data"
        self.config = tmp_path / "millipost.toml"
        self.route_port = route_port
        self.proc = None

    def start(self) -> None:
        self.smtp, self.pop3, self.imap = free_port(), free_port(), free_port()
        self.config.write_text(
            "[submission]\ninbound_auth_relay = true\n"
            "[auth]\nfail_delay_ms = 0\n"
            "[outbound]\nretry_min = 1\nretry_max = 1\nmx_lookup = false\n"
            "connect_timeout = 5\ncommand_timeout = 5\n"
            f"[outbound.routes]\n\"far.example\" = \"127.0.0.1:{self.route_port}\"\n")
        self.proc = subprocess.Popen(
            ["millipost-server", "-c", str(self.config), "--data", str(self.data), "--smtp",
             str(self.smtp), "--pop3", str(self.pop3), "--imap", str(self.imap),
             "--log-level", "warn"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.smtp), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, self.proc.stdout.read().decode()
                assert time.monotonic() < deadline, "millipost-server did not start"
                time.sleep(0.05)

    def queue(self) -> list[tuple]:
        db = sqlite3.connect(f"file:{self.data}/millipost.db?mode=ro", uri=True, timeout=10)
        try:
            return db.execute("SELECT recipients, attempts FROM outbound").fetchall()
        finally:
            db.close()


@needs_sink
def test_kill_9_with_queued_mail_then_delivered_exactly_once(tmp_path, sinks):
    port = free_port()
    b = Binary(tmp_path, port)
    subprocess.run(["millipost-server", "--data", str(b.data), "user", "add", "bob",
                    "--password", USERS["bob"]], check=True, capture_output=True, timeout=30)
    b.start()
    try:
        with smtplib.SMTP("127.0.0.1", b.smtp, timeout=TIMEOUT) as c:
            c.login("bob", USERS["bob"])
            assert c.sendmail("bob@localhost", ["carol@far.example"], mail("survives")) == {}
        assert wait_for(lambda: [r for r in b.queue() if r[1] >= 1], WAIT), b.queue()
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(timeout=10)
        assert b.queue() == [("carol@far.example", b.queue()[0][1])]  # still there
        sink = sinks(port)
        b.start()
        assert wait_for(lambda: b.queue() == [], WAIT), b.queue()
        time.sleep(2)
        assert len(sink.messages()) == 1
        assert b"Subject: survives" in sink.messages()[0]
    finally:
        if b.proc and b.proc.poll() is None:
            b.proc.terminate()
            b.proc.wait(timeout=30)


def test_no_route_without_mx_lookup_stays_deferred(sender):
    srv = sender()  # in-process default: no MX lookups
    submit(srv, ["carol@nowhere.example"], mail("no route"))
    q = wait_for(lambda: [m for m in srv.outbound_queue() if m["attempts"] >= 1], WAIT)
    assert q and "no route to nowhere.example" in q[0]["last_error"], srv.outbound_queue()
    assert inbox(srv, "bob") == []


# --- MX lookups (RFC 5321 §5.1) through [outbound] nameserver -----------------------------------

def dns_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"


class Dns:
    """A tiny DNS server on a loopback UDP port: answers MX and A queries from ``zone``
    (``{("far.example", "MX"): [(10, "mx1.far.example")], ("mx1.far.example", "A"):
    ["127.0.0.1"]}``). A name in no key gets NXDOMAIN, a known name without records of the type
    asked an empty answer (NODATA); ``silent`` answers nothing (a dead nameserver)."""

    TYPES = {1: "A", 15: "MX", 28: "AAAA"}

    def __init__(self, zone: dict, silent: bool = False):
        self.zone = {(n.lower(), t): v for (n, t), v in zone.items()}
        self.silent = silent
        self.queries: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while self.running:
            try:
                query, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            reply = self.answer(query)
            if reply is not None:
                self.sock.sendto(reply, peer)

    def answer(self, q: bytes) -> bytes | None:
        qid = struct.unpack("!H", q[:2])[0]
        labels, i = [], 12
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode())
            i += 1 + q[i]
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]  # name, type, class
        name, kind = ".".join(labels).lower(), self.TYPES.get(qtype, str(qtype))
        self.queries.append((name, kind))
        if self.silent:
            return None
        records = self.zone.get((name, kind), [])
        rcode = 0 if any(n == name for n, _ in self.zone) else 3  # NXDOMAIN
        answers = b""
        for rr in records:
            rdata = (struct.pack("!H", rr[0]) + dns_name(rr[1]) if kind == "MX"
                     else socket.inet_aton(rr))
            # The owner name as a pointer to the question's (offset 12).
            answers += struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(rdata)) + rdata
        # QR, AA, RD, RA; one question, the answers, nothing else.
        head = struct.pack("!HHHHHH", qid, 0x8580 | rcode, 1, len(records), 0, 0)
        return head + question + answers

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def dns():
    made: list[Dns] = []

    def make(zone: dict, silent: bool = False) -> Dns:
        d = Dns(zone, silent)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


def mx_sender(sender, dns_server: Dns, port: int) -> millipost.Server:
    return sender(outbound_mx_lookup=True, outbound_nameserver=dns_server.address,
                  outbound_mx_port=port)


@needs_sink
def test_mx_hosts_tried_by_preference(sender, sinks, dns):
    sink = sinks()  # listens on 127.0.0.1 only: 127.0.0.2 refuses the connection
    d = dns({
        # Least preferred first in the answer: the order comes from the preferences.
        ("far.example", "MX"): [(20, "mx2.far.example"), (10, "mx1.far.example")],
        ("mx1.far.example", "A"): ["127.0.0.2"],
        ("mx2.far.example", "A"): ["127.0.0.1"],
    })
    srv = mx_sender(sender, d, sink.port)
    submit(srv, ["carol@far.example"], mail("by preference"))
    assert wait_for(lambda: srv.outbound_queue() == [], WAIT), srv.outbound_queue()
    assert wait_for(lambda: len(sink.messages()) == 1)
    rcpts, received = sink_parts(sink.messages()[0])
    assert rcpts == ["carol@far.example"] and b"Subject: by preference" in received
    c = srv.counters()
    # mx1 first (refused), then mx2: two connections, one delivery, no deferral.
    assert c["outbound_connections"] == 2 and c["outbound_sent"] == 1
    assert c["outbound_deferred"] == 0
    assert d.queries[0] == ("far.example", "MX")
    assert d.queries.index(("mx1.far.example", "A")) < d.queries.index(("mx2.far.example", "A"))


@needs_sink
def test_no_mx_falls_back_to_the_address_record(sender, sinks, dns):
    sink = sinks()
    d = dns({("far.example", "A"): ["127.0.0.1"]})  # the domain exists, no MX
    srv = mx_sender(sender, d, sink.port)
    submit(srv, ["carol@far.example"], mail("implicit mx"))
    assert wait_for(lambda: srv.outbound_queue() == [], WAIT), srv.outbound_queue()
    assert wait_for(lambda: len(sink.messages()) == 1)
    assert sink_parts(sink.messages()[0])[0] == ["carol@far.example"]
    assert d.queries[:2] == [("far.example", "MX"), ("far.example", "A")]


def test_nxdomain_bounces_with_5_4_4(sender, dns):
    d = dns({("far.example", "MX"): [(10, "mx.far.example")]})
    srv = mx_sender(sender, d, free_port())
    submit(srv, ["carol@nowhere.example"], mail("nxdomain"))
    got = wait_for(lambda: inbox(srv, "bob"), WAIT)
    assert len(got) == 1, srv.outbound_queue()
    _, human, _, per_rcpt, _ = dsn_of(got[0])
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; carol@nowhere.example"
    assert per_rcpt[0]["Action"] == "failed" and per_rcpt[0]["Status"] == "5.4.4"
    assert "nowhere.example" in human and "Host not found" in human
    assert ("nowhere.example", "MX") in d.queries
    assert srv.outbound_queue() == []
    assert srv.counters()["outbound_connections"] == 0


def test_dead_nameserver_defers(sender, dns):
    d = dns({}, silent=True)
    srv = mx_sender(sender, d, free_port())
    submit(srv, ["carol@far.example"], mail("dead dns"))
    # The resolver gives up after its tries (dns.cpp: 2 x 3 s), then the entry is deferred.
    q = wait_for(lambda: [m for m in srv.outbound_queue() if m["attempts"] >= 1], WAIT)
    assert q, srv.outbound_queue()
    assert "try again" in q[0]["last_error"], q
    assert ("far.example", "MX") in d.queries
    assert inbox(srv, "bob") == []
    c = srv.counters()
    assert c["outbound_bounced"] == 0 and c["outbound_connections"] == 0


def test_bad_nameserver_setting_is_refused(make_server):
    for bad in ("localhost", "127.0.0.1:0", "127.0.0.1:x", "::1"):
        with pytest.raises(ValueError):
            make_server(outbound_nameserver=bad)
    with pytest.raises(ValueError):
        make_server(outbound_mx_port=0)
