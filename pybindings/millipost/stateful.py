"""millipost.stateful: Hypothesis rule-based state machines that talk to a real server, with
every exchange checked against the protocol's contract.

Subclass :class:`ProtocolMachine`, give it rules that send commands and compare the replies
with your own model, and let Hypothesis search for (and shrink) a sequence of commands that
breaks either your model or the RFC contract::

    from hypothesis import strategies as st
    from hypothesis.stateful import initialize, rule
    from millipost.stateful import ProtocolMachine

    class Pop3Machine(ProtocolMachine):
        @initialize()
        def login(self):
            self.pop3_login()

        @rule()
        def stat(self):
            status, _ = self.pop3("STAT")
            assert status.startswith(b"+OK")

    def test_pop3(millipost_target):                      # fixture of millipost.pytest_plugin
        Pop3Machine.run(millipost_target.url("pop3"), max_examples=20)

The protocol comes from the URL (``imap://``, ``smtp://``, ``pop3://``, and the TLS forms).
Every byte the machine sends goes through ``checker.on_client`` and every byte it reads
through ``checker.on_server`` of ``millipost.contracts.load(protocol).checker()``; the first
breach fails the example with the contract rule, the reason and the transcript's tail.
While ``millipost.contracts`` (or the protocol's contract) is not installed, exchanges are
not contract-checked (``contract_status`` says why) but the machine works the same; set
``require_contract = True`` to make that an error instead.

On any failure the transcript (millipost transcript v1, see ``transcript_text``) is attached
to the error, and written to ``transcript_dir`` when that is set.
"""
from __future__ import annotations

import os
import re
import secrets
import socket
import ssl
import time
from typing import Optional

from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from .conform import Target, _quote


class ContractBreach(AssertionError):
    """The server (or the machine) broke the protocol contract."""


def load_checker(protocol: str):
    """``millipost.contracts.load(protocol).checker()``, or ``(None, why)`` while the contracts
    module or that protocol's contract is not available. Returns ``(checker, status)``."""
    try:
        from . import contracts  # written concurrently; lazily imported on purpose
    except ImportError as e:
        return None, f"not checked: millipost.contracts is not available ({e})"
    try:
        return contracts.load(protocol).checker(), f"checked against the {protocol} contract"
    except (FileNotFoundError, KeyError, LookupError, OSError, ValueError) as e:
        return None, f"not checked: no {protocol} contract ({e})"


def escape_bytes(data: bytes) -> str:
    """Transcript v1 escaping: printable ASCII as itself except backslash; CR, LF, TAB as
    ``\\r \\n \\t``; any other byte as ``\\xHH`` (lowercase)."""
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x09:
            out.append("\\t")
        elif 0x20 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def transcript_text(records: list, headers: Optional[dict] = None) -> str:
    """``records`` ([("C" | "S", bytes)]) as a millipost transcript v1 file; a record is split
    after each LF, as writers normally do."""
    lines = ["# millipost transcript 1"]
    for key, value in (headers or {}).items():
        lines.append(f"# {key}: {value}")
    for who, data in records:
        for piece in re.findall(rb"[^\n]*\n|[^\n]+", data):
            lines.append(f"{who}: {escape_bytes(piece)}")
    return "\n".join(lines) + "\n"


class ProtocolMachine(RuleBasedStateMachine):
    """Base class: one connection to ``url`` per example, contract-checked I/O helpers.

    Class attributes (set them, or use :meth:`bind` / :meth:`run`): ``url``; ``users`` (more
    ``(login, password)`` pairs); ``timeout`` (seconds per read); ``require_contract``;
    ``transcript_dir`` (where a failing example's transcript is written).
    """

    url: Optional[str] = os.environ.get("MILLIPOST_URL")
    users: tuple = ()
    timeout: float = 5.0
    require_contract: bool = False
    transcript_dir: Optional[str] = None

    def __init__(self):
        super().__init__()
        if not self.url:
            raise ValueError(f"{type(self).__name__}: no target URL (set url, use "
                             f"{type(self).__name__}.bind(url), or MILLIPOST_URL)")
        self.target = Target.parse(self.url, self.users)
        self.protocol = self.target.protocol
        self.checker, self.contract_status = load_checker(self.protocol)
        if self.checker is None and self.require_contract:
            raise RuntimeError(f"{type(self).__name__}: contract required, {self.contract_status}")
        self.records: list = []  # [("C" | "S", bytes)] in wire order
        self._tag = 0
        self._buf = b""
        self._closed = False
        sock = socket.create_connection((self.target.host, self.target.port), timeout=self.timeout)
        if self.target.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname=self.target.host)
        self.sock = sock
        # The greeting: SMTP's may span lines (220-...); IMAP and POP3 send one line.
        self.greeting = (b"\r\n".join(self.smtp_reply()[1]) if self.protocol == "smtp"
                         else self.read_line())

    # -- binding to a target ---------------------------------------------------------------

    @classmethod
    def bind(cls, url: str, users=(), **attrs) -> type:
        """A subclass of this machine bound to ``url`` (and ``users``, and other class
        attributes such as ``timeout``)."""
        return type(cls.__name__, (cls,), {"url": url, "users": tuple(users), **attrs})

    @classmethod
    def run(cls, url: str, users=(), settings=None, **settings_kw) -> None:
        """Runs the machine against ``url`` as a test (``settings_kw`` go to
        :class:`hypothesis.settings`, e.g. ``max_examples=25``, ``stateful_step_count=30``)."""
        from hypothesis import HealthCheck
        from hypothesis import settings as Settings
        if settings is None:
            settings_kw.setdefault("deadline", None)
            settings_kw.setdefault("suppress_health_check", [HealthCheck.too_slow])
            settings = Settings(**settings_kw)
        run_state_machine_as_test(cls.bind(url, users), settings=settings)

    # -- the wire ----------------------------------------------------------------------------

    def _breach(self, breach) -> None:
        if breach is not None:
            raise ContractBreach(f"contract breach ({getattr(breach, 'who', '?')}, rule "
                                 f"{getattr(breach, 'rule', '?')}): {breach}\n"
                                 + self.transcript_tail())

    def send_raw(self, data: bytes) -> None:
        """Sends bytes as they are (checked as client bytes)."""
        self.records.append(("C", data))
        if self.checker is not None:
            self._breach(self.checker.on_client(data))
        self.sock.sendall(data)

    def send_line(self, line: str | bytes) -> None:
        """Sends one line plus CRLF."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send_raw(line + b"\r\n")

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no reply within {self.timeout} s\n" + self.transcript_tail())
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            return False
        self.records.append(("S", chunk))
        if self.checker is not None:
            self._breach(self.checker.on_server(chunk))
        self._buf += chunk
        return True

    def read_line(self) -> bytes:
        """One line including its CRLF; AssertionError when the server closes first."""
        while b"\n" not in self._buf:
            if not self._fill():
                raise AssertionError("connection closed by the server\n" + self.transcript_tail())
        line, _, self._buf = self._buf.partition(b"\n")
        return line + b"\n"

    def read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                raise AssertionError("connection closed inside a literal\n"
                                     + self.transcript_tail())
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    # -- protocol helpers --------------------------------------------------------------------

    def smtp(self, line: str) -> tuple[int, list[bytes]]:
        """Sends an SMTP command; returns ``(code, [text of each reply line])``."""
        self.send_line(line)
        return self.smtp_reply()

    def smtp_reply(self) -> tuple[int, list[bytes]]:
        texts = []
        while True:
            line = self.read_line().rstrip(b"\r\n")
            assert re.match(rb"^\d{3}([ -]|$)", line), f"not an SMTP reply line: {line!r}"
            texts.append(line[4:])
            if line[3:4] != b"-":
                return int(line[:3]), texts

    def pop3(self, line: str, multiline: bool = False) -> tuple[bytes, list[bytes]]:
        """Sends a POP3 command; returns ``(status line, body lines)``; the dot-terminated body
        (un-stuffed) is read when ``multiline`` and the status is +OK."""
        self.send_line(line)
        status = self.read_line().rstrip(b"\r\n")
        body = []
        if multiline and status.startswith(b"+OK"):
            while True:
                row = self.read_line().rstrip(b"\r\n")
                if row == b".":
                    break
                body.append(row[1:] if row.startswith(b"..") else row)
        return status, body

    def pop3_login(self, which: int = 0) -> None:
        login, password = self.target.users[which]
        status, _ = self.pop3(f"USER {login}")
        assert status.startswith(b"+OK"), status
        status, _ = self.pop3(f"PASS {password}")
        assert status.startswith(b"+OK"), status

    def next_tag(self) -> str:
        self._tag += 1
        return f"h{self._tag}"

    def imap(self, command: str, literals: tuple = ()) -> tuple[list[bytes], bytes]:
        """Sends ``TAG command`` (each ``{}`` in it takes the next of ``literals``, sent as a
        synchronizing literal); returns ``(untagged responses, tagged status line)`` with
        literals inlined in the untagged responses and CRLFs removed."""
        tag = self.next_tag()
        parts = command.split("{}")
        if len(parts) - 1 != len(literals):
            raise ValueError("one literal per {} in the command")
        untagged: list[bytes] = []
        head = f"{tag} {parts[0]}".encode("utf-8")
        for lit, rest in zip(literals, parts[1:]):
            lit = lit.encode("utf-8") if isinstance(lit, str) else lit
            self.send_raw(head + b"{%d}\r\n" % len(lit))
            while True:  # wait for the continuation request
                resp = self._imap_response()
                if resp.startswith(b"+"):
                    break
                if resp.startswith(tag.encode() + b" "):
                    return untagged, resp
                untagged.append(resp)
            self.send_raw(lit)
            head = rest.encode("utf-8")
        self.send_raw(head + b"\r\n")
        while True:
            resp = self._imap_response()
            if resp.startswith(tag.encode() + b" "):
                return untagged, resp
            untagged.append(resp)

    def _imap_response(self) -> bytes:
        out = b""
        while True:
            line = self.read_line().rstrip(b"\r\n")
            out += line
            m = re.search(rb"\{(\d+)\+?\}$", line)
            if not m:
                return out
            out += self.read_exact(int(m.group(1)))

    def imap_login(self, which: int = 0) -> None:
        login, password = self.target.users[which]
        _, status = self.imap(f"LOGIN {_quote(login)} {_quote(password)}")
        assert b" OK" in status, status

    def fresh_mailbox(self) -> str:
        """Creates a new, empty mailbox ``stateful-XXXXXXXX`` (deleted in teardown)."""
        name = f"stateful-{secrets.token_hex(4)}"
        _, status = self.imap(f'CREATE "{name}"')
        assert b" OK" in status, status
        self._mailboxes = getattr(self, "_mailboxes", []) + [name]
        return name

    # -- transcript and teardown -------------------------------------------------------------

    def transcript_text(self) -> str:
        return transcript_text(self.records, {"contract": self.protocol,
                                              "target": f"{self.target.host}:{self.target.port}",
                                              **({} if self._closed else {"open": "true"})})

    def transcript_tail(self, lines: int = 20) -> str:
        text = self.transcript_text().splitlines()
        tail = text[-lines:]
        if self.transcript_dir:
            os.makedirs(self.transcript_dir, exist_ok=True)
            path = os.path.join(self.transcript_dir,
                                f"{type(self).__name__}-{time.strftime('%Y%m%d-%H%M%S')}-"
                                f"{secrets.token_hex(3)}.transcript")
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.transcript_text())
            tail.append(f"(whole transcript: {path})")
        return "transcript (last lines):\n" + "\n".join("  " + t for t in tail)

    def teardown(self) -> None:
        """Deletes the machine's mailboxes, says goodbye, closes, and checks the close."""
        try:
            if self.protocol == "imap":
                for name in getattr(self, "_mailboxes", []):
                    self.imap(f'DELETE "{name}"')
                self.imap("LOGOUT")
            elif self.protocol == "pop3":
                self.pop3("QUIT")
            else:
                self.smtp("QUIT")
            while self._fill():  # read up to the server's close
                pass
        except ContractBreach:
            raise
        except (OSError, AssertionError):
            pass  # the server closed early: the example's own steps already passed or failed
        finally:
            self._closed = True
            try:
                self.sock.close()
            except OSError:
                pass
        if self.checker is not None:
            self._breach(self.checker.on_close())
