#!/usr/bin/env python3
"""bench/roundtrip.py: mail round trips per second — deliver, then retrieve and delete by POP3 —
on millipost (SMTP in) and on Dovecot from Debian (LMTP in), measured in the same run with the
same Python clients, and the ratio.

    python3 bench/roundtrip.py [--seconds 10] [--clients 8] [--size 2048]

One round trip: a client delivers a message of --size bytes to one of --users mailboxes, then
logs in by POP3, retrieves every message there, deletes them and quits. Both servers get the
same loads; the machine is shared by server and clients, so compare ratios, not absolutes.
Not run by CI.
"""
from __future__ import annotations

import argparse
import os
import poplib
import random
import smtplib
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import millipost  # noqa: E402
from peers import DovecotPeer  # noqa: E402


def run_load(deliver, pop3_port: int, users: list[tuple[str, str, str]], seconds: float,
             clients: int, size: int) -> dict:
    body = ("x" * 76 + "\r\n") * max(1, size // 78)
    stop = threading.Event()
    done, errors = [0], [0]
    lat: list[float] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        rng = random.Random(w)
        # Each client owns a slice of mailboxes, so that POP3 sessions never contend.
        mine = users[w::clients]
        conn = None
        while not stop.is_set():
            login, pw, addr = rng.choice(mine)
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = deliver()
                conn.sendmail("bench@example.org", [addr],
                              f"Subject: rt\r\nMessage-ID: <{w}.{t0}@b>\r\n\r\n{body}")
                p = poplib.POP3("127.0.0.1", pop3_port, timeout=30)
                p.user(login)
                p.pass_(pw)
                n = p.stat()[0]
                for i in range(1, n + 1):
                    p.retr(i)
                    p.dele(i)
                p.quit()
                with lock:
                    done[0] += 1
                    lat.append(time.monotonic() - t0)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors[0] += 1
                if errors[0] < 5:
                    print(f"  error: {type(e).__name__}: {e}")
                conn = None
        if conn is not None:
            conn.quit()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    lat.sort()
    p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: 0.0)
    return {"round_trips": done[0], "per_s": done[0] / elapsed, "errors": errors[0],
            "p50_ms": p(0.5), "p99_ms": p(0.99)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--size", type=int, default=2048)
    args = ap.parse_args()
    users = [(f"user{i}", f"pw{i}", f"user{i}@localhost") for i in range(args.users)]

    with tempfile.TemporaryDirectory(prefix="millipost-rt-") as data:
        with millipost.Server(data_dir=data) as server:
            for login, pw, _ in users:
                server.add_user(login, pw)
            ours = run_load(lambda: smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30),
                            server.pop3_port, users, args.seconds, args.clients, args.size)
    with DovecotPeer(users=[(u, p) for u, p, _ in users]) as dove:
        def lmtp():
            c = smtplib.LMTP("127.0.0.1", dove.lmtp_port, timeout=30)
            c.ehlo_or_helo_if_needed()
            return c
        theirs = run_load(lmtp, dove.pop3_port, users, args.seconds, args.clients, args.size)

    print(f"round trips ({args.clients} clients, {args.size} B messages, {args.seconds:g} s each):")
    for name, r in (("millipost (SMTP+POP3)", ours), ("dovecot (LMTP+POP3)", theirs)):
        print(f"  {name:24s} {r['per_s']:8.1f}/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms"
              f"  errors {r['errors']}")
    print(f"  ratio millipost/dovecot: {ours['per_s'] / max(theirs['per_s'], 1e-9):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
