"""Protocol contracts from Python: load a contract, check a byte stream or a transcript with it,
and watch live traffic through a transparent TCP proxy.

    from millipost import contracts
    c = contracts.load("smtp")                  # a name (bundled file) or a .contract path
    chk = c.checker()                           # one per connection
    chk.on_server(b"220 mx.example ESMTP\\r\\n")  # -> None (fine so far) or a Breach
    chk.on_client(b"EHLO client.example\\r\\n")
    breach = chk.on_close()

    with contracts.Proxy("127.0.0.1:0", "127.0.0.1:25", "smtp", record_dir="out") as proxy:
        smtplib.SMTP(*proxy.address).quit()
        proxy.wait_idle()
    assert not proxy.breaches

The engine is C++ (``properties/contracts``, format in its README.md); the contract files ship
in the package (``millipost/contracts/*.contract``). Any contract file present there, in the
source tree or in ``$MILLIPOST_CONTRACTS`` is found by name: :func:`available` lists them.

Transcripts (millipost transcript v1) record one connection's bytes in wire order; see
:func:`format_transcript` for the format.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import re
import threading
import time
from typing import Callable, Iterable, Optional, Union

from ._core import contracts as _core

Contract = _core.Contract
Checker = _core.Checker
Breach = _core.Breach
ContractError = _core.ContractError

__all__ = ["Contract", "Checker", "Breach", "ContractError", "TranscriptError", "available",
           "find", "load", "escape", "unescape", "format_transcript", "parse_transcript",
           "read_transcript", "write_transcript", "check_transcript", "check_records",
           "locate_breach", "parse_address",
           "Proxy", "ProxyBreach", "ProxyConnection", "guess_contract"]

#: The first line of every transcript.
TRANSCRIPT_MAGIC = "# millipost transcript 1"

#: Record directions: client bytes and server bytes.
CLIENT, SERVER = "C", "S"

#: Well-known ports per contract, for guessing the contract of an upstream address. The implicit
#: TLS ports are absent on purpose: the proxy would see ciphertext, which no contract describes.
WELL_KNOWN_PORTS = {25: "smtp", 587: "smtp", 2525: "smtp", 110: "pop3", 143: "imap"}

#: URL schemes naming a contract (``smtp://host:port``).
SCHEMES = {"smtp": "smtp", "pop3": "pop3", "pop": "pop3", "imap": "imap"}


# --- finding and loading contracts -------------------------------------------------------------

def contract_dirs() -> list[str]:
    """Where contracts are looked up by name, first match wins: the directories of
    ``$MILLIPOST_CONTRACTS`` (os.pathsep-separated), the installed copy, the source tree."""
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = [d for d in os.environ.get("MILLIPOST_CONTRACTS", "").split(os.pathsep) if d]
    dirs += [os.path.join(here, "contracts"),
             os.path.normpath(os.path.join(here, "..", "..", "properties", "contracts"))]
    return [d for d in dirs if os.path.isdir(d)]


def available() -> dict[str, str]:
    """Every contract that can be loaded by name: ``{name: path}``, sorted by name."""
    found: dict[str, str] = {}
    for d in contract_dirs():
        for entry in sorted(os.listdir(d)):
            name, ext = os.path.splitext(entry)
            if ext == ".contract" and name not in found:
                found[name] = os.path.join(d, entry)
    return dict(sorted(found.items()))


def find(name: str) -> str:
    """The path of the contract called ``name``; ContractError listing the known ones if none."""
    path = available().get(name.lower())
    if path is None:
        known = ", ".join(available()) or "none"
        raise ContractError(f"no contract named {name!r} (available: {known})")
    return path


_cache: dict = {}
_cache_lock = threading.Lock()


def load(name_or_path: Union[str, os.PathLike, Contract]) -> Contract:
    """A contract by name (``"smtp"``) or by the path of a ``.contract`` file; the contract's
    name is the file's stem. Loaded contracts are cached (they are immutable) until the file
    changes. Raises ContractError (a ValueError) with the file, line and reason."""
    if isinstance(name_or_path, Contract):
        return name_or_path
    spec = os.fspath(name_or_path)
    looks_like_path = (spec.endswith(".contract") or os.sep in spec
                       or (os.altsep and os.altsep in spec))
    path = spec if looks_like_path else find(spec)
    try:
        key = (os.path.realpath(path), os.stat(path).st_mtime_ns)
    except OSError as e:
        raise ContractError(f"cannot read contract {path}: {e.strerror}")
    with _cache_lock:
        contract = _cache.get(key)
    if contract is None:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            contract = Contract.parse(text, name)
        except ContractError as e:
            raise ContractError(f"{path}: {e}") from None
        with _cache_lock:
            _cache[key] = contract
    return contract


def guess_contract(address: str) -> Optional[str]:
    """The contract name an upstream address suggests: its URL scheme (``imap://...``) or its
    well-known port (25, 587, 2525: smtp; 110: pop3; 143: imap); None when it says nothing."""
    m = re.match(r"^([a-z][a-z0-9+.-]*)://", address, re.I)
    if m:
        return SCHEMES.get(m.group(1).lower())
    try:
        _, port = parse_address(address)
    except ValueError:
        return None
    return WELL_KNOWN_PORTS.get(port)


# --- transcripts -------------------------------------------------------------------------------

class TranscriptError(ValueError):
    """A transcript that does not follow the format: names the line."""


_PRINTABLE = {b: chr(b) for b in range(0x20, 0x7F)}
_PRINTABLE.update({0x5C: "\\\\", 0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t"})
_ESCAPES = [_PRINTABLE.get(b, f"\\x{b:02x}") for b in range(256)]


def escape(data: bytes) -> str:
    """Bytes as a transcript record's text: printable ASCII as itself except ``\\``, CR, LF and
    TAB as ``\\r``, ``\\n``, ``\\t``, any other byte as ``\\xHH``."""
    return "".join(_ESCAPES[b] for b in data)


_UNESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[\\rnt])|\\")
_SIMPLE = {"\\": b"\\", "r": b"\r", "n": b"\n", "t": b"\t"}


def unescape(text: str) -> bytes:
    """The inverse of :func:`escape`. Raises TranscriptError on a bad escape. Characters outside
    printable ASCII (hand-written transcripts) stand for their UTF-8 bytes."""
    out = bytearray()
    pos = 0
    for m in _UNESCAPE.finditer(text):
        out += text[pos:m.start()].encode("utf-8")
        code = m.group(1)
        if code is None:
            raise TranscriptError(f"bad escape at column {m.start() + 1}: "
                                  f"{text[m.start():m.start() + 4]!r}")
        out += _SIMPLE[code] if len(code) == 1 else bytes([int(code[1:], 16)])
        pos = m.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


def _split_lines(data: bytes) -> list[bytes]:
    """Splits after each LF (a record per line, as writers normally do)."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def format_transcript(records: Iterable[tuple[str, bytes]], headers: Optional[dict] = None,
                      split_lines: bool = True) -> str:
    """The text of a transcript::

        # millipost transcript 1
        # contract: smtp
        S: 220 mx.example ESMTP\\r\\n
        C: EHLO client.example\\r\\n

    ``records`` are ``(direction, bytes)`` pairs in wire order, direction ``"C"`` (client) or
    ``"S"`` (server); ``headers`` become ``# key: value`` lines (``contract`` first). With
    ``split_lines`` a record ends after each LF (empty records are dropped); without it every
    record is written as given, so that reading gives back exactly the same records."""
    headers = dict(headers or {})
    lines = [TRANSCRIPT_MAGIC]
    if "contract" in headers:
        lines.append(f"# contract: {headers.pop('contract')}")
    for key, value in headers.items():
        key = str(key).strip().lower()
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", key):
            raise TranscriptError(f"bad header name {key!r}")
        value = " ".join(str(value).split())  # one line
        lines.append(f"# {key}: {value}")
    for direction, data in records:
        if direction not in (CLIENT, SERVER):
            raise TranscriptError(f"record direction must be 'C' or 'S', not {direction!r}")
        for piece in (_split_lines(data) if split_lines else [data]):
            lines.append(f"{direction}: {escape(piece)}")
    return "\n".join(lines) + "\n"


_HEADER = re.compile(r"^#\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:\s*(.*?)\s*$")


def parse_transcript(text: str) -> tuple[dict, list[tuple[str, bytes]]]:
    """``(headers, records)`` from a transcript's text. Headers are the ``# key: value`` lines
    (keys lower case, the last one wins); records are ``(direction, bytes)`` in file order.
    Raises TranscriptError naming the line."""
    headers, records, _ = _parse(text)
    return headers, records


def _parse(text: str) -> tuple[dict, list, list[int]]:
    """parse_transcript, plus the file line of each record (for reports)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0].rstrip("\r") != TRANSCRIPT_MAGIC:
        raise TranscriptError(f"line 1: a transcript starts with {TRANSCRIPT_MAGIC!r}")
    headers: dict = {}
    records: list = []
    linenos: list = []
    for n, line in enumerate(lines[1:], 2):
        if line.endswith("\r"):  # a file that went through a CRLF editor; real CRs are escaped
            line = line[:-1]
        if line.startswith("#"):
            m = _HEADER.match(line)
            if m:
                headers[m.group(1).lower()] = m.group(2)
            continue
        if not line.strip():
            continue
        if line[:2] in ("C:", "S:") and (len(line) == 2 or line[2] == " "):
            try:
                records.append((line[0], unescape(line[3:])))
            except TranscriptError as e:
                raise TranscriptError(f"line {n}: {e}") from None
            linenos.append(n)
            continue
        raise TranscriptError(f"line {n}: expected 'C: ', 'S: ' or '#', got {line[:40]!r}")
    return headers, records, linenos


def read_transcript(path: Union[str, os.PathLike]) -> tuple[dict, list[tuple[str, bytes]]]:
    """``(headers, records)`` of a transcript file (see :func:`parse_transcript`)."""
    headers, records, _ = _read(path)
    return headers, records


def _read(path) -> tuple[dict, list, list[int]]:
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    try:
        return _parse(text)
    except TranscriptError as e:
        raise TranscriptError(f"{os.fspath(path)}: {e}") from None


def write_transcript(path: Union[str, os.PathLike], records: Iterable[tuple[str, bytes]],
                     headers: Optional[dict] = None, split_lines: bool = True) -> None:
    """Writes a transcript file (see :func:`format_transcript`); the directory must exist."""
    text = format_transcript(records, headers, split_lines)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _truthy(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "1")


def check_records(records: Iterable[tuple[str, bytes]], contract, closed: bool = True
                  ) -> Optional[Breach]:
    """Feeds records to a new checker of ``contract`` (a Contract, name or path) in order;
    ``closed``: the connection ended (the checker's on_close is called). The first breach, or
    None."""
    return _check(records, contract, closed)[0]


def _check(records, contract, closed: bool) -> tuple[Optional[Breach], Optional[int]]:
    """The first breach and the index of the record that showed it (None: at the close)."""
    chk = load(contract).checker()
    for i, (direction, data) in enumerate(records):
        breach = chk.on_client(data) if direction == CLIENT else chk.on_server(data)
        if breach is not None:
            return breach, i
    return (chk.on_close() if closed else None), None


def _source(path_or_text) -> tuple[dict, list, list[int], str]:
    if isinstance(path_or_text, str) and path_or_text.startswith(TRANSCRIPT_MAGIC):
        return (*_parse(path_or_text), "transcript")
    return (*_read(path_or_text), os.fspath(path_or_text))


def check_transcript(path_or_text: Union[str, os.PathLike], contract=None) -> Optional[Breach]:
    """Checks a transcript (a path, or the text itself when it starts with the magic line)
    against ``contract`` (a Contract, name or path; default: the transcript's ``# contract:``
    header). End of file is the connection's close unless ``# open: true``. Returns the first
    Breach or None; raises TranscriptError (no contract, bad format) or ContractError."""
    return locate_breach(path_or_text, contract)[0]


def locate_breach(path_or_text: Union[str, os.PathLike], contract=None
                  ) -> tuple[Optional[Breach], Optional[int]]:
    """Like :func:`check_transcript`, with the file line of the record that showed the breach
    (None when it showed at the end of the file, or when there is no breach)."""
    headers, records, linenos, where = _source(path_or_text)
    if contract is None:
        contract = headers.get("contract")
        if not contract:
            raise TranscriptError(f"{where}: no '# contract:' header; name the contract")
    breach, index = _check(records, contract, closed=not _truthy(headers.get("open")))
    return breach, (linenos[index] if index is not None else None)


# --- the proxy ---------------------------------------------------------------------------------

def parse_address(spec: Union[str, tuple], default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``(host, port)`` from ``"HOST:PORT"``, ``"[V6]:PORT"``, ``"PORT"``, ``":PORT"``, a URL
    ``scheme://HOST[:PORT]`` (default port of the scheme) or a tuple."""
    if isinstance(spec, tuple):
        return str(spec[0]), int(spec[1])
    spec = spec.strip()
    m = re.match(r"^([a-z][a-z0-9+.-]*)://(?:[^@/]*@)?([^/]*)", spec, re.I)
    if m:
        default = {"smtp": 25, "pop3": 110, "pop": 110, "imap": 143}.get(m.group(1).lower())
        spec = m.group(2)
        if default and not re.search(r":\d+$", spec):
            spec = f"{spec}:{default}"
    m = re.fullmatch(r"(?:\[([^\]]+)\]|([^:]*)):(\d+)|(\d+)", spec)
    if not m:
        raise ValueError(f"bad address {spec!r}: use HOST:PORT, [IPV6]:PORT or PORT")
    if m.group(4):
        return default_host, int(m.group(4))
    port = int(m.group(3))
    if port > 65535:
        raise ValueError(f"bad port in {spec!r}")
    return (m.group(1) or m.group(2) or default_host), port


@dataclasses.dataclass
class ProxyBreach:
    """A breach seen by a :class:`Proxy`: which connection, the breach, the transcript file (when
    recording to a directory)."""
    connection: int
    breach: Breach
    transcript: Optional[str] = None

    def __str__(self) -> str:
        return f"connection {self.connection}: {self.breach}"


@dataclasses.dataclass
class ProxyConnection:
    """One proxied connection. ``records`` hold its bytes in wire order (as the checker saw
    them) when the proxy keeps them (``keep_records``), or while it is open when it records
    transcripts (``record_dir``)."""
    number: int
    client: tuple
    started: float
    records: list = dataclasses.field(default_factory=list)
    breach: Optional[Breach] = None
    error: Optional[str] = None  # the upstream refused, or a socket error
    closed: bool = False  # both directions ended (or the proxy stopped)
    transcript: Optional[str] = None
    checker: Optional[Checker] = dataclasses.field(default=None, repr=False)
    bytes_client: int = 0
    bytes_server: int = 0


class Proxy:
    """A transparent TCP proxy that holds every connection to a contract.

    ``listen`` and ``upstream`` are ``"HOST:PORT"`` (or ``(host, port)``; port 0 listens on an
    ephemeral port, see :attr:`address`); ``contract`` a Contract, a name, a path, or None to
    only record. Bytes pass both ways unchanged; each direction's bytes go to the connection's
    checker *before* they are forwarded, so that the checker always sees a request before the
    reply it caused. Breaches are appended to :attr:`breaches` and passed to ``on_breach``
    (called from the proxy's thread; keep it short). With ``record_dir`` each connection's
    transcript is written there as ``NNNNN.transcript`` when it ends. A breach does not stop the
    traffic: the proxy stays transparent and the checker's verdict is sticky.

    Use it as a context manager, or :meth:`start` and :meth:`stop`. Connections still open at
    stop are cut; their transcripts say ``# open: true``.
    """

    def __init__(self, listen: Union[str, tuple], upstream: Union[str, tuple], contract=None,
                 record_dir: Optional[str] = None,
                 on_breach: Optional[Callable[[ProxyBreach], None]] = None,
                 on_close: Optional[Callable[[ProxyConnection], None]] = None,
                 keep_records: bool = True, connect_timeout: float = 10.0):
        self.listen = parse_address(listen)
        self.upstream = parse_address(upstream)
        self.contract = load(contract) if contract is not None else None
        self.record_dir = record_dir
        self.on_breach = on_breach
        self.on_close = on_close
        self.keep_records = keep_records
        self.connect_timeout = connect_timeout
        self.breaches: list[ProxyBreach] = []
        self.connections: list[ProxyConnection] = []
        self.address: Optional[tuple] = None
        self._cond = threading.Condition()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._server = None
        self._tasks: set = set()
        self._error: Optional[BaseException] = None
        if record_dir:
            os.makedirs(record_dir, exist_ok=True)

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> "Proxy":
        """Starts listening (in a background thread); returns when the port is open."""
        if self._thread is not None:
            raise RuntimeError("proxy already started")
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._server = self._loop.run_until_complete(
                    asyncio.start_server(self._handle, self.listen[0], self.listen[1]))
                sock = self._server.sockets[0]
                self.address = sock.getsockname()[:2]
            except BaseException as e:  # reported by start()
                self._error = e
                ready.set()
                self._loop.close()
                return
            ready.set()
            try:
                self._loop.run_forever()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="millipost-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        if self._error is not None:
            self._thread.join()
            raise OSError(f"cannot listen on {self.listen[0]}:{self.listen[1]}: {self._error}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops listening, cuts open connections (recording them as open), waits for the
        proxy's thread."""
        if self._thread is None or self._loop is None or not self._thread.is_alive():
            return

        async def shutdown() -> None:
            self._server.close()
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"the proxy did not stop within {timeout} s")

    def __enter__(self) -> "Proxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    def wait_idle(self, timeout: float = 10.0, count: Optional[int] = None) -> bool:
        """Waits until every accepted connection has ended (and, with ``count``, at least that
        many were accepted); False on timeout. Clients that just closed may take a moment to
        reach the proxy: call this before looking at :attr:`breaches`."""
        deadline = time.monotonic() + timeout

        def idle() -> bool:
            return (all(c.closed for c in self.connections)
                    and (count is None or len(self.connections) >= count))

        with self._cond:
            while not idle():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # -- one connection --------------------------------------------------------------------------
    def _report(self, conn: ProxyConnection, breach: Optional[Breach]) -> None:
        if breach is None or conn.breach is not None:
            return
        conn.breach = breach
        pb = ProxyBreach(conn.number, breach, conn.transcript)
        with self._cond:
            self.breaches.append(pb)
        if self.on_breach is not None:
            try:
                self.on_breach(pb)
            except Exception:  # a callback's bug must not kill the connection
                pass

    def _feed(self, conn: ProxyConnection, direction: str, data: bytes) -> None:
        if self.keep_records or self.record_dir:  # else a long connection would grow forever
            conn.records.append((direction, data))
        if direction == CLIENT:
            conn.bytes_client += len(data)
        else:
            conn.bytes_server += len(data)
        if conn.checker is not None and conn.breach is None:
            feed = conn.checker.on_client if direction == CLIENT else conn.checker.on_server
            self._report(conn, feed(data))

    async def _pump(self, conn: ProxyConnection, direction: str, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            self._feed(conn, direction, data)  # before forwarding: see the class comment
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            try:
                writer.write_eof()  # half close: pass the end of this direction on
            except OSError:
                pass  # the other side is gone already

    def _headers(self, conn: ProxyConnection, still_open: bool) -> dict:
        h = {}
        if self.contract is not None:
            h["contract"] = self.contract.name
        h["connection"] = conn.number
        h["client"] = f"{conn.client[0]}:{conn.client[1]}"
        h["upstream"] = f"{self.upstream[0]}:{self.upstream[1]}"
        h["started"] = datetime.datetime.fromtimestamp(
            conn.started, datetime.timezone.utc).isoformat(timespec="milliseconds")
        if still_open:
            h["open"] = "true"
        if conn.error:
            h["error"] = conn.error
        if conn.breach is not None:
            h["breach"] = str(conn.breach)
        return h

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter):
        task = asyncio.current_task()
        self._tasks.add(task)
        with self._cond:
            conn = ProxyConnection(len(self.connections) + 1,
                                   tuple(client_w.get_extra_info("peername") or ("?", 0))[:2],
                                   time.time())
            self.connections.append(conn)
        if self.record_dir:
            conn.transcript = os.path.join(self.record_dir, f"{conn.number:05d}.transcript")
        if self.contract is not None:
            conn.checker = self.contract.checker()
        upstream_w = None
        cut = False
        try:
            try:
                upstream_r, upstream_w = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream), self.connect_timeout)
            except (OSError, asyncio.TimeoutError) as e:
                conn.error = f"cannot connect to {self.upstream[0]}:{self.upstream[1]}: {e}"
                return
            pumps = [asyncio.ensure_future(self._pump(conn, CLIENT, client_r, upstream_w)),
                     asyncio.ensure_future(self._pump(conn, SERVER, upstream_r, client_w))]
            try:
                for done in asyncio.as_completed(pumps):
                    try:
                        await done
                    except (OSError, asyncio.IncompleteReadError) as e:
                        # A reset ends the connection both ways; what was seen is still judged.
                        conn.error = conn.error or f"{type(e).__name__}: {e}"
                        for p in pumps:
                            p.cancel()
                        await asyncio.gather(*pumps, return_exceptions=True)
                        break
            except asyncio.CancelledError:
                cut = True
                for p in pumps:
                    p.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
            # Only an orderly close is judged: after a reset, "no reply" may be the reset's
            # doing (the checker has judged every byte that did pass).
            if conn.checker is not None and conn.breach is None and not cut and not conn.error:
                self._report(conn, conn.checker.on_close())
        except asyncio.CancelledError:
            cut = True
        finally:
            for w in (client_w, upstream_w):
                if w is not None:
                    w.close()
            self._finish(conn, still_open=cut)
            self._tasks.discard(task)

    def _finish(self, conn: ProxyConnection, still_open: bool) -> None:
        if conn.transcript:
            try:
                write_transcript(conn.transcript, conn.records, self._headers(conn, still_open))
            except OSError as e:
                conn.error = conn.error or f"cannot write {conn.transcript}: {e}"
        if not self.keep_records:
            conn.records = []
        conn.checker = None
        with self._cond:
            conn.closed = True
            self._cond.notify_all()
        if self.on_close is not None:
            try:
                self.on_close(conn)
            except Exception:
                pass
