"""User isolation (issue 6, "Isolation and abuse"): no protocol lets one user see or change
another user's data.

An authenticated attacker, alice, goes after bob, who has mail, mailboxes, flags, a keyword and
subscriptions. Every attack runs over a real connection (a raw IMAP socket, so that NUL, CR, LF
and literals reach the server as written; poplib/RawClient for POP3; smtplib for SMTP). For each
one:

- the reply is a clean protocol response (tagged OK/NO/BAD, +OK/-ERR) and the connection
  survives it; a success may only act inside alice's own namespace;
- bob's data is unchanged: a snapshot taken by logging in as bob (LIST, LSUB, STATUS, and every
  message's UID, flags, size and identifying headers) is the same before and after;
- nothing of bob's reaches alice: every byte alice received is searched for a token that appears
  only in bob's messages, mailbox names and keyword (alice never sends it).

The store side (every SQL key scoped by the owner's id, bound as a parameter) is pinned in
server/store/store_test.cpp (CrossUser*).
"""
from __future__ import annotations

import base64
import imaplib
import poplib
import re
import smtplib
import socket
import time

import pytest

from conftest import TIMEOUT, RawClient, deliver

#: In every message, mailbox name and keyword of bob's that alice does not name on purpose.
#: Alice never sends it, so finding it in anything she received is a leak.
TOKEN = b"XQZBOB"

USERS = {"alice": "secret", "bob": "hunter2"}

#: Options for every server here: no failed-login delays or lockouts (the login attacks fail on
#: purpose, many times, and bob must still be able to log in for the snapshots).
OPTIONS = {"auth_fail_delay": 0, "auth_fail_limit": 0, "special_use_mailboxes": False,
           "quota_storage": 100000, "quota_messages": 1000}


def bob_message(i: int) -> bytes:
    return (b"From: carol@example.org\r\nTo: bob@localhost\r\n"
            b"Subject: Quarterly report %d " % i + TOKEN + b"\r\n"
            b"Message-ID: <q%d." % i + TOKEN + b"@example.org>\r\n\r\n"
            b"Confidential figures " + TOKEN + b" %d\r\n" % i)


def alice_message(i: int) -> bytes:
    return (b"From: dave@example.org\r\nTo: alice@localhost\r\n"
            b"Subject: alice own %d\r\nMessage-ID: <a%d.aliceown@example.org>\r\n\r\n"
            b"alice body %d\r\n" % (i, i, i))


def ok(result):
    typ, data = result
    assert typ == "OK", data
    return data


def imap_login(srv, login: str) -> imaplib.IMAP4:
    c = imaplib.IMAP4(srv.host, srv.imap_port, timeout=TIMEOUT)
    ok(c.login(login, USERS[login]))
    return c


# Bob's mailboxes: "Secrets" and "Secrets/Deep" are attacked by name; the one with the token is
# never named by alice, so any listing of it is a leak.
BOB_HIDDEN = "Hidden" + TOKEN.decode()
BOB_KEYWORD = "$Kw" + TOKEN.decode()


def populate(srv) -> None:
    """Bob: 3 messages in INBOX (one \\Flagged with a keyword, one \\Seen), Secrets with 2,
    Secrets/Deep with 1, the hidden mailbox with 1, two subscriptions. Alice: 2 in INBOX."""
    for i in range(1, 4):
        deliver(srv, ["bob@localhost"], bob_message(i))
    for i in range(1, 3):
        deliver(srv, ["alice@localhost"], alice_message(i))
    c = imap_login(srv, "bob")
    for name in ("Secrets", "Secrets/Deep", BOB_HIDDEN):
        ok(c.create(name))
    for name, n in (("Secrets", 2), ("Secrets/Deep", 1), (BOB_HIDDEN, 1)):
        for i in range(n):
            ok(c.append(name, None, None, bob_message(10 + i)))
    ok(c.subscribe("Secrets"))
    ok(c.subscribe(BOB_HIDDEN))
    ok(c.select("INBOX"))
    ok(c.uid("STORE", "1", "+FLAGS", f"(\\Flagged {BOB_KEYWORD})"))
    ok(c.uid("STORE", "2", "+FLAGS", "(\\Seen)"))
    c.logout()


_LIST_RE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?:"/"|NIL) (?P<name>.+)$')


def snapshot(srv, login: str = "bob") -> dict:
    """Everything a user can see of their own data, read over IMAP without changing it
    (EXAMINE, BODY.PEEK), plus the store's UID lists."""
    c = imap_login(srv, login)
    try:
        listing = sorted(ok(c.list('""', "*")))
        subscribed = sorted(ok(c.lsub('""', "*")))
        boxes = {}
        for line in listing:
            m = _LIST_RE.match(line)
            assert m, line
            name = m.group("name").decode()
            status = ok(c.status(name, "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)"))
            ok(c.select(name, readonly=True))
            fetched = ok(c.uid("FETCH", "1:*",
                               "(FLAGS RFC822.SIZE INTERNALDATE "
                               "BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])"))
            boxes[name] = (status, fetched)
            unquoted = name.strip('"')
            boxes[name + " (store)"] = srv.mailbox_uids(login, unquoted)
        return {"list": listing, "lsub": subscribed, "boxes": boxes}
    finally:
        c.logout()


class Attacker:
    """A logged-in raw IMAP connection that records every byte it receives (the transcript
    searched for bob's token) and checks that every command gets a clean tagged reply."""

    def __init__(self, srv, login: str = "alice", password: str = "secret", utf8: bool = False):
        self.srv, self.login, self.password, self.utf8 = srv, login, password, utf8
        self.transcript = bytearray()
        self.n = 0
        self.reconnects = 0
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.srv.host, self.srv.imap_port),
                                             timeout=TIMEOUT)
        self.buf = b""
        assert self._response().startswith(b"* OK")
        _, tagged = self.cmd(b'LOGIN "%s" "%s"' % (self.login.encode(), self.password.encode()))
        assert tagged.split()[1] == b"OK", tagged
        if self.utf8:
            assert self.status_of(b"ENABLE UTF8=ACCEPT") == b"OK"

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError(f"server closed the connection; have {self.buf[-300:]!r}")
        self.transcript += chunk
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _response(self) -> bytes:
        out = b""
        while True:
            line = self._line()
            out += line
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return out
            size = int(m.group(1))
            while len(self.buf) < size:
                self._fill()
            out += b"\r\n" + self.buf[:size]
            self.buf = self.buf[size:]

    def cmd(self, *parts: bytes | str) -> tuple[list[bytes], bytes]:
        """Sends ``tag part part ...``; a part wrapped in :class:`Lit` goes as a LITERAL+. Returns
        the untagged responses and the tagged line, which must be OK, NO or BAD."""
        self.n += 1
        tag = b"x%d" % self.n
        data = tag
        for p in parts:
            if isinstance(p, Lit):
                data += b" {%d+}\r\n" % len(p.data) + p.data
            else:
                data += b" " + (p.encode() if isinstance(p, str) else p)
        self.sock.sendall(data + b"\r\n")
        untagged = []
        while True:
            try:
                r = self._response()
            except EOFError:
                # The error budget (too many BAD replies) ends the session with a BYE: a clean
                # end. Carry on in a new session.
                assert untagged and untagged[-1].startswith(b"* BYE"), (data[:200], untagged)
                self.sock.close()
                self.reconnects += 1
                self._connect()
                return untagged, tag + b" BAD (session closed)"
            if r.startswith(tag + b" "):
                status = r.split(b" ", 2)[1]
                assert status in (b"OK", b"NO", b"BAD"), r
                return untagged, r
            assert r.startswith(b"* ") or r.startswith(b"+ "), r
            untagged.append(r)

    def status_of(self, *parts) -> bytes:
        return self.cmd(*parts)[1].split(b" ", 2)[1]


class Lit:
    def __init__(self, data: bytes):
        self.data = data


def mutf7_forced(s: str) -> str:
    """Modified UTF-7 (RFC 3501 §5.1.3) with every character in the base64 form, printable
    ASCII included, which a strict decoder refuses (a lenient one would decode "&AC4ALgAv-" to
    "../")."""
    b = base64.b64encode(s.encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
    return "&" + b.decode() + "-"


def quoted(name: bytes) -> bytes | Lit:
    """An IMAP string for ``name``: quoted when it can be, else a literal."""
    if any(c < 0x20 or c == 0x7F for c in name) or len(name) > 1000:
        return Lit(name)
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def url_escape(name: bytes) -> bytes:
    return b"".join(bytes([c]) if chr(c).isalnum() else b"%%%02X" % c for c in name)


# Names that try to reach bob's mailboxes from alice's namespace.
ATTACK_NAMES: list[bytes] = [
    s.encode() for t in ("INBOX", "Secrets", "Secrets/Deep") for s in (
        f"../bob/{t}", f"..//bob/{t}", f"/../bob/{t}", f"../../bob/{t}", f"./../bob/{t}",
        f"INBOX/../../bob/{t}", f"/bob/{t}", f"bob/{t}", f"~bob/{t}", f"~bob/../bob/{t}",
        f"#users/bob/{t}", f"#shared/bob/{t}", f"#user/bob/{t}", f"Other Users/bob/{t}",
        f"Shared Folders/bob/{t}", f"user/bob/{t}", f"user.bob.{t}", f"bob@localhost/{t}",
        f"%/{t}", f"*/{t}", f"../%/{t}", f"../*/{t}", f"bob:{t}", f"bob\\{t}", f"..\\bob\\{t}",
    )
] + [
    b"..", b"../", b"/", b"//", b".", b"../bob", b"~bob", b"#users/bob", b"Other Users/bob",
    b"bob", b"BOB", b"Bob", b"%", b"*", b"../*", b"../%", b"~", b"#users", b"~/..",
    b"inbox", b"InBoX", b"iNBOX/../../bob/INBOX", b"INBOX/..", b"INBOX/../bob",
    # Modified UTF-7 spellings of "../bob/INBOX", "/bob/Secrets", "inbox" and "INBOX".
    mutf7_forced("../bob/INBOX").encode(), mutf7_forced("/bob/Secrets").encode(),
    b"&AC4ALg-/bob/Secrets", b"&AC8-bob&AC8-Secrets", mutf7_forced("inbox").encode(),
    mutf7_forced("INBOX").encode(), b"&-/../bob/INBOX", b"&AC4ALgAv-bob/INBOX",
    # UTF-8 (the session enables UTF8=ACCEPT for half of the run): look-alike slashes and dots.
    "\u2215bob\u2215INBOX".encode(), "\uff0e\uff0e/bob/INBOX".encode(),
    # Control bytes (sent as literals).
    b"bob\x00Secrets", b"../bob\x00/INBOX", b"Secrets\x00", b"\x00", b"..\r\n/bob/INBOX",
    b"Secrets\rx", b"Secrets\nx", b"\x7f../bob",
    # Very long names.
    b"a" * 5000, b"../" * 2000 + b"bob/INBOX", b"Secrets/" * 1000,
]


def run_name_attacks(a: Attacker, names: list[bytes]) -> None:
    """Every mailbox command with each name, from a state where alice has INBOX selected (COPY and
    MOVE need one) and a scratch mailbox to rename."""
    ok_a = a.status_of
    assert ok_a(b"CREATE AliceScratch") == b"OK"
    for name in names:
        q = quoted(name)
        # Reads first, while no mailbox of alice's can have the name.
        for verb in (b"STATUS", b"GETQUOTAROOT", b"EXAMINE", b"SELECT"):
            extra = [b"(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)"] if verb == b"STATUS" else []
            a.cmd(verb, q, *extra)
        a.cmd(b"SELECT INBOX")
        a.cmd(b"LIST", b'""', q)
        a.cmd(b"LIST", q, b'"*"')
        a.cmd(b"LIST", q, b'"%"')
        a.cmd(b"LSUB", b'""', q)
        a.cmd(b"LIST (SUBSCRIBED RECURSIVEMATCH)", b'""', q,
              b"RETURN (CHILDREN STATUS (MESSAGES))")
        a.cmd(b'LIST ""', b"(", q, b")")
        if not isinstance(q, Lit):
            url = b"/" + url_escape(name) + b"/;UID=1"
            a.cmd(b"APPEND INBOX CATENATE (URL", quoted(url), b")")
        # Writes: each either fails or acts on alice's own namespace (bob is checked after).
        a.cmd(b"COPY 1", q)
        a.cmd(b"UID COPY 1:*", q)
        a.cmd(b"APPEND", q, b"(\\Seen)", Lit(alice_message(9)))
        a.cmd(b"SUBSCRIBE", q)
        a.cmd(b"UNSUBSCRIBE", q)
        if a.status_of(b"RENAME", q, b"AliceStolen") == b"OK":
            a.cmd(b"RENAME AliceStolen", q)  # put it back (INBOX leaves an AliceStolen)
            a.cmd(b"DELETE AliceStolen")
        if a.status_of(b"RENAME AliceScratch", q) == b"OK":
            assert a.status_of(b"RENAME", q, b"AliceScratch") == b"OK"
        if a.status_of(b"CREATE", q) == b"OK":
            # Created in alice's namespace: empty, and hers to delete (a trailing separator
            # only declares the intent to create children, RFC 9051 §6.3.4).
            untagged, tagged = a.cmd(b"EXAMINE", quoted(name.rstrip(b"/")))
            assert tagged.split()[1] == b"OK", (name, tagged)
            assert b"* 0 EXISTS" in untagged, (name, untagged)
        a.cmd(b"SELECT INBOX")
        # MOVE one of alice's own appended messages, never her delivered ones.
        if a.status_of(b"APPEND INBOX", Lit(alice_message(8))) == b"OK":
            a.cmd(b"SELECT INBOX")
            untagged, _ = a.cmd(b"UID SEARCH SUBJECT \"alice own 8\"")
            uids = [u for r in untagged if r.startswith(b"* SEARCH") for u in r.split()[2:]]
            if uids:
                a.cmd(b"UID MOVE", uids[-1], q)
        a.cmd(b"DELETE", q)
        a.cmd(b"SELECT INBOX")
        assert a.status_of(b"NOOP") == b"OK"


def assert_no_leak(data: bytes | bytearray, who: str = "alice") -> None:
    i = bytes(data).upper().find(TOKEN)
    assert i < 0, f"{who} received bob's data: ...{bytes(data)[max(0, i - 200):i + 100]!r}..."


@pytest.fixture
def srv(make_server):
    s = make_server(users=USERS, **OPTIONS)
    populate(s)
    return s


def test_bob_snapshot_sees_his_data(srv):
    """The oracle itself: bob's snapshot holds his mailboxes, subscriptions, flags and keyword,
    and alice's holds none of them."""
    bob = snapshot(srv)
    assert snapshot(srv) == bob  # taking one changes nothing
    flat = repr(bob).encode()
    for needle in (b"Secrets/Deep", BOB_HIDDEN.encode(), BOB_KEYWORD.encode(), b"\\\\Flagged",
                   b"Quarterly report 3"):
        assert needle in flat, needle
    assert bob["boxes"]["INBOX (store)"] == [1, 2, 3]
    assert len(bob["lsub"]) == 2
    alice = snapshot(srv, "alice")
    assert_no_leak(repr(alice).encode())
    assert alice["boxes"]["INBOX (store)"] == [1, 2]
    # Any change of bob's shows: a flag, a subscription.
    c = imap_login(srv, "bob")
    ok(c.select("Secrets/Deep"))
    ok(c.uid("STORE", "1", "+FLAGS", "(\\Answered)"))
    assert snapshot(srv) != bob
    bob = snapshot(srv)
    ok(c.unsubscribe("Secrets"))
    c.logout()
    assert snapshot(srv) != bob


@pytest.mark.slow
@pytest.mark.parametrize("utf8", [False, True], ids=["mutf7", "utf8"])
def test_imap_mailbox_names_stay_in_own_namespace(srv, utf8):
    before = snapshot(srv)
    a = Attacker(srv, utf8=utf8)
    try:
        run_name_attacks(a, ATTACK_NAMES)
        assert_no_leak(a.transcript)
    finally:
        a.close()
    assert snapshot(srv) == before


def test_imap_list_patterns_and_namespace_show_only_own_mailboxes(srv):
    before = snapshot(srv)
    a = Attacker(srv)
    try:
        untagged, tagged = a.cmd(b"NAMESPACE")
        # One personal namespace and no "other users" or "shared" ones (RFC 2342).
        assert untagged == [b'* NAMESPACE (("" "/")) NIL NIL'], untagged
        patterns = [b"*", b"%", b"../*", b"../%", b"/*", b"~bob*", b"~*", b"#users/*",
                    b"Other Users/*", b"*bob*", b"*Secrets*", b"%/%", b"*/*", b"..*", b"INBOX*",
                    b"inbox/../*", b"%Hidden%", b"*Hidden*"]
        refs = [b"", b"../", b"/", b"~bob/", b"#users/", b"Other Users/bob/", b"..", b"bob/"]
        names = []
        for ref in refs:
            for pat in patterns:
                for verb in (b"LIST", b"LSUB"):
                    untagged, tagged = a.cmd(verb, quoted(ref), quoted(pat))
                    names += [r for r in untagged if r.startswith(b"* " + verb)]
                untagged, _ = a.cmd(b"LIST (SUBSCRIBED)", quoted(ref), quoted(pat),
                                    b"RETURN (STATUS (MESSAGES UIDNEXT))")
                names += untagged
        # Alice has INBOX only and subscribes to nothing: nothing else may ever be listed.
        for line in names:
            m = re.match(rb'\* (LIST|LSUB|STATUS) (?:\([^)]*\) (?:"/"|NIL) )?(.*?)( \(.*\))?$',
                         line)
            assert m, line
            assert m.group(1) != b"LSUB", line
            assert m.group(2) in (b"INBOX", b'""'), line
        assert_no_leak(a.transcript)
    finally:
        a.close()
    assert snapshot(srv) == before


def test_imap_uids_and_search_see_only_own_messages(srv):
    """Bob's INBOX has UIDs 1-3, Secrets 1-2: in alice's mailboxes the same UIDs name alice's
    messages or nothing, and no SEARCH key finds bob's."""
    before = snapshot(srv)
    a = Attacker(srv)
    try:
        for box in (b"INBOX", b"AliceEmpty"):
            if box != b"INBOX":
                assert a.status_of(b"CREATE", box) == b"OK"
            assert a.status_of(b"SELECT", box) == b"OK"
            for cmd in (b"UID FETCH 1:* (FLAGS BODY[] ENVELOPE BODYSTRUCTURE)",
                        b"UID FETCH 1:4294967295 (BODY.PEEK[HEADER] RFC822.SIZE)",
                        b"UID FETCH 3 BODY[]", b"UID FETCH 4294967295 BODY[]",
                        b"FETCH 1:* (UID FLAGS MODSEQ)", b"UID FETCH 1:10 (FLAGS) (CHANGEDSINCE 0)",
                        b"UID FETCH 3,5,100 BINARY[1]", b"FETCH 3 BODY[]"):
                a.cmd(cmd)
            for key in (b"SUBJECT Quarterly", b"BODY Confidential", b"TEXT figures",
                        b"HEADER Message-ID q1", b"KEYWORD $Kw", b"FLAGGED", b"FROM carol",
                        b"UID 1:4294967295", b"ALL",
                        # FTS5 query syntax inside the needle: it stays one quoted phrase.
                        b'SUBJECT "own\\" OR \\"Quarterly"', b'TEXT "Confid*"',
                        b'BODY "figures\\" OR subject:\\"report"', b'SUBJECT "Quarterly) OR (own"'):
                for verb in (b"UID SEARCH", b"SEARCH RETURN (ALL COUNT)",
                             b"UID SORT (SUBJECT) UTF-8", b"UID THREAD REFERENCES UTF-8"):
                    untagged, tagged = a.cmd(verb, key)
                    if key.split()[0] in (b"SUBJECT", b"BODY", b"TEXT", b"HEADER", b"KEYWORD",
                                          b"FLAGGED", b"FROM"):
                        # Only bob's messages match these: the result must be empty.
                        for r in untagged:
                            assert re.fullmatch(rb"\* (SEARCH|SORT|THREAD)|\* ESEARCH \(TAG "
                                                rb'"x\d+"\)( UID)?( COUNT 0)?', r), (key, r)
            if box == b"INBOX":
                # The control: the same keys do find alice's own messages.
                untagged, _ = a.cmd(b'UID SEARCH SUBJECT "alice own"')
                assert untagged == [b"* SEARCH 1 2"], untagged
                untagged, _ = a.cmd(b'UID SEARCH BODY "alice body"')
                assert untagged == [b"* SEARCH 1 2"], untagged
            # STORE and EXPUNGE on UIDs bob has act on alice's mailbox only.
            a.cmd(b"UID STORE 1:10 +FLAGS (\\Deleted $AliceMark)")
            a.cmd(b"UID STORE 1:10 -FLAGS (\\Deleted)")
            a.cmd(b"UID EXPUNGE 3:10")
            a.cmd(b"UID COPY 1:10 AliceEmpty")
        assert_no_leak(a.transcript)
    finally:
        a.close()
    assert snapshot(srv) == before


def test_imap_quota_and_setquota_stay_own(srv):
    before = snapshot(srv)
    a = Attacker(srv)
    try:
        for root in (b'""', b'"bob"', b'"../bob"', b'"~bob"', b'"#users/bob"', b'"user.bob"',
                     b'"*"'):
            untagged, tagged = a.cmd(b"GETQUOTA", root)
            if root != b'""':
                assert tagged.split()[1] == b"NO", tagged
            else:
                # Alice's usage: her 2 messages, not bob's 7.
                assert any(b"MESSAGE 2 1000" in r for r in untagged), untagged
            assert a.status_of(b"SETQUOTA", root, b"(STORAGE 1)") == b"NO"
        for box in (b"INBOX", b'"../bob/INBOX"', b'"~bob/INBOX"', b'"Secrets"'):
            untagged, tagged = a.cmd(b"GETQUOTAROOT", box)
            if box == b"INBOX":
                assert any(b"MESSAGE 2 1000" in r for r in untagged), untagged
            else:
                assert tagged.split()[1] == b"NO", tagged
        assert_no_leak(a.transcript)
    finally:
        a.close()
    assert snapshot(srv) == before


def _drain(a: Attacker, seconds: float) -> bytes:
    """What arrives unsolicited within ``seconds``."""
    a.sock.settimeout(0.1)
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = a.sock.recv(1 << 16)
        except socket.timeout:
            continue
        if not chunk:
            break
        got += chunk
    a.transcript += got
    a.buf += got
    a.sock.settimeout(TIMEOUT)
    return got


def test_notify_and_idle_see_no_events_of_other_users(srv):
    """Alice watches with NOTIFY (every personal event) and IDLE while bob's mail changes: she
    is told nothing. NOTIFY naming bob's mailboxes is refused or names alice's own."""
    a = Attacker(srv)
    watcher = Attacker(srv)
    try:
        for spec in (b'(mailboxes "../bob/INBOX" (MessageNew MessageExpunge FlagChange))',
                     b'(subtree "~bob" (MessageNew MessageExpunge))',
                     b'(subtree "#users/bob" (MessageNew))',
                     b'(mailboxes ("Secrets" "bob/Secrets") (MessageNew))'):
            a.cmd(b"NOTIFY SET STATUS", spec)
        assert a.status_of(
            b"NOTIFY SET (personal (MessageNew MessageExpunge FlagChange MailboxName "
            b"SubscriptionChange))") == b"OK"
        assert watcher.status_of(b"SELECT INBOX") == b"OK"
        watcher.sock.sendall(b"i1 IDLE\r\n")
        assert watcher._line().startswith(b"+ ")
        # Bob changes everything he can.
        deliver(srv, ["bob@localhost"], bob_message(20))
        c = imap_login(srv, "bob")
        ok(c.create("New" + TOKEN.decode()))
        ok(c.subscribe("New" + TOKEN.decode()))
        ok(c.rename("Secrets/Deep", "Deeper" + TOKEN.decode()))
        ok(c.select("INBOX"))
        ok(c.uid("STORE", "1:*", "+FLAGS", "(\\Answered $Other" + TOKEN.decode() + ")"))
        ok(c.uid("STORE", "1", "+FLAGS", "(\\Deleted)"))
        ok(c.expunge())
        ok(c.append("Secrets", None, None, bob_message(21)))
        c.logout()
        got = _drain(a, 1.0) + _drain(watcher, 0.5)
        assert got == b"", got
        watcher.sock.sendall(b"DONE\r\n")
        assert watcher._line().startswith(b"i1 OK"), watcher.transcript[-200:]
        untagged, _ = a.cmd(b"NOOP")
        assert untagged == [], untagged
        assert_no_leak(a.transcript)
        assert_no_leak(watcher.transcript)
    finally:
        a.close()
        watcher.close()


# -- logins -------------------------------------------------------------------------------------

#: Login names that are not alice, with alice's password: each must fail, or log alice in (never
#: bob).
LOGIN_NAMES: list[bytes] = [
    b"bob", b"BOB", b"Bob", b" bob", b"bob ", b"bob\t", b"bob\x00", b"bob\x00alice",
    b"alice\x00bob",
    b"../bob", b"bob/..", b"alice/../bob", b"./bob", b"~bob", b"bob@localhost", b"BOB@LOCALHOST",
    b"bob%alice", b"alice%bob", b"bob*", b"*", b"%", b"alice\r\nbob", b"", b"bob" + b"\x00" * 5,
    b"ALICE", b"Alice", b" alice", b"alice ", b"alice\x00",
]


def _maildrop_is_alices(pop: poplib.POP3) -> bool:
    count, _ = pop.stat()
    tops = b"".join(b"\n".join(pop.top(i, 0)[1]) for i in range(1, count + 1))
    assert_no_leak(tops, "alice over POP3")
    return count == 2 and b"alice own" in tops


def test_imap_login_names_never_reach_bob(srv):
    """LOGIN with alice's password and every other spelling of a name (bob's, with path tricks,
    whitespace, NUL, CR LF): refused, or alice logged in to her own mailboxes."""
    logged_in = []
    for name in LOGIN_NAMES + [b"alice"]:  # the last one is the control: it must work
        s = socket.create_connection((srv.host, srv.imap_port), timeout=TIMEOUT)
        try:
            s.recv(4096)
            s.sendall(b"l1 LOGIN {%d+}\r\n%s {6+}\r\nsecret\r\n"
                      b"l2 STATUS INBOX (MESSAGES)\r\nl3 LIST \"\" \"*\"\r\nl4 LOGOUT\r\n"
                      % (len(name), name))
            got = b""
            while not re.search(rb"(^|\n)(l4 |\* BYE)", got):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        finally:
            s.close()
        tagged = re.search(rb"(?m)^l1 (OK|NO|BAD)", got)
        assert tagged, (name, got)
        assert_no_leak(got)
        if tagged.group(1) == b"OK":
            # Only a spelling of alice may log in, and then as alice (her 2 messages).
            assert name.strip().lower() == b"alice", name
            assert b"* STATUS INBOX (MESSAGES 2)" in got, got
            logged_in.append(name)
    assert b"alice" in logged_in


def test_pop3_user_names_never_reach_bob(srv):
    for name in LOGIN_NAMES:
        c = RawClient(srv.host, srv.pop3_port)
        try:
            assert c.read_line().startswith(b"+OK")
            c.send(b"USER " + name + b"\r\n")
            first = c.read_line()
            assert first[:3] in (b"+OK", b"-ER"), first
            if first.startswith(b"-ERR"):
                continue
            c.send(b"PASS secret\r\n")
            reply = c.read_line()
            assert reply[:3] in (b"+OK", b"-ER"), reply
            if reply.startswith(b"+OK"):
                assert name.strip().lower().rstrip(b"\x00") == b"alice", name
                c.send(b"TOP 1 5\r\n")
                assert c.read_line().startswith(b"+OK")
                body = b"\n".join(c.read_multiline())
                assert_no_leak(body, f"POP3 login {name!r}")
                assert b"alice own" in body
        finally:
            c.close()
    # AUTH PLAIN with an authorization identity of bob's (RFC 4616 authzid): alice's
    # credentials must not act as bob.
    c = RawClient(srv.host, srv.pop3_port)
    try:
        c.read_line()
        for authz in (b"bob", b"../bob", b"BOB", b"alice"):  # alice's own: the control
            blob = base64.b64encode(authz + b"\x00alice\x00secret")
            c.send(b"AUTH PLAIN " + blob + b"\r\n")
            reply = c.read_line()
            assert reply.startswith(b"+OK" if authz == b"alice" else b"-ERR"), (authz, reply)
        c.send(b"TOP 1 0\r\n")
        assert c.read_line().startswith(b"+OK")
        assert b"Subject: alice own 1" in b"\n".join(c.read_multiline())
    finally:
        c.close()


def test_the_postmaster_account_made_on_first_mail_cannot_be_logged_into(srv):
    """Mail to postmaster creates its account with an unusable secret ("!"): no password, not
    even "!" or the empty one, opens it (its mail would be everyone's reports)."""
    deliver(srv, ["postmaster@localhost"], alice_message(7))
    assert srv.mailbox_uids("postmaster", "INBOX") == [1]
    for password in (b"!", b"", b"*", b"secret"):
        s = socket.create_connection((srv.host, srv.imap_port), timeout=TIMEOUT)
        try:
            s.recv(4096)
            s.sendall(b"l1 LOGIN postmaster {%d+}\r\n%s\r\n" % (len(password), password))
            got = s.recv(4096)
            assert got.startswith(b"l1 NO"), (password, got)
        finally:
            s.close()
        c = RawClient(srv.host, srv.pop3_port)
        try:
            c.read_line()
            c.send(b"USER postmaster\r\nPASS " + password + b"\r\n")
            assert c.read_line().startswith(b"+OK")
            assert c.read_line().startswith(b"-ERR"), password
        finally:
            c.close()


def test_imap_second_login_in_a_session_is_refused(srv):
    """Logged in as alice, LOGIN or AUTHENTICATE as bob (with his real password) is refused:
    the session stays alice's."""
    a = Attacker(srv)
    try:
        blob = base64.b64encode(b"\x00bob\x00hunter2")
        for cmd in (b'LOGIN bob hunter2', b"AUTHENTICATE PLAIN " + blob):
            assert a.status_of(cmd) == b"BAD", cmd
        untagged, _ = a.cmd(b"STATUS INBOX (MESSAGES)")
        assert untagged == [b"* STATUS INBOX (MESSAGES 2)"], untagged
        assert_no_leak(a.transcript)
    finally:
        a.close()


def test_imap_authenticate_authzid_of_other_user_is_refused(srv):
    for authz in (b"bob", b"../bob", b"BOB", b"bob\x00", b"alice"):  # alice's own: the control
        s = socket.create_connection((srv.host, srv.imap_port), timeout=TIMEOUT)
        try:
            s.recv(4096)
            blob = base64.b64encode(authz + b"\x00alice\x00secret")
            s.sendall(b"a1 AUTHENTICATE PLAIN " + blob + b"\r\n")
            got = b""
            while not re.search(rb"(^|\n)a1 ", got):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            want = rb"(?m)^a1 OK" if authz == b"alice" else rb"(?m)^a1 (NO|BAD)"
            assert re.search(want, got), (authz, got)
        finally:
            s.close()


def test_pop3_maildrop_is_the_logged_in_users(srv):
    before = snapshot(srv)
    p = poplib.POP3(srv.host, srv.pop3_port, timeout=TIMEOUT)
    p.user("alice")
    p.pass_("secret")
    assert _maildrop_is_alices(p)
    # Alice has messages 1-2; numbers bob has (3) and beyond name nothing.
    body = b"\n".join(p.retr(2)[1])
    assert b"alice own 2" in body
    assert_no_leak(body)
    for cmd in ("RETR 3", "TOP 3 0", "UIDL 3", "LIST 3", "DELE 3", "RETR 99", "RETR -1",
                "RETR 0", "RETR ../bob/1",
                # A second login in the TRANSACTION state, even with bob's password.
                "USER bob", "PASS hunter2", "APOP bob 0123456789abcdef0123456789abcdef",
                "AUTH PLAIN " + base64.b64encode(b"\x00bob\x00hunter2").decode()):
        try:
            resp = p._shortcmd(cmd)
        except poplib.error_proto as e:
            resp = e.args[0]
        assert resp.startswith(b"-ERR"), (cmd, resp)
    assert _maildrop_is_alices(p)
    p.rset()
    p.quit()
    assert snapshot(srv) == before


# -- SMTP ---------------------------------------------------------------------------------------

def test_smtp_recipient_tricks_deliver_only_to_the_named_user(srv):
    """RCPT TO spellings with path tricks: each is refused, or delivered to exactly one user's
    INBOX; nothing lands in a mailbox other than INBOX and nothing in alice's but what names
    alice."""
    bob_list = snapshot(srv)["list"]
    before_alice = srv.mailbox_uids("alice", "INBOX")
    before_bob = srv.mailbox_uids("bob", "INBOX")
    secrets = srv.mailbox_uids("bob", "Secrets")
    tricks = ["<bob@localhost>", "<BOB@localhost>", "<../bob@localhost>", "<bob/..@localhost>",
              "<alice/../bob@localhost>", "<bob/Secrets@localhost>", "<bob+Secrets@localhost>",
              "<\"bob/Secrets\"@localhost>", "<\"../bob\"@localhost>", "<bob%alice@localhost>",
              "<@localhost:bob@localhost>", "<bob@localhost/../alice>", "<\"bob\\\"\"@localhost>",
              "<alice@localhost>"]
    to_bob = to_alice = 0
    for rcpt in tricks:
        c = smtplib.SMTP(srv.host, srv.smtp_port, timeout=TIMEOUT)
        c.ehlo("client.test")
        code, _ = c.docmd("MAIL FROM:<x@example.org>")
        assert code == 250
        code, reply = c.docmd("RCPT TO:" + rcpt)
        assert 200 <= code < 600, (rcpt, code, reply)
        if code == 250:
            code, _ = c.docmd("DATA")
            assert code == 354
            c.send(f"Subject: rcpt {rcpt}\r\n\r\nhi\r\n.\r\n".encode())
            code, _ = c.getreply()
            assert code == 250, rcpt
            now_bob = len(srv.mailbox_uids("bob", "INBOX")) - len(before_bob)
            now_alice = len(srv.mailbox_uids("alice", "INBOX")) - len(before_alice)
            # Exactly one user got it, and alice only when the address names alice.
            assert now_bob + now_alice == to_bob + to_alice + 1, rcpt
            if now_alice > to_alice:
                assert "alice" in rcpt.lower(), rcpt
            to_bob, to_alice = now_bob, now_alice
        c.quit()
    assert srv.mailbox_uids("bob", "Secrets") == secrets
    assert snapshot(srv)["list"] == bob_list
    assert to_bob >= 1  # plain <bob@localhost> at least


def test_login_replies_do_not_tell_which_users_exist(srv):
    """A failed login, POP3 USER, SMTP VRFY/EXPN: the same reply for bob (who exists) as for a
    user who does not, so that alice cannot learn the names of other accounts from them. (RCPT
    TO tells, as SMTP must for local recipients.)"""
    replies = {}
    for name in (b"bob", b"nosuchuser"):
        got = []
        c = RawClient(srv.host, srv.pop3_port)
        try:
            c.read_line()
            c.send(b"USER " + name + b"\r\n")
            got.append(c.read_line())
            c.send(b"PASS secret\r\n")
            got.append(c.read_line())
            blob = base64.b64encode(b"\x00" + name + b"\x00secret")
            c.send(b"AUTH PLAIN " + blob + b"\r\n")
            got.append(c.read_line())
        finally:
            c.close()
        a = socket.create_connection((srv.host, srv.imap_port), timeout=TIMEOUT)
        try:
            a.recv(4096)
            a.sendall(b"l1 LOGIN " + name + b" secret\r\n")
            got.append(a.recv(4096))
        finally:
            a.close()
        c = RawClient(srv.host, srv.smtp_port)
        try:
            c.read_reply()
            c.cmd(b"EHLO client.test")
            c.read_reply()
            for cmd in (b"VRFY ", b"EXPN "):
                c.cmd(cmd + name)
                got.append(c.read_reply())
        finally:
            c.close()
        replies[name] = got
    assert replies[b"bob"] == replies[b"nosuchuser"]
    assert replies[b"bob"][1].startswith(b"-ERR")


def test_a_message_delivered_to_both_users_is_two_independent_copies(srv):
    """One delivery to alice and bob stores the body once (shared in the store). Whatever alice
    does to her copy (flags, COPY, MOVE, EXPUNGE, deleting the mailbox) leaves bob's copy, its
    flags and its bytes as they were."""
    shared = (b"From: carol@example.org\r\nTo: alice@localhost, bob@localhost\r\n"
              b"Subject: for both\r\nMessage-ID: <both@example.org>\r\n\r\nshared body\r\n")
    deliver(srv, ["alice@localhost", "bob@localhost"], shared)
    before = snapshot(srv)
    assert b"for both" in repr(before).encode()
    c = imap_login(srv, "bob")
    ok(c.select("INBOX", readonly=True))
    bob_copy = ok(c.uid("FETCH", "4", "(BODY.PEEK[])"))
    c.logout()
    assert shared in bob_copy[0][1]
    a = Attacker(srv)
    try:
        assert a.status_of(b"SELECT INBOX") == b"OK"
        assert a.status_of(b"UID STORE 3 +FLAGS (\\Seen \\Flagged $Mine)") == b"OK"
        assert a.status_of(b"CREATE Keep") == b"OK"
        assert a.status_of(b"UID COPY 3 Keep") == b"OK"
        assert a.status_of(b"UID STORE 3 +FLAGS (\\Deleted)") == b"OK"
        assert a.status_of(b"UID EXPUNGE 3") == b"OK"
        assert a.status_of(b"SELECT Keep") == b"OK"
        assert a.status_of(b"CREATE Gone") == b"OK"
        assert a.status_of(b"UID MOVE 1 Gone") == b"OK"
        assert a.status_of(b"CLOSE") == b"OK"
        assert a.status_of(b"DELETE Gone") == b"OK"
        assert a.status_of(b"DELETE Keep") == b"OK"
        assert_no_leak(a.transcript)
    finally:
        a.close()
    assert snapshot(srv) == before
    c = imap_login(srv, "bob")
    ok(c.select("INBOX", readonly=True))
    assert ok(c.uid("FETCH", "4", "(BODY.PEEK[])")) == bob_copy
    c.logout()


def _median_reply_ms(send_and_wait, samples: int = 21) -> float:
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        send_and_wait()
        times.append(time.perf_counter() - t)
    return sorted(times)[samples // 2] * 1000


def test_failed_login_timing_does_not_tell_which_users_exist(srv):
    """A wrong password for bob costs the PBKDF2 check of his secret; a login that does not
    exist must cost as much (a dummy secret), or the reply's timing tells alice which accounts
    exist (about 10x apart before the fix). Medians of interleaved attempts, with a wide
    margin for a loaded machine."""
    a = socket.create_connection((srv.host, srv.imap_port), timeout=TIMEOUT)
    p = RawClient(srv.host, srv.pop3_port)
    try:
        a.recv(4096)
        p.read_line()

        def imap(name):
            def go():
                a.sendall(b"l LOGIN " + name + b" wrong\r\n")
                assert a.recv(4096).startswith(b"l NO")
            return go

        def pop(name):
            def go():
                p.send(b"USER " + name + b"\r\nPASS wrong\r\n")
                assert p.read_line().startswith(b"+OK")
                assert p.read_line().startswith(b"-ERR")
            return go

        for proto in (imap, pop):
            known = unknown = 0.0
            for _ in range(3):  # interleaved rounds, so that load spikes hit both
                known += _median_reply_ms(proto(b"bob"))
                unknown += _median_reply_ms(proto(b"nosuchuser"))
            assert unknown > 0.4 * known, (proto.__name__, known / 3, unknown / 3)
    finally:
        a.close()
        p.close()
