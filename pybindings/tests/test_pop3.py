"""POP3 system tests: poplib and raw sockets against the real server (RFC 1939, 2449, 3206)."""
from __future__ import annotations

import poplib
import random
import time

import pytest

import millipost
from conftest import TIMEOUT, RawClient, deliver, message, retr, strip_received, wait_for


def err(pop: poplib.POP3, command: str) -> bytes:
    """Sends a command that must fail; returns the -ERR line."""
    with pytest.raises(poplib.error_proto) as e:
        pop._shortcmd(command)
    resp = e.value.args[0]
    assert resp.startswith(b"-ERR"), resp
    return resp


def fill(server, n: int, login: str = "alice") -> list[bytes]:
    """Delivers n distinct messages to one user; returns them in delivery order."""
    msgs = []
    for i in range(n):
        body = b"".join(b"body line %d of message %d\r\n" % (j, i) for j in range(1, 6))
        m = message(f"message {i}", body)
        deliver(server, [f"{login}@localhost"], m)
        msgs.append(m)
    return msgs


def login_when_free(server, login: str = "alice", password: str = "secret") -> poplib.POP3:
    """Logs in, retrying while the maildrop is still [IN-USE] by a session the server has not
    yet seen end (it notices a dropped connection asynchronously)."""
    result = {}

    def attempt():
        p = poplib.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
        try:
            p.user(login)
            p.pass_(password)
        except poplib.error_proto as e:
            p.close()
            assert b"[IN-USE]" in e.args[0], e.args[0]
            return None
        result["pop"] = p
        return p

    assert wait_for(attempt, timeout=5), "maildrop still locked 5 s after the session ended"
    return result["pop"]


# --- authorization state ---------------------------------------------------------------------

def test_greeting_and_login(server, pop3):
    p = pop3()
    assert p.getwelcome().startswith(b"+OK")
    assert p.user("alice").startswith(b"+OK")
    assert p.pass_("secret").startswith(b"+OK")
    assert p.stat() == (0, 0)


def test_wrong_password_auth(server, pop3):
    p = pop3()
    p.user("alice")
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("wrong")
    assert e.value.args[0].startswith(b"-ERR [AUTH]")
    # Still in AUTHORIZATION: the right password now works on the same connection.
    p.user("alice")
    assert p.pass_("secret").startswith(b"+OK")


def test_unknown_user_looks_like_wrong_password(server, pop3):
    p = pop3()
    p.user("mallory")
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("secret")
    unknown = e.value.args[0]
    p.user("alice")
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("wrong")
    assert unknown.startswith(b"-ERR [AUTH]")
    assert unknown == e.value.args[0]  # no user enumeration


def test_password_is_case_sensitive(server, pop3):
    p = pop3()
    p.user("alice")
    with pytest.raises(poplib.error_proto):
        p.pass_("SECRET")


def test_pass_without_user(server, pop3):
    p = pop3()
    resp = err(p, "PASS secret")
    assert p.user("alice").startswith(b"+OK")
    assert p.pass_("secret").startswith(b"+OK")
    assert resp.startswith(b"-ERR")


def test_pass_after_failed_pass_needs_user_again(server, pop3):
    p = pop3()
    p.user("alice")
    with pytest.raises(poplib.error_proto):
        p.pass_("wrong")
    err(p, "PASS secret")


@pytest.mark.parametrize("command", ["STAT", "LIST", "UIDL", "RETR 1", "TOP 1 0", "DELE 1",
                                     "RSET", "NOOP"])
def test_commands_before_login_fail(server, pop3, command):
    fill(server, 1)
    p = pop3()
    err(p, command)
    assert server.mailbox_uids("alice") != []


def test_quit_in_authorization(server, raw):
    c = raw(server.pop3_port)
    assert c.read_line().startswith(b"+OK")
    c.cmd("QUIT")
    assert c.read_line().startswith(b"+OK")
    assert c.read_until_eof() == b""


def test_capa(server, pop3):
    caps = pop3().capa()
    for cap in ("USER", "TOP", "UIDL", "RESP-CODES", "PIPELINING"):
        assert cap in caps, caps
    p = pop3("alice")
    assert "UIDL" in p.capa()  # also in TRANSACTION state


def test_unknown_command(server, pop3):
    p = pop3()
    err(p, "FROB")
    p.user("alice")
    p.pass_("secret")
    err(p, "FROB 1 2")
    assert p.noop().startswith(b"+OK")


def test_user_and_pass_not_valid_after_login(server, pop3):
    p = pop3("alice")
    err(p, "USER bob")
    err(p, "PASS hunter2")
    assert p.stat() == (0, 0)


# --- transaction state -----------------------------------------------------------------------

def test_stat_list_retr(server, pop3):
    msgs = fill(server, 3)
    p = pop3("alice")
    stored = [retr(p, i + 1) for i in range(3)]
    for original, got in zip(msgs, stored):
        assert strip_received(got)[1] == original
    assert p.stat() == (3, sum(len(s) for s in stored))
    resp, listing, _ = p.list()
    assert resp.startswith(b"+OK")
    assert listing == [b"%d %d" % (i + 1, len(s)) for i, s in enumerate(stored)]
    for i, s in enumerate(stored):
        assert p.list(i + 1).split() == [b"+OK", str(i + 1).encode(), str(len(s)).encode()]


def test_retr_reports_the_octets_it_sends(server, pop3):
    fill(server, 1)
    p = pop3("alice")
    resp, lines, _ = p.retr(1)
    octets = int(resp.split()[1])
    assert octets == sum(len(line) + 2 for line in lines)


def test_uidl(server, pop3):
    fill(server, 3)
    p = pop3("alice")
    resp, listing, _ = p.uidl()
    assert resp.startswith(b"+OK")
    assert [line.split()[0] for line in listing] == [b"1", b"2", b"3"]
    uids = [line.split()[1] for line in listing]
    assert len(set(uids)) == 3
    for uid in uids:  # RFC 1939 §7: 1 to 70 characters in 0x21..0x7E
        assert 1 <= len(uid) <= 70 and all(0x21 <= b <= 0x7E for b in uid)
    for i, uid in enumerate(uids):
        assert p.uidl(i + 1).split() == [b"+OK", str(i + 1).encode(), uid]


def test_uids_stable_across_sessions_and_never_reused(server, pop3):
    fill(server, 3)
    p = pop3("alice")
    first = p.uidl()[1]
    p.quit()
    p = pop3("alice")
    assert p.uidl()[1] == first
    p.dele(2)
    p.quit()
    fill(server, 1)
    p = pop3("alice")
    now = dict(line.split() for line in p.uidl()[1])
    old = dict(line.split() for line in first)
    assert now[b"1"] == old[b"1"]
    assert now[b"2"] == old[b"3"]  # renumbered, same unique id
    assert now[b"3"] not in old.values()  # the new message's id is new
    assert len(set(now.values())) == 3


def test_top(server, pop3):
    body = b"one\r\ntwo\r\nthree\r\n.dotted\r\n"
    original = message("top", body)
    deliver(server, ["alice@localhost"], original)
    p = pop3("alice")
    stored = retr(p, 1)
    headers = stored[:stored.index(b"\r\n\r\n") + 4]
    resp, lines, _ = p.top(1, 0)
    assert resp.startswith(b"+OK")
    assert b"".join(line + b"\r\n" for line in lines) == headers
    resp, lines, _ = p.top(1, 2)
    assert b"".join(line + b"\r\n" for line in lines) == headers + b"one\r\ntwo\r\n"
    resp, lines, _ = p.top(1, 100)
    assert b"".join(line + b"\r\n" for line in lines) == stored


@pytest.mark.parametrize("command", ["TOP 1", "TOP 1 -1", "TOP 1 x", "TOP"])
def test_top_bad_arguments(server, pop3, command):
    fill(server, 1)
    p = pop3("alice")
    err(p, command)


def test_noop_and_rset(server, pop3):
    fill(server, 2)
    p = pop3("alice")
    assert p.noop().startswith(b"+OK")
    p.dele(1)
    assert p.stat()[0] == 1
    assert p.rset().startswith(b"+OK")
    assert p.stat()[0] == 2
    assert len(p.list()[1]) == 2
    p.quit()
    assert len(server.mailbox_uids("alice")) == 2


def test_dele_marks_then_quit_removes(server, pop3):
    msgs = fill(server, 3)
    p = pop3("alice")
    sizes = dict(line.split() for line in p.list()[1])
    assert p.dele(2).startswith(b"+OK")
    assert [line.split()[0] for line in p.list()[1]] == [b"1", b"3"]
    err(p, "LIST 2")
    err(p, "RETR 2")
    err(p, "TOP 2 0")
    err(p, "UIDL 2")
    err(p, "DELE 2")  # already deleted
    assert p.stat() == (2, int(sizes[b"1"]) + int(sizes[b"3"]))
    # Marked, not yet removed: the store still has three.
    assert len(server.mailbox_uids("alice")) == 3
    assert p.quit().startswith(b"+OK")
    assert len(server.mailbox_uids("alice")) == 2
    p = pop3("alice")
    assert p.stat()[0] == 2
    assert strip_received(retr(p, 1))[1] == msgs[0]
    assert strip_received(retr(p, 2))[1] == msgs[2]


def test_drop_without_quit_deletes_nothing(server, pop3):
    fill(server, 2)
    p = pop3("alice")
    p.dele(1)
    p.dele(2)
    p.close()  # no QUIT: no UPDATE state
    p = login_when_free(server)
    assert p.stat()[0] == 2
    assert len(server.mailbox_uids("alice")) == 2


def test_second_login_is_in_use_until_first_ends(server, pop3):
    first = pop3("alice")
    second = pop3()
    second.user("alice")
    with pytest.raises(poplib.error_proto) as e:
        second.pass_("secret")
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")
    # Another user is not affected.
    assert pop3("bob").stat() == (0, 0)
    first.quit()
    second.user("alice")  # the same connection may try again
    assert second.pass_("secret").startswith(b"+OK")


def test_lock_released_when_connection_dropped(server, pop3):
    first = pop3("alice")
    first.close()
    p = login_when_free(server)
    assert p.stat() == (0, 0)


def test_failed_login_does_not_lock(server, pop3):
    p = pop3()
    p.user("alice")
    with pytest.raises(poplib.error_proto):
        p.pass_("wrong")
    assert pop3("alice").stat() == (0, 0)


def test_snapshot_hides_mail_delivered_during_session(server, pop3):
    fill(server, 1)
    p = pop3("alice")
    assert p.stat()[0] == 1
    fill(server, 2)
    assert len(server.mailbox_uids("alice")) == 3
    assert p.stat()[0] == 1
    assert len(p.list()[1]) == 1
    err(p, "RETR 2")
    p.quit()
    p = pop3("alice")
    assert p.stat()[0] == 3


def test_quit_deletes_only_marked_even_with_new_mail(server, pop3):
    fill(server, 1)
    p = pop3("alice")
    p.dele(1)
    fill(server, 1)  # arrives during the session
    p.quit()
    assert len(server.mailbox_uids("alice")) == 1
    p = pop3("alice")
    assert p.stat()[0] == 1


@pytest.mark.parametrize("verb", ["RETR", "LIST", "UIDL", "DELE", "TOP"])
def test_bad_message_numbers(server, pop3, verb):
    fill(server, 2)
    p = pop3("alice")
    for arg in ["0", "-1", "99", "abc", "", "1.5", "4294967297"]:
        command = f"{verb} {arg}".rstrip() if verb != "TOP" else f"{verb} {arg} 0"
        if verb in ("LIST", "UIDL") and arg == "":
            continue  # bare LIST/UIDL is the whole listing
        err(p, command)
    if verb in ("RETR", "DELE", "TOP"):
        err(p, verb)  # no number at all
    # Nothing was marked by the failed DELEs; the session is intact.
    assert p.stat()[0] == 2


def test_overlong_line_then_session_continues(server, raw):
    c = raw(server.pop3_port)
    assert c.read_line().startswith(b"+OK")
    c.cmd("NOOP " + "x" * 600)
    assert c.read_line().startswith(b"-ERR")
    c.cmd("USER alice")
    assert c.read_line().startswith(b"+OK")
    c.cmd("PASS secret")
    assert c.read_line().startswith(b"+OK")
    c.cmd("STAT")
    assert c.read_line() == b"+OK 0 0\r\n"


def test_command_line_limit_boundary(server, raw):
    """kPop3MaxCommandLine = 512 octets including CRLF."""
    c = raw(server.pop3_port)
    c.read_line()
    c.cmd("USER " + "u" * (510 - 5))  # 512 with CRLF: accepted
    assert c.read_line().startswith(b"+OK")
    c.cmd("USER " + "u" * (511 - 5))  # 513: too long
    assert c.read_line().startswith(b"-ERR")
    c.cmd("NOOP")  # the session is still in AUTHORIZATION and answers
    assert c.read_line().startswith(b"-ERR")
    c.cmd("QUIT")
    assert c.read_line().startswith(b"+OK")


def test_megabyte_line_without_newline(server, raw):
    c = raw(server.pop3_port)
    c.read_line()
    c.send(b"B" * (1024 * 1024))
    assert c.read_line(timeout=5).startswith(b"-ERR")
    c.send(b"\r\nCAPA\r\n")
    assert c.read_line().startswith(b"+OK")
    assert b"USER" in b" ".join(c.read_multiline())


def test_pipelined_commands(server, raw):
    fill(server, 2)
    c = raw(server.pop3_port)
    c.read_line()
    c.send(b"USER alice\r\nPASS secret\r\nSTAT\r\nUIDL 1\r\nLIST\r\nNOOP\r\nQUIT\r\n")
    assert c.read_line().startswith(b"+OK")  # USER
    assert c.read_line().startswith(b"+OK")  # PASS
    assert c.read_line().startswith(b"+OK 2 ")  # STAT
    assert c.read_line().startswith(b"+OK 1 ")  # UIDL 1
    assert c.read_line().startswith(b"+OK")  # LIST
    assert len(c.read_multiline()) == 2
    assert c.read_line().startswith(b"+OK")  # NOOP
    assert c.read_line().startswith(b"+OK")  # QUIT
    assert c.read_until_eof() == b""


def test_nul_in_command(server, raw):
    c = raw(server.pop3_port)
    c.read_line()
    c.send(b"US\x00ER alice\r\n")
    assert c.read_line().startswith(b"-ERR")
    c.cmd("USER alice")
    assert c.read_line().startswith(b"+OK")


def test_twenty_errors_close_the_session(server, raw):
    # After login; before it the limit is 10 (test_limits.py).
    c = raw(server.pop3_port)
    c.read_line()
    for line in (b"USER alice", b"PASS secret"):
        c.cmd(line)
        assert c.read_line().startswith(b"+OK")
    c.send(b"FROB\r\n" * 20)
    rest = c.read_until_eof()
    lines = rest.split(b"\r\n")
    assert lines[-1] == b""
    assert len(lines) - 1 == 21, rest
    assert all(line.startswith(b"-ERR") for line in lines[:-1])


# --- timeouts --------------------------------------------------------------------------------

def test_idle_timeout_closes(make_server, raw):
    srv = make_server(pop3_login_timeout=1)  # before login; after it pop3_timeout
    c = raw(srv.pop3_port)
    assert c.read_line().startswith(b"+OK")
    started = time.monotonic()
    rest = c.read_until_eof(timeout=8)
    assert rest.startswith(b"-ERR"), rest
    assert 0.5 < time.monotonic() - started < 8


def test_autologout_does_not_delete(make_server):
    srv = make_server(pop3_timeout=1)
    fill(srv, 1)
    c = RawClient(srv.host, srv.pop3_port)
    try:
        c.read_line()
        for line in (b"USER alice", b"PASS secret", b"DELE 1"):
            c.cmd(line)
            assert c.read_line().startswith(b"+OK")
        c.read_until_eof(timeout=8)  # autologout: no UPDATE state (RFC 1939 §3)
    finally:
        c.close()
    assert len(srv.mailbox_uids("alice")) == 1
    p = login_when_free(srv)
    try:
        assert p.stat()[0] == 1
    finally:
        p.close()


# --- a synthetic population ------------------------------------------------------------------

def test_population_users_log_in(server, pop3):
    population = millipost.Population(11, 1000)
    assert server.provision(population) == 1000
    rng = random.Random(11)
    for i in [0, 1, 999, -1] + rng.sample(range(1000), 5):
        user = population[i]
        p = pop3(user.login, user.password)
        assert p.stat() == (0, 0)
        p.quit()
    user = population[500]
    p = pop3()
    p.user(user.login)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(user.password + "x")
    assert e.value.args[0].startswith(b"-ERR [AUTH]")
    # A password of another user of the same population does not open this one.
    p.user(user.login)
    with pytest.raises(poplib.error_proto):
        p.pass_(population[501].password)


def test_population_mail_round_trip(server, pop3):
    population = millipost.Population(12, 50)
    server.provision(population)
    user = population[17]
    original = message("to a synthetic user")
    deliver(server, [user.address], original)
    p = pop3(user.login, user.password)
    assert strip_received(retr(p, 1))[1] == original


def test_population_with_its_own_domain(make_server, pop3):
    """A population in another domain receives mail when the server serves that domain."""
    srv = make_server(domains=["example.test"])
    population = millipost.Population(13, 20, domain="example.test")
    assert srv.provision(population) == 20
    user = population[7]
    assert user.address == "user7@example.test"
    original = message("to another domain")
    deliver(srv, [user.address], original)
    p = pop3(user.login, user.password, srv=srv)
    assert strip_received(retr(p, 1))[1] == original
