"""The load engine (sim/engine.h) through ``_core.run_load``: every profile in open and closed
loop against the reference server must run clean (no errors, no contract breaches, every
acknowledged message found exactly once), and a target that loses or duplicates mail must make
the oracle say so."""
from __future__ import annotations

import os
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
}


@pytest.mark.parametrize("mode", ["open", "closed"])
@pytest.mark.parametrize("profile", sorted(SIGNATURES))
def test_profile_runs_clean_against_the_reference_server(target, mode, profile):
    # Readers run beside a sender, so that they have mail to list, read, move and delete.
    profiles = {"sender": 1} if profile == "sender" else {profile: 3, "sender": 1}
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
        if faulty:
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


@pytest.mark.parametrize("fault,kind", [("drop", "lost"), ("dup", "duplicate")])
def test_oracle_catches_a_faulty_target(target, fault, kind):
    proxy = FaultySmtp(target.smtp_port, fault)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        r = _core.run_load(config(target, smtp_port=proxy.server_address[1], duration=2,
                                  profiles={"sender": 1}, mode="closed", sessions=3))
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
    assert t["messages_verified"] == t["messages_delivered"] - proxy.faults
    v = r["violations"][0]
    assert v["user"].startswith("user") and v["mailbox"] == "INBOX" and v["message_id"]
