"""IMAP mailbox-level extensions against the in-process server: SPECIAL-USE and
CREATE-SPECIAL-USE (RFC 6154), LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), STATUS items,
QUOTA (RFC 9208, with SMTP 552 5.2.2), MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469).

Most assertions are on the exact lines the server sends, read with a raw socket; imaplib and
imapclient check that real clients understand them."""
from __future__ import annotations

import imaplib
import smtplib

import imapclient
import pytest

from conftest import TIMEOUT, USERS, message

DEFAULTS = [
    b'* LIST (\\HasNoChildren \\Archive) "/" Archive\r\n',
    b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts\r\n',
    b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
    b'* LIST (\\HasNoChildren \\Junk) "/" Junk\r\n',
    b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n',
    b'* LIST (\\HasNoChildren \\Trash) "/" Trash\r\n',
]


class Session:
    """A logged-in raw IMAP session: ``run(line)`` sends one command with a fresh tag and
    returns every line up to and including the tagged reply."""

    def __init__(self, raw, port, login="alice"):
        self.r = raw(port)
        self.n = 0
        assert self.r.read_line().startswith(b"* OK")
        lines = self.run(f"LOGIN {login} {USERS[login]}")
        assert lines[-1].startswith(self.tag + b" OK"), lines

    def run(self, line: str | bytes) -> list[bytes]:
        self.n += 1
        self.tag = f"t{self.n}".encode()
        if isinstance(line, str):
            line = line.encode()
        self.r.send(self.tag + b" " + line + b"\r\n")
        lines = []
        while True:
            got = self.r.read_line()
            lines.append(got)
            if got.startswith(self.tag + b" "):
                return lines

    def tagged(self, line) -> bytes:
        """The tagged reply only, without tag and CRLF."""
        return self.run(line)[-1][len(self.tag) + 1:].rstrip(b"\r\n")


@pytest.fixture
def session(raw):
    def open_session(srv, login="alice"):
        return Session(raw, srv.imap_port, login)

    return open_session


def lit(data: bytes) -> bytes:
    """A non-synchronizing literal (LITERAL+) carrying ``data``."""
    return b"{%d+}\r\n" % len(data) + data


MSG1 = b"From: a@example.org\r\nSubject: one\r\n\r\nfirst body\r\n"
MSG2 = (b"From: b@example.org\r\nSubject: two\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\npart one\r\n--B\r\n"
        b"Content-Type: text/plain\r\n\r\npart two\r\n--B--\r\n")


# ---- SPECIAL-USE ---------------------------------------------------------------------------------

def test_default_special_use_mailboxes_at_first_login(make_server, session):
    srv = make_server()
    # Provisioning makes INBOX only; the rest comes at login.
    with pytest.raises(KeyError):
        srv.mailbox_uids("alice", "Sent")
    s = session(srv)
    assert s.run('LIST "" "*"')[:-1] == DEFAULTS
    assert srv.mailbox_uids("alice", "Sent") == []
    # A user who keeps one of them is left alone at the next login.
    assert s.tagged("DELETE Junk") == b"OK DELETE completed"
    s2 = session(srv)
    assert len(s2.run('LIST "" "*"')) == len(DEFAULTS)  # 5 LIST lines + tagged OK
    assert b"Junk" not in b"".join(s2.run('LIST "" "*"'))
    # bob has not logged in: still nothing but INBOX.
    with pytest.raises(KeyError):
        srv.mailbox_uids("bob", "Drafts")


def test_special_use_mailboxes_can_be_turned_off(make_server, session):
    srv = make_server(special_use_mailboxes=False)
    s = session(srv)
    assert s.run('LIST "" "*"')[:-1] == [b'* LIST (\\HasNoChildren) "/" INBOX\r\n']


def test_existing_names_are_kept(make_server, session, tmp_path):
    srv = make_server(data_dir=str(tmp_path), special_use_mailboxes=False)
    s = session(srv)
    assert s.tagged("CREATE Sent") == b"OK CREATE completed"
    srv.stop()
    srv2 = make_server(data_dir=str(tmp_path), users={})
    s = session(srv2)
    lines = s.run('LIST "" "*"')
    # "Sent" existed without an attribute: not made again, and given no attribute behind the
    # user's back; the other four are made.
    assert b'* LIST (\\HasNoChildren) "/" Sent\r\n' in lines
    assert b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts\r\n' in lines
    assert len(lines) == 7  # Archive Drafts INBOX Junk Sent Trash + OK


def test_create_special_use(make_server, session):
    srv = make_server(special_use_mailboxes=False)
    s = session(srv)
    caps = s.run("CAPABILITY")[0]
    for cap in (b" SPECIAL-USE", b" CREATE-SPECIAL-USE", b" LIST-EXTENDED", b" LIST-STATUS"):
        assert cap in caps
    assert s.tagged('CREATE "Sent Items" (USE (\\Sent))') == b"OK CREATE completed"
    assert s.tagged("CREATE Bin (use (\\trash))") == b"OK CREATE completed"
    assert s.tagged("CREATE Everything (USE (\\All))") == \
        b"NO [USEATTR] special-use attribute \\All is not supported"
    assert s.tagged("CREATE Odd (USE (\\Imaginary))") == \
        b"NO [USEATTR] special-use attribute \\Imaginary is not supported"
    assert s.tagged("CREATE Two (USE (\\Sent \\Trash))") == \
        b"NO [USEATTR] one special-use attribute per mailbox"
    assert s.tagged("CREATE Bad (USE (Sent))").startswith(b"BAD ")
    assert s.tagged("CREATE Bad (SIZE 1)").startswith(b"BAD ")
    s.tagged("CREATE Plain")
    assert s.run('LIST "" "*"')[:-1] == [
        b'* LIST (\\HasNoChildren \\Trash) "/" Bin\r\n',
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        b'* LIST (\\HasNoChildren) "/" Plain\r\n',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"\r\n',
    ]
    # Selection by special use (RFC 6154 §3), and the return option.
    assert s.run('LIST (SPECIAL-USE) "" "*"')[:-1] == [
        b'* LIST (\\HasNoChildren \\Trash) "/" Bin\r\n',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"\r\n',
    ]
    assert s.run('LIST "" "B*" RETURN (SPECIAL-USE)')[:-1] == [
        b'* LIST (\\HasNoChildren \\Trash) "/" Bin\r\n']
    # No unselected, unrequested names.
    assert s.run('LIST (SPECIAL-USE) "" "P*"') == [s.tag + b" OK LIST completed\r\n"]


def test_imapclient_sees_special_use(make_server):
    srv = make_server()
    c = imapclient.IMAPClient(srv.host, port=srv.imap_port, ssl=False, timeout=TIMEOUT)
    try:
        c.login("alice", "secret")
        assert c.has_capability("SPECIAL-USE")
        assert c.find_special_folder(imapclient.imapclient.SENT) == "Sent"
        assert c.find_special_folder(imapclient.imapclient.TRASH) == "Trash"
        assert c.find_special_folder(imapclient.imapclient.DRAFTS) == "Drafts"
        flags = {name: fl for fl, _, name in c.list_folders()}
        assert flags["Junk"] == (b"\\HasNoChildren", b"\\Junk")
    finally:
        c.logout()


# ---- LIST-EXTENDED, LSUB, LIST-STATUS, STATUS ----------------------------------------------------

def test_list_extended_subscriptions(make_server, session):
    srv = make_server(special_use_mailboxes=False)
    s = session(srv)
    for name in ("m/a", "m/b/c", "m/d/e", "m/d/f"):
        assert s.tagged(f"CREATE {name}") == b"OK CREATE completed"
    for name in ("m/a", "m/b/c", "m/d/e", "m/gone"):
        assert s.tagged(f"SUBSCRIBE {name}") == b"OK SUBSCRIBE completed"
    # LSUB's '%' rule: m/b and m/d reported as \Noselect for their subscribed children.
    assert s.run('LSUB "" m/%')[:-1] == [
        b'* LSUB () "/" m/a\r\n',
        b'* LSUB (\\Noselect) "/" m/b\r\n',
        b'* LSUB (\\Noselect) "/" m/d\r\n',
        b'* LSUB (\\Noselect) "/" m/gone\r\n',  # subscribed, but no such mailbox
    ]
    assert s.run('LIST (SUBSCRIBED) "" m/*')[:-1] == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" m/a\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" m/b/c\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" m/d/e\r\n',
        b'* LIST (\\NonExistent \\Subscribed) "/" m/gone\r\n',
    ]
    # RECURSIVEMATCH: parents the pattern reaches, whose subscribed children it does not.
    assert s.run('LIST (SUBSCRIBED RECURSIVEMATCH) "" m/%')[:-1] == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" m/a\r\n',
        # CREATE made the superior names m/b and m/d, so they exist.
        b'* LIST (\\HasChildren) "/" m/b ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        b'* LIST (\\HasChildren) "/" m/d ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        b'* LIST (\\NonExistent \\Subscribed) "/" m/gone\r\n',
    ]
    # Multiple patterns; RETURN (SUBSCRIBED CHILDREN); REMOTE selects nothing more.
    assert s.run('LIST (REMOTE) "" (m/a m/d/%) RETURN (SUBSCRIBED CHILDREN)')[:-1] == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" m/a\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" m/d/e\r\n',
        b'* LIST (\\HasNoChildren) "/" m/d/f\r\n',
    ]
    for bad in ('LIST (RECURSIVEMATCH) "" %', 'LIST (BOGUS) "" %', 'LIST "" % RETURN (BOGUS)'):
        assert s.tagged(bad).startswith(b"BAD "), bad


def test_list_status_and_status_items(make_server, session):
    srv = make_server(special_use_mailboxes=False, max_message_size=100000)
    s = session(srv)
    r = s.run(b"APPEND INBOX (\\Seen) " + lit(MSG1) + b" (\\Deleted) " + lit(MSG2))
    assert r[-1].startswith(s.tag + b" OK [APPENDUID ")
    uidvalidity = int(r[-1].split()[3])
    s.tagged("CREATE Empty")
    size = len(MSG1) + len(MSG2)
    lines = s.run('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE))')
    assert lines[:2] == [
        b'* LIST (\\HasNoChildren) "/" Empty\r\n',
        b"* STATUS Empty (MESSAGES 0 UNSEEN 0 UIDNEXT 1 UIDVALIDITY %d SIZE 0)\r\n"
        % int(lines[1].split(b"UIDVALIDITY ")[1].split()[0]),
    ]
    assert lines[2:] == [
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        b"* STATUS INBOX (MESSAGES 2 UNSEEN 1 UIDNEXT 3 UIDVALIDITY %d SIZE %d)\r\n"
        % (uidvalidity, size),
        s.tag + b" OK LIST completed\r\n",
    ]
    lines = s.run("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE "
                  "APPENDLIMIT DELETED-STORAGE HIGHESTMODSEQ)")
    modseq = int(lines[0].split(b"HIGHESTMODSEQ ")[1].rstrip(b")\r\n"))
    assert modseq > 0
    assert lines == [
        # RECENT: no session has selected INBOX yet, so both messages are still \\Recent.
        b"* STATUS INBOX (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY %d UNSEEN 1 DELETED 1 "
        b"SIZE %d APPENDLIMIT 100000 DELETED-STORAGE 1 HIGHESTMODSEQ %d)\r\n"
        % (uidvalidity, size, modseq),
        s.tag + b" OK STATUS completed\r\n",
    ]
    assert b" APPENDLIMIT=100000" in s.run("CAPABILITY")[0]
    assert s.tagged("STATUS INBOX (BOGUS)").startswith(b"BAD ")
    assert s.tagged("STATUS Nope (MESSAGES)") == b"NO [NONEXISTENT] no such mailbox"


def test_imaplib_list_status(make_server):
    srv = make_server(special_use_mailboxes=False)
    c = imaplib.IMAP4(srv.host, srv.imap_port, timeout=TIMEOUT)
    try:
        c.login("alice", "secret")
        assert c.append("INBOX", None, None, MSG1)[0] == "OK"
        typ, data = c._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS (MESSAGES))")
        assert typ == "OK"
        assert c.untagged_responses.pop("LIST") == [b'(\\HasNoChildren) "/" INBOX']
        assert c.untagged_responses.pop("STATUS") == [b"INBOX (MESSAGES 1)"]
    finally:
        c.logout()


# ---- QUOTA ---------------------------------------------------------------------------------------

def test_quota_reports_and_limits_append_copy(make_server, session):
    # 2 KiB and 3 messages.
    srv = make_server(special_use_mailboxes=False, quota_storage=2, quota_messages=3)
    s = session(srv)
    caps = s.run("CAPABILITY")[0]
    for cap in (b" QUOTA ", b" QUOTA=RES-STORAGE", b" QUOTA=RES-MESSAGE"):
        assert cap in caps
    assert s.run("GETQUOTAROOT INBOX") == [
        b'* QUOTAROOT INBOX ""\r\n',
        b'* QUOTA "" (STORAGE 0 2 MESSAGE 0 3)\r\n',
        s.tag + b" OK GETQUOTAROOT completed\r\n",
    ]
    assert s.tagged(b"APPEND INBOX " + lit(MSG1)).startswith(b"OK [APPENDUID ")
    assert s.run('GETQUOTA ""')[0] == b'* QUOTA "" (STORAGE 1 2 MESSAGE 1 3)\r\n'
    # 2100 octets more cross 2 KiB: over the storage limit, nothing stored.
    big = b"Subject: big\r\n\r\n" + b"x" * 2100 + b"\r\n"
    assert s.tagged(b"APPEND INBOX " + lit(big)) == b"NO [OVERQUOTA] quota exceeded"
    assert srv.mailbox_uids("alice") == [1]
    # MULTIAPPEND crossing the message count: all or nothing.
    assert s.tagged(b"APPEND INBOX " + lit(MSG1) + b" " + lit(MSG1) + b" " + lit(MSG1)) == \
        b"NO [OVERQUOTA] quota exceeded"
    assert srv.mailbox_uids("alice") == [1]
    assert s.tagged(b"APPEND INBOX " + lit(MSG1)).startswith(b"OK [APPENDUID ")
    s.tagged("CREATE Other")
    s.run("SELECT INBOX")
    assert s.tagged("COPY 1:2 Other") == b"NO [OVERQUOTA] quota exceeded"
    assert s.tagged("COPY 1 Other").startswith(b"OK [COPYUID ")  # 3 messages: at the limit
    assert s.tagged("MOVE 2 Other") == b"OK MOVE completed"  # the usage does not change
    assert s.run('GETQUOTA ""')[0] == b'* QUOTA "" (STORAGE 1 2 MESSAGE 3 3)\r\n'
    assert s.tagged(b"APPEND Other " + lit(MSG1)) == b"NO [OVERQUOTA] quota exceeded"
    assert s.tagged('SETQUOTA "" (STORAGE 100)') == \
        b"NO [NOPERM] quota limits are set in the server configuration"
    assert s.tagged("SETQUOTA").startswith(b"BAD ")
    assert s.tagged('GETQUOTA "other"') == b"NO [NONEXISTENT] no such quota root"
    assert s.tagged("GETQUOTAROOT Nope") == b"NO [NONEXISTENT] no such mailbox"


def test_no_quota_means_no_root(make_server, session):
    srv = make_server(special_use_mailboxes=False)
    s = session(srv)
    assert s.run("GETQUOTAROOT INBOX") == [
        b"* QUOTAROOT INBOX\r\n", s.tag + b" OK GETQUOTAROOT completed\r\n"]
    assert s.tagged('GETQUOTA ""') == b"NO [NONEXISTENT] no such quota root"


def test_imapclient_quota(make_server):
    srv = make_server(special_use_mailboxes=False, quota_storage=100, quota_messages=10)
    c = imapclient.IMAPClient(srv.host, port=srv.imap_port, ssl=False, timeout=TIMEOUT)
    try:
        c.login("alice", "secret")
        c.append("INBOX", MSG1)
        roots, quotas = c.get_quota_root("INBOX")
        assert roots.mailbox == "INBOX" and roots.quota_roots == [""]
        assert [(q.quota_root, q.resource, q.usage, q.limit) for q in quotas] == [
            ("", "STORAGE", 1, 100), ("", "MESSAGE", 1, 10)]
    finally:
        c.logout()


def test_smtp_delivery_over_quota_is_552(make_server):
    srv = make_server(special_use_mailboxes=False, quota_messages=1)
    with smtplib.SMTP(srv.host, srv.smtp_port, timeout=TIMEOUT) as smtp:
        smtp.ehlo()
        assert smtp.sendmail("x@example.org", ["alice@localhost"], message("1")) == {}
        smtp.mail("x@example.org")
        code, text = smtp.rcpt("alice@localhost")
        assert (code, text) == (552, b"5.2.2 Mailbox full: quota exceeded")
        # bob is not full.
        assert smtp.rcpt("bob@localhost")[0] == 250
        smtp.rset()
    assert srv.mailbox_uids("alice") == [1]


def test_smtp_message_too_big_for_the_quota_is_552(make_server):
    srv = make_server(special_use_mailboxes=False, quota_storage=1)  # 1 KiB
    with smtplib.SMTP(srv.host, srv.smtp_port, timeout=TIMEOUT) as smtp:
        smtp.ehlo()
        with pytest.raises(smtplib.SMTPDataError) as e:
            smtp.sendmail("x@example.org", ["alice@localhost"], message("big", b"y" * 2000))
        assert (e.value.smtp_code, e.value.smtp_error) == \
            (552, b"5.2.2 Mailbox full: quota exceeded")
    assert srv.mailbox_uids("alice") == []


# ---- MULTIAPPEND and CATENATE --------------------------------------------------------------------

def test_multiappend_is_atomic_and_reports_a_uid_set(make_server, session):
    srv = make_server(special_use_mailboxes=False)
    s = session(srv)
    assert b" MULTIAPPEND" in s.run("CAPABILITY")[0]
    r = s.tagged(b"APPEND INBOX (\\Seen) " + lit(MSG1) +
                 b' (\\Flagged) "05-Jul-1994 02:20:27 -0700" ' + lit(MSG2))
    uidvalidity = int(r.split()[2])
    assert r == b"OK [APPENDUID %d 1:2] APPEND completed" % uidvalidity
    lines = s.run("EXAMINE INBOX")
    assert b"* 2 EXISTS\r\n" in lines
    lines = s.run("FETCH 1:2 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert lines[:2] == [
        # EXAMINE shows \\Recent (IMAP4rev1) without taking it from other sessions.
        b'* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE "%s" RFC822.SIZE %d)\r\n'
        % (lines[0].split(b'"')[1], len(MSG1)),
        b'* 2 FETCH (FLAGS (\\Flagged \\Recent) INTERNALDATE "05-Jul-1994 09:20:27 +0000" '
        b"RFC822.SIZE %d)\r\n" % len(MSG2),
    ]
    # A broken second message: nothing of the command is stored.
    assert s.tagged(b"APPEND INBOX " + lit(MSG1) + b' CATENATE (URL "/INBOX/;UID=99")') == \
        b"NO [BADURL] URL /INBOX/;UID=99 names no message of yours"
    assert srv.mailbox_uids("alice") == [1, 2]
    assert s.tagged(b"APPEND Nope " + lit(MSG1) + b" " + lit(MSG1)) == \
        b"NO [TRYCREATE] no such mailbox"


def test_imapclient_multiappend(make_server):
    srv = make_server(special_use_mailboxes=False)
    c = imapclient.IMAPClient(srv.host, port=srv.imap_port, ssl=False, timeout=TIMEOUT)
    try:
        c.login("alice", "secret")
        typ, data = c.multiappend("INBOX", [MSG1, {"msg": MSG2, "flags": [b"\\Seen"]}])
        assert typ == "OK"
        assert data[0].startswith(b"[APPENDUID ")
        assert data[0].endswith(b" 1:2] APPEND completed")
        c.select_folder("INBOX")
        assert c.get_flags([1, 2]) == {1: (b"\\Recent",), 2: (b"\\Seen", b"\\Recent")}
    finally:
        c.logout()


def test_catenate_builds_messages_from_urls_and_text(make_server, session):
    srv = make_server(special_use_mailboxes=False)
    s = session(srv)
    assert b" CATENATE" in s.run("CAPABILITY")[0]
    r = s.tagged(b"APPEND INBOX " + lit(MSG1) + b" " + lit(MSG2))
    v = int(r.split()[2])
    s.tagged("CREATE Drafts")
    cat = (b'APPEND Drafts (\\Draft) CATENATE (URL "/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=HEADER"'
           b" TEXT " % v + lit(b"new body\r\n") +
           b' URL "/inbox/;uid=2/;section=2" TEXT ' + lit(b"\r\n") +
           b' URL "/INBOX/;UID=2/;SECTION=1/;PARTIAL=5.3")')
    r = s.tagged(cat)
    assert r.startswith(b"OK [APPENDUID ") and r.endswith(b" 1] APPEND completed")
    lines = s.run("EXAMINE Drafts")
    expected = (b"From: a@example.org\r\nSubject: one\r\n\r\nnew body\r\npart two\r\none")
    lines = s.run("FETCH 1 (FLAGS BODY.PEEK[])")
    assert b"".join(lines[:-1]) == (
        b"* 1 FETCH (FLAGS (\\Draft \\Recent) BODY[] {%d}\r\n" % len(expected) + expected
        + b")\r\n")
    # Bad URLs: NO [BADURL], nothing stored.
    for url, why in [
        ("/INBOX;UIDVALIDITY=1/;UID=1", "names no message of yours"),
        ("/INBOX/;UID=9", "names no message of yours"),
        ("/Nope/;UID=1", "names no message of yours"),
        ("/INBOX/;UID=1/;SECTION=7", "names no message of yours"),
    ]:
        assert s.tagged(b'APPEND Drafts CATENATE (URL "%s")' % url.encode()) == \
            b"NO [BADURL] URL %s %s" % (url.encode(), why.encode()), url
    for url in ("imap://bob@localhost/INBOX/;UID=1", "/INBOX", "/INBOX/;UID=1/;URLAUTH=x"):
        r = s.tagged(b'APPEND Drafts CATENATE (URL "%s")' % url.encode())
        assert r.startswith(b"NO [BADURL] Bad IMAP URL '%s'" % url.encode()), r
    assert srv.mailbox_uids("alice", "Drafts") == [1]
    # Another user's mailboxes are out of reach: bob's INBOX/;UID=1 is bob's own message.
    b = session(srv, "bob")
    assert b.tagged(b'APPEND INBOX CATENATE (URL "/INBOX/;UID=1")') == \
        b"NO [BADURL] URL /INBOX/;UID=1 names no message of yours"
    # The target must exist, whatever the URLs.
    assert s.tagged(b'APPEND Nope CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=1")') == \
        b"NO [TRYCREATE] no such mailbox"
    assert s.tagged(b"APPEND Drafts CATENATE (TEXT \"quoted\")").startswith(b"BAD ")


def test_catenate_too_big(make_server, session):
    srv = make_server(special_use_mailboxes=False, max_message_size=1000)
    s = session(srv)
    body = b"Subject: x\r\n\r\n" + b"z" * 600 + b"\r\n"
    assert s.tagged(b"APPEND INBOX " + lit(body)).startswith(b"OK ")
    assert s.tagged(b'APPEND INBOX CATENATE (URL "/INBOX/;UID=1" URL "/INBOX/;UID=1")') == \
        b"NO [TOOBIG] the message would be too big"
    assert srv.mailbox_uids("alice") == [1]


# ---- Bounds on mailbox names (server/util/limits.h) ----------------------------------------------

NAME_MAX = 1024     # kMaxMailboxNameBytes
DEPTH_MAX = 32      # kMaxMailboxDepth
PER_USER_MAX = 10000  # kMaxMailboxesPerUser


def test_mailbox_name_length_is_bounded(make_server, session):
    srv = make_server(special_use_mailboxes=False)
    s = session(srv)
    assert s.tagged(b"CREATE " + lit(b"a" * NAME_MAX)) == b"OK CREATE completed"
    too_long = lit(b"b" * (NAME_MAX + 1))
    for cmd in (b"CREATE ", b"SELECT ", b"STATUS " + too_long[:0], b"SUBSCRIBE ", b"DELETE "):
        arg = too_long + (b" (MESSAGES)" if cmd.startswith(b"STATUS") else b"")
        reply = s.tagged(cmd + arg)
        assert reply.startswith(b"NO [LIMIT] Mailbox name longer than 1024 bytes"), (cmd, reply)
    assert s.tagged(b"RENAME " + lit(b"a" * NAME_MAX) + b" " + too_long).startswith(b"NO [LIMIT]")
    names = [l for l in s.run('LIST "" "*"') if l.startswith(b"* LIST")]
    assert len(names) == 2  # INBOX and the 1024-byte one


def test_mailbox_depth_is_bounded(make_server, session):
    srv = make_server(special_use_mailboxes=False)
    s = session(srv)
    deepest = "/".join(f"l{i}" for i in range(DEPTH_MAX))
    assert s.tagged(f"CREATE {deepest}") == b"OK CREATE completed"
    assert s.tagged(f"CREATE {deepest}/deeper").startswith(b"NO [LIMIT] more than 32")
    assert s.tagged(f"RENAME l0/l1 {deepest}/deeper").startswith(b"NO [LIMIT]")
    assert len([l for l in s.run('LIST "" "*"') if l.startswith(b"* LIST")]) == 1 + DEPTH_MAX


def test_mailboxes_per_user_are_bounded(make_server, session):
    srv = make_server(special_use_mailboxes=False)
    s = session(srv)
    # Each CREATE of a 32-level name makes 32 mailboxes (its superiors too).
    made, n = 1, 0  # INBOX
    while made + DEPTH_MAX < PER_USER_MAX:
        name = "/".join([f"t{n}"] + [f"x{i}" for i in range(DEPTH_MAX - 1)])
        assert s.tagged(f"CREATE {name}") == b"OK CREATE completed", made
        made += DEPTH_MAX
        n += 1
    while made < PER_USER_MAX - 1:
        assert s.tagged(f"CREATE single{made}") == b"OK CREATE completed", made
        made += 1
    assert s.tagged("CREATE last") == b"OK CREATE completed"
    assert s.tagged("CREATE one-too-many").startswith(b"NO [LIMIT] no more than 10000 mailboxes")
    # Deleting one makes room again; another user is not affected.
    assert s.tagged("DELETE last") == b"OK DELETE completed"
    assert s.tagged("CREATE room-again") == b"OK CREATE completed"
    assert session(srv, "bob").tagged("CREATE mine") == b"OK CREATE completed"
