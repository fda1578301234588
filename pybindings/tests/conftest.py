"""Fixtures for the millipost system tests: real servers in-process, real clients, raw sockets.

Every socket made here has a timeout, so that a server that stops answering fails a test
instead of hanging the suite. See README.md in this directory.
"""
from __future__ import annotations

import poplib
import resource
import smtplib
import contextlib
import socket
import threading
import time
from typing import Callable, Iterator, Optional

import pytest

import millipost

#: Seconds any single network wait may take before the test fails.
TIMEOUT = 10.0

#: Seconds ``Server.stop()`` may take: the shutdown grace (limits::kShutdownGrace, 10 s) and
#: plenty of margin. Longer means it is stuck.
STOP_TIMEOUT = 30.0

#: The users every ``server`` fixture starts with.
USERS = {"alice": "secret", "bob": "hunter2"}


class RawClient:
    """A plain TCP client for what smtplib and poplib refuse to send: malformed lines, bare LF,
    NUL bytes, pipelined bursts, half-finished transactions.

    Every read waits at most ``timeout`` seconds and raises ``TimeoutError`` after that; a read
    that meets end-of-file raises ``EOFError`` (except :meth:`read_until_eof`).
    """

    def __init__(self, host: str, port: int, timeout: float = TIMEOUT,
                 source: Optional[str] = None):
        """``source``: the local address to connect from (e.g. ``"127.0.0.5"``: any of
        127.0.0.0/8 is this host), for the per-address connection limit."""
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    # -- writing ---------------------------------------------------------------------------
    def send(self, data: bytes | str) -> None:
        """Sends all of ``data`` (str is UTF-8 encoded) as given: no CRLF is added."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def cmd(self, line: bytes | str) -> None:
        """Sends one line followed by CRLF."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")

    # -- reading ---------------------------------------------------------------------------
    def _fill(self, deadline: float) -> bool:
        """Reads more into the buffer; False at EOF. Raises TimeoutError past the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no data within {self.timeout} s; have {self.buf[:200]!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"no data within {self.timeout} s; have {self.buf[:200]!r}")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_line(self, timeout: Optional[float] = None) -> bytes:
        """One line including its line ending (LF or CRLF)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            if not self._fill(deadline):
                raise EOFError(f"connection closed; unterminated data {self.buf[:200]!r}")
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def read_reply(self, timeout: Optional[float] = None) -> tuple[int, list[bytes]]:
        """One SMTP reply: ``(code, lines)``, reading continuation lines ``NNN-`` up to the
        final ``NNN `` line. ``lines`` hold the text after ``NNN-``/``NNN `` without CRLF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            left = max(0.001, deadline - time.monotonic())
            line = self.read_line(left).rstrip(b"\r\n")
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError(f"not an SMTP reply line: {line!r}")
            lines.append(line[4:])
            if len(line) == 3 or line[3:4] == b" ":
                return int(line[:3]), lines
            if line[3:4] != b"-":
                raise AssertionError(f"not an SMTP reply line: {line!r}")

    def read_multiline(self, timeout: Optional[float] = None) -> list[bytes]:
        """A POP3 multi-line body after its +OK line: lines up to the lone ``.``, dot-stuffing
        left as sent (so that tests can check it), CRLF removed."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            left = max(0.001, deadline - time.monotonic())
            line = self.read_line(left)
            assert line.endswith(b"\r\n"), f"POP3 line without CRLF: {line!r}"
            if line == b".\r\n":
                return lines
            lines.append(line[:-2])

    def read_until_eof(self, timeout: Optional[float] = None) -> bytes:
        """Everything until the server closes the connection (TimeoutError if it does not)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b""
        return data

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def raise_fd_limit(wanted: int) -> int:
    """Raises this process's soft RLIMIT_NOFILE towards ``wanted`` (capped by the hard limit);
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


def wait_for(predicate: Callable[[], object], timeout: float = TIMEOUT, interval: float = 0.02):
    """Polls ``predicate`` until it returns a true value (returned) or ``timeout`` passes
    (then the last value is returned, so that the caller's assert fails with it)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


def stop_server(s: millipost.Server, timeout: float = STOP_TIMEOUT) -> bool:
    """Stops a server from a watchdog thread; False if ``stop()`` did not return within
    ``timeout`` (the thread is then abandoned, so that a stuck stop fails one test instead of
    hanging the whole run)."""
    t = threading.Thread(target=s.stop, name="millipost-stop", daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive()


@contextlib.contextmanager
def running(**options) -> Iterator[millipost.Server]:
    """Like ``with millipost.Server(**options) as s``, but stopped through :func:`stop_server`:
    a ``stop()`` that hangs fails the test."""
    s = millipost.Server(**options)
    try:
        yield s
    finally:
        assert stop_server(s), f"Server.stop() did not return within {STOP_TIMEOUT} s: {s!r}"


@pytest.fixture
def _clients():
    """Every client the factories below open; closed after the servers have stopped (this
    fixture is set up before ``make_server``, so it is torn down after it). Idle clients at
    stop() are told goodbye by the server; closing them first would end sessions *during*
    stop(), a race that is tested on purpose in test_python_api.py, not in every teardown."""
    clients: list = []
    yield clients
    for c in clients:
        try:
            c.close()
        except OSError:
            pass


@pytest.fixture
def make_server(_clients):
    """Factory: ``make_server(users=USERS, **options)`` starts a ``millipost.Server`` with the
    given options (``smtp_timeout=1``, ``max_message_size=10000``, ``max_connections=5``, ...)
    and users; every server made is stopped after the test."""
    servers = []

    def make(users: Optional[dict] = None, **options) -> millipost.Server:
        s = millipost.Server(**options)
        servers.append(s)
        for login, password in (USERS if users is None else users).items():
            s.add_user(login, password)
        return s

    yield make
    stuck = [repr(s) for s in servers if not stop_server(s)]
    if stuck:
        pytest.fail(f"Server.stop() did not return within {STOP_TIMEOUT} s: {stuck}")


@pytest.fixture
def server(make_server) -> millipost.Server:
    """A server on ephemeral loopback ports with users alice/secret and bob/hunter2."""
    return make_server()


@pytest.fixture
def raw(_clients):
    """Factory: ``raw(port, timeout=TIMEOUT, source=None)`` connects a :class:`RawClient` to
    127.0.0.1 (from ``source`` if given); all are closed after the test."""

    def connect(port: int, timeout: float = TIMEOUT, source: Optional[str] = None) -> RawClient:
        c = RawClient(millipost.Server.host, port, timeout, source)
        _clients.append(c)
        return c

    return connect


@pytest.fixture
def smtp(server, _clients):
    """Factory: ``smtp(srv=server, ehlo=True)`` opens an ``smtplib.SMTP`` to a server (the
    default one unless given), EHLO done; closed after the test."""

    def connect(srv: Optional[millipost.Server] = None, ehlo: bool = True) -> smtplib.SMTP:
        srv = srv or server
        c = smtplib.SMTP(srv.host, srv.smtp_port, timeout=TIMEOUT)
        _clients.append(c)
        if ehlo:
            c.ehlo("client.test")
        return c

    return connect


@pytest.fixture
def pop3(server, _clients):
    """Factory: ``pop3(login=None, password=None, srv=server)`` opens a ``poplib.POP3``
    (logged in when a login is given); closed (without QUIT) after the test."""

    def connect(login: Optional[str] = None, password: Optional[str] = None,
                srv: Optional[millipost.Server] = None) -> poplib.POP3:
        srv = srv or server
        c = poplib.POP3(srv.host, srv.pop3_port, timeout=TIMEOUT)
        _clients.append(c)
        if login is not None:
            c.user(login)
            c.pass_(password if password is not None else USERS[login])
        return c

    return connect


def deliver(srv: millipost.Server, recipients: list[str], message: bytes,
            sender: str = "sender@example.org") -> None:
    """Sends one message with smtplib (raising on any refusal)."""
    with smtplib.SMTP(srv.host, srv.smtp_port, timeout=TIMEOUT) as s:
        refused = s.sendmail(sender, recipients, message)
        assert refused == {}, refused


def message(subject: str = "test", body: bytes = b"hello\r\n") -> bytes:
    """A small RFC 5322 message with CRLF line endings."""
    return (b"From: sender@example.org\r\nTo: alice@localhost\r\nSubject: "
            + subject.encode() + b"\r\n\r\n" + body)


def retr(pop: poplib.POP3, which: int) -> bytes:
    """RETR through poplib, reassembled as the stored octets (CRLF line endings)."""
    resp, lines, octets = pop.retr(which)
    assert resp.startswith(b"+OK"), resp
    return b"".join(line + b"\r\n" for line in lines)


def strip_received(stored: bytes) -> tuple[bytes, bytes]:
    """Splits a stored message into (our Received: header, the original message)."""
    assert stored.startswith(b"Received: "), stored[:200]
    pos = stored.index(b"\r\n") + 2
    while stored[pos:pos + 1] in (b" ", b"\t"):  # folded continuation lines
        pos = stored.index(b"\r\n", pos) + 2
    return stored[:pos], stored[pos:]
