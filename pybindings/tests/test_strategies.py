"""millipost.strategies against the reference server: what the strategies generate is valid by
the RFCs, so the server must accept it (never BAD), and its answers must agree with a model of
the generated values. Replaying: as in test_imap_bodystructure.py (Hypothesis prints the
falsifying example and a @reproduce_failure line)."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, note, settings

from millipost import strategies as ms
from conftest import running
from imap_wire import WireClient

SETTINGS = settings(max_examples=60, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
MESSAGES = 20


def small_message(i: int) -> bytes:
    return (f"From: a{i}@example.org\r\nTo: alice@localhost\r\nSubject: message {i}\r\n"
            f"Date: Mon, 2 Mar 2026 10:00:{i:02d} +0100\r\n\r\nbody {i}\r\n").encode()


@pytest.fixture(scope="module")
def wire():
    with running() as srv:
        srv.add_user("alice", "secret")
        c = WireClient(srv.host, srv.imap_port)
        try:
            c.ok("LOGIN alice secret")
            for i in range(MESSAGES):
                c.ok("APPEND INBOX", small_message(i))
            c.ok("SELECT INBOX")
            yield c
        finally:
            c.close()


def expand(seq_set: str, top: int) -> set[int]:
    """The numbers a sequence set names in a mailbox of `top` messages (RFC 9051 §9)."""
    out: set[int] = set()
    for part in seq_set.split(","):
        a, _, b = part.partition(":")
        lo = top if a == "*" else int(a)
        hi = lo if not b else top if b == "*" else int(b)
        lo, hi = min(lo, hi), max(lo, hi)
        out.update(n for n in range(lo, hi + 1) if 1 <= n <= top)
    return out


@SETTINGS
@given(seq_set=ms.sequence_sets(max_number=MESSAGES))
def test_sequence_sets_name_what_the_grammar_says(wire, seq_set):
    note(seq_set)
    untagged = wire.ok(f"FETCH {seq_set} (UID)")
    got = {int(m.group(1)) for r in untagged if (m := re.match(rb"\* (\d+) FETCH", r))}
    assert got == expand(seq_set, MESSAGES)


@SETTINGS
@given(program=ms.search_programs(max_number=MESSAGES))
def test_generated_search_programs_are_accepted(wire, program):
    note(program)
    untagged, status = wire.command(f"SEARCH {program}")
    assert status.startswith(b"OK"), (program, status)
    hits = [r for r in untagged if r.startswith(b"* SEARCH")]
    assert len(hits) == 1
    numbers = [int(x) for x in hits[0].split()[2:]]
    assert numbers == sorted(set(numbers)) and all(1 <= n <= MESSAGES for n in numbers)
    # NOT of the program names exactly the other messages.
    untagged, status = wire.command(f"SEARCH NOT ({program.removeprefix('CHARSET UTF-8 ')})")
    assert status.startswith(b"OK"), status
    rest = [int(x) for r in untagged if r.startswith(b"* SEARCH") for x in r.split()[2:]]
    assert set(rest) | set(numbers) == set(range(1, MESSAGES + 1))
    assert not set(rest) & set(numbers)


@SETTINGS
@given(flags=ms.flag_lists())
def test_generated_flags_round_trip(wire, flags):
    note(repr(flags))
    wire.ok(f"STORE 1 FLAGS ({' '.join(flags)})")
    (r,) = [r for r in wire.ok("FETCH 1 (FLAGS)") if b"FETCH" in r]
    listed = re.search(rb"FLAGS \(([^)]*)\)", r).group(1).decode().split()
    assert {f.lower() for f in listed if f != "\\Recent"} == {f.lower() for f in flags}


@SETTINGS
@given(raw=ms.messages())
def test_generated_messages_are_stored_byte_exact(wire, raw):
    _, status = wire.command("APPEND INBOX", raw)
    m = re.match(rb"OK \[APPENDUID \d+ (\d+)\]", status)
    assert m, status
    uid = int(m.group(1))
    got = wire.fetch(str(uid), "BODY.PEEK[]")
    assert got[uid]["BODY[]"] == raw
    wire.ok(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
    wire.ok(f"UID EXPUNGE {uid}")
