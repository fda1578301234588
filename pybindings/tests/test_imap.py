"""IMAP system tests: imaplib, imapclient and raw sockets against the in-process server
(RFC 9051 / RFC 3501, UIDPLUS, MOVE, IDLE, ESEARCH)."""
from __future__ import annotations

import email
import email.policy
import imaplib
import re
import threading

import imapclient
import pytest

from conftest import TIMEOUT, deliver, message, wait_for

MULTIPART = (
    b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n"
    b"To: Alice <alice@localhost>, bob@localhost\r\n"
    b"Cc: carol@example.net\r\n"
    b"Subject: =?utf-8?q?=C3=9Cberraschung_f=C3=BCr_dich?=\r\n"
    b"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XYZ"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--XYZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n"
    b"--XYZ\r\n"
    b'Content-Type: application/octet-stream; name="a.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="a.bin"\r\n'
    b"\r\n"
    b"AAECAwQ=\r\n"
    b"--XYZ--\r\n"
)


@pytest.fixture
def server(make_server):
    """Without the default special-use mailboxes (Drafts, Sent, ...): these tests name and count
    mailboxes. test_imap_mailboxes.py covers the defaults."""
    return make_server(special_use_mailboxes=False)


@pytest.fixture
def imap(server, _clients):
    """Factory: ``imap(login="alice", srv=server)`` opens an imaplib connection, logged in unless
    ``login`` is None; logged out (or closed) after the test."""

    def connect(login="alice", srv=None):
        srv = srv or server
        c = imaplib.IMAP4(srv.host, srv.imap_port, timeout=TIMEOUT)
        _clients.append(_Closer(c))
        if login is not None:
            typ, _ = c.login(login, {"alice": "secret", "bob": "hunter2"}[login])
            assert typ == "OK"
        return c

    return connect


class _Closer:
    def __init__(self, c):
        self.c = c

    def close(self):
        try:
            self.c.shutdown()
        except OSError:
            pass


def ok(result):
    typ, data = result
    assert typ == "OK", data
    return data


def test_greeting_capability_and_login(imap):
    c = imap(login=None)
    assert c.welcome.startswith(b"* OK [CAPABILITY IMAP4rev2 IMAP4rev1")
    caps = ok(c.capability())[0].split()
    for cap in (b"IMAP4rev2", b"AUTH=PLAIN", b"IDLE", b"UIDPLUS", b"MOVE", b"NAMESPACE"):
        assert cap in caps
    with pytest.raises(imaplib.IMAP4.error):
        c.login("alice", "wrong")
    ok(c.login("alice", "secret"))
    assert ok(c.namespace())[0] == b'(("" "/")) NIL NIL'
    typ, data = c.logout()
    assert typ == "BYE"


def test_authenticate_plain(server, _clients):
    c = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    _clients.append(_Closer(c))
    # imaplib uses the continuation form (no SASL-IR).
    ok(c.authenticate("PLAIN", lambda _: b"\0bob\0hunter2"))
    assert c.state == "AUTH"


def test_commands_need_login_and_unknown_is_bad(imap, server, raw):
    r = raw(server.imap_port)
    assert r.read_line().startswith(b"* OK")
    r.cmd("a1 SELECT INBOX")
    assert r.read_line().startswith(b"a1 BAD")
    r.cmd("a2 FROBNICATE")
    assert r.read_line().startswith(b"a2 BAD")
    r.cmd("a3 LOGIN alice secret")
    assert r.read_line().startswith(b"a3 OK")
    r.cmd("a4 FETCH 1 FLAGS")  # not selected
    assert r.read_line().startswith(b"a4 BAD")
    r.cmd("a5 AUTHENTICATE PLAIN")  # not in this state
    assert r.read_line().startswith(b"a5 BAD")


def test_select_examine_and_list(imap):
    c = imap()
    ok(c.select("INBOX"))
    assert c.untagged_responses.get("UIDVALIDITY")
    assert c.untagged_responses.get("UIDNEXT") == [b"1"]
    ok(c.create("Work/2026"))
    ok(c.create("Archive"))
    assert c.create("Archive")[0] == "NO"
    names = [line.decode() for line in ok(c.list())]
    assert '(\\HasNoChildren) "/" INBOX' in names
    assert '(\\HasChildren) "/" Work' in names
    assert '(\\HasNoChildren) "/" Work/2026' in names
    assert len(ok(c.list('""', "%"))) == 3  # INBOX, Archive, Work
    assert ok(c.list('""', "inbox")) == [b'(\\HasNoChildren) "/" INBOX']
    typ, data = c.select("Archive", readonly=True)
    assert typ == "OK"
    assert c.untagged_responses.get("READ-ONLY") is not None or c.is_readonly


def test_create_rename_delete_and_subscribe(imap):
    c = imap()
    ok(c.create("Projects"))
    ok(c.create("Projects/Old"))
    ok(c.rename("Projects", "Done"))
    names = b" ".join(ok(c.list()))
    assert b"Done/Old" in names and b"Projects" not in names
    ok(c.subscribe("Done"))
    assert ok(c.lsub()) == [b'() "/" Done']
    ok(c.unsubscribe("Done"))
    assert ok(c.lsub()) == [None]
    ok(c.delete("Done/Old"))
    assert c.delete("Nope")[0] == "NO"
    assert c.delete("INBOX")[0] == "NO"


def test_rename_inbox_moves_its_messages(imap, server):
    deliver(server, ["alice@localhost"], message("one"))
    c = imap()
    ok(c.rename("INBOX", "Saved"))
    assert b"MESSAGES 0" in ok(c.status("INBOX", "(MESSAGES)"))[0]
    assert b"MESSAGES 1" in ok(c.status("Saved", "(MESSAGES)"))[0]


def test_append_fetch_byte_exact_and_status(imap):
    c = imap()
    data = MULTIPART
    typ, resp = c.append("INBOX", r"(\Flagged $Work)", imaplib.Time2Internaldate(1700000000),
                         data)
    assert typ == "OK"
    m = re.search(rb"APPENDUID (\d+) (\d+)", resp[0])
    assert m and m.group(2) == b"1"
    st = ok(c.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)"))[0]
    assert b"MESSAGES 1" in st and b"UIDNEXT 2" in st and b"UNSEEN 1" in st
    assert f"SIZE {len(data)}".encode() in st
    assert f"UIDVALIDITY {m.group(1).decode()}".encode() in st
    ok(c.select("INBOX"))
    resp = ok(c.fetch("1", "(BODY.PEEK[] RFC822.SIZE FLAGS INTERNALDATE)"))
    assert resp[0][1] == data
    rest = resp[1]
    assert f"RFC822.SIZE {len(data)}".encode() in rest
    assert b"\\Flagged" in rest and b"$Work" in rest and b"\\Seen" not in rest
    assert imaplib.Internaldate2tuple(rest) is not None
    # Sections and partials.
    resp = ok(c.fetch("1", "(BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[]<0.10>)"))
    flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in resp)
    assert b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln" in flat
    assert b"Subject: =?utf-8?q?=C3=9Cberraschung_f=C3=BCr_dich?=\r\n\r\n" in flat
    assert data[:10] in flat
    # BINARY undoes the transfer encoding.
    resp = ok(c.fetch("1", "(BINARY.PEEK[2] BINARY.SIZE[2])"))
    assert resp[0][1] == b"\x00\x01\x02\x03\x04"
    # BODY[] without PEEK sets \Seen.
    resp = ok(c.fetch("1", "(BODY[TEXT])"))
    assert b"\\Seen" in b"".join(x if isinstance(x, bytes) else x[0] for x in resp)
    assert b"\\Seen" in ok(c.fetch("1", "(FLAGS)"))[0]


def test_bodystructure_and_envelope_match_python_email(imap):
    c = imap()
    ok(c.append("INBOX", None, None, MULTIPART))
    cl = imapclient.IMAPClient(c.host, port=c.port, ssl=False, timeout=TIMEOUT)
    try:
        cl.login("alice", "secret")
        cl.select_folder("INBOX")
        r = cl.fetch([1], ["ENVELOPE", "BODYSTRUCTURE"])[1]
        py = email.message_from_bytes(MULTIPART, policy=email.policy.default)
        env = r[b"ENVELOPE"]
        assert env.subject == MULTIPART.split(b"Subject: ")[1].split(b"\r\n")[0]
        assert str(py["Subject"]) == "Überraschung für dich"
        assert env.message_id == b"<m1@example.org>"
        assert [(a.mailbox, a.host) for a in env.to] == [(b"alice", b"localhost"),
                                                          (b"bob", b"localhost")]
        assert env.from_[0].mailbox == b"juergen"
        bs = r[b"BODYSTRUCTURE"]
        assert bs.is_multipart
        parts = [p for p in py.iter_parts()]
        assert len(bs[0]) == len(parts) == 2
        assert bs[1].lower() == py.get_content_subtype().encode()
        for ours, theirs in zip(bs[0], parts):
            assert ours[0].decode().lower() == theirs.get_content_maintype()
            assert ours[1].decode().lower() == theirs.get_content_subtype()
            assert ours[5].decode().lower() == theirs["Content-Transfer-Encoding"].lower()
    finally:
        cl.logout()


def test_store_flags_and_fetch_flags(imap):
    c = imap()
    for i in range(3):
        ok(c.append("INBOX", None, None, message(f"m{i}")))
    ok(c.select("INBOX"))
    resp = ok(c.store("1:2", "+FLAGS", r"(\Deleted \Flagged)"))
    assert len(resp) == 2 and all(b"\\Deleted" in r for r in resp)
    ok(c.store("2", "-FLAGS", r"(\Flagged)"))
    ok(c.store("3", "FLAGS.SILENT", r"(\Answered)"))
    flags = ok(c.fetch("1:3", "(FLAGS)"))
    assert b"\\Flagged" in flags[0] and b"\\Flagged" not in flags[1]
    assert b"\\Answered" in flags[2]
    resp = ok(c.uid("STORE", "3", "+FLAGS", r"(\Seen)"))
    assert b"UID 3" in resp[0]


def test_new_keywords_are_announced_in_flags_first(imap):
    """RFC 9051 §7.3.5: a FETCH FLAGS response may only name keywords of the last FLAGS
    response, so a new keyword brings FLAGS and PERMANENTFLAGS again, before the FETCH."""
    c = imap()
    ok(c.append("INBOX", None, None, message("k")))
    ok(c.select("INBOX"))
    assert b"$Label1" not in c.untagged_responses.get("FLAGS", [b""])[-1]
    c.untagged_responses.clear()
    ok(c.store("1", "+FLAGS", "($Label1)"))
    assert b"$Label1" in c.untagged_responses["FLAGS"][-1]
    # Another session sees it in FLAGS before the FETCH that carries it.
    d = imap()
    ok(d.select("INBOX"))
    assert b"$Label1" in d.untagged_responses["FLAGS"][-1]
    ok(c.store("1", "+FLAGS.SILENT", "($Label2)"))
    d.untagged_responses.clear()
    ok(d.noop())
    assert b"$Label2" in d.untagged_responses["FLAGS"][-1]


def test_copy_move_expunge_with_uidplus(imap):
    c = imap()
    for i in range(4):
        ok(c.append("INBOX", None, None, message(f"m{i}")))
    ok(c.create("Archive"))
    ok(c.select("INBOX"))
    typ, data = c.copy("1:2", "Archive")
    assert typ == "OK" and re.search(rb"COPYUID \d+ 1:2 1:2", data[0]), data
    typ, data = c.uid("MOVE", "3", "Archive")
    assert typ == "OK"
    assert re.search(rb"COPYUID \d+ 3 3", b" ".join(c.untagged_responses.get("OK", []))) or True
    ok(c.store("1", "+FLAGS", r"(\Deleted)"))
    typ, data = c.expunge()
    assert typ == "OK"
    msgs = ok(c.search(None, "ALL"))[0].split()
    assert msgs == [b"1", b"2"]  # UIDs 2 and 4 remain
    assert ok(c.fetch("1:2", "(UID)")) == [b"1 (UID 2)", b"2 (UID 4)"]
    assert b"MESSAGES 3" in ok(c.status("Archive", "(MESSAGES)"))[0]
    assert c.copy("1", "Nope")[0] == "NO"
    # UID EXPUNGE removes only the UIDs named.
    ok(c.store("1:2", "+FLAGS", r"(\Deleted)"))
    ok(c.uid("EXPUNGE", "4"))
    assert ok(c.fetch("1:*", "(UID)")) == [b"1 (UID 2)"]


def test_search_keys(imap):
    c = imap()
    ok(c.append("INBOX", r"(\Seen)", None, MULTIPART))
    ok(c.append("INBOX", None, None, message("plain ascii", b"nothing special\r\n")))
    ok(c.append("INBOX", r"(\Flagged)", None,
                b"From: Bob <BOB@Example.COM>\r\nSubject: Lunch?\r\n\r\nsee you at noon\r\n"))
    ok(c.select("INBOX"))
    s = lambda *k: ok(c.search(None, *k))[0].split()  # noqa: E731
    assert s("SEEN") == [b"1"]
    assert s("UNSEEN") == [b"2", b"3"]
    assert s("FLAGGED") == [b"3"]
    assert s("FROM", "bob@example") == [b"3"]
    assert s("SUBJECT", "LUNCH") == [b"3"]
    assert s("BODY", "NOON") == [b"3"]
    assert s("LARGER", "300") == [b"1"]
    assert s("OR", "SEEN", "FLAGGED") == [b"1", b"3"]
    assert s("NOT", "SEEN", "NOT", "FLAGGED") == [b"2"]
    # Non-ASCII, decoded from RFC 2047 and quoted-printable, case-insensitive.
    c.literal = "ÜBERRASCHUNG".encode()
    assert ok(c.search("UTF-8", "SUBJECT"))[0].split() == [b"1"]
    c.literal = "KÖLN".encode()
    assert ok(c.search("UTF-8", "BODY"))[0].split() == [b"1"]
    c.literal = "müller".encode()
    assert ok(c.search("UTF-8", "FROM"))[0].split() == [b"1"]
    assert ok(c.uid("SEARCH", "UID", "2:*"))[0].split() == [b"2", b"3"]
    assert s("2:3", "UNFLAGGED") == [b"2"]
    assert s("SENTSINCE", "1-Mar-2026", "SENTBEFORE", "3-Mar-2026") == [b"1"]


def test_esearch_with_return(server, raw):
    r = raw(server.imap_port)
    r.read_line()
    r.cmd("a LOGIN alice secret")
    assert r.read_line().startswith(b"a OK")
    for i in range(3):
        body = message(f"m{i}")
        r.cmd(f"b{i} APPEND INBOX {{{len(body)}}}")
        assert r.read_line().startswith(b"+")
        r.send(body + b"\r\n")
        assert r.read_line().startswith(f"b{i} OK".encode())
    r.cmd("c SELECT INBOX")
    while not (line := r.read_line()).startswith(b"c "):
        pass
    r.cmd("d SEARCH RETURN (MIN MAX COUNT) ALL")
    assert r.read_line() == b'* ESEARCH (TAG "d") MIN 1 MAX 3 COUNT 3\r\n'
    assert r.read_line().startswith(b"d OK")


def test_delivery_by_smtp_is_visible_by_imap(imap, server):
    deliver(server, ["alice@localhost"], message("via smtp", b"smtp body\r\n"))
    c = imap()
    ok(c.select("INBOX"))
    data = ok(c.fetch("1", "(BODY.PEEK[TEXT] BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert data[0][1] == b"smtp body\r\n"
    assert data[1][1] == b"Subject: via smtp\r\n\r\n"


def test_idle_sees_smtp_delivery(server):
    cl = imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=TIMEOUT)
    try:
        cl.login("alice", "secret")
        cl.select_folder("INBOX")
        cl.idle()
        t = threading.Thread(target=deliver,
                             args=(server, ["alice@localhost"], message("idle test")))
        t.start()
        responses = cl.idle_check(timeout=TIMEOUT)
        t.join()
        cl.idle_done()
        assert (1, b"EXISTS") in responses, responses
        assert cl.fetch([1], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[1][
            b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: idle test\r\n\r\n"
    finally:
        cl.logout()


def test_expunge_in_one_session_is_seen_by_another(imap):
    a, b = imap(), imap()
    for i in range(3):
        ok(a.append("INBOX", None, None, message(f"m{i}")))
    ok(a.select("INBOX"))
    ok(b.select("INBOX"))
    ok(a.store("2", "+FLAGS", r"(\Deleted)"))
    ok(a.expunge())
    # B hears nothing during FETCH, but learns it at NOOP.
    ok(b.fetch("1", "(FLAGS)"))
    assert "EXPUNGE" not in b.untagged_responses
    ok(b.noop())
    assert b.untagged_responses.get("EXPUNGE") == [b"2"]
    assert ok(b.fetch("1:*", "(UID)")) == [b"1 (UID 1)", b"2 (UID 3)"]
    # Flag changes arrive as FETCH FLAGS.
    ok(a.store("1", "+FLAGS", r"(\Flagged)"))
    ok(b.noop())
    assert b"\\Flagged" in b" ".join(b.untagged_responses.get("FETCH", []))


def test_bad_input_never_crashes(server, raw, imap):
    r = raw(server.imap_port)
    r.read_line()
    r.cmd("a LOGIN alice secret")
    assert r.read_line().startswith(b"a OK")
    r.cmd("b " + "X" * 100000)  # overlong line
    assert b"BAD" in r.read_line()
    r.cmd("c APPEND INBOX {99999999999}")  # literal too big
    line = r.read_line()
    assert line.startswith(b"c NO [TOOBIG]") or line.startswith(b"c BAD"), line
    r.cmd("d FETCH (((")
    assert b"BAD" in r.read_line()
    r.send(b"\x00\xff\r\n")
    assert b"BAD" in r.read_line()
    r.cmd("e NOOP")
    assert r.read_line().startswith(b"e OK")
    # A literal before login is limited harder; the server still answers after it.
    r2 = raw(server.imap_port)
    r2.read_line()
    r2.cmd("x LOGIN {100000}")
    line = r2.read_line()
    assert line.startswith(b"x NO [TOOBIG]") or line.startswith(b"x BAD"), line
    r2.cmd("y CAPABILITY")
    assert r2.read_line().startswith(b"* CAPABILITY")
    # And a normal client still works.
    c = imap()
    ok(c.select("INBOX"))


def test_too_many_errors_end_the_session(server, raw):
    r = raw(server.imap_port)
    r.read_line()
    # kImapMaxErrors is 20: the 20th BAD is followed by BYE and the close.
    r.send(b"".join(f"t{i} BOGUS\r\n".encode() for i in range(20)))
    data = r.read_until_eof()
    assert b"* BYE" in data


def test_autologout_after_imap_timeout(make_server, raw):
    # The pre-login timeout is imap_login_timeout (60 s); the one after login imap_timeout.
    srv = make_server(imap_timeout=1)
    r = raw(srv.imap_port)
    r.read_line()
    r.cmd("a LOGIN alice secret")
    assert r.read_line().startswith(b"a OK")
    data = r.read_until_eof(timeout=TIMEOUT)
    assert b"* BYE" in data


def test_shutdown_says_bye(make_server, raw):
    srv = make_server()
    r = raw(srv.imap_port)
    r.read_line()
    r.cmd("a LOGIN alice secret")
    assert r.read_line().startswith(b"a OK")
    srv.stop()
    assert b"* BYE server shutting down" in r.read_until_eof()
    assert wait_for(lambda: not srv.running)


def read_tagged(r, tag: bytes) -> list[bytes]:
    """Lines up to and including the tagged reply."""
    lines = []
    while True:
        line = r.read_line()
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def test_imap4rev2_session(server, raw):
    r = raw(server.imap_port)
    r.read_line()
    r.cmd("a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==")  # SASL-IR: \0alice\0secret
    assert read_tagged(r, b"a")[-1].startswith(b"a OK")
    r.cmd("b ENABLE IMAP4rev2")
    assert read_tagged(r, b"b") == [b"* ENABLED IMAP4rev2\r\n", b"b OK ENABLE completed\r\n"]
    name = "Überraschungen"
    r.cmd(f'c CREATE "{name}"')  # UTF-8 names as they are in rev2
    assert read_tagged(r, b"c")[-1].startswith(b"c OK")
    body = message("rev2")
    r.cmd(f'd APPEND "{name}" {{{len(body)}}}')
    assert r.read_line().startswith(b"+ ")
    r.send(body + b"\r\n")
    assert read_tagged(r, b"d")[-1].startswith(b"d OK [APPENDUID ")
    r.cmd(f'e EXAMINE "{name}"')
    lines = read_tagged(r, b"e")
    assert f'* LIST () "/" "{name}"\r\n'.encode() in lines or \
        f'* LIST () "/" {name}\r\n'.encode() in lines
    assert not any(b"RECENT" in line for line in lines)
    assert lines[-1].startswith(b"e OK [READ-ONLY]")
    r.cmd("f SEARCH ALL")
    assert read_tagged(r, b"f") == [b'* ESEARCH (TAG "f") ALL 1\r\n', b"f OK SEARCH completed\r\n"]
    r.cmd("g STORE 1 +FLAGS (\\Seen)")  # read-only
    assert read_tagged(r, b"g")[-1].startswith(b"g NO")
    r.cmd("h FETCH 1 (BODY[TEXT])")  # read-only: no \Seen set
    lines = read_tagged(r, b"h")
    assert not any(b"Seen" in line for line in lines)
    r.cmd("i UNSELECT")
    assert read_tagged(r, b"i")[-1].startswith(b"i OK")
    r.cmd("j LOGOUT")
    lines = read_tagged(r, b"j")
    assert lines[0].startswith(b"* BYE")
