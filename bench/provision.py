#!/usr/bin/env python3
"""bench/provision.py: how fast the reference store bulk-loads a synthetic population.

    python3 bench/provision.py [--users 1000000] [--seed 1] [--data DIR]
                               [--messages N --mailbox-users U [--max-message-size B]]

Goal (foundation issue): 1,000,000 users in under 30 s on a 2-core machine. Prints the rate and
checks a sample of users can be found and their passwords verify. With --messages, then fills
the mailboxes of the first U users with N generated messages each (the load simulator's
pre-populated state) and prints messages/s and MB/s. Not run by CI.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import millipost
from millipost.progress import Progress


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", help="data directory (default: a fresh temporary one)")
    ap.add_argument("--messages", type=int, default=0, help="messages per user to generate")
    ap.add_argument("--mailbox-users", type=int, default=1000,
                    help="how many users get --messages (default 1000)")
    ap.add_argument("--max-message-size", type=int, default=0,
                    help="skip generated messages larger than this (default: the full tail)")
    args = ap.parse_args()
    tmp = None
    data = args.data or (tmp := tempfile.mkdtemp(prefix="millipost-bench-"))
    try:
        pop = millipost.Population(args.seed, args.users)
        with millipost.Server(data_dir=data, smtp_port=-1, pop3_port=0) as server:
            bar = Progress(args.users, "provision", unit="users")
            t0 = time.monotonic()
            added = server.provision(pop, progress=bar.update)
            elapsed = time.monotonic() - t0
            bar.close()
            size = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))
            # Spot check through the real protocol: a few users log in by POP3.
            import poplib
            for i in (0, args.users // 2, args.users - 1):
                p = poplib.POP3(server.host, server.pop3_port, timeout=10)
                p.user(pop[i].login)
                p.pass_(pop[i].password)
                p.quit()
            if args.messages:
                users = min(args.mailbox_users, args.users)
                bar = Progress(users, "mailboxes", unit="users")
                t0 = time.monotonic()
                n = server.populate_mailboxes(pop, 0, users, messages=args.messages,
                                              max_message_size=args.max_message_size,
                                              progress=lambda u, m: bar.update(u))
                m_elapsed = time.monotonic() - t0
                bar.close()
                m_size = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))
                print(f"mailboxes: {n:,} messages for {users:,} users in {m_elapsed:.2f} s = "
                      f"{n / m_elapsed:,.0f} messages/s; store grew to {m_size / 1e6:,.0f} MB "
                      f"({m_size / 1e6 / m_elapsed:,.0f} MB/s)")
        print(f"provision: {added:,} users in {elapsed:.2f} s = {added / elapsed:,.0f} users/s; "
              f"store {size / 1e6:.0f} MB ({size / max(added, 1):.0f} B/user); "
              f"goal 1,000,000 in < 30 s: {'met' if args.users / elapsed * 30 >= 1_000_000 else 'NOT met'}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
