"""The load engine (sim/engine.h) through ``_core.run_load``: every profile in open and closed
loop against the reference server must run clean (no errors, no contract breaches, every
acknowledged message found exactly once), and a target that loses or duplicates mail must make
the oracle say so."""
from __future__ import annotations

import os
import re
import smtplib
import socket
import socketserver
import threading
import time

import pytest

import millipost
from millipost import _core

SEED = 5
USERS = 30
PASSWORD = "pw"


@pytest.fixture(scope="module")
def target():
    with millipost.Server() as server:
        server.provision(millipost.Population(SEED, USERS, password=PASSWORD))
        yield server


def config(server, smtp_port=None, **over):
    cfg = {
        "targets": [f"smtp://127.0.0.1:{smtp_port or server.smtp_port}",
                    f"imap://127.0.0.1:{server.imap_port}",
                    f"pop3://127.0.0.1:{server.pop3_port}"],
        "users": USERS, "seed": SEED, "password": PASSWORD,
        "duration": 2.5, "sessions": 6, "think_ms": 5, "idle_seconds": 0.3,
        # Open loop: 30 users checking 1,600 times an hour is 13 sessions a second.
        "rate_per_user_per_hour": 1600,
    }
    cfg.update(over)
    return cfg


# The commands each profile must have issued.
SIGNATURES = {
    "webmail": ["IMAP LOGIN", "IMAP SELECT", "IMAP LOGOUT"],
    "mobile": ["IMAP IDLE", "IMAP DONE", "IMAP UID FETCH"],
    "pop3": ["POP3 USER", "POP3 PASS", "POP3 STAT", "POP3 UIDL", "POP3 QUIT"],
    "sender": ["SMTP EHLO", "SMTP MAIL", "SMTP RCPT", "SMTP DATA", "SMTP MESSAGE"],
    "mx": ["SMTP EHLO", "SMTP MAIL", "SMTP RCPT", "SMTP DATA", "SMTP MESSAGE"],
}


@pytest.mark.parametrize("mode", ["open", "closed"])
@pytest.mark.parametrize("profile", sorted(SIGNATURES))
def test_profile_runs_clean_against_the_reference_server(target, mode, profile):
    # Readers run beside a sender, so that they have mail to list, read, move and delete.
    profiles = {profile: 1} if profile in ("sender", "mx") else {profile: 3, "sender": 1}
    live = []
    r = _core.run_load(config(target, mode=mode, profiles=profiles), live.append)
    t = r["totals"]
    assert t["sessions"] > 0 and t["commands"] > 0
    assert r["errors"] == {} and t["errors"] == 0
    assert r["breaches"] == [] and t["contract_breaches"] == 0
    assert r["violations"] == [] and t["oracle_violations"] == 0
    assert t["messages_delivered"] > 0
    assert t["messages_delivered"] == t["messages_verified"]
    assert r["verification"] == "done" and r["interrupted"] is False
    for verb in SIGNATURES[profile]:
        assert r["commands"].get(verb, {}).get("count", 0) > 0, verb
    assert t["commands"] == sum(c["count"] for c in r["commands"].values())
    for c in r["commands"].values():
        h = c["histogram"]
        assert h["scheme"] == "log-linear" and h["sub_buckets"] == 16
        assert sum(n for _, n in h["counts"]) == c["count"]
        lat = c["latency_us"]
        assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert live and all("commands" in d or d.get("phase") == "verify" for d in live)
    assert len(r["timeline"]) >= 2
    assert r["config"]["mode"] == mode and r["seed"] == SEED
    if profile == "mx":  # several recipients per message
        assert r["commands"]["SMTP RCPT"]["count"] > r["commands"]["SMTP MAIL"]["count"]


def test_target_process_is_sampled(target):
    r = _core.run_load(config(target, duration=1.5, target_pid=os.getpid(),
                              profiles={"webmail": 1, "sender": 1}))
    assert r["target"]["pid"] == os.getpid()
    assert r["target"]["cpu_seconds"] > 0  # the server runs in this very process
    assert r["target"]["max_rss_bytes"] > 1 << 20
    assert any("target_rss_bytes" in row for row in r["timeline"])


def test_keyboard_interrupt_in_progress_stops_with_partial_results(target):
    calls = []

    def progress(live):
        calls.append(live)
        if len(calls) == 2:
            raise KeyboardInterrupt

    t0 = time.monotonic()
    r = _core.run_load(config(target, duration=60, mode="closed"), progress)
    assert time.monotonic() - t0 < 20  # not the 60 s asked for
    assert r["interrupted"] is True
    assert r["totals"]["sessions"] > 0 and r["totals"]["commands"] > 0
    assert r["verification"] == "skipped"


def test_max_sessions_bounds_the_run(target):
    r = _core.run_load(config(target, duration=30, mode="closed", max_sessions=12))
    assert r["totals"]["sessions"] == 12
    assert r["seconds"] < 20


def test_bad_configurations_are_value_errors(target):
    with pytest.raises(ValueError, match="unknown key"):
        _core.run_load(config(target, bogus=1))
    with pytest.raises(ValueError, match="target"):
        _core.run_load({"targets": ["gopher://x:70"]})
    with pytest.raises(ValueError, match="contract"):
        _core.run_load(config(target, contracts_dir="/nonexistent"))


class FaultySmtp(socketserver.ThreadingTCPServer):
    """A minimal SMTP relay in front of the reference server that acknowledges every message
    with 250 but, for every `every`-th one, drops it ("drop") or delivers it twice ("dup")."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream_port: int, fault: str, every: int = 5):
        self.upstream_port = upstream_port
        self.fault = fault
        self.every = every
        self.count = 0
        self.faults = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), FaultyHandler)

    def deliver(self, sender: str, rcpt: str, data: bytes) -> None:
        with self.lock:
            self.count += 1
            faulty = self.count % self.every == 0
            if faulty:
                self.faults += 1
        copies = 1
        if faulty and self.fault == "corrupt":
            # One octet of the body changed (not a line end, nor a dot that SMTP stuffs).
            at = data.index(b"\r\n\r\n") + 4
            while data[at:at + 1] in (b"\r", b"\n", b"."):
                at += 1
            data = data[:at] + (b"#" if data[at:at + 1] != b"#" else b"%") + data[at + 1:]
        elif faulty:
            copies = 0 if self.fault == "drop" else 2
        for _ in range(copies):
            with smtplib.SMTP("127.0.0.1", self.upstream_port, timeout=10) as s:
                s.sendmail(sender, [rcpt], data)


class FaultyHandler(socketserver.StreamRequestHandler):
    def handle(self):
        self.request.settimeout(10)
        out = self.wfile
        out.write(b"220 faulty.test ESMTP\r\n")
        sender = rcpt = None
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                out.write(b"250-faulty.test\r\n250 PIPELINING\r\n")
            elif verb == b"MAIL":
                sender = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                out.write(b"250 OK\r\n")
            elif verb == b"RCPT":
                rcpt = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                out.write(b"250 OK\r\n")
            elif verb == b"DATA":
                out.write(b"354 go ahead\r\n")
                out.flush()
                lines = []
                while True:
                    l = self.rfile.readline()
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    lines.append(l[1:] if l.startswith(b".") else l)
                self.server.deliver(sender, rcpt, b"".join(lines))
                out.write(b"250 OK queued\r\n")
            elif verb == b"QUIT":
                out.write(b"221 bye\r\n")
                return
            else:
                out.write(b"250 OK\r\n")
            out.flush()


@pytest.mark.parametrize("fault,kind", [("drop", "lost"), ("dup", "duplicate"),
                                        ("corrupt", "wrong-bytes")])
def test_oracle_catches_a_faulty_target(target, fault, kind):
    proxy = FaultySmtp(target.smtp_port, fault)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        r = _core.run_load(config(target, smtp_port=proxy.server_address[1], duration=2,
                                  profiles={"sender": 1}, mode="closed", sessions=3,
                                  verify_bytes=1.0))
    finally:
        proxy.shutdown()
        proxy.server_close()
    t = r["totals"]
    assert proxy.faults > 0
    assert t["errors"] == 0 and t["contract_breaches"] == 0
    assert t["messages_delivered"] == proxy.count
    kinds = [v["kind"] for v in r["violations"]]
    assert kinds and set(kinds) == {kind}
    assert t["oracle_violations"] == proxy.faults
    if kind == "wrong-bytes":  # present once, but not the bytes sent
        assert t["messages_verified"] == t["messages_delivered"]
        assert r["bytes_verified"] == t["messages_delivered"]
        assert all("differs from the sent message" in v["detail"] for v in r["violations"])
    else:
        assert t["messages_verified"] == t["messages_delivered"] - proxy.faults
    v = r["violations"][0]
    assert v["user"].startswith("user") and v["mailbox"] == "INBOX" and v["message_id"]
    # The excerpt is the verification session's last lines: its listing (and BODY[] fetch).
    assert "C: " in v["transcript"] and "S: " in v["transcript"]
    assert "FETCH" in v["transcript"]
    if kind == "wrong-bytes":
        assert "BODY.PEEK[]" in v["transcript"]


def behaviours(**weights):
    """Behaviours in the engine's own form: every kind with its action weights, short times."""
    spec = {
        "webmail": {"kind": "webmail", "think_ms": 5, "actions_mean": 6,
                    "commands": {"list": 1, "select": 1, "fetch_headers": 2, "read": 3,
                                 "flag": 3, "move": 1, "delete": 1, "search": 1}},
        "mobile": {"kind": "mobile", "think_ms": 5, "actions_mean": 3, "idle_seconds": 0.2,
                   "idle_max_seconds": 0.5, "qresync": True,
                   "commands": {"idle": 3, "fetch_new": 2, "flag": 2, "delete": 1}},
        "pop3": {"kind": "pop3", "think_ms": 5, "actions_mean": 2,
                 "commands": {"retrieve": 1, "top": 1}},
        "sender": {"kind": "sender", "think_ms": 5, "messages_per_session": 2,
                   "recipients_mean": 1.5, "recipients_max": 3},
        "mx": {"kind": "mx", "think_ms": 1, "messages_per_session": 4, "recipients_mean": 3,
               "recipients_max": 6},
    }
    return [dict(spec[k], name=k, weight=w) for k, w in weights.items()]


def test_every_behaviour_with_its_own_parameters_runs_clean(target):
    r = _core.run_load(config(target, duration=4, mode="closed", sessions=8,
                              think_ms=None, idle_seconds=None, verify_bytes=1.0,
                              behaviours=behaviours(webmail=3, mobile=3, pop3=1, sender=1, mx=1)))
    t = r["totals"]
    # (A session still waiting for a reply 15 s after the stop is an error, with its transcript.)
    assert r["errors"] == {} and r["stuck"] == [], (r["errors"], r["stuck"])
    assert r["breaches"] == [] and r["violations"] == []
    assert t["messages_delivered"] > 0 and t["messages_verified"] == t["messages_delivered"]
    # Every message found was compared byte for byte (verify_bytes = 1; deleted ones are not).
    assert 0 < r["bytes_verified"] <= t["messages_verified"]
    cmds = r["commands"]
    for verb in ("IMAP LIST", "IMAP STATUS", "IMAP UID STORE", "IMAP SEARCH", "IMAP IDLE",
                 "IMAP ENABLE", "POP3 TOP", "POP3 RETR", "SMTP RCPT"):
        assert cmds.get(verb, {}).get("count", 0) > 0, verb
    # A user's second mobile session resynchronised from its first one's HIGHESTMODSEQ.
    assert cmds.get("IMAP SELECT QRESYNC", {}).get("count", 0) > 0
    echoed = {b["name"]: b for b in r["config"]["behaviours"]}
    assert echoed["mx"]["recipients_max"] == 6 and echoed["mobile"]["qresync"] is True
    assert echoed["webmail"]["commands"]["flag"] == 3


def test_behaviours_and_the_first_form_do_not_mix(target):
    with pytest.raises(ValueError, match="behaviours replaces"):
        _core.run_load(config(target, behaviours=behaviours(webmail=1)))
    with pytest.raises(ValueError, match="unknown key"):
        _core.run_load(config(target, think_ms=None, idle_seconds=None,
                              behaviours=[{"kind": "sender", "idle_seconds": 3}]))
    with pytest.raises(ValueError, match="unknown command"):
        _core.run_load(config(target, think_ms=None, idle_seconds=None,
                              behaviours=[{"kind": "webmail", "commands": {"reed": 1}}]))
    with pytest.raises(ValueError, match="unknown kind"):
        _core.run_load(config(target, think_ms=None, idle_seconds=None,
                              behaviours=[{"name": "x", "kind": "fax"}]))


class RewritingProxy(socketserver.ThreadingTCPServer):
    """A TCP proxy in front of a server that rewrites client bytes (`old` -> `new`, e.g.
    `+FLAGS (\\Flagged)` into `+FLAGS ()`, so the server answers OK without setting the flag, as
    a server that drops flag changes would) and, with `reply`, server lines."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream_port: int, old: bytes | None, new: bytes | None,
                 reply: tuple[bytes, bytes] | None = None):
        self.upstream_port = upstream_port
        self.old, self.new = old, new
        # (pattern, replacement) for server lines, a regular expression on whole lines.
        self.reply = (re.compile(reply[0]), reply[1]) if reply else None
        self.rewrites = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), RewritingHandler)


class RewritingHandler(socketserver.BaseRequestHandler):
    def handle(self):
        up = socket.create_connection(("127.0.0.1", self.server.upstream_port), timeout=30)
        down = self.request

        def pump_back():
            pattern = self.server.reply
            pending = b""
            try:
                while data := up.recv(65536):
                    if pattern is None:
                        down.sendall(data)
                        continue
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    out = []
                    for line in lines:
                        line, n = pattern[0].subn(pattern[1], line)
                        if n:
                            with self.server.lock:
                                self.server.rewrites += 1
                        out.append(line + b"\n")
                    down.sendall(b"".join(out))
            except OSError:
                pass
            finally:
                try:
                    down.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        back = threading.Thread(target=pump_back, daemon=True)
        back.start()
        pending = b""
        try:
            while data := down.recv(65536):
                # Commands are whole lines: rewrite line by line (a pattern never spans lines).
                pending += data
                *lines, pending = pending.split(b"\n")
                out = []
                for line in lines:
                    if self.server.old is not None and self.server.old in line:
                        line = line.replace(self.server.old, self.server.new)
                        with self.server.lock:
                            self.server.rewrites += 1
                    out.append(line + b"\n")
                up.sendall(b"".join(out))
        except OSError:
            pass
        finally:
            try:
                up.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            back.join(timeout=30)
            up.close()


def webmail_through_proxy(target, proxy: RewritingProxy, commands: dict) -> dict:
    """A short closed-loop run whose webmail sessions (only `commands`) go through `proxy`
    (senders deliver directly); the proxy is shut down afterwards."""
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    cfg = config(target, duration=3, mode="closed", sessions=4, think_ms=None,
                 idle_seconds=None, verify_bytes=0.0,
                 behaviours=behaviours(webmail=3, sender=2))
    cfg["behaviours"][0]["commands"] = commands
    cfg["targets"][1] = f"imap://127.0.0.1:{proxy.server_address[1]}"
    try:
        return _core.run_load(cfg)
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_oracle_catches_flags_that_do_not_stick(target):
    proxy = RewritingProxy(target.imap_port, b"+FLAGS (\\Flagged)", b"+FLAGS ()")
    r = webmail_through_proxy(target, proxy, {"fetch_headers": 1, "flag": 4})
    assert proxy.rewrites > 0
    t = r["totals"]
    assert t["errors"] == 0 and t["contract_breaches"] == 0
    kinds = {v["kind"] for v in r["violations"]}
    assert kinds == {"flags"}, r["violations"][:3]
    v = r["violations"][0]
    assert "\\Flagged was set" in v["detail"] and "lacks it" in v["detail"]
    assert v["user"].startswith("user") and v["message_id"] and "FLAGS" in v["transcript"]
    # Losses and duplicates are another matter: every message is still there once.
    assert t["messages_verified"] == t["messages_delivered"] > 0


def test_expungeissued_is_a_refusal_not_an_error(target):
    # RFC 9051 §7.1: NO [EXPUNGEISSUED] is a correct answer when another session of the user
    # expunged a message the command names (Dovecot gives it to a UID MOVE in that race). A
    # proxy turns the reference server's tagged MOVE OK into it: the run counts refusals, no
    # errors, no contract breach (the message was moved: the oracle's move record excuses it).
    proxy = RewritingProxy(target.imap_port, None, None,
                           reply=(rb"^(a\d+) OK MOVE completed\r$",
                                  rb"\1 NO [EXPUNGEISSUED] Some of the requested messages no "
                                  rb"longer exist\r"))
    r = webmail_through_proxy(target, proxy, {"fetch_headers": 1, "move": 4})
    assert proxy.rewrites > 0
    t = r["totals"]
    assert r["refusals"].get("IMAP NO [EXPUNGEISSUED]", 0) == proxy.rewrites, r["refusals"]
    assert t["errors"] == 0, r["errors"]
    assert t["contract_breaches"] == 0 and t["oracle_violations"] == 0, r["violations"][:3]


# ---- profile keys the engine takes: timeouts, restart pause, POP3 DELE, message shape ----------


def test_session_timeout_abandons_a_long_session(target):
    # Mobile sessions that would hold IDLE for ~20 s are abandoned after 0.5 s: each is an
    # error "timeout", and the closed loop starts the next one (so more than 2 sessions run).
    mobile = {"kind": "mobile", "think_ms": 1, "actions_mean": 1, "idle_seconds": 20,
              "idle_max_seconds": 20, "commands": {"idle": 1}}
    cfg = config(target, duration=2.5, mode="closed", sessions=2, think_ms=None,
                 idle_seconds=None, verify=False, behaviours=[mobile])
    r = _core.run_load(dict(cfg, session_timeout=0.5))
    assert r["errors"].get("timeout", 0) >= 4, r["errors"]
    assert r["totals"]["sessions"] >= 6 and r["stuck"] == []
    assert r["config"]["session_timeout"] == 0.5
    # Without it the same sessions hold their IDLE until the run stops: no timeout.
    r = _core.run_load(dict(cfg, duration=1.5))
    assert "timeout" not in r["errors"] and r["totals"]["sessions"] == 2


def test_closed_restart_pauses_between_sessions(target):
    pop = {"kind": "pop3", "think_ms": 0, "actions_mean": 1, "commands": {"top": 1}}
    cfg = config(target, duration=2.0, mode="closed", sessions=2, think_ms=None,
                 idle_seconds=None, verify=False, behaviours=[pop])
    fast = _core.run_load(cfg)["totals"]["sessions"]
    slow = _core.run_load(dict(cfg, closed_restart=0.8))
    assert slow["config"]["closed_restart"] == 0.8
    # Two workers, each a session then 0.8 s: at most 2 x 3 in 2 s (POP3 sessions are ms long).
    assert 2 <= slow["totals"]["sessions"] <= 6 < fast, (slow["totals"], fast)


def pop3_deleting(target, **over):
    pop = {"kind": "pop3", "think_ms": 1, "actions_mean": 2, "leave_on_server": 0.0,
           "commands": {"retrieve": 1}}
    cfg = config(target, duration=3, mode="closed", sessions=4, think_ms=None,
                 idle_seconds=None, verify_bytes=0.0,
                 behaviours=[pop] + behaviours(sender=3))
    cfg.update(over)
    return cfg


def test_pop3_sessions_that_do_not_leave_mail_delete_it(target):
    r = _core.run_load(pop3_deleting(target))
    t = r["totals"]
    assert r["errors"] == {} and r["breaches"] == [] and r["violations"] == [], r["errors"]
    assert r["commands"]["POP3 DELE"]["count"] > 0
    # Deleted messages count as verified (absent because the run deleted them).
    assert t["messages_delivered"] > 0 and t["messages_verified"] == t["messages_delivered"]
    assert r["config"]["behaviours"][0]["leave_on_server"] == 0.0
    # leave_on_server = 1: no DELE at all.
    r = _core.run_load(pop3_deleting(target, duration=1.5))
    cfg = pop3_deleting(target, duration=1.5)
    cfg["behaviours"][0]["leave_on_server"] = 1.0
    r = _core.run_load(cfg)
    assert "POP3 DELE" not in r["commands"] and r["commands"]["POP3 RETR"]["count"] > 0


def test_oracle_catches_pop3_deletions_that_do_not_happen(target):
    # The proxy turns DELE n into LIST n (same one-line +OK): QUIT says +OK, nothing is gone.
    proxy = RewritingProxy(target.pop3_port, b"DELE ", b"LIST ")
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    cfg = pop3_deleting(target)
    cfg["targets"][2] = f"pop3://127.0.0.1:{proxy.server_address[1]}"
    try:
        r = _core.run_load(cfg)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert proxy.rewrites > 0
    kinds = {v["kind"] for v in r["violations"]}
    assert kinds == {"undeleted"}, r["violations"][:3]
    v = r["violations"][0]
    assert v["mailbox"] == "INBOX" and "QUIT" in v["detail"]


def test_message_shape_from_the_profile_reaches_the_server():
    import imaplib

    shape = {"size_median_bytes": 40000, "tail_fraction": 0.0, "tail_alpha": 1.2,
             "size_max_bytes": 60000, "multipart_fraction": 1.0, "attachment_fraction": 0.0,
             "non_ascii_fraction": 0.0, "reply_fraction": 1.0}
    with millipost.Server() as server:
        server.provision(millipost.Population(SEED, 3, password=PASSWORD))
        cfg = config(server, users=3, duration=1.5, mode="closed", sessions=2, think_ms=None,
                     idle_seconds=None, verify_bytes=1.0, behaviours=behaviours(sender=1),
                     message=shape)
        r = _core.run_load(cfg)
        assert r["errors"] == {} and r["violations"] == []
        assert r["config"]["message"] == shape and r["bytes_verified"] > 0
        sizes, replies, alternative = [], 0, 0
        for i in range(3):
            im = imaplib.IMAP4("127.0.0.1", server.imap_port)
            im.login(f"user{i}", PASSWORD)
            im.select("INBOX", readonly=True)
            typ, data = im.fetch("1:*", "(RFC822.SIZE BODY.PEEK[HEADER])")
            im.logout()
            for item in data:
                if not isinstance(item, tuple):
                    continue
                sizes.append(int(item[0].split(b"RFC822.SIZE ")[1].split()[0].rstrip(b")")))
                replies += b"\nIn-Reply-To: " in item[1]
                alternative += b"multipart/alternative" in item[1]
        n = len(sizes)
        assert n == r["totals"]["messages_delivered"] > 3
        # Lognormal around 40 kB capped at 60 kB (plus the server's trace fields).
        assert 20000 < sorted(sizes)[n // 2] < 62000 and max(sizes) < 62000, sizes
        # Every message after a run's first is a reply; all are multipart/alternative.
        assert replies >= n - 2 and alternative == n


def test_engine_refuses_unknown_message_keys(target):
    with pytest.raises(ValueError, match="message: unknown key"):
        _core.run_load(config(target, message={"size_median": 5000}))
    with pytest.raises(ValueError, match="unknown key"):
        _core.run_load(config(target, think_ms=None, idle_seconds=None,
                              behaviours=[{"kind": "webmail", "leave_on_server": 0.5}]))
    with pytest.raises(ValueError, match="leave_on_server"):
        _core.run_load(config(target, think_ms=None, idle_seconds=None,
                              behaviours=[{"kind": "pop3", "leave_on_server": 2}]))


# ---- mailbox.prepopulate_messages -------------------------------------------------------------

# Webmail readers only (nothing sends): they can read, flag, move and delete only what was
# there before the run.
READERS_ONLY = {"profiles": {
    "webmail": {"think_time_s": 0.005, "think_time_max_s": 0.02, "actions_mean": 6,
                "commands": {"fetch_headers": 3, "read": 3, "flag": 2, "move": 1,
                             "delete": 1}},
    "mobile": {"weight": 0}, "pop3": {"weight": 0}, "sender": {"weight": 0},
    "mx": {"weight": 0}}}


def test_prepopulated_mailboxes_over_imap_are_read_and_never_unexpected():
    users = 4
    with millipost.Server() as server:
        server.provision(millipost.Population(SEED, users, password=PASSWORD))
        prof = dict(READERS_ONLY, mailbox={"prepopulate_messages": 6})
        r = millipost.load([f"imap://127.0.0.1:{server.imap_port}"], users=users,
                           duration=1.5, seed=SEED, password=PASSWORD, mode="closed",
                           sessions=2, profile=prof, progress=False)
        assert r.ok and r["errors"] == {}, (r["errors"], r["violations"][:2])
        cmds = r.commands
        # The readers found mail to read and change: the APPENDed messages.
        assert cmds["IMAP UID FETCH"]["count"] > 0 and cmds["IMAP UID STORE"]["count"] > 0
        assert r.totals["messages_delivered"] == 0
        left = sum(len(server.mailbox_uids(f"user{i}")) + len(server.mailbox_uids(
            f"user{i}", "Archive")) for i in range(users))
        assert 0 < left <= users * 6


def test_prepopulated_reference_server_takes_the_fast_path():
    prof = dict(READERS_ONLY, mailbox={"prepopulate_messages": 5})
    r = millipost.load(reference=True, users=4, duration=1.5, seed=SEED, mode="closed",
                       sessions=2, profile=prof, progress=False)
    assert r.ok and r["errors"] == {}, (r["errors"], r["violations"][:2])
    assert r.commands["IMAP UID FETCH"]["count"] > 0
    # Without pre-populated mail the same readers have nothing to read.
    r = millipost.load(reference=True, users=4, duration=1.0, seed=SEED, mode="closed",
                       sessions=2, profile=READERS_ONLY, progress=False)
    assert "IMAP UID FETCH" not in r.commands and "IMAP UID STORE" not in r.commands
