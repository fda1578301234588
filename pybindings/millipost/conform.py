"""The conformance suite's scripted part: runs scenarios from ``fixtures/scenarios/`` against any
IMAP, SMTP or POP3 server and reports PASS, FAIL or SKIPPED (by capability) per case.

    import millipost
    report = millipost.conform("imap://alice:secret@127.0.0.1:1143",
                               users=[("bob", "hunter2")])
    assert report.ok, report.summary()

The server's capabilities are read first (IMAP CAPABILITY after login, SMTP EHLO, POP3 CAPA);
a scenario that ``requires:`` one the server does not advertise is SKIPPED, never FAILed.
An expected-results file (:func:`load_expectations`) turns known divergences into a diff: a
FAIL listed there does not fail the run, and a listed case that now behaves differently is
reported. JSON, JUnit XML and a self-contained HTML report (:mod:`millipost.conform_html`)
are written from a :class:`Report`.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import re
import secrets
import smtplib
import socket
import ssl
import time
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Iterable, Optional

from . import scenarios as sc

#: Default ports per URL scheme; the ``s`` schemes use implicit TLS, ``submission`` is SMTP on
#: port 587 with STARTTLS (RFC 6409, RFC 8314 3.3); ``?starttls`` asks for STARTTLS (IMAP, SMTP)
#: or STLS (POP3) right after the greeting on the plain schemes.
DEFAULT_PORTS = {"imap": 143, "imaps": 993, "smtp": 25, "smtps": 465, "submission": 587,
                 "pop3": 110, "pop3s": 995}

#: Schemes that speak TLS from the first byte, and the protocol each URL scheme speaks.
IMPLICIT_TLS = ("imaps", "smtps", "pop3s")
PROTOCOL_OF = {"imap": "imap", "imaps": "imap", "smtp": "smtp", "smtps": "smtp",
               "submission": "smtp", "pop3": "pop3", "pop3s": "pop3"}

#: SASL mechanisms the harness logs in with (``--auth``); None is IMAP LOGIN / POP3 USER+PASS.
AUTH_MECHANISMS = ("login", "plain", "scram-sha-256")

#: Delivery URL schemes (``--deliver``) and their default ports.
DELIVERY_PORTS = {"smtp": 25, "lmtp": 24}

#: Seconds one read from the server may take before the step fails.
DEFAULT_TIMEOUT = 5.0

#: How many transcript lines a failure message carries (the last ones).
TRANSCRIPT_TAIL = 12

#: How many transcript lines a result keeps for the reports (the last ones).
TRANSCRIPT_KEEP = 400


class ConformError(Exception):
    """The run could not start (bad URL, server unreachable, login refused): not a test result."""


@dataclasses.dataclass
class Target:
    scheme: str
    protocol: str
    host: str
    port: int
    tls: bool
    users: list  # [(login, password)], the URL's user first
    domain: str
    starttls: bool = False  # STARTTLS / STLS after the greeting (``?starttls``, submission://)
    auth: Optional[str] = None  # SASL mechanism for the harness's logins (AUTH_MECHANISMS)
    tls_verify: bool = False  # check the server's certificate
    ca_file: Optional[str] = None  # trust anchors (PEM) when checking

    @classmethod
    def parse(cls, url: str, users: Iterable = (), domain: Optional[str] = None,
              auth: Optional[str] = None, tls_verify: bool = False,
              ca_file: Optional[str] = None) -> "Target":
        u = urllib.parse.urlsplit(url)
        scheme = u.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ConformError(f"unsupported URL scheme {u.scheme!r} in {url!r} "
                               f"(use {', '.join(s + '://' for s in DEFAULT_PORTS)})")
        if not u.hostname:
            raise ConformError(f"no host in {url!r}")
        try:
            port = u.port or DEFAULT_PORTS[scheme]
        except ValueError as e:
            raise ConformError(f"bad port in {url!r}: {e}")
        all_users = []
        if u.username:
            all_users.append((urllib.parse.unquote(u.username),
                              urllib.parse.unquote(u.password or "")))
        for entry in users:
            if isinstance(entry, str):
                login, sep, password = entry.partition(":")
                if not sep:
                    raise ConformError(f"user {entry!r} must be LOGIN:PASSWORD")
                entry = (login, password)
            all_users.append(tuple(entry))
        query = [q for q in u.query.split("&") if q]
        if any(q.lower() != "starttls" for q in query):
            raise ConformError(f"unsupported URL query {u.query!r} in {url!r} (only ?starttls)")
        starttls = bool(query) or scheme == "submission"
        if starttls and scheme in IMPLICIT_TLS:
            raise ConformError(f"?starttls with {scheme}://, which is TLS from the start")
        if auth is not None:
            auth = auth.lower()
            if auth not in AUTH_MECHANISMS:
                raise ConformError(f"unknown --auth {auth!r} (use {', '.join(AUTH_MECHANISMS)})")
        return cls(scheme, PROTOCOL_OF[scheme], u.hostname, port, scheme in IMPLICIT_TLS,
                   all_users, domain or "localhost", starttls, auth,
                   tls_verify or ca_file is not None, ca_file)

    def tls_context(self) -> ssl.SSLContext:
        """The client TLS context: the certificate is checked only with ``tls_verify`` (or a
        ``ca_file``), as ``millipost load`` does; conformance does not need it otherwise."""
        if self.tls_verify:
            return ssl.create_default_context(cafile=self.ca_file)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx



@dataclasses.dataclass
class Result:
    id: str
    protocol: str
    title: str
    rfc: list
    status: str  # PASS, FAIL, SKIPPED
    message: str = ""
    line: int = 0  # the scenario file line of the failing step
    seconds: float = 0.0
    expected: Optional[str] = None  # status listed in the expected-results file, if any
    reason: str = ""  # the expected-results file's reason
    transcript: list = dataclasses.field(default_factory=list)  # the run's lines, capped

    @property
    def failed(self) -> bool:
        """A FAIL that the expected-results file does not excuse."""
        return self.status == "FAIL" and self.expected != "FAIL"

    @property
    def differs(self) -> bool:
        """Listed in the expected-results file with a different outcome than seen now."""
        return self.expected is not None and self.expected != self.status

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["failed"] = self.failed
        return d


@dataclasses.dataclass
class Report:
    target: str
    protocol: str
    capabilities: list
    results: list
    expect_path: Optional[str] = None  # the expected-results file, when one was given

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.results)

    def counts(self) -> dict:
        c = {"PASS": 0, "FAIL": 0, "SKIPPED": 0, "expected_fail": 0, "differs": 0}
        for r in self.results:
            c[r.status] += 1
            c["expected_fail"] += r.status == "FAIL" and r.expected == "FAIL"
            c["differs"] += r.differs
        return c

    def summary(self) -> str:
        c = self.counts()
        text = (f"{len(self.results)} scenarios: {c['PASS']} passed, {c['FAIL']} failed"
                f" ({c['expected_fail']} expected), {c['SKIPPED']} skipped")
        if c["differs"]:
            text += f", {c['differs']} differ from the expected-results file"
        return text

    def to_dict(self) -> dict:
        return {"target": self.target, "protocol": self.protocol,
                "capabilities": self.capabilities, "ok": self.ok, "counts": self.counts(),
                "results": [r.to_dict() for r in self.results]}

    def write_json(self, path: str) -> None:
        _makedirs_for(path)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")

    def html(self) -> str:
        """The report as one self-contained HTML page (inline CSS, no external assets)."""
        from . import conform_html
        return conform_html.render(self, self.expect_path)

    def write_html(self, path: Optional[str] = None) -> str:
        """Writes :meth:`html` to ``path`` (default
        ``reports/out/conform-<protocol>-<timestamp>.html``); returns the path."""
        from . import conform_html
        path = path or conform_html.default_path(self.protocol)
        _makedirs_for(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.html())
        return path

    def junit(self) -> ET.Element:
        """JUnit XML: one <testsuite> for the protocol, one <testcase> per scenario; expected
        divergences are reported as skipped (with the reason) so CI stays green for them."""
        c = self.counts()
        root = ET.Element("testsuites", name="millipost conform")
        suite = ET.SubElement(root, "testsuite", name=f"conform.{self.protocol}",
                              tests=str(len(self.results)),
                              failures=str(sum(r.failed for r in self.results)), errors="0",
                              skipped=str(c["SKIPPED"] + c["expected_fail"]),
                              time=f"{sum(r.seconds for r in self.results):.3f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="target", value=self.target)
        ET.SubElement(props, "property", name="capabilities", value=" ".join(self.capabilities))
        for r in self.results:
            case = ET.SubElement(suite, "testcase", classname=f"conform.{r.protocol}",
                                 name=r.id, time=f"{r.seconds:.3f}")
            cp = ET.SubElement(case, "properties")
            ET.SubElement(cp, "property", name="title", value=r.title)
            for ref in r.rfc:
                ET.SubElement(cp, "property", name="rfc", value=ref)
            if r.failed:
                first = r.message.splitlines()[0] if r.message else "failed"
                f = ET.SubElement(case, "failure", message=first, type="conformance")
                f.text = r.message
            elif r.status == "SKIPPED":
                ET.SubElement(case, "skipped", message=r.message)
            elif r.status == "FAIL":  # expected divergence
                ET.SubElement(case, "skipped",
                              message=f"expected divergence: {r.reason or 'listed'}").text = r.message
        return root

    def write_junit(self, path: str) -> None:
        _makedirs_for(path)
        tree = ET.ElementTree(self.junit())
        ET.indent(tree)
        tree.write(path, encoding="utf-8", xml_declaration=True)


def _makedirs_for(path: str) -> None:
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)


# --- expected results ------------------------------------------------------------------------

def load_expectations(path: str) -> dict:
    """Reads an expected-results file: ``ID STATUS [# reason]`` per line, ``#`` comments.
    STATUS is FAIL or SKIPPED (PASS is the default and need not be listed)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            body, _, reason = raw.partition("#")
            parts = body.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1].upper() not in ("PASS", "FAIL", "SKIPPED"):
                raise ConformError(f"{path}:{n}: expected 'SCENARIO-ID FAIL|SKIPPED|PASS [# reason]'")
            out[parts[0]] = (parts[1].upper(), reason.strip())
    return out


# --- the wire ---------------------------------------------------------------------------------

class _Failure(Exception):
    def __init__(self, step: Optional[sc.Step], message: str):
        super().__init__(message)
        self.step = step


def _contract_checker(protocol: str):
    """A checker of the protocol's contract, or None when there is no contract for it yet."""
    from . import contracts

    if protocol not in contracts.available():
        return None
    return contracts.load(protocol).checker()


class Connection:
    """One client connection: sends lines, reads logical server lines (IMAP literals inlined:
    ``... {5}`` then CRLF then 5 octets is presented as ``... {5}`` followed directly by the
    octets), keeps a transcript.

    A scenario's connections (number 1 and up; 0 is the harness's own: capabilities, setup,
    cleanup) also hold the server to the protocol's contract (millipost.contracts), when there
    is one: every byte both ways goes through a checker, and a server breach fails the case with
    the breach. A client breach (scenarios send bad commands on purpose) ends the checking of
    that connection, since the checker no longer knows the state."""

    def __init__(self, target: Target, number: int, transcript: list, timeout: float):
        self.protocol = target.protocol
        self.number = number
        self.transcript = transcript
        self.timeout = timeout
        self.checker = _contract_checker(target.protocol) if number >= 1 else None
        try:
            sock = socket.create_connection((target.host, target.port), timeout=timeout)
        except OSError as e:
            raise ConformError(f"cannot connect to {target.host}:{target.port}: {e}")
        self.target = target
        self.tls = False
        self.sock = sock
        if target.tls:
            try:
                self._wrap()
            except _Failure as e:
                sock.close()
                raise ConformError(str(e))
        self.buf = b""
        self.eof = False

    def _wrap(self) -> None:
        try:
            self.sock = self.target.tls_context().wrap_socket(
                self.sock, server_hostname=self.target.host)
        except (ssl.SSLError, OSError) as e:
            raise _Failure(None, f"connection {self.number}: TLS handshake failed: {e}")
        self.tls = True
        self.transcript.append(f"{self.number} (TLS {self.sock.version()})")

    def start_tls(self) -> None:
        """The TLS handshake after the server's go-ahead to STARTTLS / STLS. Bytes the server
        sent after the go-ahead, in the clear, fail the step (RFC 3207 4.2, RFC 2595 3.1)."""
        if self.tls:
            raise _Failure(None, f"connection {self.number}: TLS is already active")
        if self.buf:
            raise _Failure(None, f"connection {self.number}: plaintext after the go-ahead for "
                                 f"TLS: {self.buf[:200]!r}")
        self._wrap()
        if (self.checker is not None and self.checker.opaque
                and not self.checker.resume_tls()):
            # SMTP and POP3 contracts stop judging at the go-ahead (a recorded transcript holds
            # ciphertext after it); resume_tls() goes on with the decrypted session (no STARTTLS
            # or STLS advertised inside TLS). A contract without a resume state: a fresh
            # checker from the state after a greeting (made up, fed only to the checker). The
            # IMAP contract judges the decrypted stream itself (no STARTTLS, LOGINDISABLED).
            self.checker = _contract_checker(self.protocol)
            self._check(self.checker.on_server(b"220 tls\r\n" if self.protocol == "smtp"
                                               else b"+OK tls\r\n"))

    def _check(self, breach) -> None:
        if breach is None:
            return
        self.checker = None
        if breach.who == "client":
            self.transcript.append(f"{self.number} (contract not checked further: {breach})")
            return
        raise _Failure(None, f"connection {self.number}: the server broke the "
                             f"{self.protocol} contract: {breach}")

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
            if self.checker is not None:
                self._check(self.checker.on_close())
            return False
        self.buf += chunk
        if self.checker is not None:
            self._check(self.checker.on_server(chunk))
        return True

    def send(self, line: str) -> None:
        self.transcript.append(f"{self.number} C: {line}")
        if self.checker is not None:  # before sending: the checker sees requests before replies
            self._check(self.checker.on_client(line.encode("utf-8") + b"\r\n"))
        try:
            self.sock.sendall(line.encode("utf-8") + b"\r\n")
        except OSError as e:
            raise _Failure(None, f"connection {self.number}: send failed: {e}")

    def read_line(self) -> Optional[str]:
        """One logical line without its CRLF; None at end of file. Raises TimeoutError."""
        out = b""
        while True:
            while b"\n" not in self.buf:
                if not self._fill():
                    if self.buf:
                        raise _Failure(None, f"connection {self.number} closed in mid-line "
                                             f"{self.buf[:200]!r}")
                    return None
            line, self.buf = self.buf.split(b"\n", 1)
            line = line[:-1] if line.endswith(b"\r") else line
            out += line
            m = re.search(rb"\{(\d+)\}$", line) if self.protocol == "imap" else None
            if not m:
                break
            n = int(m.group(1))
            while len(self.buf) < n:
                if not self._fill():
                    return None
            out += self.buf[:n]
            self.buf = self.buf[n:]
        text = out.decode("utf-8", errors="replace")
        self.transcript.append(f"{self.number} S: {text}")
        return text

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _show(line: str) -> str:
    """A server line for a message: control characters (literal CRLFs) escaped, long lines cut."""
    shown = line.encode("unicode_escape").decode("ascii").replace("\\\\", "\\")
    return shown if len(shown) <= 300 else shown[:300] + "..."


#: What a usable greeting starts with (an IMAP ``* BYE`` or an SMTP 554 greeting is a refusal).
_GREETING = {"imap": ("* OK", "* PREAUTH"), "smtp": "220 ", "pop3": "+OK"}


def _greeting(conn: Connection) -> None:
    if conn.protocol != "imap":  # SMTP may send 220- lines first; POP3 has one line
        _expect_reply(conn, _GREETING[conn.protocol], "greeting")
        return
    try:
        line = conn.read_line()
    except TimeoutError:
        raise _Failure(None, f"setup: no greeting within {conn.timeout} s")
    if line is None or not line.upper().startswith(_GREETING["imap"]):
        raise _Failure(None, f"setup: greeting: unexpected {line!r}")


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _expect_reply(conn: Connection, ok, what: str) -> list[str]:
    """Reads lines up to the one starting with ``ok`` (case-insensitive): setup steps; raises
    _Failure on anything else final."""
    lines = []
    while True:
        try:
            line = conn.read_line()
        except TimeoutError:
            raise _Failure(None, f"setup: {what}: no reply within {conn.timeout} s")
        if line is None:
            raise _Failure(None, f"setup: {what}: connection closed")
        lines.append(line)
        if any(line.upper().startswith(o.upper()) for o in (ok if isinstance(ok, tuple) else (ok,))):
            return lines
        if conn.protocol == "imap" and line.startswith("* "):
            continue
        if conn.protocol == "smtp" and re.match(r"^\d{3}-", line):
            continue
        raise _Failure(None, f"setup: {what}: unexpected reply {line!r}")


# --- TLS and SASL for the harness's own steps ------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Scram:
    """A SCRAM-SHA-256 client (RFC 5802, RFC 7677) without channel binding: the GS2 header
    ``n,,``, the login as saslname (``=`` and ``,`` escaped), an ASCII password (SASLprep leaves
    it unchanged)."""

    def __init__(self, login: str, password: str, nonce: Optional[str] = None):
        self.password = password
        self.nonce = nonce or secrets.token_hex(12)
        saslname = login.replace("=", "=3D").replace(",", "=2C")
        self.bare = f"n={saslname},r={self.nonce}"
        self.first = "n,," + self.bare
        self.server_final = ""  # the v= the server must send once final() ran

    def final(self, server_first: str, password: Optional[str] = None) -> str:
        """The client-final-message for ``server_first``; ``password`` overrides (a wrong one
        for failure cases). Raises ValueError on a malformed message or a foreign nonce."""
        try:
            attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
            nonce, salt, rounds = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        except (KeyError, ValueError) as e:
            raise ValueError(f"malformed SCRAM server-first-message {server_first!r}: {e}")
        if not nonce.startswith(self.nonce) or rounds < 1:
            raise ValueError(f"SCRAM server-first-message {server_first!r}: nonce or count")
        pw = (self.password if password is None else password).encode("utf-8")
        salted = hashlib.pbkdf2_hmac("sha256", pw, salt, rounds)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.bare},{server_first},{without_proof}".encode("utf-8")
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.server_final = "v=" + _b64(hmac.new(server_key, auth_message, "sha256").digest())
        return f"{without_proof},p={_b64(proof)}"


class _Sasl:
    """The client side of one SASL exchange: ``respond(challenge)`` gives each response."""

    def __init__(self, mechanism: str, login: str, password: str):
        self.mechanism = mechanism.upper()
        self.login, self.password = login, password
        self.step = 0
        self.scram = Scram(login, password) if self.mechanism == "SCRAM-SHA-256" else None

    def respond(self, challenge: bytes) -> bytes:
        self.step += 1
        if self.mechanism == "PLAIN":  # RFC 4616 2
            return b"\0" + self.login.encode() + b"\0" + self.password.encode()
        if self.mechanism == "LOGIN":  # draft-murchison-sasl-login: user name, then password
            return (self.login if self.step == 1 else self.password).encode()
        if self.step == 1:
            return self.scram.first.encode()
        if self.step == 2:
            try:
                return self.scram.final(challenge.decode("utf-8", "replace")).encode()
            except ValueError as e:
                raise _Failure(None, f"setup: SCRAM: {e}")
        if challenge.decode("utf-8", "replace") != self.scram.server_final:
            raise _Failure(None, f"setup: SCRAM: wrong server signature {challenge!r}")
        return b""


def _authenticate(conn: Connection, mechanism: str, login: str, password: str,
                  tag: str = "") -> None:
    """Logs in with SASL: IMAP AUTHENTICATE (RFC 9051 6.2.2), SMTP AUTH (RFC 4954), POP3 AUTH
    (RFC 5034); challenges are ``+ `` / ``334 `` lines with base64, one response line each."""
    sasl = _Sasl(mechanism, login, password)
    p = conn.protocol
    conn.send(f"{tag} AUTHENTICATE {sasl.mechanism}" if p == "imap" else f"AUTH {sasl.mechanism}")
    while True:
        try:
            line = conn.read_line()
        except TimeoutError:
            raise _Failure(None, f"setup: AUTH {sasl.mechanism}: no reply within {conn.timeout} s")
        if line is None:
            raise _Failure(None, f"setup: AUTH {sasl.mechanism}: connection closed")
        done = {"imap": f"{tag} OK", "smtp": "235", "pop3": "+OK"}[p]
        if line.upper().startswith(done.upper()):
            return
        challenge = None
        if p == "smtp" and line.startswith("334"):
            challenge = line[4:]
        elif p != "smtp" and line.startswith("+") and not line.startswith("+OK"):
            challenge = line[2:]
        if challenge is None:
            if p == "imap" and line.startswith("* "):
                continue
            raise _Failure(None, f"setup: AUTH {sasl.mechanism}: unexpected reply {line!r}")
        try:
            decoded = base64.b64decode(challenge.strip(), validate=True)
        except ValueError:
            raise _Failure(None, f"setup: AUTH {sasl.mechanism}: bad base64 challenge {line!r}")
        conn.send(_b64(sasl.respond(decoded)))


def _starttls(conn: Connection, tag: str = "t0") -> None:
    """STARTTLS (IMAP RFC 9051 6.2.1, SMTP RFC 3207 after an EHLO) or STLS (POP3 RFC 2595 4)
    right after the greeting, then the handshake; SMTP's EHLO is the client's to send again."""
    p = conn.protocol
    if p == "imap":
        conn.send(f"{tag} STARTTLS")
        _expect_reply(conn, f"{tag} OK", "STARTTLS")
    elif p == "smtp":
        conn.send("EHLO conform.test")
        _expect_reply(conn, "250 ", "EHLO")
        conn.send("STARTTLS")
        _expect_reply(conn, "220 ", "STARTTLS")
    else:
        conn.send("STLS")
        _expect_reply(conn, "+OK", "STLS")
    conn.start_tls()


def _login(conn: Connection, target: Target, tag: str) -> None:
    """Logs in as the first user: SASL with ``target.auth``, else IMAP LOGIN (POP3's USER/PASS
    is _Run._pop3_login's, SMTP logs in only with SASL)."""
    login, password = target.users[0]
    if target.auth:
        _authenticate(conn, target.auth, login, password, tag)
    elif conn.protocol == "imap":
        conn.send(f"{tag} LOGIN {_quote(login)} {_quote(password)}")
        _expect_reply(conn, f"{tag} OK", "LOGIN")
    else:
        raise _Failure(None, f"setup: {conn.protocol} login needs a SASL mechanism")


def _smtp_auth_needed(target: Target) -> bool:
    """SMTP sessions log in on submission ports (submission://, smtps://) and whenever
    ``--auth`` is given, as ``millipost load`` does."""
    return bool(target.auth) or target.scheme in ("submission", "smtps")


# --- capabilities -----------------------------------------------------------------------------

def read_capabilities(target: Target, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """The capability names the server advertises (upper case): IMAP CAPABILITY before and
    after login (when a user is known), SMTP EHLO keywords (and ``AUTH=MECH`` for each SASL
    mechanism of the AUTH keyword), POP3 CAPA tags (``SASL=MECH`` for each mechanism of the SASL
    tag, and ``APOP`` when the greeting carries a timestamp); with STARTTLS, those before and
    inside TLS."""
    transcript: list = []
    conn = Connection(target, 0, transcript, timeout)
    caps: list[str] = []
    try:
        if target.protocol == "imap":
            greeting = conn.read_line() or ""
            # Pre-login capabilities count too: AUTH=, SASL-IR and LOGINDISABLED are
            # advertised only before authentication (RFC 9051 6.1.1), others only after; with
            # ?starttls those before TLS too (STARTTLS, LOGINDISABLED), then those inside it.
            conn.send("c00 CAPABILITY")
            for line in _expect_reply(conn, "c00 OK", "CAPABILITY"):
                if line.upper().startswith("* CAPABILITY "):
                    caps += line.split()[2:]
            if target.starttls:
                _starttls(conn, "c01")
                conn.send("c02 CAPABILITY")
                for line in _expect_reply(conn, "c02 OK", "CAPABILITY"):
                    if line.upper().startswith("* CAPABILITY "):
                        caps += line.split()[2:]
            if target.users:
                _login(conn, target, "c0")
            conn.send("c1 CAPABILITY")
            for line in _expect_reply(conn, "c1 OK", "CAPABILITY"):
                if line.upper().startswith("* CAPABILITY "):
                    caps += line.split()[2:]
            if not caps:
                m = re.search(r"\[CAPABILITY ([^\]]*)\]", greeting, re.I)
                caps = m.group(1).split() if m else []
            conn.send("c2 LOGOUT")
        elif target.protocol == "smtp":
            _expect_reply(conn, "220 ", "greeting")
            conn.send("EHLO conform.test")
            lines = _expect_reply(conn, "250 ", "EHLO")
            if target.starttls:  # the keywords before TLS (STARTTLS) and inside it
                conn.send("STARTTLS")
                _expect_reply(conn, "220 ", "STARTTLS")
                conn.start_tls()
                conn.send("EHLO conform.test")
                lines += _expect_reply(conn, "250 ", "EHLO")[1:]
            caps = [line[4:].split()[0] for line in lines[1:] if len(line) > 4 and line[4:].split()]
            # The SASL mechanisms of the AUTH line (RFC 4954 3) as AUTH=MECH, as IMAP names them.
            caps += [f"AUTH={m}" for line in lines[1:] if line[4:].upper().startswith("AUTH ")
                     for m in line[4:].split()[1:]]
            conn.send("QUIT")
        else:
            greeting = _expect_reply(conn, "+OK", "greeting")[-1]
            # APOP has no CAPA tag: a server offers it by a timestamp in its greeting
            # (RFC 1939 7), reported here as the pseudo-capability APOP.
            if re.search(r"<[^<>@\s]+@[^<>\s]+>", greeting):
                caps.append("APOP")
            for upgrade in (False, True) if target.starttls else (False,):
                if upgrade:  # CAPA again inside TLS (RFC 2595 4: the list may change)
                    conn.send("STLS")
                    _expect_reply(conn, "+OK", "STLS")
                    conn.start_tls()
                conn.send("CAPA")
                if (conn.read_line() or "").startswith("+OK"):
                    while True:
                        line = conn.read_line()
                        if line is None or line == ".":
                            break
                        if line.split():
                            caps.append(line.split()[0])
                        # The SASL tag's mechanisms (RFC 2449 6.3) as SASL=MECH.
                        if line.upper().startswith("SASL "):
                            caps += [f"SASL={m}" for m in line.split()[1:]]
            conn.send("QUIT")
    except _Failure as e:
        raise ConformError(f"reading capabilities of {target.host}:{target.port}: {e}\n"
                           + "\n".join(transcript))
    except TimeoutError:
        raise ConformError(f"reading capabilities of {target.host}:{target.port}: timed out\n"
                           + "\n".join(transcript))
    finally:
        conn.close()
    return sorted({c.upper() for c in caps})


# --- running one scenario ---------------------------------------------------------------------

class _Run:
    def __init__(self, scenario: sc.Scenario, target: Target, timeout: float,
                 deliver_via: Optional[str]):
        self.s = scenario
        self.t = target
        self.timeout = timeout
        self.deliver_via = deliver_via
        self.transcript: list = []
        self.conns: dict = {}
        self.vars: dict = {"domain": target.domain,
                           "mailbox": f"conform-{secrets.token_hex(4)}"}
        self.scram: dict = {}  # user suffix ("" or "2") -> its Scram client
        for i, (login, password) in enumerate(target.users[:2]):
            suffix = "" if i == 0 else str(i + 1)
            self.vars[f"user{suffix}"] = login
            self.vars[f"password{suffix}"] = password
            self.vars[f"rcpt{suffix}"] = login if "@" in login else f"{login}@{target.domain}"
            # SASL PLAIN's initial response (RFC 4616 2): NUL authzid-less login NUL password.
            self.vars[f"auth_plain{suffix}"] = base64.b64encode(
                b"\0" + login.encode() + b"\0" + password.encode()).decode("ascii")
            # SASL LOGIN's two responses, and a SCRAM-SHA-256 client-first-message (RFC 5802
            # 7: no channel binding, the login as saslname with "," and "=" escaped).
            b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
            self.vars[f"auth_login_user{suffix}"] = b64(login.encode())
            self.vars[f"auth_login_password{suffix}"] = b64(password.encode())
            scram = Scram(login, password)
            self.scram[suffix] = scram
            self.vars[f"scram_first{suffix}"] = b64(scram.first.encode())
        self._tag = 0
        self.forbid: dict = {}  # connection -> S! steps in force until its next read step ends

    def tag(self) -> str:
        self._tag += 1
        return f"s{self._tag}"

    def open(self, number: int) -> Connection:
        conn = Connection(self.t, number, self.transcript, self.timeout)
        self.conns[number] = conn
        setup = self.s.setup
        if "none" in setup:
            return conn
        p = self.t.protocol
        _greeting(conn)
        if self.t.starttls and "cleartext" not in setup:
            _starttls(conn, self.tag())
        if "login" not in setup:
            return conn
        if p == "imap":  # every connection is the first user's session
            _login(conn, self.t, self.tag())
            if number == 1 and "mailbox" in setup:
                tag = self.tag()
                conn.send(f"{tag} CREATE {_quote(self.vars['mailbox'])}")
                _expect_reply(conn, f"{tag} OK", "CREATE ${mailbox}")
        elif p == "pop3":
            conn = self._pop3_login(conn, number)
        else:
            conn.send("EHLO conform.test")
            _expect_reply(conn, "250 ", "EHLO")
            if _smtp_auth_needed(self.t):
                login, password = self.t.users[0]
                _authenticate(conn, self.t.auth or "login", login, password)
        return conn

    def _pop3_login(self, conn: Connection, number: int) -> Connection:
        """USER and PASS as the first user (greeting already read). A maildrop still locked
        by a session that has just closed (``-ERR [IN-USE]``, RFC 2449 8.1.1: the server
        notices the close a moment later) is retried on a new connection for a while."""
        login, password = self.t.users[0]
        deadline = time.monotonic() + self.timeout
        while True:
            if self.t.auth:
                try:
                    _authenticate(conn, self.t.auth, login, password)
                    return conn
                except _Failure as e:
                    # The -ERR [IN-USE] of a maildrop still locked is retried as below.
                    if "[IN-USE]" not in str(e).upper() or time.monotonic() > deadline:
                        raise
                    reply = "-ERR [IN-USE]"
            else:
                conn.send(f"USER {login}")
                _expect_reply(conn, "+OK", "USER")
                conn.send(f"PASS {password}")
                try:
                    reply = conn.read_line()
                except TimeoutError:
                    raise _Failure(None, f"setup: PASS: no reply within {self.timeout} s")
            if reply is not None and reply.startswith("+OK"):
                return conn
            if (reply is None or "[IN-USE]" not in reply.upper()
                    or time.monotonic() > deadline):
                raise _Failure(None, f"setup: PASS: unexpected reply {reply!r}")
            conn.close()
            time.sleep(0.1)
            conn = Connection(self.t, number, self.transcript, self.timeout)
            if number in self.conns:
                self.conns[number] = conn
            _expect_reply(conn, "+OK", "greeting")
            if self.t.starttls:
                _starttls(conn)

    def empty_maildrop(self) -> None:
        conn = Connection(self.t, 0, self.transcript, self.timeout)
        try:
            _expect_reply(conn, "+OK", "greeting")
            if self.t.starttls:
                _starttls(conn)
            conn = self._pop3_login(conn, 0)
            conn.send("STAT")
            n = int(_expect_reply(conn, "+OK", "STAT")[-1].split()[1])
            for i in range(1, n + 1):
                conn.send(f"DELE {i}")
                _expect_reply(conn, "+OK", "DELE")
            conn.send("QUIT")
            _expect_reply(conn, "+OK", "QUIT")
        finally:
            conn.close()

    def deliver(self) -> None:
        u = urllib.parse.urlsplit(self.deliver_via)
        scheme = u.scheme.lower() or "smtp"
        if scheme not in DELIVERY_PORTS:
            raise ConformError(f"delivery URL {self.deliver_via!r}: use smtp://HOST:PORT or "
                               "lmtp://HOST:PORT")
        host, port = u.hostname or self.t.host, u.port or DELIVERY_PORTS[scheme]
        # LMTP (RFC 2033) delivers straight into a mailbox server that has no SMTP (Dovecot):
        # the same transaction after LHLO, one reply per recipient after the data (one here).
        client = smtplib.LMTP if scheme == "lmtp" else smtplib.SMTP
        for name in self.s.deliver:
            msg = sc.expand(self.s.data[name], self.vars, self.s.data)
            try:
                with client(host, port, timeout=self.timeout) as smtp:
                    refused = smtp.sendmail(f"conform@{self.t.domain}", [self.vars["rcpt"]],
                                            msg.encode("utf-8"))
            except (smtplib.SMTPException, OSError) as e:
                raise _Failure(None, f"setup: delivering {name} via {self.deliver_via}: {e}")
            if refused:
                raise _Failure(None, f"setup: delivering {name}: refused {refused}")
        self.transcript.append(f"(delivered {', '.join(self.s.deliver)} to {self.vars['rcpt']})")

    def cleanup(self) -> None:
        for conn in self.conns.values():
            conn.close()
        if self.t.protocol == "imap" and "mailbox" in self.s.setup and "login" in self.s.setup:
            try:
                conn = Connection(self.t, 0, [], self.timeout)
            except ConformError:
                return
            try:
                _greeting(conn)
                if self.t.starttls:
                    _starttls(conn, "x0")
                _login(conn, self.t, "x1")
                conn.send(f"x2 DELETE {_quote(self.vars['mailbox'])}")
                _expect_reply(conn, "x2 ", "DELETE")
                conn.send("x3 LOGOUT")
            except (_Failure, TimeoutError):
                pass
            finally:
                conn.close()

    def conn(self, number: int) -> Connection:
        return self.conns[number] if number in self.conns else self.open(number)

    def read(self, step: sc.Step, conn: Connection) -> Optional[str]:
        try:
            line = conn.read_line()
        except TimeoutError:
            raise _Failure(step, f"no reply within {self.timeout} s")
        if line is not None:
            self._forbidden(conn, line)
        return line

    def _forbidden(self, conn: Connection, line: str) -> None:
        """Fails when ``line`` matches an ``S!`` pattern still in force on this connection."""
        for f in self.forbid.get(conn.number, ()):
            if self._match(f, f.text, line) is not None:
                raise _Failure(f, f"the server sent `{_show(line)}`, which must not appear here")

    def _match(self, step: sc.Step, text: str, line: str) -> Optional[dict]:
        try:
            return sc.match(text, line, self.vars, self.s.data)
        except sc.ScenarioError as e:
            raise _Failure(step, str(e))

    def _skippable(self, conn: Connection, line: str) -> bool:
        # RFC 9051 section 7: a client must accept untagged data it did not ask for at any
        # time, so an unexpected untagged line is skipped; SMTP and POP3 have none.
        return conn.protocol == "imap" and line.startswith("* ")

    def step(self, step: sc.Step) -> None:
        conn = self.conn(step.conn)
        if step.kind == "forbid":
            self.forbid.setdefault(step.conn, []).append(step)
            return
        if step.kind in ("expect", "skip-until", "group", "eof"):
            try:
                self._read_step(step, conn)
            finally:
                self.forbid.pop(step.conn, None)
            return
        if step.kind == "send":
            if "scram_final" in step.text:
                self._scram_final(step)
            try:
                line = sc.expand(step.text, self.vars, self.s.data)
            except KeyError as e:
                raise _Failure(step, f"variable {e.args[0]} is not bound")
            # A data block expands to CRLF-terminated lines; the CRLF send() adds ends the
            # command (IMAP literal) or is part of the body (SMTP DATA), so strip nothing.
            conn.send(line)
            return
        if step.kind == "tls":
            try:
                conn.start_tls()
            except _Failure as e:
                raise _Failure(step, str(e))
            return

    def _scram_final(self, step: sc.Step) -> None:
        """Binds ``${scram_final}`` / ``${scram_final_wrong}`` (the client-final-message with the
        right / a wrong password, base64) from the captured ``$scram_server_first``, and
        ``${scram_server_final}`` (the base64 ``v=`` the server must answer the right one
        with); unbinds ``scram_server_first`` so a later exchange captures its own."""
        first = self.vars.pop("scram_server_first", None)
        if first is None:
            raise _Failure(step, "${scram_final} needs a captured $scram_server_first")
        scram = self.scram.get("")
        if scram is None:
            raise _Failure(step, "${scram_final} needs a user")
        try:
            server_first = base64.b64decode(first, validate=True).decode("utf-8")
            wrong = scram.final(server_first, "wrong-" + scram.password)
            right = scram.final(server_first)
        except ValueError as e:
            raise _Failure(step, f"SCRAM: {e}")
        self.vars["scram_final"] = _b64(right.encode())
        self.vars["scram_final_wrong"] = _b64(wrong.encode())
        self.vars["scram_server_final"] = _b64(scram.server_final.encode())

    def _read_step(self, step: sc.Step, conn: Connection) -> None:
        if step.kind == "eof":
            while True:
                line = self.read(step, conn)
                if line is None:
                    return
                if not self._skippable(conn, line):
                    raise _Failure(step, "expected the server to close the connection, got "
                                         f"`{_show(line)}`")
        if step.kind == "expect":
            while True:
                line = self.read(step, conn)
                if line is None:
                    raise _Failure(step, "connection closed by the server")
                got = self._match(step, step.text, line)
                if got is not None:
                    self.vars.update(got)
                    return
                if not self._skippable(conn, line):
                    raise _Failure(step, f"expected `{step.text}`, got `{_show(line)}`")
        if step.kind == "skip-until":
            while True:
                line = self.read(step, conn)
                if line is None:
                    raise _Failure(step, f"connection closed before a line matching {step.text!r}")
                got = self._match(step, step.text, line)
                if got is not None:
                    self.vars.update(got)
                    return
        if step.kind == "group":
            left = list(step.patterns)
            while left:
                line = self.read(step, conn)
                if line is None:
                    raise _Failure(step, "connection closed; still expected "
                                         + ", ".join(f"`{p}`" for p, _ in left))
                for i, (text, _) in enumerate(left):
                    got = self._match(step, text, line)
                    if got is not None:
                        self.vars.update(got)
                        del left[i]
                        break
                else:
                    if not self._skippable(conn, line):
                        raise _Failure(step, f"got `{_show(line)}`, which matches none of the "
                                             "unordered group's remaining "
                                             + ", ".join(f"`{p}`" for p, _ in left))

    def run(self) -> Result:
        s = self.s
        result = Result(s.id, s.protocol, s.title, s.rfc, "PASS")
        start = time.monotonic()
        try:
            if "empty-maildrop" in s.setup:
                self.empty_maildrop()
            if s.deliver:
                self.deliver()
            # Connection 1 opens (and is set up) first; the others at their first step, so
            # that a scenario can order sessions (POP3's maildrop lock, a second IMAP session
            # logging in after the first has changed the mailbox).
            self.conn(1)
            for step in s.steps:
                self.step(step)
        except _Failure as e:
            result.status = "FAIL"
            where = ""
            if e.step is not None:
                result.line = e.step.line
                where = (f"step at {os.path.basename(s.path)}:{e.step.line} "
                         f"`{e.step.source()}`: ")
            tail = self.transcript[-TRANSCRIPT_TAIL:]
            result.message = (f"{where}{e}\n  RFC: {', '.join(s.rfc)}\n  transcript (last "
                              f"{len(tail)} lines):\n" + "\n".join("    " + t for t in tail))
        except ConformError as e:
            result.status = "FAIL"
            result.message = str(e)
        finally:
            self.cleanup()
            result.seconds = time.monotonic() - start
            result.transcript = self.transcript[-TRANSCRIPT_KEEP:]
        return result


def _skip_reason(s: sc.Scenario, target: Target, caps: set, deliver_via: Optional[str]) -> str:
    # ``NAME=*`` is satisfied by any ``NAME=value`` (APPENDLIMIT=52428800).
    missing = [c for c in s.requires if c not in caps and not (
        c.endswith("=*") and any(x.startswith(c[:-1]) for x in caps))]
    if missing:
        return f"capability not advertised: {' '.join(missing)}"
    if target.starttls and "none" in s.setup and "cleartext" not in s.setup:
        # The script reads its own greeting, so the harness cannot negotiate STARTTLS first.
        return "reads its own greeting, in the clear: not with ?starttls or submission://"
    if len(target.users) < s.users:
        return f"needs {s.users} users (give more with --user LOGIN:PASSWORD)"
    if any(w in s.setup for w in ("login", "empty-maildrop")) and not target.users:
        return "needs a user (put LOGIN:PASSWORD in the URL)"
    if s.deliver and not deliver_via:
        return "needs message delivery (give --deliver smtp://... or lmtp://..., or --smtp URL)"
    return ""


def conform(url: str, scenarios: Optional[Iterable] = None, users: Iterable = (),
            domain: Optional[str] = None, deliver_via: Optional[str] = None,
            capabilities: Optional[Iterable[str]] = None, expect: Optional[str | dict] = None,
            timeout: float = DEFAULT_TIMEOUT, root: Optional[str] = None,
            auth: Optional[str] = None, tls_verify: bool = False,
            ca_file: Optional[str] = None) -> Report:
    """Runs the scripted scenarios for the URL's protocol against the server at ``url``.

    ``scenarios``: :class:`~millipost.scenarios.Scenario` objects, or ids/prefixes selecting
    from ``root`` (default: the bundled ``fixtures/scenarios``); ``users``: more
    ``(login, password)`` pairs or ``"login:password"`` strings after the URL's (the second
    is ``${user2}``); ``domain``: the mail domain for ``${rcpt}`` (default localhost);
    ``deliver_via``: an ``smtp://host:port`` URL used to deliver the messages that
    ``deliver:`` scenarios need; ``capabilities``: use these instead of asking the server;
    ``expect``: an expected-results file (or the dict :func:`load_expectations` returns);
    ``auth``: log in with this SASL mechanism (``login``, ``plain``, ``scram-sha-256``) instead
    of IMAP LOGIN / POP3 USER+PASS (SMTP sessions log in on submission:// and smtps://, or
    with it); ``tls_verify`` / ``ca_file``: check the server's certificate (by default not).
    URLs: imap://, imaps://, smtp://, smtps://, submission:// (587, STARTTLS), pop3://,
    pop3s://; ``?starttls`` upgrades imap://, smtp:// and pop3:// after the greeting.
    """
    target = Target.parse(url, users, domain, auth=auth, tls_verify=tls_verify, ca_file=ca_file)
    selected = list(scenarios) if scenarios is not None else None
    if selected and all(isinstance(x, sc.Scenario) for x in selected):
        chosen = selected
    else:
        chosen = sc.discover(root, selected)
    chosen = [s for s in chosen if s.protocol == target.protocol]
    caps = (sorted({c.upper() for c in capabilities}) if capabilities is not None
            else read_capabilities(target, timeout))
    expectations = load_expectations(expect) if isinstance(expect, str) else (expect or {})
    results = []
    for s in chosen:
        reason = _skip_reason(s, target, set(caps), deliver_via)
        if reason:
            result = Result(s.id, s.protocol, s.title, s.rfc, "SKIPPED", reason)
        else:
            result = _Run(s, target, timeout, deliver_via).run()
        if s.id in expectations:
            result.expected, result.reason = expectations[s.id]
        results.append(result)
    safe = urllib.parse.urlsplit(url)
    shown = f"{safe.scheme}://{safe.hostname}:{target.port}" + ("?starttls" if safe.query else "")
    return Report(shown, target.protocol, caps, results,
                  expect_path=expect if isinstance(expect, str) else None)


def format_result(r: Result, verbose: bool = False) -> str:
    status = r.status
    if r.status == "FAIL" and r.expected == "FAIL":
        status = "XFAIL"
    line = f"{status:8} {r.id:38} {', '.join(r.rfc)}"
    if r.status == "SKIPPED":
        line += f"  ({r.message})"
    if r.differs:
        line += f"  [expected {r.expected}]"
    if r.status == "FAIL" and (r.failed or verbose):
        line += "\n" + "\n".join("         " + m for m in r.message.splitlines())
    return line


# --- Model-based properties (millipost-check) -------------------------------------------------

#: The models millipost-check runs (properties/imap_model.cpp, imap_multi_model.cpp).
MODELS = ("imap", "imap-multi")


def _check_binary() -> str:
    import shutil
    import sysconfig

    scripts = sysconfig.get_path("scripts")
    for candidate in (os.path.join(scripts, "millipost-check"), shutil.which("millipost-check")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ConformError("the millipost-check binary is not installed (pip install . with "
                       "RapidCheck available)")


def run_models(url: Optional[str], users: Iterable = (), models: Iterable[str] = ("imap",),
               runs: Optional[int] = None, seconds: Optional[float] = None,
               seed: Optional[int] = None, timeout: Optional[float] = None) -> dict:
    """Runs the RapidCheck model-based properties against ``url`` (``imap://LOGIN:PASS@HOST:PORT``;
    None: an in-process reference server) with the ``millipost-check`` binary.

    Returns its JSON: ``{"passed": bool, "results": [{"model", "runs", "seed", "seconds",
    "passed", "failure": None | {"counterexample": [steps], "size", "message", "reproduce"}}]}``
    plus ``"output"`` (what the binary printed: seeds, replay hints). Raises ConformError when the
    run could not start (no binary, unusable target, bad arguments), and when ``timeout``
    seconds pass first (shrinking against a server that stops answering waits out the client's
    reply timeout at every step, so a bound is wise in CI).
    """
    import subprocess
    import tempfile

    models = list(models)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ConformError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    if url and urllib.parse.urlsplit(url).scheme != "imap":
        raise ConformError("the models run against imap:// URLs only")
    argv = [_check_binary(), "--model", ",".join(models)]
    if url:
        argv += ["--target", url]
    for u in users:
        argv += ["--user2", u if isinstance(u, str) else f"{u[0]}:{u[1]}"]
    if runs is not None:
        argv += ["--runs", str(runs)]
    if seconds is not None:
        argv += ["--seconds", str(seconds)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    with tempfile.TemporaryDirectory(prefix="millipost-check-") as tmp:
        out = os.path.join(tmp, "result.json")
        # Every exchange of the models is held to imap.contract too: point the binary at the
        # contracts this package uses (it otherwise looks in the source tree it was built from).
        env = dict(os.environ)
        from .contracts import available

        if "imap" in available():
            env["MILLIPOST_CONTRACTS_DIR"] = os.path.dirname(available()["imap"])
        try:
            proc = subprocess.run(argv + ["--json", out], capture_output=True, text=True, env=env,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ConformError(f"millipost-check did not finish within {timeout:g} s") from None
        if proc.returncode == 2 or not os.path.exists(out):
            raise ConformError((proc.stderr or proc.stdout).strip() or
                               f"millipost-check exited with {proc.returncode}")
        with open(out) as f:
            result = json.load(f)
    result["output"] = proc.stdout
    return result
