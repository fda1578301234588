#!/usr/bin/env python3
"""bench/idle_memory.py: memory per logged-in IMAP session in IDLE, millipost vs Dovecot.

    python3 bench/idle_memory.py [--sessions 1000]

Opens N sessions (LOGIN, SELECT INBOX, IDLE) against each server and reports the growth of
the server's memory divided by N: resident set (RSS) for millipost's one process, proportional
set size (PSS, from /proc/PID/smaps_rollup) summed over all of Dovecot's processes (one `imap`
process per session). Not run by CI.
"""
from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peers import DovecotPeer, free_port  # noqa: E402


def pss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def descendants(pid: int) -> list[int]:
    out = [pid]
    r = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    for child in r.stdout.split():
        out += descendants(int(child))
    return out


def open_idle_sessions(port: int, users: list[tuple[str, str]], n: int) -> list[socket.socket]:
    socks = []
    for i in range(n):
        login, pw = users[i % len(users)]
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        f = s.makefile("rb")
        f.readline()
        s.sendall(f"a LOGIN {login} {pw}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
        while True:
            line = f.readline()
            if not line:
                raise RuntimeError("connection closed during setup")
            if line.startswith(b"a NO") or line.startswith(b"b NO"):
                raise RuntimeError(line.decode())
            if line.startswith(b"+"):
                break
        socks.append(s)
    return socks


def measure(name: str, port: int, pids_fn, users, n: int) -> float:
    time.sleep(0.5)
    before = pss_kib(pids_fn())
    socks = open_idle_sessions(port, users, n)
    time.sleep(1.0)
    after = pss_kib(pids_fn())
    per = (after - before) / n
    print(f"  {name:10s} {n} IDLE sessions: {before / 1024:.1f} -> {after / 1024:.1f} MiB, "
          f"{per:.1f} KiB per session")
    for s in socks:
        s.close()
    return per


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.sessions * 2 + 100)), hard))
    users = [(f"user{i}", f"pw{i}") for i in range(20)]
    print(f"memory per IDLE session ({args.sessions} sessions):")
    with tempfile.TemporaryDirectory(prefix="millipost-idle-") as data:
        for login, pw in users:
            subprocess.run(["millipost-server", "--data", data, "user", "add", login, "--password", pw],
                           check=True, capture_output=True)
        port = free_port()
        proc = subprocess.Popen(["millipost-server", "--data", data, "--smtp", "-1", "--pop3", "-1",
                                 "--imap", str(port), "--log-level", "warn"])
        time.sleep(1.0)
        try:
            ours = measure("millipost", port, lambda: [proc.pid], users, args.sessions)
        finally:
            proc.terminate()
            proc.wait()
    with DovecotPeer(users=users) as dove:
        master = int(open(os.path.join(dove.dir, "run", "master.pid")).read())
        theirs = measure("dovecot", dove.imap_port, lambda: descendants(master), users, args.sessions)
    print(f"  ratio dovecot/millipost: {theirs / max(ours, 1e-9):.1f}x less memory per session")
    return 0


if __name__ == "__main__":
    sys.exit(main())
