"""Provisioning other servers: the protocol path of the load simulator.

The reference server is provisioned through its store (``Server.provision`` and
``Server.populate_mailboxes``). Any other server gets its users and mail in one of these ways:

**An existing user range** (the convention of imaptest's ``users=1-N``): the target already has
accounts ``user1``, ``user2``, ... sharing one password. Describe them with a population that has
that shared password, ``Population(seed, size, password="pass", domain=...)``: user *i* is then
``user<i>`` with ``pass``, exactly what the target holds, and nothing needs creating.

**A provisioning command** run once per user, for servers with their own admin tool::

    run_provision_command(population, "doveadm-adduser {login} {password}", parallel=8)
    millipost provision --users 1000 --command 'ssh mx sudo add-mail-user {login} {password}'

The template is split like a shell command line (no shell runs it) and each argument is
formatted with ``login``, ``password``, ``address``, ``name``, ``index`` and ``domain``.

**Mail over the protocol**: ``populate_over_protocol(url, population, ...)`` APPENDs N
generated messages to each user's INBOX over IMAP (``imap://host:port``, ``imaps://``), or
sends them over SMTP (``smtp://host:port``), as the users' own mail would arrive. Message k of
user i is the generator's message ``(population.seed, Population.message_index(i, k))`` with
that ``X-Millipost-Id``, as on the store path; the sender (a contact chosen here) and the
mailbox (always one) differ from the store path's choices, so the bytes do too.
"""
from __future__ import annotations

import imaplib
import shlex
import socket
import smtplib
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional
from urllib.parse import urlsplit

from . import _core
from .population import Population, User

# Messages of a provisioned user date from 2026-01-01, an hour apart (as the store path does).
_BASE_DATE = 1767225600


@dataclass
class ProvisionResult:
    """What a provisioning run did: counts, the first failures, and its duration."""
    users: int = 0
    ok: int = 0
    failed: int = 0
    messages: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # the first few, "user<i>: reason"

    def _fail(self, lock: threading.Lock, what: str) -> None:
        with lock:
            self.failed += 1
            if len(self.errors) < 20:
                self.errors.append(what)


def _fields(user: User, domain: str) -> dict[str, object]:
    return {"login": user.login, "password": user.password, "address": user.address,
            "name": user.name, "index": user.index, "domain": domain}


def run_provision_command(population: Population, template: str, first: int = 0,
                          last: Optional[int] = None, parallel: int = 8, timeout: float = 60.0,
                          progress: Optional[Callable[[int], None]] = None) -> ProvisionResult:
    """Runs ``template`` once per user of [first, last), at most ``parallel`` at a time.

    A command that exits non-zero (or times out) counts as failed, with its stderr's last line.
    """
    if parallel < 1:
        raise ValueError("parallel must be >= 1")
    argv_template = shlex.split(template)
    if not argv_template:
        raise ValueError("empty provisioning command")
    last = population.size if last is None else min(last, population.size)
    result = ProvisionResult(users=max(0, last - first))
    lock = threading.Lock()
    done = 0
    t0 = time.monotonic()

    def one(i: int) -> None:
        nonlocal done
        user = population[i]
        argv = [arg.format(**_fields(user, population.domain)) for arg in argv_template]
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
            if p.returncode == 0:
                with lock:
                    result.ok += 1
            else:
                tail = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
                result._fail(lock, f"{user.login}: {tail}")
        except (OSError, subprocess.TimeoutExpired) as e:
            result._fail(lock, f"{user.login}: {e}")
        with lock:
            done += 1
            n = done
        if progress:
            progress(n)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, range(first, last)))
    result.seconds = time.monotonic() - t0
    return result


def _contact(population: Population, i: int, k: int) -> User:
    # A sender other than the user, spread over the population, fixed per (user, k).
    if population.size < 2:
        return population[i]
    h = (population.seed * 0x9E3779B1 + i * 2654435761 + k * 40503) & 0xFFFFFFFF
    return population[(i + 1 + h % (population.size - 1)) % population.size]


def user_messages(population: Population, i: int, messages: int):
    """Yields (k, bytes, X-Millipost-Id) of user i's ``messages`` generated messages."""
    user = population[i]
    for k in range(messages):
        index = _core.Population.message_index(i, k)
        parent = None
        if k > 0 and k % 4 == 0:  # one in four replies to the one before
            parent = _core.message_id(population.seed, _core.Population.message_index(i, k - 1))
        data, uid, _ = _core.generate_message(population.seed, index,
                                              _contact(population, i, k).address, user.address,
                                              parent)
        yield k, data, uid


def _imap_connect(url, timeout: float) -> imaplib.IMAP4:
    host, port = url.hostname or "127.0.0.1", url.port
    if url.scheme == "imaps":
        conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port or 993, timeout=timeout,
                                                ssl_context=ssl.create_default_context())
    else:
        conn = imaplib.IMAP4(host, port or 143, timeout=timeout)
    # imaplib sends an APPEND literal and its closing CRLF in two writes: with Nagle on, the
    # CRLF waits for the ACK the server delays (~40 ms per message on Linux loopback).
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def populate_over_protocol(url: str, population: Population, first: int = 0,
                           last: Optional[int] = None, messages: int = 10, parallel: int = 4,
                           mailbox: str = "INBOX", timeout: float = 60.0,
                           progress: Optional[Callable[[int, int], None]] = None
                           ) -> ProvisionResult:
    """Gives users [first, last) ``messages`` generated messages each through a server's protocol.

    ``imap://host:port`` / ``imaps://``: each user logs in and APPENDs to ``mailbox`` (older
    messages \\Seen). ``smtp://host:port``: each message is sent to the user from a contact
    (the server delivers it to INBOX). ``progress(users_done, messages_done)``.
    """
    u = urlsplit(url)
    if u.scheme not in ("imap", "imaps", "smtp"):
        raise ValueError(f"populate over protocol needs an imap://, imaps:// or smtp:// URL: {url}")
    if parallel < 1 or messages < 0:
        raise ValueError("parallel must be >= 1 and messages >= 0")
    last = population.size if last is None else min(last, population.size)
    result = ProvisionResult(users=max(0, last - first))
    lock = threading.Lock()
    t0 = time.monotonic()
    done_users = 0

    def by_imap(i: int) -> int:
        user = population[i]
        sent = 0
        conn = _imap_connect(u, timeout)
        try:
            conn.login(user.login, user.password)
            for k, data, _ in user_messages(population, i, messages):
                # The newest tenth (at least one) unread, as the store path does.
                flags = "(\\Seen)" if k < messages - (messages + 9) // 10 else None
                date = imaplib.Time2Internaldate(_BASE_DATE + k * 3600)
                typ, resp = conn.append(mailbox, flags, date, data)
                if typ != "OK":
                    raise imaplib.IMAP4.error(f"APPEND: {typ} {resp!r}")
                sent += 1
        finally:
            try:
                conn.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
        return sent

    def by_smtp(i: int) -> int:
        user = population[i]
        sent = 0
        with smtplib.SMTP(u.hostname or "127.0.0.1", u.port or 25, timeout=timeout) as s:
            for k, data, _ in user_messages(population, i, messages):
                s.sendmail(_contact(population, i, k).address, [user.address], data)
                sent += 1
        return sent

    work = by_imap if u.scheme.startswith("imap") else by_smtp

    def one(i: int) -> None:
        nonlocal done_users
        try:
            n = work(i)
            with lock:
                result.ok += 1
                result.messages += n
        except (OSError, imaplib.IMAP4.error, smtplib.SMTPException) as e:
            result._fail(lock, f"{population[i].login}: {e}")
        with lock:
            done_users += 1
            snapshot = (done_users, result.messages)
        if progress:
            progress(*snapshot)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, range(first, last)))
    result.seconds = time.monotonic() - t0
    return result
