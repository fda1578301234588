"""Load-simulator content and provisioning: the message generator read by Python's email package,
mailboxes filled through the store fast path, and the protocol path (a per-user command, IMAP
APPEND and SMTP) against a real server over the wire."""
from __future__ import annotations

import email
import email.policy
import imaplib
import os
import re
import shlex
import sys

import millipost
from millipost import _core
from millipost.provision import (populate_over_protocol, run_provision_command,
                                 user_messages)

from conftest import TIMEOUT, running
from test_cli import run, tool


def test_generate_message_is_deterministic_and_ids_are_unique():
    a = _core.generate_message(7, 12345, "a@example.org", "b@example.org")
    b = _core.generate_message(7, 12345, "a@example.org", "b@example.org")
    assert a == b
    data, uid, mid = a
    assert uid == _core.message_uid(7, 12345) == "7.3039"
    assert mid == _core.message_id(7, 12345)
    assert f"\r\nX-Millipost-Id: {uid}\r\n".encode() in data
    assert _core.generate_message(8, 12345, "a@example.org", "b@example.org")[0] != data
    reply = _core.generate_message(7, 5, "a@example.org", "b@example.org", mid)[0]
    assert f"\r\nIn-Reply-To: {mid}\r\nReferences: {mid}\r\n".encode() in reply
    assert len({_core.message_uid(7, i) for i in range(10000)}) == 10000


def test_python_email_parses_generated_messages():
    kinds = {"text/plain": 0, "multipart/alternative": 0, "multipart/mixed": 0}
    scripts = set()
    for i in range(400):
        data, uid, mid = _core.generate_message(3, i, f"user{i}@localhost", "them@example.org",
                                                "<p@x>" if i % 3 == 0 else None)
        assert b"\n" not in data.replace(b"\r\n", b""), i
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert not msg.defects, (i, msg.defects)
        assert msg["X-Millipost-Id"] == uid
        assert msg["Message-ID"] == mid
        subject = str(msg["Subject"])
        assert "=?" not in subject, subject
        assert (i % 3 == 0) == subject.startswith("Re: ")
        assert msg["From"].addresses[0].addr_spec == f"user{i}@localhost"
        assert msg["Date"].datetime.timestamp() >= 1767225600  # from 2026-01-01T00:00Z
        kinds[msg.get_content_type()] = kinds.get(msg.get_content_type(), 0) + 1
        for part in msg.walk():
            assert not part.defects, (i, part.get_content_type(), part.defects)
            if part.is_multipart():
                continue
            content = part.get_content()
            if part.get_content_maintype() == "text":
                assert len(content) > 20
                scripts.update(ch for ch in content if ord(ch) > 0x2000)
            else:
                assert part.get_content_disposition() == "attachment"
                assert part.get_filename()
                magic = b"\x89PNG" if part.get_content_type() == "image/png" else b"%PDF-"
                assert content.startswith(magic)
    assert all(n > 20 for n in kinds.values()), kinds
    assert len(scripts) > 50  # CJK, Korean, Arabic, ... characters decoded


def test_message_sizes_follow_the_plan():
    for i in range(200):
        planned = _core.message_size(11, i)
        actual = len(_core.generate_message(11, i, "a@b.c", "d@e.f")[0])
        assert abs(actual - planned) <= 1200 + planned // 20, (i, actual, planned)


def imap_status(server, login: str, password: str, mailboxes) -> dict[str, int]:
    c = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    try:
        c.login(login, password)
        out = {}
        for mb in mailboxes:
            typ, data = c.status(mb, "(MESSAGES)")
            if typ != "OK":
                out[mb] = 0
                continue
            out[mb] = int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
        return out
    finally:
        c.logout()


def test_populate_mailboxes_through_the_store(tmp_path):
    pop = millipost.Population(4, 12)
    with running(data_dir=str(tmp_path), smtp_port=-1, pop3_port=-1) as server:
        seen = []
        assert server.provision(pop, 0, 12, messages_per_user=25,
                                message_progress=lambda u, m: seen.append((u, m))) == 12
        assert seen and seen[-1] == (12, 300)
        for i in (0, 7, 11):
            counts = imap_status(server, pop[i].login, pop[i].password,
                                 ["INBOX", "Archive", "Sent"])
            assert sum(counts.values()) == 25, counts
            assert counts["INBOX"] >= 15
        # Bulk-loaded mail raises no events; SEARCH indexes it when it first searches. Every
        # text part ends with the generator's signature line.
        c = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
        c.login(pop[7].login, pop[7].password)
        typ, data = c.select("INBOX", readonly=True)
        inbox = int(data[0])
        typ, data = c.search(None, "BODY", '"millipost load simulator"')
        assert typ == "OK" and len(data[0].split()) == inbox > 0
        # Each message k of user 7 carries its own X-Millipost-Id: exactly the INBOX ones match.
        hits = 0
        for k in range(25):
            uid = _core.message_uid(4, _core.Population.message_index(7, k))
            typ, data = c.search(None, "HEADER", "X-Millipost-Id", f'"{uid}"')
            assert typ == "OK" and len(data[0].split()) <= 1
            hits += len(data[0].split())
        assert hits == inbox
        c.logout()
        # Varied counts: each user gets what the population says, capped sizes respected.
        added = server.populate_mailboxes(pop, 0, 4, messages=30, vary=True,
                                          max_message_size=20000)
        want = [pop._core.mailbox_messages(i, 30, True) for i in range(4)]
        assert added == sum(want)
        counts = imap_status(server, pop[2].login, pop[2].password, ["INBOX", "Archive", "Sent"])
        assert sum(counts.values()) == 25 + want[2]


def test_populate_over_imap_append(tmp_path):
    pop = millipost.Population(6, 5)
    with running(data_dir=str(tmp_path), smtp_port=-1, pop3_port=-1) as server:
        server.provision(pop)
        url = f"imap://{server.host}:{server.imap_port}"
        progress = []
        r = populate_over_protocol(url, pop, messages=7, parallel=3,
                                   progress=lambda u, m: progress.append((u, m)))
        assert (r.ok, r.failed, r.messages) == (5, 0, 35), r.errors
        assert max(progress) == (5, 35)
        for i in range(5):
            assert imap_status(server, pop[i].login, pop[i].password, ["INBOX"]) == {"INBOX": 7}
        # The bytes stored are the generator's, in order.
        expected = [data for _, data, _ in user_messages(pop, 3, 7)]
        c = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
        c.login(pop[3].login, pop[3].password)
        c.select("INBOX", readonly=True)
        typ, data = c.fetch("1:7", "(FLAGS BODY.PEEK[])")
        c.logout()
        bodies = [d[1] for d in data if isinstance(d, tuple)]
        assert bodies == expected
        assert b"\\Seen" in data[0][0] and b"\\Seen" not in data[-2][0]
        # A wrong password counts as a failed user, not a crash.
        bad = millipost.Population(6, 2, password="wrong")
        r = populate_over_protocol(url, bad, messages=1)
        assert (r.ok, r.failed) == (0, 2) and r.errors


def test_populate_over_smtp(tmp_path):
    pop = millipost.Population(2, 3)
    with running(data_dir=str(tmp_path), pop3_port=-1) as server:
        server.provision(pop)
        r = populate_over_protocol(f"smtp://{server.host}:{server.smtp_port}", pop, messages=4)
        assert (r.ok, r.messages) == (3, 12), r.errors
        assert len(server.mailbox_uids(pop[1].login)) == 4


def test_provision_command_runs_per_user_with_bounded_parallelism(tmp_path):
    out = tmp_path / "added"
    script = ("import sys; open(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n'); "
              "sys.exit(3 if sys.argv[2] == 'user7' else 0)")
    template = (f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} "
                f"{shlex.quote(str(out))} {{login}} {{password}} {{address}}")
    pop = millipost.Population(1, 20, password="shared", domain="example.org")
    done = []
    r = run_provision_command(pop, template, first=2, parallel=4, progress=done.append)
    assert (r.users, r.ok, r.failed) == (18, 17, 1)
    assert r.errors == ["user7: exit 3"]
    assert max(done) == 18
    lines = sorted(out.read_text().splitlines())
    assert len(lines) == 18
    assert "user12 shared user12@example.org" in lines


def test_cli_provision_messages_and_target(tmp_path):
    data = str(tmp_path / "store")
    r = run(tool("millipost"), "provision", "--data", data, "--users", "20", "--messages", "5")
    assert r.returncode == 0, r.stderr
    assert "populated 100 messages" in r.stdout, r.stdout
    pop = millipost.Population(1, 4, password="pw")
    with running(data_dir=str(tmp_path / "other"), smtp_port=-1, pop3_port=-1) as server:
        server.provision(pop)
        r = run(tool("millipost"), "provision", "--users", "4", "--password", "pw",
                "--target", f"imap://{server.host}:{server.imap_port}", "--messages", "3")
        assert r.returncode == 0, r.stderr
        assert "populated 12 messages for 4 users" in r.stdout, r.stdout
        assert imap_status(server, "user3", "pw", ["INBOX"]) == {"INBOX": 3}
