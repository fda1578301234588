"""The Python API: millipost.Server, millipost.Population, provisioning."""
from __future__ import annotations

import os
import poplib
import smtplib
import socket
import struct
import threading
import time

import pytest

import millipost
from conftest import (TIMEOUT, RawClient, deliver, message, retr, running, stop_server,
                      strip_received)


# --- Server ----------------------------------------------------------------------------------

def test_server_context_manager():
    with millipost.Server() as s:
        assert s.running
        assert s.smtp_port > 0 and s.pop3_port > 0
        assert s.smtp_port != s.pop3_port
        assert s.host == "127.0.0.1"
        text = repr(s)
        assert f"smtp={s.smtp_port}" in text and f"pop3={s.pop3_port}" in text
        data_dir = s.data_dir
        assert os.path.isdir(data_dir)
        with RawClient(s.host, s.smtp_port) as c:
            assert c.read_reply()[0] == 220
            c.cmd("QUIT")
            assert c.read_reply()[0] == 221
            assert c.read_until_eof() == b""
        # Let the finished session be gone before stop(): a session ending during stop() can
        # deadlock it (see test_stop_while_sessions_end_does_not_hang).
        time.sleep(0.1)
    assert not s.running
    assert "stopped" in repr(s)
    assert not os.path.exists(data_dir)  # the temporary directory is removed
    s.stop()  # idempotent
    s.stop()
    assert not s.running
    with pytest.raises(OSError):
        smtplib.SMTP(s.host, s.smtp_port, timeout=2).noop()


def test_start_false_then_start():
    s = millipost.Server(start=False)
    try:
        assert not s.running
        s.start()
        assert s.running
        assert s.smtp_port > 0
    finally:
        s.stop()
    assert not s.running


def test_ports_can_be_turned_off():
    with running(pop3_port=-1) as s:
        assert s.smtp_port > 0
        assert s.pop3_port <= 0


def test_two_servers_side_by_side():
    with running() as a, running() as b:
        assert {a.smtp_port, a.pop3_port}.isdisjoint({b.smtp_port, b.pop3_port})
        assert a.data_dir != b.data_dir
        a.add_user("alice", "secret")
        assert a.user_count() == 1 and b.user_count() == 0


def test_hostname_option():
    with running(hostname="mx.example.test") as s:
        assert s.hostname == "mx.example.test"
        with smtplib.SMTP(s.host, s.smtp_port, timeout=TIMEOUT) as c:
            code, text = c.ehlo("client.test")
            assert text.startswith(b"mx.example.test")


def test_extra_local_domain():
    with running(domains=["example.test"]) as s:
        s.add_user("alice", "secret")
        deliver(s, ["alice@example.test"], message())
        assert len(s.mailbox_uids("alice")) == 1


def test_add_user(server):
    assert server.user_count() == 2
    uid = server.add_user("carol", "pw")
    assert isinstance(uid, int) and uid > 0
    assert server.add_user("dave", "pw") != uid
    assert server.user_count() == 4
    assert server.mailbox_uids("carol") == []


def test_add_user_duplicate_raises(server):
    with pytest.raises(RuntimeError, match="alice"):
        server.add_user("alice", "other")
    assert server.user_count() == 2
    # The original password still works.
    p = poplib.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    try:
        p.user("alice")
        assert p.pass_("secret").startswith(b"+OK")
    finally:
        p.close()


@pytest.mark.parametrize("login,password", [("", "pw"), ("carol", "")])
def test_add_user_empty_raises(server, login, password):
    with pytest.raises(ValueError):
        server.add_user(login, password)
    assert server.user_count() == 2


def test_mailbox_uids_unknown_user(server):
    with pytest.raises(KeyError):
        server.mailbox_uids("nobody")


def test_unknown_option_raises_type_error():
    with pytest.raises(TypeError, match="bogus"):
        millipost.Server(bogus=1)


def test_failed_construction_leaves_no_temp_dir(tmp_path, monkeypatch):
    """A Server that cannot be made (here: an unknown option) removes the temporary data
    directory it created for itself."""
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(TypeError):
        millipost.Server(bogus=1)
    assert os.listdir(tmp_path) == []


def test_counters(server):
    deliver(server, ["alice@localhost", "bob@localhost"], message())
    p = poplib.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    p.user("alice")
    with pytest.raises(poplib.error_proto):
        p.pass_("wrong")
    p.user("alice")
    p.pass_("secret")
    p.retr(1)
    p.dele(1)
    p.quit()
    c = server.counters()
    assert c["messages_accepted"] == 1
    assert c["deliveries"] == 2
    assert c["smtp_sessions"] >= 1 and c["pop3_sessions"] >= 1
    assert c["pop3_retrieved"] == 1
    assert c["pop3_deleted"] == 1
    assert c["auth_failures"] >= 1


def test_data_dir_survives_restart(tmp_path):
    original = message("persisted", b"kept across restarts\r\n")
    with running(data_dir=tmp_path) as s:
        s.add_user("alice", "secret")
        s.add_user("bob", "hunter2")
        deliver(s, ["alice@localhost"], original)
        first_port = s.smtp_port
    assert os.path.isdir(tmp_path)  # a given data_dir is not removed
    assert os.listdir(tmp_path)
    with running(data_dir=tmp_path) as s:
        assert s.user_count() == 2
        assert len(s.mailbox_uids("alice")) == 1
        p = poplib.POP3(s.host, s.pop3_port, timeout=TIMEOUT)
        try:
            p.user("alice")
            p.pass_("secret")
            assert strip_received(retr(p, 1))[1] == original
            uidl = p.uidl(1)
        finally:
            p.close()
        with pytest.raises(RuntimeError):
            s.add_user("alice", "again")
        deliver(s, ["alice@localhost"], message("second"))
    with running(data_dir=tmp_path) as s:
        p = poplib.POP3(s.host, s.pop3_port, timeout=TIMEOUT)
        try:
            p.user("alice")
            p.pass_("secret")
            assert p.stat()[0] == 2
            assert p.uidl(1) == uidl  # unique ids survive restarts too
        finally:
            p.close()
    assert first_port > 0


def test_stop_says_goodbye_to_idle_sessions(server):
    smtp = RawClient(server.host, server.smtp_port)
    pop = RawClient(server.host, server.pop3_port)
    try:
        assert smtp.read_reply()[0] == 220
        assert pop.read_line().startswith(b"+OK")
        started = time.monotonic()
        assert stop_server(server), "Server.stop() hung"
        assert time.monotonic() - started < 5
        code, lines = smtp.read_reply()
        assert code == 421
        assert lines[-1].startswith(b"4.3.2")
        assert smtp.read_until_eof() == b""
        assert pop.read_until_eof().startswith(b"-ERR")
    finally:
        smtp.close()
        pop.close()
    assert not server.running


def _open_data(s: millipost.Server) -> RawClient:
    """A raw SMTP session to alice, past the 354."""
    c = RawClient(s.host, s.smtp_port)
    c.read_reply()
    for line, code in (("EHLO client.test", 250), ("MAIL FROM:<a@example.org>", 250),
                       ("RCPT TO:<alice@localhost>", 250), ("DATA", 354)):
        c.cmd(line)
        assert c.read_reply()[0] == code
    return c


def test_stop_lets_an_in_flight_data_finish(tmp_path):
    """stop() is graceful: a transfer under way may finish, is delivered, and answered 250;
    then the session gets 421 4.3.2."""
    s = millipost.Server(data_dir=tmp_path)
    s.add_user("alice", "secret")
    head = b"Subject: in flight\r\n\r\nfirst half\r\n"
    tail = b"second half\r\n"
    c = _open_data(s)
    stopper = threading.Thread(target=s.stop, daemon=True)
    try:
        c.send(head)
        time.sleep(0.1)
        stopper.start()
        time.sleep(0.3)
        c.send(tail + b".\r\n")
        code, lines = c.read_reply()
        assert code == 250, lines
        code, lines = c.read_reply()
        assert code == 421 and lines[-1].startswith(b"4.3.2"), lines
        assert c.read_until_eof() == b""
        stopper.join(TIMEOUT)
        assert not stopper.is_alive()
    finally:
        c.close()
        stopper.join(TIMEOUT)
        assert stop_server(s), "Server.stop() hung"
    with running(data_dir=tmp_path) as s:
        p = poplib.POP3(s.host, s.pop3_port, timeout=TIMEOUT)
        try:
            p.user("alice")
            p.pass_("secret")
            assert strip_received(retr(p, 1))[1] == head + tail
        finally:
            p.close()


@pytest.mark.slow
def test_stop_with_a_stalled_data_keeps_nothing(tmp_path):
    """A client that stops sending mid-DATA holds stop() at most the shutdown grace
    (limits::kShutdownGrace, 10 s); nothing half-received is delivered or acknowledged."""
    s = millipost.Server(data_dir=tmp_path)
    s.add_user("alice", "secret")
    c = _open_data(s)
    try:
        c.send(b"Subject: unfinished\r\n\r\nhalf")
        time.sleep(0.1)
        started = time.monotonic()
        assert stop_server(s), "Server.stop() hung"
        assert time.monotonic() - started < 15
        rest = c.read_until_eof()
        assert not rest.startswith(b"250"), rest
    finally:
        c.close()
        assert stop_server(s), "Server.stop() hung"
    with running(data_dir=tmp_path) as s:
        assert s.mailbox_uids("alice") == []


def test_stop_while_sessions_end_does_not_hang():
    """stop() must return while sessions are ending at the same moment: here half of 40 idle
    clients reset their connections just as stop() begins. Repeated, because it is a race."""
    for round_ in range(25):
        s = millipost.Server(io_threads=2)
        clients = [RawClient(s.host, s.smtp_port if i % 2 else s.pop3_port) for i in range(40)]
        try:
            for c in clients:
                c.read_line()
            for c in clients[::2]:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
            started = time.monotonic()
            assert stop_server(s, timeout=15), (
                f"round {round_}: Server.stop() did not return within 15 s while sessions were "
                f"ending (deadlock)")
            assert time.monotonic() - started < 5
            for c in clients[1::2]:  # the idle ones still open were told goodbye
                rest = c.read_until_eof()
                assert rest.startswith(b"421 4.3.2") or rest.startswith(b"-ERR"), rest
        finally:
            for c in clients:
                c.close()


# --- Population ------------------------------------------------------------------------------

def test_population_is_deterministic():
    a = millipost.Population(7, 1000)
    b = millipost.Population(7, 1000)
    for i in (0, 1, 500, 999):
        assert a[i] == b[i]
        assert a[i].index == i
        assert a[i].login == f"user{i}"
        assert a[i].address == f"user{i}@localhost"
        assert a[i].password and a[i].name
    assert len({a[i].password for i in range(100)}) > 90  # passwords differ between users


def test_population_index_is_independent_of_size():
    assert millipost.Population(7, 10)[3] == millipost.Population(7, 10_000_000)[3]


def test_population_seeds_differ():
    a = millipost.Population(1, 100)
    b = millipost.Population(2, 100)
    assert a[5].login == b[5].login
    assert a[5].password != b[5].password
    assert [a[i] for i in range(20)] != [b[i] for i in range(20)]


def test_population_shared_password():
    p = millipost.Population(3, 50, password="same")
    assert {p[i].password for i in range(50)} == {"same"}
    assert p.password == "same"


def test_population_len_iter_and_indexing():
    p = millipost.Population(4, 25)
    assert len(p) == 25
    assert p.size == 25 and p.seed == 4
    users = list(p)
    assert len(users) == 25
    assert users[24] == p[24] == p[-1]
    assert p[-25] == p[0]
    with pytest.raises(IndexError):
        p[25]
    with pytest.raises(IndexError):
        p[-26]
    with pytest.raises(TypeError):
        p["1"]
    with pytest.raises(TypeError):
        p[1.0]
    assert "seed=4" in repr(p) and "size=25" in repr(p)


def test_population_empty_and_invalid():
    p = millipost.Population(1, 0)
    assert len(p) == 0 and list(p) == []
    with pytest.raises(IndexError):
        p[0]
    with pytest.raises(ValueError):
        millipost.Population(1, -1)
    with pytest.raises(ValueError):
        millipost.Population(-1, 10)


def test_population_huge_costs_nothing():
    started = time.monotonic()
    p = millipost.Population(9, 10**12)
    assert p[10**12 - 1].login == f"user{10**12 - 1}"
    assert time.monotonic() - started < 1


def test_population_domain():
    p = millipost.Population(5, 10, domain="example.test")
    assert p.domain == "example.test"
    assert p[3].address == "user3@example.test"
    assert p[3].login == "user3"


# --- provisioning ----------------------------------------------------------------------------

def test_provision_is_idempotent(server):
    p = millipost.Population(21, 3000)
    assert server.provision(p) == 3000
    assert server.user_count() == 3002
    assert server.provision(p) == 0
    assert server.user_count() == 3002


def test_provision_range_and_progress(server):
    p = millipost.Population(22, 1000)
    seen = []
    assert server.provision(p, first=100, last=300, progress=seen.append) == 200
    assert server.user_count() == 202
    assert seen and seen[-1] == 200 and seen == sorted(seen)
    assert server.provision(p, first=0, last=5000) == 800  # last is capped at the size
    assert server.user_count() == 1002


def test_provisioned_users_receive_mail(server):
    p = millipost.Population(23, 100, password="pw", domain="localhost")
    server.provision(p)
    deliver(server, [p[0].address, p[99].address], message())
    assert len(server.mailbox_uids(p[0].login)) == 1
    assert len(server.mailbox_uids(p[99].login)) == 1


def test_provision_does_not_clash_with_add_user(server):
    server.add_user("user5", "mine")
    p = millipost.Population(24, 10)
    assert server.provision(p) == 9
    assert server.user_count() == 2 + 10
    pop = poplib.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    try:
        pop.user("user5")
        assert pop.pass_("mine").startswith(b"+OK")  # the existing account is untouched
    finally:
        pop.close()
