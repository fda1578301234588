"""IMAP search family system tests: SEARCH through the full-text index (and the scan it falls back
to), SORT / UID SORT / SORT=DISPLAY / ESORT (RFC 5256, 5957, 5267) and THREAD (RFC 5256), with
imaplib and imapclient against the in-process server. Expected results are worked out by hand from
the five messages below."""
from __future__ import annotations

import datetime
import imaplib

import imapclient
import pytest

from conftest import TIMEOUT

UTC = datetime.timezone.utc


def _msg(headers: list[str], body: str) -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


# (message, internal date): appended in this order, so ARRIVAL is 1..5.
MESSAGES = [
    _msg(["From: Zed <zed@example.org>", "To: amy@x.org", "Subject: Hello world",
          "Date: Mon, 2 Mar 2026 10:00:00 +0000", "Message-ID: <1@t>"],
         "The quick brown fox\r\n"),
    _msg(["From: amy@example.org", "To: Bob <bob@x.org>", "Subject: Re: Hello world",
          "Date: Mon, 2 Mar 2026 11:00:00 +0200", "Message-ID: <2@t>", "In-Reply-To: <1@t>",
          "Content-Type: text/plain; charset=utf-8"],
         "Gr\u00fc\u00dfe aus K\u00f6ln\r\n"),
    _msg(["From: Mike <mike (comment)@ (comment) example.net>", "To: carl@x.org",
          "Subject: [list] Another topic", "Date: Sun, 1 Mar 2026 12:00:00 +0000",
          "Message-ID: <3@t>"],
         "quokka sighting\r\n" + "padding line\r\n" * 40),
    _msg(["From: Zoe <beth@example.com>", "To: dan@x.org", "Subject: Fwd: hello WORLD",
          "Date: Tue, 3 Mar 2026 08:00:00 +0000", "Message-ID: <4@t>",
          "References: <1@t> <2@t>"],
         "nothing\r\n"),
    _msg(["From: bob@example.org", "To: eve@x.org", "Subject: another topic",
          "Date: Wed, 4 Mar 2026 08:00:00 +0000", "Message-ID: <5@t>"],
         "the end\r\n"),
]


@pytest.fixture
def loaded(server, _clients):
    """An imapclient session of alice with MESSAGES appended to INBOX and INBOX selected."""
    c = imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=TIMEOUT)
    _clients.append(_Closer(c))
    c.login("alice", "secret")
    for i, m in enumerate(MESSAGES):
        c.append("INBOX", m, msg_time=datetime.datetime(2026, 3, 10, 12, i, tzinfo=UTC))
    c.select_folder("INBOX")
    return c


@pytest.fixture
def lib(server, loaded, _clients):
    """An imaplib session of alice (after `loaded`), INBOX selected."""
    c = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    _clients.append(_Closer(c))
    assert c.login("alice", "secret")[0] == "OK"
    assert c.select("INBOX")[0] == "OK"
    return c


class _Closer:
    def __init__(self, c):
        self.c = c

    def close(self):
        try:
            sock = getattr(self.c, "sock", None) or self.c._imap.sock
            sock.close()
        except (OSError, AttributeError):
            pass


def search(c: imaplib.IMAP4, *criteria: str) -> list[int]:
    typ, data = c.search(None, *criteria)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_capabilities_advertised(server, lib):
    caps = lib.capabilities
    for cap in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"):
        assert cap in caps


def test_search_text_keys(lib):
    # Index answers (3+ characters), substring not word semantics, case-insensitive.
    assert search(lib, "BODY", "quick") == [1]
    assert search(lib, "BODY", '"uick bro"') == [1]
    assert search(lib, "SUBJECT", "HELLO") == [1, 2, 4]
    assert search(lib, "SUBJECT", '"another topic"') == [3, 5]
    assert search(lib, "TEXT", "quokka") == [3]
    assert search(lib, "TEXT", '"<4@t>"') == [4]
    assert search(lib, "TO", "bob@x") == [2]
    assert search(lib, "FROM", "example.org") == [1, 2, 5]
    # The address in normal form although written with comments.
    assert search(lib, "FROM", "mike@example.net") == [3]
    assert search(lib, "HEADER", "Message-ID", "<3@t>") == [3]
    assert search(lib, "HEADER", "References", "<2@t>") == [4]
    # Combined with other keys and negated.
    assert search(lib, "NOT", "BODY", "quick") == [2, 3, 4, 5]
    assert search(lib, "OR", "BODY", "quokka", "SUBJECT", "fwd") == [3, 4]
    assert search(lib, "BODY", "nothing-like-this") == []
    # Too short for the trigram index: the scan answers, with the same semantics.
    assert search(lib, "BODY", "ui") == [1]
    assert search(lib, "SUBJECT", "d") == [1, 2, 4]
    assert search(lib, "HEADER", "In-Reply-To", '""') == [2]


def test_search_non_ascii(loaded):
    # imapclient sends the needle as a UTF-8 literal with CHARSET UTF-8.
    assert loaded.search(["BODY", "K\u00d6LN"], charset="UTF-8") == [2]
    assert loaded.search(["BODY", "gr\u00fc\u00df"], charset="UTF-8") == [2]
    assert loaded.search(["BODY", "\u00f6l"], charset="UTF-8") == [2]  # 2 characters: scan
    assert loaded.search(["BODY", "k\u00f6lner"], charset="UTF-8") == []


def test_index_follows_expunge_copy_and_delete(loaded):
    c = loaded
    c.create_folder("Old")
    c.copy([4], "Old")
    assert c.search(["BODY", "quick"]) == [1]
    c.delete_messages([1])
    c.expunge()
    assert c.search(["BODY", "quick"]) == []
    assert c.search(["BODY", "quokka"]) == [3]  # UIDs: imapclient uses UID SEARCH
    c.move([5], "Old")
    assert c.search(["SUBJECT", "another"]) == [3]
    c.select_folder("Old")
    assert c.search(["SUBJECT", "hello"]) == [1]
    assert c.search(["SUBJECT", "another"]) == [2]
    # A mailbox deleted and created again (the store may reuse its id) has no stale text.
    c.create_folder("Tmp")
    c.append("Tmp", _msg(["Subject: zebra"], "zebra crossing\r\n"))
    c.select_folder("Tmp")
    assert c.search(["BODY", "zebra"]) == [1]
    c.select_folder("INBOX")
    c.delete_folder("Tmp")
    c.create_folder("Tmp")
    c.append("Tmp", _msg(["Subject: other"], "nothing here\r\n"))
    c.select_folder("Tmp")
    assert c.search(["BODY", "zebra"]) == []
    assert c.search(["BODY", "nothing"]) == [1]


def test_sort_keys(loaded):
    c = loaded
    assert c.sort(["SUBJECT"]) == [3, 5, 1, 2, 4]
    assert c.sort(["SUBJECT", "REVERSE DATE"]) == [5, 3, 4, 1, 2]
    # Message 2 is 09:00 UTC (+0200), before message 1 at 10:00.
    assert c.sort(["DATE"]) == [3, 2, 1, 4, 5]
    assert c.sort(["REVERSE DATE"]) == [5, 4, 1, 2, 3]
    assert c.sort(["ARRIVAL"]) == [1, 2, 3, 4, 5]
    assert c.sort(["REVERSE ARRIVAL"]) == [5, 4, 3, 2, 1]
    assert c.sort(["FROM"]) == [2, 4, 5, 3, 1]
    assert c.sort(["DISPLAYFROM"]) == [2, 5, 3, 1, 4]
    assert c.sort(["TO"]) == [1, 2, 3, 4, 5]
    assert c.sort(["DISPLAYTO"]) == [1, 2, 3, 4, 5]
    assert c.sort(["CC", "REVERSE ARRIVAL"]) == [5, 4, 3, 2, 1]
    sizes = sorted(range(1, 6), key=lambda i: (len(MESSAGES[i - 1]), i))
    assert c.sort(["SIZE"]) == sizes
    assert c.sort(["DATE"], ["BODY", "quokka"]) == [3]
    assert c.sort(["SUBJECT"], ["NOT", "FROM", "bob"]) == [3, 1, 2, 4]


def test_uid_sort_after_expunge(loaded, lib):
    loaded.delete_messages([1])
    loaded.expunge()
    # UIDs stay 2..5; sequence numbers shift to 1..4.
    assert loaded.sort(["DATE"]) == [3, 2, 4, 5]
    # Until the other session hears of the expunge, SORT (like SEARCH) keeps its numbering.
    typ, data = lib.sort("(DATE)", "UTF-8", "ALL")
    assert data[0].split() == [b"3", b"2", b"4", b"5"]
    assert lib.noop()[0] == "OK"
    typ, data = lib.sort("(DATE)", "UTF-8", "ALL")
    assert typ == "OK"
    assert data[0].split() == [b"2", b"1", b"3", b"4"]


def test_sort_errors(lib):
    typ, data = lib.sort("(SUBJECT)", "KOI8-R", "ALL")
    assert typ == "NO"
    assert b"BADCHARSET" in data[0]
    for bad in [("(BOGUS)", "UTF-8", "ALL"), ("(REVERSE)", "UTF-8", "ALL"),
                ("()", "UTF-8", "ALL"), ("(SUBJECT)", "UTF-8", "NOSUCHKEY")]:
        with pytest.raises(imaplib.IMAP4.error):
            lib.sort(*bad)


def _esearch(c: imaplib.IMAP4, *args: str) -> bytes:
    typ, data = c._simple_command(*args)
    assert typ == "OK", data
    typ, data = c._untagged_response(typ, data, "ESEARCH")
    return data[-1]


def test_esort(lib):
    line = _esearch(lib, "SORT", "RETURN (MIN MAX COUNT ALL)", "(SUBJECT)", "UTF-8", "ALL")
    # MIN/MAX: the first and last in sort order; ALL keeps the order.
    assert line.endswith(b"MIN 3 MAX 4 ALL 3,5,1:2,4 COUNT 5")
    assert _esearch(lib, "SORT", "RETURN (COUNT)", "(DATE)", "UTF-8", "BODY", "zzz").endswith(
        b"COUNT 0")
    assert _esearch(lib, "UID", "SORT", "RETURN ()", "(REVERSE ARRIVAL)", "UTF-8", "ALL").endswith(
        b"UID ALL 5,4,3,2,1")


def test_thread(lib, loaded):
    typ, data = lib.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    # 3 and 5 share a base subject but neither replies: siblings under a dummy, which sorts by
    # its first child (1 March). 2 answers 1, 4 references 1 then 2.
    assert data[0] == b"((3)(5))(1 2 4)"
    typ, data = lib.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert data[0] == b"(3 5)(2 (1)(4))"
    typ, data = lib.thread("REFERENCES", "UTF-8", "BODY", "quokka")
    assert data[0] == b"(3)"
    typ, data = lib.thread("REFERENCES", "KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    with pytest.raises(imaplib.IMAP4.error):
        lib.thread("NOSUCH", "UTF-8", "ALL")
    # imapclient parses the response into nested tuples (UIDs equal sequence numbers here).
    threads = loaded.thread("ORDEREDSUBJECT")
    assert len(threads) == 2
    assert tuple(threads[0]) == (3, 5)


def _fetch_uids(c: imaplib.IMAP4, seqset: str) -> list[int]:
    typ, data = c.fetch(seqset, "(UID)")
    assert typ == "OK", data
    return sorted(int(d.split(b"UID ")[1].rstrip(b")")) for d in data if d)


def test_searchres(lib, loaded):
    assert "SEARCHRES" in lib.capabilities
    typ, data = lib._simple_command("SEARCH", "RETURN (SAVE)", "SUBJECT", "hello")
    assert typ == "OK"
    assert "ESEARCH" not in lib.untagged_responses  # SAVE alone answers nothing
    assert _fetch_uids(lib, "$") == [1, 2, 4]
    assert search(lib, "$", "BODY", "quick") == [1]
    assert search(lib, "NOT", "$") == [3, 5]
    assert search(lib, "UID", "$") == [1, 2, 4]
    assert lib.store("$", "+FLAGS", "\\Flagged")[0] == "OK"
    assert search(lib, "FLAGGED") == [1, 2, 4]
    # SAVE with MIN saves only the minimum; ESEARCH still reports it.
    line = _esearch(lib, "UID", "SEARCH", "RETURN (SAVE MIN)", "SUBJECT", "another")
    assert line.endswith(b"UID MIN 3")
    typ, data = lib.uid("FETCH", "$", "(UID)")
    assert [d for d in data if d] and all(b"UID 3)" in d for d in data if d)
    # An expunged message leaves the saved result.
    assert lib._simple_command("SEARCH", "RETURN (SAVE)", "FLAGGED")[0] == "OK"
    loaded.delete_messages([2])
    loaded.expunge()
    assert lib.noop()[0] == "OK"
    assert search(lib, "$") == [1, 3]  # UIDs 1 and 4; 4 is now message 3
    # A failed SEARCH RETURN (SAVE) empties it, and so does SELECT.
    with pytest.raises(imaplib.IMAP4.error):
        lib._simple_command("SEARCH", "RETURN (SAVE)", "BOGUS")
    assert search(lib, "$") == []
    assert lib._simple_command("SEARCH", "RETURN (SAVE)", "ALL")[0] == "OK"
    assert search(lib, "$") == [1, 2, 3, 4]
    assert lib.select("INBOX")[0] == "OK"
    assert search(lib, "$") == []


def test_partial(lib):
    assert "PARTIAL" in lib.capabilities
    assert _esearch(lib, "SEARCH", "RETURN (PARTIAL 3:2)", "ALL").endswith(b"PARTIAL (2:3 2:3)")
    assert _esearch(lib, "SEARCH", "RETURN (PARTIAL 9:10)", "ALL").endswith(
        b"PARTIAL (9:10 NIL)")
    # In sort order: the last two of 3 5 1 2 4.
    assert _esearch(lib, "SORT", "RETURN (PARTIAL -2:-1)", "(SUBJECT)", "UTF-8",
                    "ALL").endswith(b"PARTIAL (-2:-1 2,4)")
    for bad in ["RETURN (PARTIAL 1:*)", "RETURN (PARTIAL 1)", "RETURN (PARTIAL 1:2 ALL)"]:
        with pytest.raises(imaplib.IMAP4.error):
            lib._simple_command("SEARCH", bad, "ALL")
