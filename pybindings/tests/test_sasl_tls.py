"""SCRAM-SHA-256-PLUS with tls-exporter channel binding (RFC 9266) end to end, and plaintext
logins over TLS with ``plaintext_auth="never"``. Needs the TLS layer (``Server(tls=...)``,
``imaps_port``, ``pop3s_port``, ``submissions_port``).

Python's ``ssl`` cannot export keying material, so the binding data comes from pyOpenSSL
(``Connection.export_keying_material``); scramp 1.5 knows ``tls-exporter`` but refuses it, so the
test lets it through (the computation is the same as for any binding type: the GS2 header and
the data, base64 in ``c=``).
"""
from __future__ import annotations

import base64
import imaplib
import select
import socket
import ssl
import time

import pytest
import scramp
from OpenSSL import SSL

import millipost
from conftest import TIMEOUT

B64 = lambda b: base64.b64encode(b).decode()  # noqa: E731


@pytest.fixture
def scramp_tls_exporter(monkeypatch):
    monkeypatch.setattr(scramp.core.CbName, "SUPPORTED_TYPES",
                        scramp.core.CbName.SUPPORTED_TYPES | {"tls-exporter"})
    monkeypatch.setattr(scramp.core.CbName, "UNSUPPORTED_TYPES", frozenset())


class TlsLines:
    """A line client over pyOpenSSL (TLS 1.3), for the exporter value. The socket is
    non-blocking and every operation has a deadline, so a silent server fails the test."""

    def __init__(self, port: int):
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_verify(SSL.VERIFY_NONE, lambda *a: True)  # self-signed
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setblocking(False)
        self.conn = SSL.Connection(ctx, self.sock)
        self.conn.set_connect_state()
        self._io(self.conn.do_handshake)
        self.buf = b""

    def _io(self, fn, *args):
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                return fn(*args)
            except (SSL.WantReadError, SSL.WantWriteError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no TLS progress within {TIMEOUT} s; have {self.buf!r}")
                select.select([self.sock], [self.sock], [], 0.05)

    def exporter(self) -> bytes:
        # RFC 9266: label "EXPORTER-Channel-Binding", empty context, 32 bytes.
        return self.conn.export_keying_material(b"EXPORTER-Channel-Binding", 32, b"")

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self._io(self.conn.recv, 65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, s: str) -> None:
        self._io(self.conn.sendall, s.encode() + b"\r\n")

    def close(self) -> None:
        self.conn.close()


def imap_scram(c: TlsLines, client, mechanism: str) -> bytes:
    c.cmd(f"a AUTHENTICATE {mechanism} " + B64(client.get_client_first().encode()))
    line = c.line()
    if not line.startswith(b"+ "):
        return line
    client.set_server_first(base64.b64decode(line[2:]).decode())
    c.cmd(B64(client.get_client_final().encode()))
    line = c.line()
    if not line.startswith(b"+ "):
        return line
    client.set_server_final(base64.b64decode(line[2:]).decode())  # checks the server signature
    c.cmd("")
    return c.line()


@pytest.fixture
def tls_server(make_server):
    return make_server(tls="self-signed", plaintext_auth="never")


def test_scram_plus_over_imaps(tls_server, scramp_tls_exporter):
    c = TlsLines(tls_server.imaps_port)
    greeting = c.line()
    assert b"AUTH=SCRAM-SHA-256-PLUS" in greeting and b"LOGINDISABLED" not in greeting
    client = scramp.ScramClient(["SCRAM-SHA-256-PLUS"], "alice", "secret",
                                channel_binding=("tls-exporter", c.exporter()))
    assert imap_scram(c, client, "SCRAM-SHA-256-PLUS").startswith(b"a OK")
    c.close()


def test_scram_plus_with_other_binding_data_fails(tls_server, scramp_tls_exporter):
    c = TlsLines(tls_server.imaps_port)
    c.line()
    client = scramp.ScramClient(["SCRAM-SHA-256-PLUS"], "alice", "secret",
                                channel_binding=("tls-exporter", b"\x00" * 32))
    assert imap_scram(c, client, "SCRAM-SHA-256-PLUS").startswith(b"a NO")
    c.close()


def test_y_flag_is_a_downgrade_when_plus_is_offered(tls_server, scramp_tls_exporter):
    c = TlsLines(tls_server.imaps_port)
    c.line()
    # A client that can bind but picks the plain mechanism says "y": the server offered -PLUS,
    # so someone removed it from the list the client saw.
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "secret",
                                channel_binding=("tls-exporter", c.exporter()))
    assert client.get_client_first().startswith("y,")
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "secret",
                                channel_binding=("tls-exporter", c.exporter()))
    assert imap_scram(c, client, "SCRAM-SHA-256").startswith(b"a NO")
    # Without a binding ("n") the plain mechanism still works over TLS.
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "secret")
    assert imap_scram(c, client, "SCRAM-SHA-256").startswith(b"a OK")
    c.close()


def test_plaintext_allowed_over_tls_with_never(tls_server):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL(tls_server.host, tls_server.imaps_port, ssl_context=ctx,
                          timeout=TIMEOUT)
    assert "LOGINDISABLED" not in m.capabilities and "AUTH=PLAIN" in m.capabilities
    assert m.login("alice", "secret")[0] == "OK"
    m.logout()
