#!/usr/bin/env python3
"""Dovecot's imaptest in stress mode (random commands, state checking) against millipost and
against Dovecot from Debian, same settings, same run; prints commands per second and errors.

imaptest is not a Debian package: build it by hand outside this repository (it needs
`dovecot-dev`) and pass its path with --imaptest or IMAPTEST=/path/to/imaptest.

    python3 bench/imaptest_stress.py --imaptest ~/imaptest/src/imaptest --clients 50 --secs 60
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from peers import DovecotPeer  # noqa: E402

import millipost  # noqa: E402


def run_imaptest(imaptest: str, port: int, args, mbox: str) -> dict:
    cmd = [imaptest, "host=127.0.0.1", f"port={port}", "user=user%d", f"users=1-{args.users}",
           "pass=pass", f"clients={args.clients}", f"secs={args.secs}", f"mbox={mbox}"]
    env = {**os.environ, "LD_LIBRARY_PATH": "/usr/lib/dovecot"}
    print("  $", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=args.secs + 120).stdout
    lines = out.splitlines()
    # "Totals:" is followed by the command names, two percentage lines and the counts.
    i = max(n for n, line in enumerate(lines) if line.startswith("Totals:"))
    names = lines[i + 1].split()
    counts = [int(x) for x in lines[i + 4].split()[:len(names)]]
    errors = [line for line in lines if line.startswith("Error:") or " Error: " in line]
    total = sum(counts)
    if total == 0:
        errors.append("no command completed: is the server up and the login right?")
    return {"commands": total, "per_second": total / args.secs, "errors": errors,
            "by_command": dict(zip(names, counts))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imaptest", default=os.environ.get("IMAPTEST", "imaptest"))
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--secs", type=int, default=60)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--messages", type=int, default=400, help="messages in the generated mbox")
    ap.add_argument("--mbox", help="an mbox to use instead of bench/make_mbox.py's")
    ap.add_argument("--only", choices=["millipost", "dovecot"])
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="millipost-stress-")
    os.chmod(work, 0o755)  # Dovecot's auth process (user dovecot) reads a file below it
    mbox = args.mbox or os.path.join(work, "realistic.mbox")
    if not args.mbox:
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "make_mbox.py"),
                        "--messages", str(args.messages), "--out", mbox], check=True)
    users = [(f"user{i}", "pass") for i in range(1, args.users + 1)]
    results = {}
    if args.only != "dovecot":
        print("millipost:")
        with millipost.Server(data_dir=os.path.join(work, "millipost")) as srv:
            for u, p in users:
                srv.add_user(u, p)
            results["millipost"] = run_imaptest(args.imaptest, srv.imap_port, args, mbox)
    if args.only != "millipost":
        print("dovecot:")
        with DovecotPeer(users=users, workdir=os.path.join(work, "dovecot")) as dove:
            results["dovecot"] = run_imaptest(args.imaptest, dove.imap_port, args, mbox)
    print()
    print(f"imaptest stress: clients={args.clients} secs={args.secs} users=1-{args.users}, "
          f"mbox of {args.messages} generated messages")
    for name, r in results.items():
        print(f"  {name:10} {r['per_second']:8.0f} commands/s  {len(r['errors'])} errors")
        for e in r["errors"][:10]:
            print("     ", e)
    if len(results) == 2 and results["dovecot"]["per_second"]:
        print(f"  ratio millipost/dovecot: "
              f"{results['millipost']['per_second'] / results['dovecot']['per_second']:.2f}")
    sys.exit(1 if any(r["errors"] for r in results.values()) else 0)


if __name__ == "__main__":
    main()
