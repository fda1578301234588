"""Every IMAP command the server implements, through IMAPClient's API (the library many Python
mail tools use), with exact expected values; and a two-session EXPUNGE test."""
from __future__ import annotations

import datetime
import threading

import imapclient
import pytest
from imapclient.exceptions import IMAPClientError

from conftest import TIMEOUT, deliver, message

MSG = (b"From: Alice <alice@localhost>\r\n"
       b"To: Bob <bob@localhost>\r\n"
       b"Subject: hello there\r\n"
       b"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
       b"Message-ID: <one@example.org>\r\n"
       b"MIME-Version: 1.0\r\n"
       b'Content-Type: multipart/mixed; boundary="B"\r\n'
       b"\r\n"
       b"--B\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: quoted-printable\r\n"
       b"\r\n"
       b"caf=C3=A9 au lait\r\n"
       b"--B\r\n"
       b"Content-Type: application/octet-stream\r\n"
       b"Content-Transfer-Encoding: base64\r\n"
       b"\r\n"
       b"AQIDBA==\r\n"
       b"--B--\r\n")


@pytest.fixture
def client(server, _clients):
    """Factory: ``client(login="alice")`` opens an IMAPClient, logged in unless None."""

    def connect(login="alice"):
        c = imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=TIMEOUT)
        _clients.append(c.socket())
        if login is not None:
            c.login(login, {"alice": "secret", "bob": "hunter2"}[login])
        return c

    return connect


def test_capabilities_login_logout(client):
    c = client(login=None)
    caps = set(c.capabilities())
    assert {b"IMAP4REV1", b"IMAP4REV2", b"AUTH=PLAIN", b"LITERAL+", b"IDLE", b"UIDPLUS", b"MOVE",
            b"NAMESPACE", b"UNSELECT", b"ENABLE", b"ID", b"BINARY", b"ESEARCH"} <= caps
    assert c.has_capability("IDLE")
    with pytest.raises(IMAPClientError):
        c.login("alice", "wrong")
    assert c.login("alice", "secret") is not None
    caps = set(c.capabilities())
    assert b"AUTH=PLAIN" not in caps  # the capability list changes after login
    assert c.logout() == b"millipost IMAP server signing off"  # the BYE text


def test_id_and_enable(client):
    c = client(login=None)
    ours = ((b"name", b"millipost", b"version", b"0.1.0"),)
    assert c.id_({"name": "pytest", "version": "1"}) == ours
    assert c.id_() == ours  # ID NIL
    # RFC 2971 §3.3 limits: 30 pairs of values up to 1024 octets fit before login...
    big = {f"f{i:02d}" + "x" * 27: "v" * 1024 for i in range(30)}
    assert c.id_(big) == ours
    # ...a value of 1025 octets does not.
    with pytest.raises(IMAPClientError):
        c.id_({"name": "v" * 1025})
    c.login("alice", "secret")
    assert c.enable("UTF8=ACCEPT") == [b"UTF8=ACCEPT"]
    assert c.enable("X-NO-SUCH") == []


def test_namespace_and_list(client):
    c = client()
    ns = c.namespace()
    assert ns.personal == (("", "/"),)
    assert ns.other is None and ns.shared is None
    # INBOX and the special-use mailboxes made at the first login (RFC 6154).
    assert c.list_folders() == [
        ((b"\\HasNoChildren", b"\\Archive"), b"/", "Archive"),
        ((b"\\HasNoChildren", b"\\Drafts"), b"/", "Drafts"),
        ((b"\\HasNoChildren",), b"/", "INBOX"),
        ((b"\\HasNoChildren", b"\\Junk"), b"/", "Junk"),
        ((b"\\HasNoChildren", b"\\Sent"), b"/", "Sent"),
        ((b"\\HasNoChildren", b"\\Trash"), b"/", "Trash"),
    ]
    # XLIST is not offered (LIST with SPECIAL-USE replaced it): the command is refused.
    assert not c.has_capability("XLIST")
    with pytest.raises(IMAPClientError):
        c.xlist_folders()


def test_create_rename_delete_subscribe(client):
    c = client()
    assert c.create_folder("Work") is not None
    c.create_folder("Work/2026")
    assert c.folder_exists("Work/2026")
    with pytest.raises(IMAPClientError):
        c.create_folder("Work")  # exists
    names = {name: flags for flags, _, name in c.list_folders()}
    assert names["Work"] == (b"\\HasChildren",)
    assert names["Work/2026"] == (b"\\HasNoChildren",)
    assert [n for _, _, n in c.list_folders("Work/", "%")] == ["Work/2026"]
    c.rename_folder("Work/2026", "Work/Archive")
    assert not c.folder_exists("Work/2026") and c.folder_exists("Work/Archive")
    assert c.list_sub_folders() == []
    c.subscribe_folder("Work/Archive")
    assert [n for _, _, n in c.list_sub_folders()] == ["Work/Archive"]
    c.unsubscribe_folder("Work/Archive")
    assert c.list_sub_folders() == []
    c.delete_folder("Work/Archive")
    assert not c.folder_exists("Work/Archive")
    with pytest.raises(IMAPClientError):
        c.delete_folder("No/Such")
    with pytest.raises(IMAPClientError):
        c.delete_folder("INBOX")
    # Unicode names go out in modified UTF-7 and come back decoded.
    c.create_folder("Reçus & envoyés")
    assert c.folder_exists("Reçus & envoyés")


def test_select_examine_status(client):
    c = client()
    c.append("INBOX", MSG, flags=[b"\\Seen"])
    c.append("INBOX", message("second"))
    st = c.folder_status("INBOX", ["MESSAGES", "UIDNEXT", "UNSEEN"])
    assert st[b"MESSAGES"] == 2 and st[b"UIDNEXT"] == 3 and st[b"UNSEEN"] == 1
    sel = c.select_folder("INBOX")
    assert sel[b"EXISTS"] == 2
    assert sel[b"UIDNEXT"] == 3
    assert sel[b"UIDVALIDITY"] > 0
    assert sel[b"READ-WRITE"] is True
    assert set(sel[b"FLAGS"]) >= {b"\\Answered", b"\\Flagged", b"\\Deleted", b"\\Seen",
                                  b"\\Draft"}
    assert b"\\*" in sel[b"PERMANENTFLAGS"]
    ex = c.select_folder("INBOX", readonly=True)
    assert ex[b"EXISTS"] == 2 and b"READ-ONLY" in ex and b"READ-WRITE" not in ex
    # EXAMINE: FETCH BODY[] does not set \Seen, STORE is refused.
    c.fetch([2], ["BODY[]"])
    assert c.get_flags([2]) == {2: ()}
    with pytest.raises(IMAPClientError):
        c.add_flags([2], [b"\\Flagged"])
    c.unselect_folder()
    with pytest.raises(IMAPClientError):
        c.fetch([1], ["FLAGS"])  # no mailbox selected any more


def test_append_with_flags_and_date(client):
    c = client()
    when = datetime.datetime(2026, 3, 2, 10, 0, 0,
                             tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    resp = c.append("INBOX", MSG, flags=[b"\\Flagged", b"$Label1"], msg_time=when)
    assert resp.startswith(b"[APPENDUID ") and b" 1]" in resp
    c.select_folder("INBOX")
    got = c.fetch([1], ["FLAGS", "INTERNALDATE", "RFC822.SIZE"])[1]
    # \\Recent: this IMAP4rev1 session is the first to select INBOX since the APPEND.
    assert set(got[b"FLAGS"]) == {b"\\Flagged", b"$Label1", b"\\Recent"}
    assert got[b"INTERNALDATE"].replace(tzinfo=None) == when.replace(tzinfo=None) \
        or got[b"INTERNALDATE"] == when.astimezone().replace(tzinfo=None)
    assert got[b"RFC822.SIZE"] == len(MSG)
    with pytest.raises(IMAPClientError):
        c.append("No such folder", MSG)


def test_fetch_every_item(client):
    c = client()
    c.append("INBOX", MSG)
    c.select_folder("INBOX")
    got = c.fetch([1], ["UID", "FLAGS", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE",
                        "BODY.PEEK[]", "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]",
                        "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
                        "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM)]", "BODY.PEEK[1]",
                        "BODY.PEEK[1.MIME]", "BODY.PEEK[2]", "BODY.PEEK[]<0.10>",
                        "BODY.PEEK[TEXT]<5.3>", "BINARY.PEEK[1]", "BINARY.PEEK[2]",
                        "BINARY.SIZE[1]", "BINARY.SIZE[2]", "RFC822.HEADER"])[1]
    header_end = MSG.index(b"\r\n\r\n") + 4
    assert got[b"SEQ"] == 1  # (IMAPClient keys the result by the UID)
    assert got[b"FLAGS"] == (b"\\Recent",)
    assert got[b"RFC822.SIZE"] == len(MSG)
    assert got[b"BODY[]"] == MSG
    assert got[b"BODY[HEADER]"] == MSG[:header_end]
    assert got[b"RFC822.HEADER"] == MSG[:header_end]
    assert got[b"BODY[TEXT]"] == MSG[header_end:]
    assert got[b"BODY[HEADER.FIELDS (SUBJECT FROM)]"] == (
        b"From: Alice <alice@localhost>\r\nSubject: hello there\r\n\r\n")
    assert got[b"BODY[HEADER.FIELDS.NOT (SUBJECT FROM)]"] == (
        MSG[:header_end].replace(b"From: Alice <alice@localhost>\r\n", b"")
        .replace(b"Subject: hello there\r\n", b""))
    assert got[b"BODY[1]"] == b"caf=C3=A9 au lait"
    assert got[b"BODY[1.MIME]"] == (b"Content-Type: text/plain; charset=utf-8\r\n"
                                    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
    assert got[b"BODY[2]"] == b"AQIDBA=="
    assert got[b"BODY[]<0>"] == MSG[:10]
    assert got[b"BODY[TEXT]<5>"] == MSG[header_end + 5:header_end + 8]
    assert got[b"BINARY[1]"] == "café au lait".encode()
    assert got[b"BINARY[2]"] == b"\x01\x02\x03\x04"
    assert got[b"BINARY.SIZE[1]"] == len("café au lait".encode())
    assert got[b"BINARY.SIZE[2]"] == 4
    env = got[b"ENVELOPE"]
    assert env.subject == b"hello there"
    assert env.message_id == b"<one@example.org>"
    assert [(a.name, a.mailbox, a.host) for a in env.from_] == [(b"Alice", b"alice",
                                                                  b"localhost")]
    assert [(a.name, a.mailbox, a.host) for a in env.to] == [(b"Bob", b"bob", b"localhost")]
    assert env.sender == env.from_ and env.reply_to == env.from_
    assert env.cc is None and env.bcc is None and env.in_reply_to is None
    bs = got[b"BODYSTRUCTURE"]
    assert bs.is_multipart
    parts, subtype = bs[0], bs[1]
    assert subtype == b"mixed"
    assert parts[0][:7] == (b"text", b"plain", (b"charset", b"utf-8"), None, None,
                            b"quoted-printable", len(b"caf=C3=A9 au lait"))
    assert parts[1][:7] == (b"application", b"octet-stream", None, None, None, b"base64", 8)
    assert got[b"BODY"][0][0][:7] == parts[0][:7]
    # None of these PEEKed: still unseen; a plain BODY[] sets \Seen and reports it.
    assert c.get_flags([1]) == {1: (b"\\Recent",)}
    got = c.fetch([1], ["BODY[1]"])[1]
    assert got[b"FLAGS"] == (b"\\Seen", b"\\Recent")
    # Sequence numbers instead of UIDs.
    c.use_uid = False
    assert c.fetch([1], ["UID"])[1][b"UID"] == 1
    with pytest.raises(IMAPClientError):
        c.fetch([5], ["UID"])  # no message 5


def test_binary_with_nul_is_a_literal8(server, client):
    # RFC 3516 §4.2: decoded content with NUL goes out as literal8 (~{n}). IMAPClient does not
    # parse literal8, so this reads the response with the test's own parser.
    from imap_wire import WireClient
    c = client()
    c.append("INBOX", MSG.replace(b"AQIDBA==", b"AAECAwQ="))
    w = WireClient(server.host, server.imap_port)
    try:
        w.ok("LOGIN alice secret")
        w.ok("SELECT INBOX")
        untagged, status = w.command("UID FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])")
        assert status.startswith(b"OK"), status
        assert b"BINARY[2] ~{5}\r\n\x00\x01\x02\x03\x04" in untagged[0], untagged
        assert w.fetch("1", "BINARY.SIZE[2]")[1]["BINARY.SIZE[2]"] == "5"
    finally:
        w.close()


def test_search_criteria(client):
    c = client()
    c.append("INBOX", MSG, flags=[b"\\Seen"])
    c.append("INBOX", message("lunch tomorrow", b"see you at noon\r\n"), flags=[b"\\Flagged"])
    c.append("INBOX", message("report", b"numbers attached\r\n"))
    c.select_folder("INBOX")
    assert c.search() == [1, 2, 3]
    assert c.search(["SEEN"]) == [1]
    assert c.search(["UNSEEN"]) == [2, 3]
    assert c.search(["FLAGGED"]) == [2]
    assert c.search(["SUBJECT", "lunch"]) == [2]
    assert c.search(["BODY", "noon"]) == [2]
    assert c.search(["FROM", "alice@localhost"]) == [1]
    assert c.search(["NOT", "SEEN", "SUBJECT", "report"]) == [3]
    assert c.search(["OR", "FLAGGED", "SEEN"]) == [1, 2]
    assert c.search(["LARGER", 300]) == [1]
    assert c.search(["UID", "2:*"]) == [2, 3]
    assert c.search(["TEXT", "no-such-word-anywhere"]) == []


def test_store_add_remove_set(client):
    c = client()
    c.append("INBOX", message("a"))
    c.append("INBOX", message("b"))
    c.select_folder("INBOX")
    r = b"\\Recent"  # the session's own: shown, never stored or removed by STORE
    assert c.add_flags([1, 2], [b"\\Flagged", b"Work"]) == {
        1: (b"\\Flagged", r, b"Work"), 2: (b"\\Flagged", r, b"Work")}
    assert c.remove_flags([1], [b"Work"]) == {1: (b"\\Flagged", r)}
    assert c.set_flags([2], [b"\\Answered"]) == {2: (b"\\Answered", r)}
    assert c.get_flags([1, 2]) == {1: (b"\\Flagged", r), 2: (b"\\Answered", r)}
    with pytest.raises(IMAPClientError):
        c.add_flags([1], [b"\\Recent"])  # not settable by clients


def test_copy_move_expunge(client):
    c = client()
    assert c.folder_exists("Archive")  # made at the first login (special-use \\Archive)
    for s in ("a", "b", "c", "d"):
        c.append("INBOX", message(s))
    c.select_folder("INBOX")
    c.copy([1, 2], "Archive")
    assert c.folder_status("Archive", ["MESSAGES"])[b"MESSAGES"] == 2
    c.move([3], "Archive")
    assert c.search() == [1, 2, 4]
    assert c.folder_status("Archive", ["MESSAGES"])[b"MESSAGES"] == 3
    c.add_flags([1, 2], [b"\\Deleted"])
    # UID EXPUNGE removes only the UIDs named, even with others \Deleted.
    c.expunge([2])
    assert c.search() == [1, 4]
    resp, untagged = c.expunge()
    assert untagged == [(1, b"EXPUNGE")]
    assert c.search() == [4]
    with pytest.raises(IMAPClientError):
        c.copy([4], "No such folder")
    c.close_folder()
    assert c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 1


def test_idle_sees_smtp_delivery(server, client):
    c = client()
    c.select_folder("INBOX")
    c.idle()
    t = threading.Thread(target=deliver, args=(server, ["alice@localhost"], message("ping")))
    t.start()
    responses = c.idle_check(timeout=TIMEOUT)
    t.join()
    c.idle_done()
    assert (1, b"EXISTS") in responses, responses
    got = c.fetch([1], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[1]
    assert got[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: ping\r\n\r\n"


def test_expunge_in_one_session_seen_by_the_other_at_noop(client):
    a = client()
    for s in ("one", "two", "three", "four", "five"):
        a.append("INBOX", message(s))
    b = client()
    a.select_folder("INBOX")
    b.select_folder("INBOX")
    a.add_flags([2, 4], [b"\\Deleted"])
    a.expunge()
    # b hears about both, each number valid when it is sent (RFC 9051 §7.5.1): replaying
    # the EXPUNGEs on b's view of UIDs 1..5 must remove exactly UIDs 2 and 4.
    _, responses = b.noop()
    view = [1, 2, 3, 4, 5]
    for r in responses:
        if r[1] == b"EXPUNGE":
            assert 1 <= r[0] <= len(view), responses
            del view[r[0] - 1]
    assert view == [1, 3, 5], responses
    assert len([r for r in responses if r[1] == b"EXPUNGE"]) == 2
    got = b.fetch([1, 3, 5], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    subjects = {uid: d[b"BODY[HEADER.FIELDS (SUBJECT)]"] for uid, d in got.items()}
    assert subjects == {1: b"Subject: one\r\n\r\n", 3: b"Subject: three\r\n\r\n",
                        5: b"Subject: five\r\n\r\n"}
    b.use_uid = False
    assert sorted(b.fetch([1, 2, 3], ["UID"]).items()) == [
        (1, {b"UID": 1, b"SEQ": 1}), (2, {b"UID": 3, b"SEQ": 2}), (3, {b"UID": 5, b"SEQ": 3})]


# --- regressions found by imaptest's scripted groups ---------------------------------------

def test_store_keyword_nil(client):
    # flag-keyword is an atom, and NIL is one (imaptest `nil`).
    c = client()
    c.append("INBOX", message("a"))
    c.select_folder("INBOX")
    c.use_uid = False
    typ, data = c._imap.store("1", "+FLAGS", "NIL")
    assert typ == "OK", data
    # On the wire the keyword is the atom NIL (IMAPClient's parser reads it as None).
    typ, data = c._imap.fetch("1", "(FLAGS)")
    assert typ == "OK" and data == [b"1 (FLAGS (\\Recent NIL))"], data


def test_literal8_binary_append_is_stored_base64(server, client):
    # imaptest `append-binary`: BODY[1] must not carry the NUL; BINARY[1] gives the octets back.
    from imap_wire import WireClient
    content = b"\x00-\xe4\n\r\n\n"
    raw = (b"From: user@domain.org\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n" + content)
    w = WireClient(server.host, server.imap_port)
    try:
        w.ok("LOGIN alice secret")
        w.sock.sendall(b"b1 APPEND INBOX ~{%d+}\r\n" % len(raw) + raw + b"\r\n")
        assert w._response().startswith(b"b1 OK [APPENDUID "), "APPEND of a literal8"
        w.ok("SELECT INBOX")
        got = w.fetch("1", "BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1] BODYSTRUCTURE")[1]
        assert got["BODY[1]"] == b"AC3kCg0KCg=="
        assert got["BINARY[1]"] == content and got["BINARY.SIZE[1]"] == "7"
        assert got["BODYSTRUCTURE"][5] == b"base64"
        # A plain literal is stored as sent.
        w.ok("APPEND INBOX", b"Subject: x\r\n\r\n8bit \xe4\r\n")
        assert w.fetch("2", "BODY.PEEK[]")[2]["BODY[]"] == b"Subject: x\r\n\r\n8bit \xe4\r\n"
    finally:
        w.close()


def test_mailbox_name_not_modified_utf7(client):
    # imaptest `atoms`: SELECT of such a name is NO (not BAD); as a LIST pattern it matches
    # nothing; the session goes on.
    c = client()
    name = "!#$&'+,-.0123456789:;<=>?@^_`|[}"
    typ, data = c._imap._simple_command("SELECT", name)
    assert typ == "NO" and b"[CANNOT]" in data[0], data
    typ, data = c._imap._simple_command("LIST", '""', name + "%*")
    assert typ == "OK", data
    assert c._imap.untagged_responses.pop("LIST", []) in ([], [None])
    assert c.noop()[0].startswith(b"NOOP")


def test_prelogin_line_limit_fits_the_largest_id(server, raw):
    # 30 pairs of 30-octet fields and 1024-octet values: about 31 KiB, accepted before login;
    # a line past the 32 KiB pre-login limit is refused and the session goes on.
    r = raw(server.imap_port)
    r.read_line()
    pairs = " ".join(f'"{i:02d}{"f" * 28}" "{"v" * 1024}"' for i in range(30))
    r.cmd(f"a ID ({pairs})")
    assert r.read_line().startswith(b'* ID ("name" "millipost"')
    assert r.read_line().startswith(b"a OK")
    r.cmd("b ID (" + '"x" "y" ' * 3000 + ")")  # about 33 KiB
    assert r.read_line().startswith(b"b BAD"), "over the pre-login line limit"
    r.cmd(f"c ID ({pairs} \"extra\" \"pair\")")  # 31 pairs
    assert r.read_line().startswith(b"c BAD")
    r.cmd('d ID ("name")')  # a field without value
    assert r.read_line().startswith(b"d BAD")
    r.cmd("e LOGIN alice secret")
    assert r.read_line().startswith(b"e OK")
