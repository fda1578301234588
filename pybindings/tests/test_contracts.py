"""millipost.contracts: the contract engine from Python, transcripts, the checking proxy, and the
command line (`millipost contract`, `millipost conform --proxy`).

The central property: the checker accepts all the traffic the reference server produces across
real client sessions (smtplib; poplib, imaplib and IMAPClient as soon as a POP3 or IMAP contract
file exists), and it reports a server breach for recorded replies mutated the ways servers get
replies wrong. Every contract file found (``millipost.contracts.available()``) is tested; a
contract without a client-session driver here fails ``test_every_contract_has_a_driver``.

Replaying a Hypothesis failure: the falsifying example is printed (and the mutated bytes via
``note``), with a ``@reproduce_failure(...)`` line (``print_blob=True``) to paste onto the test;
a whole run repeats with ``pytest --hypothesis-seed=<N>`` (the seed is in the pytest header).
"""
from __future__ import annotations

import dataclasses
import email.message
import imaplib
import os
import poplib
import queue
import re
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import millipost
from millipost import contracts as ct
from millipost import strategies as ms
from conftest import TIMEOUT, deliver, message, running, wait_for

SETTINGS = settings(max_examples=150, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

CONTRACTS = sorted(ct.available())
USERS = {"alice": "secret", "bob": "hunter2"}
MESSAGE = (b"From: sender@example.org\r\nTo: alice@localhost\r\nSubject: contract test\r\n\r\n"
           b"hello\r\n.a line that starts with a dot\r\n.\r\n..\r\nlast line\r\n")


def test_smtp_contract_is_bundled():
    assert "smtp" in CONTRACTS, CONTRACTS
    path = ct.available()["smtp"]
    assert path.endswith("smtp.contract") and os.path.isfile(path)


# --- client sessions, per protocol ----------------------------------------------------------------
# Each driver runs real client sessions against `addr` (the proxy) for the reference server `srv`
# (reached directly only to prepare data), asserting that the sessions worked, so that a
# proxy that is not transparent fails here.

def smtp_sessions(addr, srv=None, ehlo: bool = True, recipients=("alice@localhost",),
                  refused_rcpt: str | None = "nobody@elsewhere.example") -> None:
    host, port = addr
    with smtplib.SMTP(host, port, timeout=TIMEOUT) as c:  # a message, then small commands
        (c.ehlo if ehlo else c.helo)("client.test")
        assert c.sendmail("sender@example.org", list(recipients), MESSAGE) == {}
        assert c.noop()[0] == 250
        assert c.rset()[0] == 250
        assert 200 <= c.verify("alice")[0] < 600
        c.help()  # any answer: 214, or 500/502 from servers without HELP
    with smtplib.SMTP(host, port, timeout=TIMEOUT) as c:  # email.message, a refused recipient
        (c.ehlo if ehlo else c.helo)("client.test")
        m = email.message.EmailMessage()
        m["From"], m["To"], m["Subject"] = "sender@example.org", recipients[0], "second"
        m.set_content("caf\u00e9\n" * 50)
        assert c.send_message(m) == {}
        if refused_rcpt:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                c.sendmail("sender@example.org", [refused_rcpt], MESSAGE)
    if ehlo:  # RFC 2920 pipelining: MAIL, RCPT, DATA in one write (servers here advertise it)
        with socket.create_connection(addr, timeout=TIMEOUT) as s:
            f = s.makefile("rb")
            assert f.readline().startswith(b"220")
            s.sendall(b"EHLO client.test\r\n")
            while not f.readline().startswith(b"250 "):
                pass
            s.sendall(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<" + recipients[0].encode()
                      + b">\r\nDATA\r\n")
            replies = [f.readline()[:3] for _ in range(3)]
            assert replies == [b"250", b"250", b"354"], replies
            stuffed = re.sub(rb"(?m)^\.", b"..", MESSAGE)  # RFC 5321 §4.5.2
            s.sendall(stuffed + b".\r\nQUIT\r\n")
            assert f.readline().startswith(b"250") and f.readline().startswith(b"221")
    c = smtplib.SMTP(host, port, timeout=TIMEOUT)  # a client that hangs up without QUIT
    (c.ehlo if ehlo else c.helo)("client.test")
    c.close()


def pop3_sessions(addr, srv) -> None:
    for i in range(3):
        deliver(srv, ["alice@localhost"], message(f"pop3 {i}", b"line\r\n.dot\r\n"))
    host, port = addr
    c = poplib.POP3(host, port, timeout=TIMEOUT)
    assert "USER" in c.capa()
    c.user("alice")
    c.pass_("secret")
    count, _ = c.stat()
    assert count == 3
    assert len(c.list()[1]) == 3 and len(c.uidl()[1]) == 3
    assert b".dot" in b"\n".join(c.retr(1)[1])
    c.top(2, 0)
    c.dele(1)
    c.rset()
    c.noop()
    c.dele(3)
    assert c.quit().startswith(b"+OK")
    c = poplib.POP3(host, port, timeout=TIMEOUT)
    c.user("alice")
    with pytest.raises(poplib.error_proto):
        c.pass_("wrong password")
    c.quit()


def imap_sessions(addr, srv) -> None:
    from imapclient import IMAPClient

    host, port = addr
    c = imaplib.IMAP4(host, port, timeout=TIMEOUT)
    c.login("alice", "secret")
    c.capability()
    c.create("Work")
    c.list()
    assert c.append("INBOX", "(\\Flagged)", None, MESSAGE)[0] == "OK"
    assert c.append("INBOX", None, None, message("second"))[0] == "OK"
    c.select("INBOX")
    typ, data = c.search(None, "ALL")
    assert typ == "OK" and data[0].split() == [b"1", b"2"]
    typ, data = c.fetch("1:2", "(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY[])")
    assert typ == "OK" and MESSAGE in [d[1] for d in data if isinstance(d, tuple)]
    c.store("1", "+FLAGS", "(\\Seen \\Deleted)")
    c.copy("2", "Work")
    c.expunge()
    c.status("Work", "(MESSAGES UIDNEXT)")
    c.close()
    c.logout()
    with IMAPClient(host, port, ssl=False, timeout=TIMEOUT) as cl:
        cl.login("alice", "secret")
        cl.select_folder("Work")
        uids = cl.search(["ALL"])
        assert len(uids) == 1
        assert cl.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "UID"])
        cl.idle()
        cl.idle_check(timeout=0.2)
        cl.idle_done()
        if cl.has_capability("MOVE"):
            cl.move(uids, "INBOX")
        cl.logout()


DRIVERS = {"smtp": smtp_sessions, "pop3": pop3_sessions, "imap": imap_sessions}


def port_of(srv: millipost.Server, protocol: str) -> int:
    return {"smtp": srv.smtp_port, "pop3": srv.pop3_port, "imap": srv.imap_port}[protocol]


def test_every_contract_has_a_driver():
    missing = [name for name in CONTRACTS if name not in DRIVERS]
    assert not missing, f"contracts without client sessions in test_contracts.DRIVERS: {missing}"


@pytest.mark.parametrize("protocol", sorted(DRIVERS))
def test_client_sessions_pass_through_a_recording_proxy(protocol, tmp_path):
    """The drivers work through the proxy for every protocol, contract or not (so they are
    ready when the POP3 and IMAP contracts land), and the transcripts hold both directions."""
    with running() as srv:
        for login, password in USERS.items():
            srv.add_user(login, password)
        with ct.Proxy("127.0.0.1:0", ("127.0.0.1", port_of(srv, protocol)), None,
                      record_dir=str(tmp_path)) as proxy:
            DRIVERS[protocol](proxy.address, srv)
            assert proxy.wait_idle(TIMEOUT)
    assert proxy.connections and not proxy.breaches
    assert all(c.error is None and c.closed for c in proxy.connections), proxy.connections
    for conn in proxy.connections:
        headers, records = ct.read_transcript(conn.transcript)
        assert "contract" not in headers and headers["connection"] == str(conn.number)
        assert {d for d, _ in records} == {"C", "S"}
        assert b"".join(b for d, b in records if d == "C") == b"".join(
            b for d, b in conn.records if d == "C")


# --- the reference server's traffic (recorded once per contract) ----------------------------------

@dataclasses.dataclass
class Recording:
    contract: str
    connections: list  # ProxyConnection, with records
    breaches: list
    directory: str


@pytest.fixture(scope="module")
def recordings():
    """For every contract: the drivers' sessions against a reference server through a checking
    proxy that records transcripts."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="millipost-contracts-") as tmp:
        for name in CONTRACTS:
            if name not in DRIVERS:
                continue
            with running() as srv:
                for login, password in USERS.items():
                    srv.add_user(login, password)
                directory = os.path.join(tmp, name)
                with ct.Proxy("127.0.0.1:0", ("127.0.0.1", port_of(srv, name)), name,
                              record_dir=directory) as proxy:
                    DRIVERS[name](proxy.address, srv)
                    assert proxy.wait_idle(TIMEOUT)
            out[name] = Recording(name, proxy.connections, proxy.breaches, directory)
        yield out


def _describe(rec: Recording) -> str:
    return "\n\n".join(f"{b}\n{ct.format_transcript(rec.connections[b.connection - 1].records)}"
                       for b in rec.breaches)


@pytest.mark.parametrize("name", CONTRACTS)
def test_the_checker_accepts_the_reference_servers_traffic(recordings, name):
    rec = recordings[name]
    assert len(rec.connections) >= 2
    assert not rec.breaches, _describe(rec)
    assert all(c.closed and c.error is None for c in rec.connections)
    # The transcripts on disk say the same: read back and checked with their own header.
    files = sorted(os.listdir(rec.directory))
    assert files == [f"{c.number:05d}.transcript" for c in rec.connections]
    for f in files:
        path = os.path.join(rec.directory, f)
        assert ct.read_transcript(path)[0]["contract"] == name
        assert ct.check_transcript(path) is None, path


@settings(SETTINGS, max_examples=15)
@given(raw=ms.messages())
def test_any_generated_message_delivered_through_the_proxy_keeps_the_contract(raw):
    """Hypothesis messages (MIME trees, 8-bit, bare LF) through smtplib, proxy, reference server:
    smtplib dot-stuffs and fixes line ends; the checker must accept every exchange."""
    with running() as srv:
        srv.add_user("alice", "secret")
        with ct.Proxy("127.0.0.1:0", ("127.0.0.1", srv.smtp_port), "smtp") as proxy:
            with smtplib.SMTP(*proxy.address, timeout=TIMEOUT) as c:
                try:
                    assert c.sendmail("sender@example.org", ["alice@localhost"], raw) == {}
                except smtplib.SMTPDataError as e:  # smtplib passes bytes' bare LFs on as is
                    assert e.smtp_code == 554 and re.search(rb"(?<!\r)\n|\r(?!\n)", raw), e
            assert proxy.wait_idle(TIMEOUT, count=1)
    note(ct.format_transcript(proxy.connections[0].records))
    assert not proxy.breaches, str(proxy.breaches[0])


# --- the binding ----------------------------------------------------------------------------------

GOOD_SMTP = [("S", b"220 mx.example ESMTP\r\n"), ("C", b"EHLO client.example\r\n"),
             ("S", b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
             ("C", b"MAIL FROM:<a@example.org>\r\n"), ("S", b"250 2.1.0 Ok\r\n"),
             ("C", b"RCPT TO:<b@example.org>\r\n"), ("S", b"250 2.1.5 Ok\r\n"),
             ("C", b"DATA\r\n"), ("S", b"354 go ahead\r\n"),
             ("C", b"Subject: x\r\n\r\nQUIT\r\n..\r\n.\r\n"), ("S", b"250 2.0.0 queued\r\n"),
             ("C", b"QUIT\r\n"), ("S", b"221 2.0.0 bye\r\n")]


def test_load_by_name_and_path_and_errors(tmp_path):
    c = ct.load("smtp")
    assert c.name == "smtp" and c.initial == "INIT" and "CLOSED" in c.final_states
    assert {"ehlo", "mail", "rcpt", "data", "quit"} <= set(c.requests)
    assert ct.load(ct.available()["smtp"]).name == "smtp"
    assert ct.load(c) is c
    assert ("Greeting", "READY") in c.alternatives("INIT", "connect")
    with pytest.raises(ct.ContractError, match="no contract named 'nosuch'.*smtp"):
        ct.load("nosuch")
    bad = tmp_path / "bad.contract"
    bad.write_text("%rules\nfoo = bar\n%states\nA: foo => foo & A\n")
    with pytest.raises(ValueError, match="bad.contract.*bar"):
        ct.load(str(bad))
    with pytest.raises(ct.ContractError):
        ct.Contract.parse("%states\nA: x => y & A\n", "broken")
    # $MILLIPOST_CONTRACTS adds directories in front: a file there is found by name.
    (tmp_path / "tiny.contract").write_text(
        "%rules\nping = \"PING\" CRLF\npong = \"PONG\" CRLF\nhello = \"HI\" CRLF\n"
        "%states\nSTART: connect => hello & UP\nUP: ping => pong & =\n")
    old = os.environ.get("MILLIPOST_CONTRACTS")
    os.environ["MILLIPOST_CONTRACTS"] = str(tmp_path)
    try:
        assert "tiny" in ct.available()
        tiny = ct.load("tiny")
        chk = tiny.checker()
        assert chk.on_server(b"HI\r\n") is None and chk.on_client(b"PING\r\n") is None
        assert chk.on_server(b"PONG\r\n") is None and chk.on_close() is None
        assert ct.Checker(tiny).on_server(b"HO\r\n").who == "server"
    finally:
        if old is None:
            del os.environ["MILLIPOST_CONTRACTS"]
        else:
            os.environ["MILLIPOST_CONTRACTS"] = old


def test_checker_basics_and_breach_fields():
    chk = ct.Checker(ct.load("smtp"))
    for direction, data in GOOD_SMTP:
        got = chk.on_client(data) if direction == "C" else chk.on_server(data)
        assert got is None, (data, got)
    assert chk.state == "CLOSED" and chk.pending == 0
    assert chk.on_close() is None

    chk = ct.load("smtp").checker()
    assert chk.on_server(b"220 mx.example\r\n") is None
    assert chk.on_client(b"NOOP\r\n") is None
    b = chk.on_server(b"251 not for NOOP\r\n")
    assert isinstance(b, ct.Breach)
    assert (b.who, b.state, b.bytes) == ("server", "READY", b"251 not for NOOP\r\n")
    assert "r250" in b.rule and "noop" in b.reason
    assert str(b).startswith("server broke the contract in state READY")
    assert chk.on_server(b"250 ok\r\n") == b and chk.on_close() == b  # sticky

    chk = ct.load("smtp").checker()
    chk.on_server(b"220 mx.example\r\n")
    b = chk.on_client(b"XYZZY\r\n")
    assert b.who == "client" and "no request type" in b.reason and b.bytes == b"XYZZY\r\n"
    with pytest.raises(TypeError):
        chk.on_client("text is not bytes")


@pytest.mark.parametrize("name", CONTRACTS)
def test_every_contract_loads_and_wants_a_greeting(name):
    c = ct.load(name)
    assert c.name == name and c.initial in c.states and c.requests
    b = c.checker().on_close()  # closed before the server said anything
    assert b is not None and b.who == "server" and ("connect" in b.reason or "greeting" in b.reason)


def test_breach_bytes_are_bounded():
    chk = ct.load("smtp").checker()
    b = chk.on_server(b"999 " + b"x" * 10000 + b"\r\n")
    assert b.who == "server" and len(b.bytes) == ct._core.MAX_BREACH_BYTES


# --- transcripts ----------------------------------------------------------------------------------

records_st = st.lists(st.tuples(st.sampled_from(["C", "S"]), st.binary(max_size=60)), max_size=12)


def coalesce(records) -> list:
    """Adjacent records of one direction merged, empty ones dropped: what a transcript means."""
    out: list = []
    for d, b in records:
        if not b:
            continue
        if out and out[-1][0] == d:
            out[-1] = (d, out[-1][1] + b)
        else:
            out.append((d, b))
    return out


@SETTINGS
@given(data=st.binary(max_size=300))
def test_escape_round_trip(data):
    text = ct.escape(data)
    assert all(0x20 <= ord(ch) < 0x7F for ch in text)
    assert ct.unescape(text) == data


@SETTINGS
@given(records=records_st,
       headers=st.dictionaries(st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True),
                               st.from_regex(r"[!-~]([ -~]{0,20}[!-~])?", fullmatch=True),
                               max_size=3))
def test_transcript_round_trip(tmp_path_factory, records, headers):
    path = tmp_path_factory.mktemp("t") / "x.transcript"
    ct.write_transcript(path, records, headers, split_lines=False)
    got_headers, got = ct.read_transcript(path)
    assert got == records
    assert got_headers == headers
    ct.write_transcript(path, records, headers)  # a record per line: same bytes, same order
    _, got = ct.read_transcript(path)
    assert coalesce(got) == coalesce(records)
    assert all(b.count(b"\n") <= 1 and (b"\n" not in b or b.endswith(b"\n")) for _, b in got)


def test_transcript_format_exact(tmp_path):
    text = ct.format_transcript([("S", b"220 a\\b\t\x00\xff\r\n"), ("C", b"QUIT\r\nX")],
                                {"contract": "smtp", "note": "hi"})
    assert text == ("# millipost transcript 1\n# contract: smtp\n# note: hi\n"
                    "S: 220 a\\\\b\\t\\x00\\xff\\r\\n\nC: QUIT\\r\\n\nC: X\n")
    assert ct.parse_transcript(text) == ({"contract": "smtp", "note": "hi"},
                                         [("S", b"220 a\\b\t\x00\xff\r\n"), ("C", b"QUIT\r\n"),
                                          ("C", b"X")])
    for bad, where in [("C: x\n", "line 1"), ("# millipost transcript 1\nX: y\n", "line 2"),
                       ("# millipost transcript 1\n\nC: a\\qb\n", "line 3"),
                       ("# millipost transcript 1\nS: \\x4\n", "line 2")]:
        with pytest.raises(ct.TranscriptError, match=where):
            ct.parse_transcript(bad)
    with pytest.raises(ct.TranscriptError, match="no '# contract:' header"):
        ct.check_transcript("# millipost transcript 1\nS: 220 x\\r\\n\n")


def test_check_transcript_open_and_contract_argument(tmp_path):
    cut = GOOD_SMTP[:4]  # MAIL sent, no reply yet
    text = ct.format_transcript(cut, {"contract": "smtp"})
    assert "no reply to mail" in ct.check_transcript(text).reason
    assert ct.check_transcript(text.replace("# contract: smtp", "# open: true"), "smtp") is None
    path = tmp_path / "good.transcript"
    ct.write_transcript(path, GOOD_SMTP)  # no header: the contract is an argument
    assert ct.check_transcript(path, "smtp") is None
    assert ct.check_transcript(str(path), ct.load("smtp")) is None


# --- any split gives the same verdict -------------------------------------------------------------

@st.composite
def resplit(draw, records):
    """The same wire bytes in other records: each run of one direction cut anywhere."""
    out = []
    for d, data in coalesce(records):
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=6)))
        pos = 0
        for c in cuts + [len(data)]:
            if c > pos:
                out.append((d, data[pos:c]))
                pos = c
    return out


def verdict(records, name) -> str:
    b = ct.check_records(records, name)
    return "ok" if b is None else str(b)


@SETTINGS
@given(st.data())
def test_any_split_gives_the_same_verdict(recordings, data):
    name = data.draw(st.sampled_from(sorted(recordings)), label="contract")
    conn = data.draw(st.sampled_from(recordings[name].connections), label="connection")
    records = conn.records
    if data.draw(st.booleans(), label="flip a byte"):  # a verdict that may be a breach
        flat = [(d, bytearray(b)) for d, b in coalesce(records)]
        i = data.draw(st.integers(0, len(flat) - 1))
        j = data.draw(st.integers(0, len(flat[i][1]) - 1))
        flat[i][1][j] = data.draw(st.integers(0, 255))
        records = [(d, bytes(b)) for d, b in flat]
    expected = verdict(records, name)
    split = data.draw(resplit(records), label="split")
    note(f"verdict unsplit: {expected}")
    assert verdict(split, name) == expected
    # and through a transcript's text, one record per chunk
    b = ct.check_transcript(ct.format_transcript(split, {"contract": name}, split_lines=False))
    assert ("ok" if b is None else str(b)) == expected


# --- mutated server replies (SMTP) ----------------------------------------------------------------
# A recorded session is cut into events: client bytes, and complete server replies (lines up to
# one whose code is not followed by "-"). Hypothesis picks a reply and damages it.

def smtp_events(records) -> list:
    events = []
    for d, data in coalesce(records):
        if d == "C":
            events.append(("C", data))
            continue
        lines = data.splitlines(keepends=True)
        reply = b""
        for line in lines:
            reply += line
            if line[3:4] != b"-":
                events.append(("S", reply))
                reply = b""
        assert not reply, f"a server run ends inside a reply: {data!r}"
    return events


def _set(line: bytes, pos: int, byte: bytes) -> bytes:
    return line[:pos] + byte + line[pos + 1:]


MUTATIONS = ["code-invalid", "code-of-one-line", "final-line-dropped", "continuation-made-final",
             "final-made-continuation", "cr-removed"]


@st.composite
def smtp_mutation(draw, events):
    """(kind, index of the reply, the mutated reply)."""
    replies = [i for i, (d, _) in enumerate(events) if d == "S"]
    multi = [i for i in replies if events[i][1].count(b"\n") > 1]
    kind = draw(st.sampled_from(MUTATIONS), label="mutation")
    if kind in ("code-of-one-line", "continuation-made-final"):
        if not multi:
            kind = "code-invalid"
        else:
            replies = multi
    index = draw(st.sampled_from(replies), label="reply")
    lines = events[index][1].splitlines(keepends=True)
    n = draw(st.integers(0, len(lines) - 1), label="line")
    if kind == "code-invalid":  # Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 §4.2)
        pos = draw(st.integers(0, 2))
        wrong = draw(st.sampled_from(list({0: b"016789", 1: b"6789", 2: b"x: "}[pos])))
        lines[n] = _set(lines[n], pos, bytes([wrong]))
    elif kind == "code-of-one-line":  # §4.2.1: every line of a reply has the same code
        digit = lines[n][2:3]
        lines[n] = _set(lines[n], 2, draw(st.sampled_from([bytes([c]) for c in b"0123456789"
                                                           if bytes([c]) != digit])))
    elif kind == "final-line-dropped":
        del lines[-1]
    elif kind == "continuation-made-final":
        n = draw(st.integers(0, len(lines) - 2))
        lines[n] = _set(lines[n], 3, b" ")
    elif kind == "final-made-continuation":
        lines[-1] = _set(lines[-1], 3, b"-")
    else:  # cr-removed
        lines[n] = lines[n][:-2] + b"\n"
    return kind, index, b"".join(lines)


@SETTINGS
@given(st.data())
def test_a_mutated_server_reply_is_a_server_breach(recordings, data):
    if "smtp" not in recordings:
        pytest.fail("no SMTP recordings")
    conn = data.draw(st.sampled_from(recordings["smtp"].connections), label="connection")
    events = smtp_events(conn.records)
    kind, index, mutated = data.draw(smtp_mutation(events))
    original = events[index][1]
    assert mutated != original
    events = events[:index] + ([("S", mutated)] if mutated else []) + events[index + 1:]
    note(f"{kind}: reply {index} {original!r} -> {mutated!r}")
    breach = ct.check_records(events, "smtp")
    assert breach is not None, f"{kind} not detected: {original!r} -> {mutated!r}"
    # When the reply that opens the data (354) is damaged structurally, the checker never sees
    # the data begin, so the client's message lines are what breaks the contract next.
    opens_data = original.startswith(b"354") and kind not in ("code-invalid",
                                                               "code-of-one-line")
    if opens_data:
        assert breach.who == "client" and "no request type" in breach.reason, str(breach)
    elif kind in ("code-invalid", "code-of-one-line", "continuation-made-final"):
        assert breach.who == "server", str(breach)
    else:
        # The reply is left unfinished: the bytes cannot tell a server that never ended its
        # reply from a client that did not wait for it. When the client's next command comes
        # first, the contract blames it for not waiting (no PIPELINING, or a group end: RFC
        # 2920 §3.1), or, when the unfinished reply was EHLO's, for using an extension the
        # checker never saw advertised; otherwise the server's next reply is judged and fails.
        assert breach.who == "server" or any(
            s in breach.reason for s in ("before the previous one was answered", "group",
                                         "no request type", "did not advertise")), str(breach)


def test_the_mutations_cover_every_kind(recordings):
    """The strategy above reaches every mutation on the recordings (no silent fallback)."""
    events = smtp_events(recordings["smtp"].connections[0].records)
    assert any(d == "S" and r.count(b"\n") > 1 for d, r in events)  # a multi-line EHLO reply
    assert any(d == "S" and r.startswith(b"354") for d, r in events)


# --- Postfix's smtp-sink, a second server ---------------------------------------------------------

SMTP_SINK = "/usr/sbin/smtp-sink"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink():
    assert os.access(SMTP_SINK, os.X_OK), "smtp-sink missing: scripts/install-deps.sh installs postfix"
    for _ in range(5):
        port = free_port()
        argv = [SMTP_SINK] + (["-u", "nobody"] if os.geteuid() == 0 else []) + [
            f"127.0.0.1:{port}", "50"]
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and p.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        if p.poll() is None:
            try:
                yield port
            finally:
                p.terminate()
                p.wait(TIMEOUT)
            return
    pytest.fail(f"smtp-sink did not start: {p.stderr.read().decode(errors='replace')}")


def test_smtp_sink_traffic_keeps_the_contract_except_its_empty_ehlo_line(smtp_sink, tmp_path):
    """smtp-sink accepts anything; through the checking proxy its HELO sessions keep the
    contract. Its EHLO reply ends with the line "250 " (no keyword), which RFC 5321 §4.1.1.1
    (ehlo-line = ehlo-keyword ...) and §4.2 (textstring is 1*) do not allow: the checker reports
    that, and only that, as a server breach per EHLO session."""
    with ct.Proxy("127.0.0.1:0", ("127.0.0.1", smtp_sink), "smtp",
                  record_dir=str(tmp_path)) as proxy:
        smtp_sessions(proxy.address, ehlo=False, recipients=("anyone@example.net",),
                      refused_rcpt=None)
        assert proxy.wait_idle(TIMEOUT)
        assert not proxy.breaches, "\n".join(map(str, proxy.breaches))
        helo_connections = len(proxy.connections)
        smtp_sessions(proxy.address, ehlo=True, recipients=("anyone@example.net",),
                      refused_rcpt=None)
        assert proxy.wait_idle(TIMEOUT)
    ehlo_connections = len(proxy.connections) - helo_connections
    assert ehlo_connections == 4 and len(proxy.breaches) == ehlo_connections
    for b in proxy.breaches:
        assert b.breach.who == "server" and "ehlo-ok-rsp" in b.breach.rule, str(b)
        assert b.breach.bytes.endswith(b"250 \r\n")


# --- the proxy ------------------------------------------------------------------------------------

def test_proxy_many_concurrent_connections(server, tmp_path):
    n = 24
    errors = []

    def one(i: int) -> None:
        try:
            with smtplib.SMTP(*proxy.address, timeout=TIMEOUT) as c:
                c.sendmail("sender@example.org", ["alice@localhost"], message(f"m{i}"))
        except Exception as e:  # reported below
            errors.append(e)

    seen = []
    with ct.Proxy("127.0.0.1:0", ("127.0.0.1", server.smtp_port), "smtp",
                  record_dir=str(tmp_path), on_close=seen.append) as proxy:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 2)
        assert proxy.wait_idle(TIMEOUT, count=n)
    assert not errors, errors
    assert len(proxy.connections) == n and len(seen) == n and not proxy.breaches
    assert sorted(os.listdir(tmp_path)) == [f"{i:05d}.transcript" for i in range(1, n + 1)]
    assert all(ct.check_transcript(os.path.join(tmp_path, f)) is None for f in os.listdir(tmp_path))
    assert server.counters()["messages_accepted"] == n


def test_proxy_forwards_any_bytes_unchanged_and_reports_once(tmp_path):
    """An echo upstream: every byte value goes through both ways unchanged, though it breaks the
    SMTP contract (reported once, through the callback and the list)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def echo() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    payload = bytes(range(256)) * 40
    got_breaches = []
    with ct.Proxy("127.0.0.1:0", listener.getsockname(), "smtp", on_breach=got_breaches.append,
                  record_dir=str(tmp_path)) as proxy:
        with socket.create_connection(proxy.address, timeout=TIMEOUT) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            back = b""
            while chunk := s.recv(65536):
                back += chunk
        assert proxy.wait_idle(TIMEOUT, count=1)
    listener.close()
    assert back == payload
    assert len(got_breaches) == 1 and proxy.breaches == got_breaches
    assert got_breaches[0].connection == 1 and got_breaches[0].breach.who == "client"
    _, records = ct.read_transcript(tmp_path / "00001.transcript")
    assert b"".join(b for d, b in records if d == "C") == payload
    assert b"".join(b for d, b in records if d == "S") == payload


def test_proxy_stop_cuts_open_connections_and_marks_them_open(tmp_path):
    silent = FakeSMTP({"NOOP": b""})  # never answers NOOP
    with ct.Proxy("127.0.0.1:0", ("127.0.0.1", silent.port), "smtp",
                  record_dir=str(tmp_path)) as proxy:
        c = socket.create_connection(proxy.address, timeout=TIMEOUT)
        assert c.recv(100).startswith(b"220")
        c.sendall(b"NOOP\r\n")
        assert wait_for(lambda: ("C", b"NOOP\r\n") in proxy.connections[0].records)
    c.close()
    silent.close()
    assert proxy.connections[0].closed and not proxy.breaches
    path = tmp_path / "00001.transcript"
    headers, _ = ct.read_transcript(path)
    assert headers["open"] == "true"
    assert ct.check_transcript(path) is None  # cut by the proxy, not closed: not judged
    closed = path.read_text().replace("# open: true\n", "")
    assert "no reply to noop" in ct.check_transcript(closed).reason


def test_proxy_upstream_refused(tmp_path):
    port = free_port()
    with ct.Proxy("127.0.0.1:0", f"127.0.0.1:{port}", "smtp") as proxy:
        with socket.create_connection(proxy.address, timeout=TIMEOUT) as s:
            try:
                assert s.recv(100) == b""  # closed at once
            except ConnectionResetError:
                pass
        assert proxy.wait_idle(TIMEOUT, count=1)
    assert "cannot connect" in proxy.connections[0].error and not proxy.breaches


def test_guess_contract_and_addresses():
    assert ct.guess_contract("smtp://mail.example") == "smtp"
    assert ct.guess_contract("imap://h:1143") == "imap"
    assert ct.guess_contract("mail.example:25") == "smtp"
    assert ct.guess_contract("127.0.0.1:110") == "pop3"
    assert ct.guess_contract("127.0.0.1:12345") is None
    assert ct.parse_address("2525") == ("127.0.0.1", 2525)
    assert ct.parse_address("[::1]:25") == ("::1", 25)
    assert ct.parse_address("smtp://u:p@mx.example") == ("mx.example", 25)
    with pytest.raises(ValueError):
        ct.parse_address("nope")


# --- conform: scenario connections are checked ----------------------------------------------------

class FakeSMTP:
    """A tiny line-based SMTP server answering from a table (wrong answers on purpose)."""

    def __init__(self, answers: dict, greeting: bytes = b"220 fake.example ESMTP\r\n"):
        self.answers, self.greeting = answers, greeting
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(TIMEOUT)
            f = conn.makefile("rb")
            conn.sendall(self.greeting)
            try:
                for line in f:
                    verb = line.split()[0].upper().decode() if line.split() else ""
                    conn.sendall(self.answers.get(verb, b"500 what\r\n"))
                    if verb == "QUIT":
                        return
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


def test_conform_fails_a_scenario_when_the_server_breaks_the_contract(tmp_path):
    (tmp_path / "smtp").mkdir()
    (tmp_path / "smtp" / "noop.scenario").write_text(
        "protocol: smtp\ntitle: NOOP\nrfc: RFC 5321 4.1.1.9\nsetup: greeting\n\n"
        "C: NOOP\nS: 2*\nC: QUIT\nS: 221*\n")
    good = FakeSMTP({"NOOP": b"250 ok\r\n", "QUIT": b"221 bye\r\n"})
    bad = FakeSMTP({"NOOP": b"251 ok, but 251 is no answer to NOOP\r\n", "QUIT": b"221 bye\r\n"})
    try:
        ok = millipost.conform(f"smtp://u:p@127.0.0.1:{good.port}", root=str(tmp_path),
                               capabilities=[])
        assert [r.status for r in ok.results] == ["PASS"], ok.results[0].message
        report = millipost.conform(f"smtp://u:p@127.0.0.1:{bad.port}", root=str(tmp_path),
                                   capabilities=[])
    finally:
        good.close()
        bad.close()
    (r,) = report.results
    assert r.status == "FAIL" and not report.ok
    assert "server broke the smtp contract" in r.message and "251 ok" in r.message
    assert "noop" in r.message


# --- the command line -----------------------------------------------------------------------------

def millipost_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "millipost")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


def test_cli_contract_list():
    r = millipost_cli("contract", "list")
    assert r.returncode == 0, r.stderr
    for name in CONTRACTS:
        assert name in r.stdout
    assert "request types: " in r.stdout and "ehlo" in r.stdout


def test_cli_contract_check(tmp_path):
    good = tmp_path / "good.transcript"
    ct.write_transcript(good, GOOD_SMTP, {"contract": "smtp"})
    r = millipost_cli("contract", "check", str(good))
    assert r.returncode == 0 and f"{good}: OK" in r.stdout, r.stdout + r.stderr

    mutated = tmp_path / "mutated.transcript"
    bad = [(d, b.replace(b"221 2.0.0", b"250 2.0.0")) for d, b in GOOD_SMTP]
    ct.write_transcript(mutated, bad)  # no header: --contract names it
    r = millipost_cli("contract", "check", "--contract", "smtp", str(good), str(mutated))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{good}: OK" in r.stdout
    assert f"{mutated}: BREACH at line" in r.stdout and "server broke the contract" in r.stdout
    assert "expected: r221" in r.stdout and "250 2.0.0 bye" in r.stdout

    r = millipost_cli("contract", "check", str(mutated))  # no header, no --contract
    assert r.returncode == 2 and "no '# contract:' header" in r.stderr
    junk = tmp_path / "junk.transcript"
    junk.write_text("hello\n")
    r = millipost_cli("contract", "check", str(junk), str(good))
    assert r.returncode == 2 and "ERROR" in r.stderr and "OK" in r.stdout
    r = millipost_cli("contract", "check", "--contract", "nosuch", str(good))
    assert r.returncode == 2 and "no contract named" in r.stderr


def test_cli_help_mentions_the_contract_commands():
    r = millipost_cli("conform", "--help")
    assert r.returncode == 0 and "--proxy" in r.stdout and "--record" in r.stdout
    assert "--contract" in r.stdout
    r = millipost_cli("contract", "check", "--help")
    assert r.returncode == 0 and "exit status" in r.stdout


class ProxyProcess:
    """`millipost conform --proxy` as a child process; its stdout read line by line."""

    def __init__(self, *args: str):
        exe = os.path.join(os.path.dirname(sys.executable), "millipost")
        self.p = subprocess.Popen([exe, "conform", "--proxy", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            first = self.line()
            assert "proxy listening on" in first, first
            self.port = int(first.split("listening on ")[1].split(",")[0].rsplit(":", 1)[1])
        except BaseException:
            self.p.kill()
            self.p.wait(TIMEOUT)
            raise

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put("")

    def line(self) -> str:
        try:
            return self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError("no output from millipost conform --proxy")

    def wait_for(self, text: str) -> str:
        while True:
            line = self.line()
            assert line, f"output ended before {text!r}"
            if text in line:
                return line

    def stop(self) -> tuple[int, str]:
        self.p.send_signal(signal.SIGINT)
        try:
            code = self.p.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise
        rest = []
        while (line := self.line()):
            rest.append(line)
        return code, "".join(rest)


def test_cli_conform_proxy_clean_traffic(server, tmp_path):
    proxy = ProxyProcess("127.0.0.1:0", f"smtp://127.0.0.1:{server.smtp_port}",
                         "--record", str(tmp_path), "-v")
    try:
        with smtplib.SMTP("127.0.0.1", proxy.port, timeout=TIMEOUT) as c:
            c.sendmail("sender@example.org", ["alice@localhost"], MESSAGE)
        assert "closed: ok" in proxy.wait_for("connection 1 ")
    finally:
        code, rest = proxy.stop()
    assert code == 0, rest
    assert "1 connections, 0 with a breach" in rest
    assert ct.check_transcript(tmp_path / "00001.transcript") is None


def test_cli_conform_proxy_prints_a_broken_upstreams_breach():
    bad = FakeSMTP({"EHLO": b"250-fake.example\r\n250 8BITMIME\r\n", "MAIL": b"250 ok\r\n",
                    "RCPT": b"250 ok\r\n", "DATA": b"250 no 354 here\r\n",
                    "QUIT": b"221 bye\r\n"})
    # The upstream's port says nothing: the contract is named.
    proxy = ProxyProcess("127.0.0.1:0", f"127.0.0.1:{bad.port}", "--contract", "smtp")
    try:
        with smtplib.SMTP("127.0.0.1", proxy.port, timeout=TIMEOUT) as c:
            with pytest.raises(smtplib.SMTPDataError):
                c.sendmail("sender@example.org", ["alice@localhost"], MESSAGE)
        line = proxy.wait_for("BREACH")
    finally:
        code, rest = proxy.stop()
        bad.close()
    assert line.startswith("BREACH connection 1: server broke the contract in state RCPT")
    assert "250 no 354 here" in line and "r354" in line
    assert code == 1 and "1 with a breach (1 server, 0 client)" in rest


def test_cli_conform_proxy_needs_a_contract():
    r = millipost_cli("conform", "--proxy", "127.0.0.1:0", "127.0.0.1:12345")
    assert r.returncode == 2 and "--contract" in r.stderr
    r = millipost_cli("conform", "--proxy", "127.0.0.1:0", "127.0.0.1:25", "--contract",
                      "nosuch")
    assert r.returncode == 2 and "no contract named" in r.stderr
    r = millipost_cli("conform")
    assert r.returncode == 2
