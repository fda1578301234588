"""SMTP system tests: smtplib and raw sockets against the real server (RFC 5321, 6531, 1870,
2920, 6152, 2034)."""
from __future__ import annotations

import smtplib
import socket
import threading
import time

import pytest

from conftest import (TIMEOUT, RawClient, deliver, message, raise_fd_limit, retr,
                      strip_received, wait_for)


def esmtp_session(raw, server, helo: str = "EHLO client.test") -> RawClient:
    """A raw SMTP client past the greeting and EHLO."""
    c = raw(server.smtp_port)
    code, _ = c.read_reply()
    assert code == 220
    c.cmd(helo)
    code, _ = c.read_reply()
    assert code == 250
    return c


def open_transaction(c: RawClient, rcpts=("alice@localhost",)) -> None:
    """MAIL, RCPT..., DATA on a raw session, each acknowledged, up to the 354."""
    c.cmd("MAIL FROM:<sender@example.org>")
    assert c.read_reply()[0] == 250
    for r in rcpts:
        c.cmd(f"RCPT TO:<{r}>")
        assert c.read_reply()[0] == 250
    c.cmd("DATA")
    assert c.read_reply()[0] == 354


def status(reply_lines: list[bytes]) -> bytes:
    """The enhanced status code at the start of a reply's last line."""
    return reply_lines[-1].split(b" ", 1)[0]


# --- EHLO and the simple verbs ---------------------------------------------------------------

def test_ehlo_advertises_extensions(server, smtp):
    s = smtp(ehlo=False)
    code, text = s.ehlo("client.test")
    assert code == 250
    assert s.does_esmtp
    for ext in ("pipelining", "8bitmime", "smtputf8", "enhancedstatuscodes", "size"):
        assert s.has_extn(ext), (ext, text)
    assert int(s.esmtp_features["size"]) > 0
    assert text.split(b"\n")[0].startswith(server.hostname.encode())


def test_ehlo_size_is_the_configured_limit(make_server, smtp):
    srv = make_server(max_message_size=10000)
    s = smtp(srv)
    assert s.esmtp_features["size"] == "10000"


def test_helo_is_plain_smtp(server, smtp):
    s = smtp(ehlo=False)
    code, text = s.helo("client.test")
    assert code == 250
    assert not s.does_esmtp


def test_greeting_is_220(server, raw):
    c = raw(server.smtp_port)
    code, lines = c.read_reply()
    assert code == 220
    assert server.hostname.encode() in lines[0]


@pytest.mark.parametrize("verb,code,enhanced", [
    ("NOOP", 250, b"2.0.0"),
    ("RSET", 250, b"2.0.0"),
    ("VRFY alice", 252, b"2.5.0"),
    ("HELP", 214, b"2.0.0"),
    ("EXPN staff", 502, b"5.5.1"),
])
def test_simple_verbs(server, raw, verb, code, enhanced):
    c = esmtp_session(raw, server)
    c.cmd(verb)
    got, lines = c.read_reply()
    assert got == code, lines
    assert status(lines) == enhanced, lines


def test_smtplib_noop_rset_vrfy_help(server, smtp):
    s = smtp()
    assert s.noop()[0] == 250
    assert s.rset()[0] == 250
    assert s.verify("alice")[0] == 252
    assert b"Commands" in s.help()


def test_quit_221_and_close(server, raw):
    c = esmtp_session(raw, server)
    c.cmd("QUIT")
    code, lines = c.read_reply()
    assert code == 221
    assert status(lines) == b"2.0.0"
    assert c.read_until_eof() == b""


def test_verbs_are_case_insensitive(server, raw):
    c = raw(server.smtp_port)
    c.read_reply()
    c.cmd("ehlo client.test")
    assert c.read_reply()[0] == 250
    c.cmd("mail from:<sender@example.org>")
    assert c.read_reply()[0] == 250
    c.cmd("rcpt to:<alice@localhost>")
    assert c.read_reply()[0] == 250


# --- delivery --------------------------------------------------------------------------------

DOTTY_BODY = (b"first line\r\n"
              b".starts with a dot\r\n"
              b"..starts with two dots\r\n"
              b".\r\n"
              b"a lone dot above, not the end\r\n"
              b". \r\n"
              b"8bit: Gr\xc3\xbc\xc3\x9fe, \xc3\xb1and\xc3\xba\r\n"
              b"\r\n"
              b"last line\r\n")


def test_delivery_is_byte_exact_with_received_header(server, pop3):
    original = message("dots", DOTTY_BODY)
    deliver(server, ["alice@localhost"], original)
    assert len(server.mailbox_uids("alice")) == 1
    p = pop3("alice")
    stored = retr(p, 1)
    received, rest = strip_received(stored)
    assert rest == original
    assert b"by " + server.hostname.encode() in received
    assert b"for <alice@localhost>" in received
    # The size the server reports is the size of what RETR gives (RFC 1939 §5 LIST/STAT).
    assert p.stat() == (1, len(stored))
    resp = p.list(1)
    assert resp.split() == [b"+OK", b"1", str(len(stored)).encode()]


def test_retr_dot_stuffs_on_the_wire(server, raw):
    """Raw check of both directions: stuffed on the SMTP wire by us, unstuffed in the store,
    stuffed again by POP3 RETR."""
    c = esmtp_session(raw, server)
    open_transaction(c)
    body = b"Subject: raw dots\r\n\r\n..one\r\n...two\r\n..\r\nend\r\n"
    c.send(body + b".\r\n")
    code, lines = c.read_reply()
    assert code == 250, lines
    p = raw(server.pop3_port)
    assert p.read_line().startswith(b"+OK")
    p.cmd("USER alice")
    assert p.read_line().startswith(b"+OK")
    p.cmd("PASS secret")
    assert p.read_line().startswith(b"+OK")
    p.cmd("RETR 1")
    assert p.read_line().startswith(b"+OK")
    lines = p.read_multiline()
    _, original = strip_received(b"".join(line + b"\r\n" for line in lines))
    # What went over SMTP stuffed comes back over POP3 stuffed the same way.
    assert original == body


def test_delivery_to_two_users(server, pop3):
    original = message("both")
    deliver(server, ["alice@localhost", "bob@localhost"], original)
    assert len(server.mailbox_uids("alice")) == 1
    assert len(server.mailbox_uids("bob")) == 1
    for user in ("alice", "bob"):
        p = pop3(user)
        assert strip_received(retr(p, 1))[1] == original
        p.quit()


def test_mail_is_only_in_its_recipients_maildrops(server, pop3):
    deliver(server, ["bob@localhost"], message("for bob only"))
    assert server.mailbox_uids("alice") == []
    assert pop3("alice").stat() == (0, 0)
    assert pop3("bob").stat()[0] == 1


def test_same_recipient_twice_is_one_delivery(server):
    deliver(server, ["alice@localhost", "alice@localhost"], message())
    assert len(server.mailbox_uids("alice")) == 1


def test_recipient_domain_is_case_insensitive(server):
    deliver(server, ["alice@LOCALHOST"], message())
    assert len(server.mailbox_uids("alice")) == 1


def test_null_reverse_path_is_accepted(server, smtp):
    s = smtp()
    assert s.mail("")[0] == 250
    assert s.rcpt("alice@localhost")[0] == 250
    assert s.data(message())[0] == 250
    assert len(server.mailbox_uids("alice")) == 1


def test_unknown_local_user_550(server, smtp):
    s = smtp()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        s.sendmail("sender@example.org", ["nobody@localhost"], message())
    code, text = e.value.recipients["nobody@localhost"]
    assert code == 550
    assert text.startswith(b"5.1.1")
    assert server.mailbox_uids("alice") == []


def test_non_local_domain_is_not_relayed(server, smtp):
    """550 5.7.1: RFC 5321 §4.3.2 allows no 554 after RCPT (the SMTP contract checks this)."""
    s = smtp()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        s.sendmail("sender@example.org", ["alice@example.com"], message())
    code, text = e.value.recipients["alice@example.com"]
    assert code == 550
    assert text.startswith(b"5.7.1")


def test_partial_refusal_delivers_to_the_rest(server, smtp):
    s = smtp()
    refused = s.sendmail("sender@example.org", ["alice@localhost", "nobody@localhost"],
                         message())
    assert set(refused) == {"nobody@localhost"}
    assert len(server.mailbox_uids("alice")) == 1


# --- sequence errors -------------------------------------------------------------------------

def test_mail_before_ehlo_503(server, raw):
    c = raw(server.smtp_port)
    c.read_reply()
    c.cmd("MAIL FROM:<sender@example.org>")
    code, lines = c.read_reply()
    assert code == 503
    assert status(lines) == b"5.5.1"


def test_rcpt_before_mail_503(server, raw):
    c = esmtp_session(raw, server)
    c.cmd("RCPT TO:<alice@localhost>")
    code, lines = c.read_reply()
    assert code == 503
    assert status(lines) == b"5.5.1"


def test_data_before_mail_503(server, raw):
    c = esmtp_session(raw, server)
    c.cmd("DATA")
    code, lines = c.read_reply()
    assert code == 503
    assert status(lines) == b"5.5.1"
    # No 354 was given, so the next line is a command again.
    c.cmd("NOOP")
    assert c.read_reply()[0] == 250


def test_data_without_valid_rcpt_554(server, raw):
    """RFC 5321 §3.3: DATA with no accepted recipient gets 503 or 554; this server says 554."""
    c = esmtp_session(raw, server)
    c.cmd("MAIL FROM:<sender@example.org>")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<nobody@localhost>")
    assert c.read_reply()[0] == 550
    c.cmd("DATA")
    code, lines = c.read_reply()
    assert code == 554
    assert status(lines) == b"5.5.1"
    c.cmd("NOOP")
    assert c.read_reply()[0] == 250


def test_nested_mail_503(server, raw):
    c = esmtp_session(raw, server)
    c.cmd("MAIL FROM:<sender@example.org>")
    assert c.read_reply()[0] == 250
    c.cmd("MAIL FROM:<other@example.org>")
    code, lines = c.read_reply()
    assert code == 503
    assert status(lines) == b"5.5.1"


def test_rset_clears_the_transaction(server, raw):
    c = esmtp_session(raw, server)
    c.cmd("MAIL FROM:<sender@example.org>")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<alice@localhost>")
    assert c.read_reply()[0] == 250
    c.cmd("RSET")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<alice@localhost>")
    assert c.read_reply()[0] == 503
    c.cmd("MAIL FROM:<sender@example.org>")  # not nested any more
    assert c.read_reply()[0] == 250


def test_unknown_command_500(server, raw):
    c = esmtp_session(raw, server)
    c.cmd("FROB something")
    code, lines = c.read_reply()
    assert code == 500
    assert status(lines) == b"5.5.2"


@pytest.mark.parametrize("line", [
    "MAIL FROM:sender@example.org",        # no angle brackets
    "MAIL FROM:<sender@example.org",       # no closing bracket
    "RCPT",                                 # no TO:
    "EHLO",                                 # no domain
    "DATA now",                             # DATA takes no parameter
])
def test_syntax_errors_501(server, raw, line):
    c = esmtp_session(raw, server)
    if line.startswith("RCPT"):
        c.cmd("MAIL FROM:<sender@example.org>")
        assert c.read_reply()[0] == 250
    c.cmd(line)
    code, lines = c.read_reply()
    assert code == 501, (line, lines)


# --- sizes and limits ------------------------------------------------------------------------

def test_mail_size_parameter_too_big_552(make_server, smtp):
    srv = make_server(max_message_size=10000)
    s = smtp(srv)
    code, text = s.mail("sender@example.org", ["SIZE=10001"])
    assert code == 552
    assert text.startswith(b"5.3.4")
    code, _ = s.mail("sender@example.org", ["SIZE=10000"])
    assert code == 250


def test_mail_size_parameter_of_twenty_digits_552(server, smtp):
    """RFC 1870 §3/§6.1: size-value is 1*20DIGIT; a syntactically valid size over the limit
    (even one beyond 2**64) is "552 message size exceeds fixed maximum", not a syntax error."""
    s = smtp()
    code, text = s.mail("sender@example.org", ["SIZE=99999999999999999999"])
    assert code == 552, text
    assert text.startswith(b"5.3.4")


def test_mail_size_parameter_malformed_501(server, smtp):
    s = smtp()
    code, text = s.mail("sender@example.org", ["SIZE=lots"])
    assert code == 501


def test_message_over_max_size_552_nothing_delivered(make_server, smtp):
    srv = make_server(max_message_size=10000)
    s = smtp(srv)
    assert s.mail("sender@example.org")[0] == 250  # no SIZE=: the limit is found in DATA
    assert s.rcpt("alice@localhost")[0] == 250
    big = message("big", b"x" * 76 + b"\r\n") + (b"y" * 98 + b"\r\n") * 200
    assert len(big) > 10000
    code, text = s.data(big)
    assert code == 552
    assert text.startswith(b"5.3.4")
    assert srv.mailbox_uids("alice") == []
    # The session goes on.
    assert s.noop()[0] == 250


def test_message_size_limit_boundary(make_server, smtp):
    """A message of exactly max_message_size octets passes; one more octet does not."""
    srv = make_server(max_message_size=10000)
    head = message("edge", b"")
    exact = head + b"z" * (10000 - len(head) - 2) + b"\r\n"
    assert len(exact) == 10000
    s = smtp(srv)
    assert s.mail("sender@example.org")[0] == 250
    assert s.rcpt("alice@localhost")[0] == 250
    assert s.data(exact)[0] == 250
    over = head + b"z" * (10000 - len(head) - 1) + b"\r\n"
    assert s.mail("sender@example.org")[0] == 250
    assert s.rcpt("alice@localhost")[0] == 250
    assert s.data(over)[0] == 552
    assert len(srv.mailbox_uids("alice")) == 1


def test_overlong_command_line_500_then_session_works(server, smtp):
    s = smtp()
    code, text = s.docmd("NOOP", "x" * 3000)
    assert code == 500
    assert text.startswith(b"5.5.6")
    assert s.noop()[0] == 250
    assert s.mail("sender@example.org")[0] == 250


def test_command_line_limit_boundary(server, raw):
    """kSmtpMaxCommandLine = 2048 octets including CRLF."""
    c = esmtp_session(raw, server)
    c.cmd("NOOP " + "x" * (2046 - 5))   # 2046 + CRLF = 2048: allowed
    code, lines = c.read_reply()
    assert code == 250, lines
    c.cmd("NOOP " + "x" * (2047 - 5))   # 2049 octets: too long
    code, lines = c.read_reply()
    assert code == 500
    assert status(lines) == b"5.5.6"
    c.cmd("NOOP")
    assert c.read_reply()[0] == 250


def test_megabyte_line_without_newline_answered_promptly(server, raw):
    c = esmtp_session(raw, server)
    started = time.monotonic()
    c.send(b"A" * (1024 * 1024))  # no CRLF at all
    code, lines = c.read_reply(timeout=5)
    assert code == 500
    assert status(lines) == b"5.5.6"
    assert time.monotonic() - started < 5
    # Only one reply for the whole overlong line; after its LF the session works.
    c.send(b"\r\nNOOP\r\n")
    code, lines = c.read_reply()
    assert code == 250, lines
    assert status(lines) == b"2.0.0"
    # And the server still serves others.
    other = raw(server.smtp_port)
    assert other.read_reply()[0] == 220


# --- malformed input -------------------------------------------------------------------------

def test_bare_lf_in_command_500(server, raw):
    c = esmtp_session(raw, server)
    c.send(b"NOOP\n")
    code, lines = c.read_reply()
    assert code == 500, lines
    c.cmd("NOOP")
    assert c.read_reply()[0] == 250


def test_nul_in_command_500(server, raw):
    c = esmtp_session(raw, server)
    c.send(b"NO\x00OP\r\n")
    code, lines = c.read_reply()
    assert code == 500, lines
    c.send(b"MAIL FROM:<a\x00b@example.org>\r\n")
    code, lines = c.read_reply()
    assert code == 500, lines
    c.cmd("NOOP")
    assert c.read_reply()[0] == 250


@pytest.mark.parametrize("body", [
    b"Subject: lf\r\n\r\nline one\nline two\r\n",
    b"Subject: lf\nX: y\r\n\r\nbody\r\n",
    b"Subject: cr\r\n\r\nline one\rline two\r\n",
])
def test_bare_newline_in_data_554_nothing_delivered(server, raw, body):
    c = esmtp_session(raw, server)
    open_transaction(c)
    c.send(body + b".\r\n")
    code, lines = c.read_reply()
    assert code == 554, lines
    assert status(lines) == b"5.6.0"
    assert server.mailbox_uids("alice") == []
    c.cmd("NOOP")
    assert c.read_reply()[0] == 250


def test_nul_in_data_554_nothing_delivered(server, raw):
    c = esmtp_session(raw, server)
    open_transaction(c)
    c.send(b"Subject: nul\r\n\r\nbefore\x00after\r\n.\r\n")
    code, lines = c.read_reply()
    assert code == 554, lines
    assert status(lines) == b"5.6.0"
    assert server.mailbox_uids("alice") == []


@pytest.mark.parametrize("separator", [b"\n.\r\n", b"\n.\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r"])
def test_smtp_smuggling_is_not_an_end_of_data(server, raw, separator):
    """Only CRLF.CRLF ends DATA. A smuggled second transaction inside the body must neither be
    run as commands nor delivered (the whole message has bare line ends, so it is refused)."""
    c = esmtp_session(raw, server)
    open_transaction(c, ["alice@localhost"])
    payload = (b"Subject: outer\r\n\r\nhello" + separator
               + b"MAIL FROM:<admin@localhost>\r\n"
               + b"RCPT TO:<bob@localhost>\r\n"
               + b"DATA\r\n"
               + b"Subject: smuggled\r\n\r\nsmuggled\r\n"
               + b".\r\n")
    c.send(payload)
    code, lines = c.read_reply()
    assert code == 554, lines   # one reply for one message: bare CR/LF refused
    assert status(lines) == b"5.6.0"
    c.cmd("QUIT")
    rest = c.read_until_eof()
    assert rest.startswith(b"221 "), rest  # no replies to smuggled commands in between
    assert rest.count(b"\r\n") == 1, rest
    assert server.mailbox_uids("alice") == []
    assert server.mailbox_uids("bob") == []


def test_disconnect_mid_data_delivers_nothing(server, raw, pop3):
    c = esmtp_session(raw, server)
    open_transaction(c, ["alice@localhost", "bob@localhost"])
    c.send(b"Subject: cut\r\n\r\nhalf a message\r\nand then")
    c.close()
    # The server keeps serving: a later message arrives, and it is the only one.
    later = message("after the cut")
    deliver(server, ["alice@localhost"], later)
    assert len(server.mailbox_uids("alice")) == 1
    assert server.mailbox_uids("bob") == []
    p = pop3("alice")
    assert strip_received(retr(p, 1))[1] == later


def test_reset_mid_data_delivers_nothing(server, raw):
    c = esmtp_session(raw, server)
    open_transaction(c)
    c.send(b"Subject: reset\r\n\r\nsome text\r\n")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()  # RST instead of FIN
    time.sleep(0.2)
    assert server.mailbox_uids("alice") == []
    again = esmtp_session(raw, server)
    again.cmd("NOOP")
    assert again.read_reply()[0] == 250


# --- timeouts and connection limits ----------------------------------------------------------

def test_idle_client_gets_421_timeout(make_server, raw):
    srv = make_server(smtp_timeout=1)
    c = raw(srv.smtp_port)
    assert c.read_reply()[0] == 220
    started = time.monotonic()
    code, lines = c.read_reply(timeout=8)
    assert code == 421
    assert status(lines) == b"4.4.2"
    assert c.read_until_eof(timeout=5) == b""
    assert 0.5 < time.monotonic() - started < 8


def test_idle_timeout_mid_data_delivers_nothing(make_server, raw):
    srv = make_server(smtp_timeout=1)
    c = raw(srv.smtp_port)
    c.read_reply()
    c.cmd("EHLO client.test")
    c.read_reply()
    open_transaction(c)
    c.send(b"Subject: stalled\r\n\r\nand nothing more")
    c.read_until_eof(timeout=8)  # the server gives up and closes
    assert srv.mailbox_uids("alice") == []


def test_thousand_concurrent_connections(server):
    n = 1000
    limit = raise_fd_limit(3 * n + 256)  # ours, and the in-process server's, plus slack
    assert limit >= 2 * n + 64, f"RLIMIT_NOFILE hard limit too low for this test: {limit}"
    socks = []
    try:
        # From 20 loopback addresses, 50 each: one address may hold at most 100
        # (max_connections_per_address, test_limits.py).
        for i in range(n):
            socks.append(socket.create_connection((server.host, server.smtp_port),
                                                  timeout=TIMEOUT,
                                                  source_address=(f"127.0.2.{i % 20 + 1}", 0)))
        for s in socks:
            s.settimeout(TIMEOUT)
        greeted = 0
        for s in socks:
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                assert chunk, "closed before the greeting"
                data += chunk
            assert data.startswith(b"220 "), data
            greeted += 1
        for s in socks:
            s.sendall(b"QUIT\r\n")
        quit_ok = 0
        for s in socks:
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"221 "), data
            quit_ok += 1
        assert greeted == n and quit_ok == n
    finally:
        for s in socks:
            s.close()


def test_max_connections_sixth_gets_421(make_server, raw):
    srv = make_server(max_connections=5)
    clients = []
    for _ in range(5):
        c = raw(srv.smtp_port)
        assert c.read_reply()[0] == 220
        clients.append(c)
    sixth = raw(srv.smtp_port)
    code, lines = sixth.read_reply()
    assert code == 421
    assert status(lines) == b"4.7.0"
    assert sixth.read_until_eof() == b""
    # The first five are unaffected; once one leaves there is room again.
    clients[0].cmd("QUIT")
    assert clients[0].read_reply()[0] == 221
    clients[0].read_until_eof()

    def room() -> bool:
        c = RawClient(srv.host, srv.smtp_port)
        try:
            return c.read_reply()[0] == 220
        finally:
            c.close()
    assert wait_for(room, timeout=5)


# --- extensions ------------------------------------------------------------------------------

def test_pipelining_replies_in_order(server, raw):
    c = esmtp_session(raw, server)
    c.send(b"MAIL FROM:<sender@example.org>\r\n"
           b"RCPT TO:<alice@localhost>\r\n"
           b"RCPT TO:<nobody@localhost>\r\n"
           b"RCPT TO:<bob@localhost>\r\n"
           b"DATA\r\n")
    replies = [c.read_reply() for _ in range(5)]
    assert [code for code, _ in replies] == [250, 250, 550, 250, 354], replies
    assert [status(lines) for _, lines in replies[:4]] == [b"2.1.0", b"2.1.5", b"5.1.1", b"2.1.5"]
    # The message, its end and the next transaction in one write too.
    c.send(b"Subject: piped\r\n\r\nhi\r\n.\r\n"
           b"RSET\r\n"
           b"NOOP\r\n"
           b"QUIT\r\n")
    replies = [c.read_reply() for _ in range(4)]
    assert [code for code, _ in replies] == [250, 250, 250, 221], replies
    assert len(server.mailbox_uids("alice")) == 1
    assert len(server.mailbox_uids("bob")) == 1


def test_smtputf8_address_needs_the_parameter(server, raw, pop3):
    server.add_user("josé", "contraseña")
    c = esmtp_session(raw, server)
    c.cmd("MAIL FROM:<sender@example.org>")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<josé@localhost>")
    code, lines = c.read_reply()
    assert code == 553
    assert status(lines) == b"5.6.7"
    c.cmd("RSET")
    assert c.read_reply()[0] == 250
    c.cmd("MAIL FROM:<señor@example.org>")  # a non-ASCII sender without SMTPUTF8
    code, lines = c.read_reply()
    assert code == 553
    assert status(lines) == b"5.6.7"
    c.cmd("MAIL FROM:<señor@example.org> SMTPUTF8")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<josé@localhost>")
    code, lines = c.read_reply()
    assert code == 250, lines
    c.cmd("DATA")
    assert c.read_reply()[0] == 354
    body = "Subject: ¡hola!\r\nFrom: señor@example.org\r\n\r\nqué tal\r\n".encode()
    c.send(body + b".\r\n")
    assert c.read_reply()[0] == 250
    assert len(server.mailbox_uids("josé")) == 1
    p = pop3("josé", "contraseña")
    received, rest = strip_received(retr(p, 1))
    assert rest == body
    assert b"UTF8SMTP" in received


def test_smtputf8_needs_ehlo(server, raw):
    c = esmtp_session(raw, server, helo="HELO client.test")
    c.cmd("MAIL FROM:<sender@example.org> SMTPUTF8")
    assert c.read_reply()[0] == 555


def test_8bitmime_body_parameter(server, smtp):
    s = smtp()
    assert s.mail("sender@example.org", ["BODY=8BITMIME"])[0] == 250
    assert s.rcpt("alice@localhost")[0] == 250
    assert s.data(message("8bit", "Grüße\r\n".encode()))[0] == 250
    assert s.mail("sender@example.org", ["BODY=BINARYMIME"])[0] == 501
    assert len(server.mailbox_uids("alice")) == 1


def test_unknown_mail_parameter_555(server, smtp):
    s = smtp()
    code, _ = s.mail("sender@example.org", ["FROBNICATE=1"])
    assert code == 555


# --- error budget ----------------------------------------------------------------------------

def test_twenty_errors_close_the_session_421(server, raw):
    c = esmtp_session(raw, server)
    c.send(b"BOGUS\r\n" * 20)
    codes = []
    for _ in range(20):
        codes.append(c.read_reply()[0])
    assert codes == [500] * 20
    code, lines = c.read_reply()
    assert code == 421
    assert c.read_until_eof() == b""
    # Others are not affected.
    again = esmtp_session(raw, server)
    again.cmd("NOOP")
    assert again.read_reply()[0] == 250


def test_nineteen_errors_keep_the_session(server, raw):
    c = esmtp_session(raw, server)
    c.send(b"BOGUS\r\n" * 19)
    for _ in range(19):
        assert c.read_reply()[0] == 500
    c.cmd("NOOP")
    assert c.read_reply()[0] == 250


# --- more limits and streaming ---------------------------------------------------------------

def test_max_recipients_452(make_server, raw):
    srv = make_server(max_recipients=2, users={"alice": "secret", "bob": "hunter2",
                                               "carol": "pw"})
    c = esmtp_session(raw, srv)
    c.cmd("MAIL FROM:<sender@example.org>")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<alice@localhost>")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<bob@localhost>")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<carol@localhost>")
    code, lines = c.read_reply()
    assert code == 452
    assert status(lines) == b"4.5.3"
    c.cmd("DATA")
    assert c.read_reply()[0] == 354
    c.send(message() + b".\r\n")
    assert c.read_reply()[0] == 250
    assert len(srv.mailbox_uids("alice")) == 1
    assert len(srv.mailbox_uids("bob")) == 1
    assert srv.mailbox_uids("carol") == []


def test_max_connections_counts_pop3_too(make_server, raw):
    srv = make_server(max_connections=5)
    for _ in range(5):
        assert raw(srv.smtp_port).read_reply()[0] == 220
    c = raw(srv.pop3_port)
    line = c.read_line()
    assert line.startswith(b"-ERR [SYS/TEMP]"), line
    assert c.read_until_eof() == b""


def test_helo_resets_the_transaction(server, raw):
    c = esmtp_session(raw, server)
    c.cmd("MAIL FROM:<sender@example.org>")
    assert c.read_reply()[0] == 250
    c.cmd("EHLO client.test")
    assert c.read_reply()[0] == 250
    c.cmd("RCPT TO:<alice@localhost>")
    assert c.read_reply()[0] == 503


def test_large_message_byte_exact(server, pop3):
    lines = []
    for i in range(30000):  # about 2 MB, with dots at line starts here and there
        lines.append((b"." if i % 7 == 0 else b"") + b"line %06d " % i + b"x" * 50 + b"\r\n")
    original = message("large", b"".join(lines))
    deliver(server, ["alice@localhost"], original)
    p = pop3("alice")
    assert strip_received(retr(p, 1))[1] == original


def test_data_dripped_byte_by_byte(server, raw, pop3):
    """The DATA reader keeps its state across reads: the end mark and dot-stuffing split over
    many TCP segments still work."""
    c = esmtp_session(raw, server)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    open_transaction(c)
    wire = b"Subject: drip\r\n\r\n..dot\r\nx\r\n.\r\n"
    for b in wire:
        c.send(bytes([b]))
        time.sleep(0.002)
    code, lines = c.read_reply()
    assert code == 250, lines
    p = pop3("alice")
    assert strip_received(retr(p, 1))[1] == b"Subject: drip\r\n\r\n.dot\r\nx\r\n"


def test_concurrent_senders_all_delivered(server, pop3):
    errors = []

    def send(worker: int) -> None:
        try:
            with smtplib.SMTP(server.host, server.smtp_port, timeout=TIMEOUT) as s:
                for i in range(10):
                    s.sendmail("sender@example.org", ["alice@localhost", "bob@localhost"],
                               message(f"w{worker} m{i}"))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    for user in ("alice", "bob"):
        uids = server.mailbox_uids(user)
        assert len(uids) == 80 and len(set(uids)) == 80
    p = pop3("bob")
    subjects = set()
    for i in range(1, 81):
        stored = retr(p, i)
        subjects.add(stored.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0])
    assert subjects == {f"w{w} m{i}".encode() for w in range(8) for i in range(10)}


def test_postmaster_always_reaches_someone(make_server, smtp, tmp_path):
    """RFC 5321 §4.5.1: <postmaster> (no domain) and postmaster@<local domain> are accepted;
    the account is created on first use without a usable password until one is set."""
    srv = make_server()
    s = smtp(srv)
    assert s.mail("sender@example.org")[0] == 250
    assert s.rcpt("postmaster")[0] == 250
    assert s.rcpt("PostMaster@localhost")[0] == 250
    code, _ = s.data(b"Subject: to postmaster\r\n\r\nhello\r\n")
    assert code == 250
    assert srv.mailbox_uids("postmaster") == [1]  # two RCPTs, one user: delivered once
    s.quit()


def test_user_passwd_sets_a_password(tmp_path):
    import poplib
    import subprocess

    data = str(tmp_path / "d")
    run = lambda *a: subprocess.run(["millipost-server", "--data", data, *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=30)
    assert run("user", "add", "dora", "--password", "old").returncode == 0
    r = run("user", "passwd", "dora", "--password", "new")
    assert r.returncode == 0, r.stderr
    assert run("user", "passwd", "nobody", "--password", "x").returncode == 1
    import millipost
    with millipost.Server(data_dir=data) as srv:
        p = poplib.POP3(srv.host, srv.pop3_port, timeout=10)
        p.user("dora")
        with pytest.raises(poplib.error_proto):
            p.pass_("old")
        p.close()
        p = poplib.POP3(srv.host, srv.pop3_port, timeout=10)
        p.user("dora")
        assert p.pass_("new").startswith(b"+OK")
        p.quit()
