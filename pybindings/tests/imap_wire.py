"""A small IMAP client for the differential tests: sends commands over a raw socket, reads the
responses with their literals, and parses them into Python values independently of the server
(and of imaplib/imapclient, whose parsers interpret dates and strings).

Parsed values: ``None`` for NIL, ``bytes`` for quoted strings and literals, ``str`` for atoms
(numbers included, as text), ``list`` for parenthesised lists. A FETCH section keyword such as
``BODY[1.MIME]<0>`` is one atom with its bracket text.
"""
from __future__ import annotations

import socket


class ImapError(AssertionError):
    pass


class WireClient:
    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.n = 0
        greeting = self._line()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"greeting {greeting!r}")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- reading ---------------------------------------------------------------------------
    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError(f"connection closed; have {self.buf[:200]!r}")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _response(self) -> bytes:
        """One response line with its literals inlined as ``{n}\\r\\n<data>``."""
        out = b""
        while True:
            line = self._line()
            out += line
            if line.endswith(b"}") and b"{" in line:
                size = line[line.rindex(b"{") + 1:-1].rstrip(b"+")
                if size.isdigit():
                    out += b"\r\n" + self._exact(int(size))
                    continue
            return out

    # -- commands --------------------------------------------------------------------------
    def command(self, text: bytes | str, literal: bytes | None = None) -> tuple[list, bytes]:
        """Sends ``tag text`` (with ``literal`` appended as a LITERAL+ ``{n+}``); returns the
        untagged responses (raw, literals inlined) and the tagged status line."""
        if isinstance(text, str):
            text = text.encode()
        self.n += 1
        tag = b"w%d" % self.n
        data = tag + b" " + text
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        self.sock.sendall(data + b"\r\n")
        untagged = []
        while True:
            r = self._response()
            if r.startswith(tag + b" "):
                return untagged, r[len(tag) + 1:]
            untagged.append(r)

    def ok(self, text: bytes | str, literal: bytes | None = None) -> list:
        untagged, status = self.command(text, literal)
        if not status.startswith(b"OK"):
            raise ImapError(f"{text!r}: {status!r}")
        return untagged

    def fetch(self, which: str, items: str, uid: bool = True) -> dict:
        """``UID FETCH which (items)``: {uid or seq: {item name upper-cased: value}}."""
        cmd = f"{'UID ' if uid else ''}FETCH {which} ({items})"
        out = {}
        for r in self.ok(cmd):
            v = parse(r)
            if len(v) >= 3 and v[0] == "*" and len(v) == 4 and str(v[2]).upper() == "FETCH":
                pairs = v[3]
                d = {str(pairs[i]).upper(): pairs[i + 1] for i in range(0, len(pairs), 2)}
                key = int(d["UID"]) if uid else int(v[1])
                out.setdefault(key, {}).update(d)
        return out


# --- parsing -------------------------------------------------------------------------------

def parse(data: bytes) -> list:
    """Parses one response (literals inlined) into a list of values."""
    p = _Parser(data)
    out = []
    while True:
        p.skip_sp()
        if p.i >= len(data):
            return out
        out.append(p.value())


class _Parser:
    def __init__(self, data: bytes):
        self.d = data
        self.i = 0

    def skip_sp(self) -> None:
        while self.i < len(self.d) and self.d[self.i:self.i + 1] == b" ":
            self.i += 1

    def value(self):
        d = self.d
        c = d[self.i:self.i + 1]
        if c == b"(":
            self.i += 1
            items = []
            while True:
                self.skip_sp()
                if d[self.i:self.i + 1] == b")":
                    self.i += 1
                    return items
                if self.i >= len(d):
                    raise ImapError(f"unclosed list in {d[:300]!r}")
                items.append(self.value())
        if c == b'"':
            self.i += 1
            out = bytearray()
            while True:
                ch = d[self.i:self.i + 1]
                if ch == b"":
                    raise ImapError(f"unclosed quoted string in {d[:300]!r}")
                self.i += 1
                if ch == b"\\":
                    out += d[self.i:self.i + 1]
                    self.i += 1
                elif ch == b'"':
                    return bytes(out)
                else:
                    out += ch
        if c in (b"{", b"~"):
            if c == b"~":
                self.i += 1
            end = d.index(b"}\r\n", self.i)
            n = int(d[self.i + 1:end].rstrip(b"+"))
            start = end + 3
            self.i = start + n
            return d[start:start + n]
        # An atom; a FETCH item name keeps its [section] (which may hold spaces and parens)
        # and its <partial>.
        start = self.i
        depth = 0
        while self.i < len(d):
            ch = d[self.i:self.i + 1]
            if ch == b"[":
                depth += 1
            elif ch == b"]":
                depth -= 1
            elif depth == 0 and ch in (b" ", b"(", b")", b"\r", b"\n"):
                break
            self.i += 1
        atom = d[start:self.i].decode("utf-8", "surrogateescape")
        if atom.upper() == "NIL":
            return None
        if not atom:
            raise ImapError(f"unexpected {d[self.i:self.i + 40]!r} in {d[:300]!r}")
        return atom

