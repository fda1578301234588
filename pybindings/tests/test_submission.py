"""Message submission (RFC 6409 on the STARTTLS port, RFC 8314 implicit TLS): AUTH required
(RFC 4954 §6: 530), the envelope sender and From: must belong to the authenticated user or one
of its aliases (553 / 550 5.7.1), other domains only for authenticated users, into the durable
outbound queue; and no way to make any listener an open relay. See docs/submission.md."""
from __future__ import annotations

import base64
import datetime
import email
import email.policy
import imaplib
import re
import shutil
import time
import smtplib
import ssl
import subprocess

import pytest

import millipost
from conftest import TIMEOUT, USERS, RawClient, retr, running


def context(srv: millipost.Server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=srv.tls_cert_path)


def mail(sender: str, to: str = "alice@localhost", subject: str = "submitted") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nhello\r\n").encode()


def plain(login: str, password: str) -> str:
    return base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode()


@pytest.fixture
def sub(make_server):
    return make_server(tls="self-signed", sender_aliases={"bob": ["Sales@Example.COM"]})


def connect(srv: millipost.Server, port: str, raw) -> RawClient:
    """A raw client on one of the SMTP listeners, greeted, after EHLO (TLS on submissions)."""
    c = raw(getattr(srv, port))
    if port == "submissions_port":
        c.sock = context(srv).wrap_socket(c.sock, server_hostname="localhost")
    assert c.read_reply()[0] == 220
    c.cmd("EHLO client.test")
    assert c.read_reply()[0] == 250
    return c


def inbox(srv, pop3, login: str) -> list[bytes]:
    p = pop3(login, USERS[login], srv=srv)
    n = len(p.list()[1])
    return [retr(p, i) for i in range(1, n + 1)]


# --- the happy paths with real clients -------------------------------------------------------

def test_smtplib_starttls_login_local_and_remote(sub, pop3):
    with smtplib.SMTP(sub.host, sub.submission_port, timeout=TIMEOUT) as s:
        s.starttls(context=context(sub))
        s.login("bob", USERS["bob"])
        refused = s.sendmail("bob@localhost", ["alice@localhost", "carol@remote.example"],
                             mail("bob@localhost", subject="local and remote"))
        assert refused == {}
    got = inbox(sub, pop3, "alice")
    assert len(got) == 1 and b"Subject: local and remote" in got[0]
    q = sub.outbound_queue()
    assert len(q) == 1
    assert q[0]["sender"] == "bob@localhost"
    assert q[0]["recipients"] == ["carol@remote.example"]  # the local one was delivered
    assert b"Subject: local and remote" in q[0]["bytes"]
    assert q[0]["bytes"].startswith(b"Received: ")


def test_smtp_ssl_submissions_remote_only(sub):
    with smtplib.SMTP_SSL(sub.host, sub.submissions_port, timeout=TIMEOUT,
                          context=context(sub)) as s:
        s.login("bob", USERS["bob"])
        assert s.sendmail("bob@localhost", ["x@a.example", "y@b.example"],
                          mail("bob@localhost", "x@a.example")) == {}
    q = sub.outbound_queue()
    assert [m["recipients"] for m in q] == [["x@a.example", "y@b.example"]]


def test_swaks_tls_auth_plain(sub, pop3):
    swaks = shutil.which("swaks")
    if not swaks:
        pytest.skip("swaks not installed (scripts/install-deps.sh)")
    r = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(sub.submission_port),
                        "--tls", "--auth", "PLAIN", "--auth-user", "bob", "--auth-password",
                        USERS["bob"], "--from", "bob@localhost", "--to",
                        "alice@localhost,dave@remote.example", "--header",
                        "Subject: from swaks"],
                       capture_output=True, text=True, timeout=TIMEOUT * 3)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout
    got = inbox(sub, pop3, "alice")
    assert len(got) == 1 and b"Subject: from swaks" in got[0]
    assert [m["recipients"] for m in sub.outbound_queue()] == [["dave@remote.example"]]


def test_queue_survives_restart(tmp_path):
    with running(data_dir=str(tmp_path), tls="self-signed") as s:
        s.add_user("bob", USERS["bob"])
        with smtplib.SMTP_SSL(s.host, s.submissions_port, timeout=TIMEOUT,
                              context=context(s)) as c:
            c.login("bob", USERS["bob"])
            c.sendmail("bob@localhost", ["far@remote.example"], mail("bob@localhost"))
    with running(data_dir=str(tmp_path), tls="self-signed") as s:
        q = s.outbound_queue()
        assert [(m["sender"], m["recipients"]) for m in q] == [
            ("bob@localhost", ["far@remote.example"])]


# --- the policy ------------------------------------------------------------------------------

@pytest.mark.parametrize("port", ["submission_port", "submissions_port"])
def test_mail_before_auth_is_530(sub, raw, port):
    c = connect(sub, port, raw)
    c.cmd("MAIL FROM:<bob@localhost>")
    code, lines = c.read_reply()
    assert code == 530 and lines[0].startswith(b"5.7.0")
    c.cmd("RCPT TO:<alice@localhost>")  # nothing but what leads to AUTH
    assert c.read_reply()[0] == 530
    c.cmd("AUTH PLAIN " + plain("bob", "wrong"))
    assert c.read_reply()[0] == 535
    c.cmd("MAIL FROM:<bob@localhost>")  # a failed AUTH changes nothing
    assert c.read_reply()[0] == 530
    c.cmd("AUTH PLAIN " + plain("bob", USERS["bob"]))
    assert c.read_reply()[0] == 235
    c.cmd("MAIL FROM:<bob@localhost>")
    assert c.read_reply()[0] == 250


def test_smtplib_unauthenticated_submission_refused(sub):
    with smtplib.SMTP_SSL(sub.host, sub.submissions_port, timeout=TIMEOUT,
                          context=context(sub)) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("bob@localhost", ["alice@localhost"], mail("bob@localhost"))
        assert e.value.smtp_code == 530


@pytest.mark.parametrize("sender,ok", [
    ("bob@localhost", True), ("BOB@LocalHost", True),
    ("sales@example.com", True),  # bob's alias (configured as Sales@Example.COM)
    ("alice@localhost", False), ("", False), ("\"bob\"@localhost", False),
    ("bob%remote.example@localhost", False), ("bob@remote.example", False),
    ("sales@localhost", False), ("postmaster@localhost", False)])
def test_envelope_sender_must_be_owned(sub, raw, sender, ok):
    c = connect(sub, "submissions_port", raw)
    c.cmd("AUTH PLAIN " + plain("bob", USERS["bob"]))
    assert c.read_reply()[0] == 235
    c.cmd(f"MAIL FROM:<{sender}>")
    code, lines = c.read_reply()
    if ok:
        assert code == 250, lines
    else:
        assert code == 553 and lines[0].startswith(b"5.7.1"), (code, lines)


def test_alias_is_per_user(sub, raw):
    c = connect(sub, "submissions_port", raw)
    c.cmd("AUTH PLAIN " + plain("alice", USERS["alice"]))
    assert c.read_reply()[0] == 235
    c.cmd("MAIL FROM:<sales@example.com>")
    assert c.read_reply()[0] == 553


def send_data(c: RawClient, sender: str, body: bytes) -> tuple[int, list[bytes]]:
    c.cmd(f"MAIL FROM:<{sender}>")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<alice@localhost>")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<far@remote.example>")
    assert c.read_reply()[0] == 250
    c.cmd("DATA")
    assert c.read_reply()[0] == 354
    c.send(body + b".\r\n")
    return c.read_reply()


@pytest.mark.parametrize("header,ok", [
    (b"From: bob@localhost", True),
    (b"From: Bob <bob@localhost>", True),
    (b"From: \"Sales\" <sales@example.com>", True),
    (b"From: bob@localhost, Sales <sales@example.com>", True),
    (b"From: alice@localhost", False),
    (b"From: bob@localhost, alice@localhost", False),
    (b"From: \"bob@localhost\" <alice@localhost>", False),
    (b"From: undisclosed:;", False),
    (b"From: bob", False),
    (None, False)])
def test_from_header_must_be_owned(sub, raw, pop3, header, ok):
    c = connect(sub, "submissions_port", raw)
    c.cmd("AUTH PLAIN " + plain("bob", USERS["bob"]))
    assert c.read_reply()[0] == 235
    body = (header + b"\r\n" if header else b"") + b"To: alice@localhost\r\nSubject: f\r\n\r\nx\r\n"
    code, lines = send_data(c, "bob@localhost", body)
    if ok:
        assert code == 250, lines
        assert len(sub.outbound_queue()) == 1 and len(inbox(sub, pop3, "alice")) == 1
    else:
        assert code == 550 and lines[0].startswith(b"5.7.1"), (code, lines)
        assert sub.outbound_queue() == [] and inbox(sub, pop3, "alice") == []
        c.cmd("MAIL FROM:<bob@localhost>")  # the transaction was reset, the session goes on
        assert c.read_reply()[0] == 250


# --- message fix-ups (RFC 6409 §8.2, §8.3) ---------------------------------------------------

def stored(srv: millipost.Server, login: str = "alice", raw: bool = False) -> list:
    """Every message of the user's INBOX as IMAP FETCH gives it, parsed by Python's email
    package (with ``raw``: (bytes, parsed) pairs)."""
    with imaplib.IMAP4(srv.host, srv.imap_port, timeout=TIMEOUT) as imap:
        imap.login(login, USERS[login])
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK"
        out = []
        for i in range(1, int(data[0]) + 1):
            typ, fetched = imap.fetch(str(i), "(BODY.PEEK[])")
            assert typ == "OK"
            b = fetched[0][1]
            m = email.message_from_bytes(b, policy=email.policy.default)
            out.append((b, m) if raw else m)
        return out


def bare(to: str = "alice@localhost", extra: bytes = b"") -> bytes:
    """A message as a careless client submits it: no Date:, no Message-ID:."""
    return (b"From: bob@localhost\r\nTo: " + to.encode() + b"\r\nSubject: bare\r\n" + extra +
            b"\r\nhello\r\n")


MSGID = re.compile(r"^<[!-;=?-~]+@localhost>$")  # dot-atom-text@hostname, no spaces or <>


@pytest.mark.parametrize("port", ["submission_port", "submissions_port"])
def test_submission_adds_date_and_message_id(sub, port):
    before = time.time()
    for _ in range(2):
        if port == "submissions_port":
            s = smtplib.SMTP_SSL(sub.host, sub.submissions_port, timeout=TIMEOUT,
                                 context=context(sub))
        else:
            s = smtplib.SMTP(sub.host, sub.submission_port, timeout=TIMEOUT)
            s.starttls(context=context(sub))
        with s:
            s.login("bob", USERS["bob"])
            assert s.sendmail("bob@localhost", ["alice@localhost", "far@remote.example"],
                              bare()) == {}
    msgs = stored(sub, raw=True)
    assert len(msgs) == 2
    ids = []
    for b, m in msgs:
        # Our trace header first, then the two we added, then the client's own.
        assert list(m.keys())[:3] == ["Received", "Date", "Message-ID"], m.keys()
        assert len(m.get_all("Date")) == 1 and len(m.get_all("Message-ID")) == 1
        assert "with ESMTPSA id" in str(m["Received"])  # TLS + AUTH (RFC 3848)
        date = m["Date"].datetime  # the email package's RFC 5322 date parser
        assert date.tzinfo is not None  # a numeric zone, the server's local one
        assert before - 5 <= date.timestamp() <= time.time() + 5
        # As written (the parsed header is re-formatted by the email package).
        assert re.search(rb"\r\nDate: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|"
                         rb"Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n", b), b
        msgid = str(m["Message-ID"])
        assert MSGID.match(msgid), msgid
        ids.append(msgid)
        assert m["Subject"] == "bare" and m.get_content().strip() == "hello"
    assert ids[0] != ids[1]
    # The queued copy for the remote recipient carries the same headers.
    q = sub.outbound_queue()
    assert len(q) == 2
    queued = email.message_from_bytes(q[0]["bytes"], policy=email.policy.default)
    assert str(queued["Message-ID"]) == ids[0] and queued["Date"] is not None


def test_submission_keeps_date_and_message_id_of_the_client(sub):
    mine = b"date: Tue, 1 Jul 2003 10:52:37 +0200\r\nMESSAGE-ID: <mine.1@client.test>\r\n"
    with smtplib.SMTP_SSL(sub.host, sub.submissions_port, timeout=TIMEOUT,
                          context=context(sub)) as s:
        s.login("bob", USERS["bob"])
        s.sendmail("bob@localhost", ["alice@localhost"], bare(extra=mine))
        # Only the missing one is added.
        s.sendmail("bob@localhost", ["alice@localhost"],
                   bare(extra=b"Message-Id: <mine.2@client.test>\r\n"))
    first, second = stored(sub)
    assert len(first.get_all("Date")) == 1
    assert first["Date"].datetime == datetime.datetime(
        2003, 7, 1, 10, 52, 37, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert first.get_all("Message-ID") == ["<mine.1@client.test>"]
    assert second.get_all("Message-ID") == ["<mine.2@client.test>"]
    assert len(second.get_all("Date")) == 1 and second["Date"].datetime.year >= 2024


def test_port25_mail_is_never_completed(make_server):
    # Inbound mail is not ours to complete, from an anonymous sender nor from an authenticated
    # client relaying through port 25.
    srv = make_server(tls="self-signed", inbound_auth_relay=True)
    with smtplib.SMTP(srv.host, srv.smtp_port, timeout=TIMEOUT) as s:
        s.sendmail("someone@remote.example", ["alice@localhost"], bare())
        s.login("bob", USERS["bob"])
        s.sendmail("bob@localhost", ["alice@localhost", "far@remote.example"], bare())
    msgs = stored(srv)
    assert len(msgs) == 2
    for m in msgs:
        assert m["Received"] is not None
        assert m["Date"] is None and m["Message-ID"] is None, m.keys()
    queued = srv.outbound_queue()[0]["bytes"]
    assert b"\r\nDate:" not in queued and b"\r\nMessage-ID:" not in queued


# --- no open relay ---------------------------------------------------------------------------

REMOTE_RCPTS = [
    "victim@remote.example",
    "VICTIM@REMOTE.EXAMPLE",
    "victim%remote.example@localhost",       # the percent hack
    "@localhost:victim@remote.example",      # a source route (RFC 5321 §4.1.1.3: ignored)
    "@localhost,@localhost:victim@remote.example",
    "\"victim@remote.example\"@localhost",   # a quoted local part
    "victim@remote.example@localhost",
    "remote.example!victim@localhost",       # bang path
    "victim@[192.0.2.1]",                     # a domain literal
    "victim",
]


@pytest.mark.parametrize("port", ["smtp_port", "submission_port", "submissions_port"])
@pytest.mark.parametrize("auth", [None, "wrong"])
def test_no_open_relay(sub, raw, pop3, port, auth):
    c = connect(sub, port, raw)
    if auth:
        c.cmd("AUTH PLAIN " + plain("bob", auth))
        assert c.read_reply()[0] == 535
    for sender in ["alice@localhost", "bob@localhost", "postmaster@localhost", "",
                   "victim@remote.example"]:
        c.cmd(f"MAIL FROM:<{sender}>")
        code, _ = c.read_reply()
        if port != "smtp_port":
            assert code == 530  # submission: nothing without AUTH, forged local sender or not
            c.cmd("RCPT TO:<victim@remote.example>")
            assert c.read_reply()[0] == 530
            continue
        assert code == 250
        for rcpt in REMOTE_RCPTS:
            c.cmd(f"RCPT TO:<{rcpt}>")
            code, lines = c.read_reply()
            assert 500 <= code < 600, (rcpt, code, lines)
        c.cmd("DATA")
        assert c.read_reply()[0] == 554  # no recipient was taken
        c.cmd("RSET")
        assert c.read_reply()[0] == 250
    assert sub.outbound_queue() == []
    for user in USERS:
        assert inbox(sub, pop3, user) == []


def test_port25_authenticated_does_not_relay_by_default(sub, raw):
    c = connect(sub, "smtp_port", raw)
    c.cmd("AUTH PLAIN " + plain("bob", USERS["bob"]))
    assert c.read_reply()[0] == 235
    c.cmd("MAIL FROM:<bob@localhost>")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<victim@remote.example>")
    code, lines = c.read_reply()
    assert code == 550 and lines[0].startswith(b"5.7.1")
    assert sub.outbound_queue() == []


def test_port25_authenticated_relay_when_configured(make_server, raw):
    srv = make_server(inbound_auth_relay=True)
    c = connect(srv, "smtp_port", raw)
    c.cmd("MAIL FROM:<bob@localhost>")  # unauthenticated: still no relay
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<victim@remote.example>")
    assert c.read_reply()[0] == 550
    c.cmd("RSET")
    assert c.read_reply()[0] == 250
    c.cmd("AUTH PLAIN " + plain("bob", USERS["bob"]))
    assert c.read_reply()[0] == 235
    c.cmd("MAIL FROM:<alice@localhost>")  # authenticated: the submission policy applies
    assert c.read_reply()[0] == 553
    code, lines = send_data(c, "bob@localhost", mail("bob@localhost"))
    assert code == 250, lines
    assert [m["recipients"] for m in srv.outbound_queue()] == [["far@remote.example"]]


def test_inbound_unchanged_for_local_mail(sub, pop3):
    # Port 25 still takes mail for local users from anyone, with any From:.
    with smtplib.SMTP(sub.host, sub.smtp_port, timeout=TIMEOUT) as s:
        assert s.sendmail("someone@remote.example", ["alice@localhost"],
                          mail("someone@remote.example")) == {}
    assert len(inbox(sub, pop3, "alice")) == 1
    assert sub.outbound_queue() == []

