"""The millipost command: serve, provision, demo."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
import time


def _server_binary() -> str:
    scripts = sysconfig.get_path("scripts")
    for candidate in (os.path.join(scripts, "millipost-server"), shutil.which("millipost-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("millipost: the millipost-server binary is not installed (pip install .)")


def cmd_serve(args: argparse.Namespace, rest: list[str]) -> int:
    """Runs millipost-server in the foreground with the given options."""
    binary = _server_binary()
    argv = [binary, "--data", args.data]
    if args.config:
        argv += ["--config", args.config]
    argv += rest
    os.execv(binary, argv)
    return 0  # not reached


def cmd_provision(args: argparse.Namespace, rest: list[str]) -> int:
    from . import Population, Server
    from .progress import Progress

    population = Population(args.seed, args.users, password=args.password, domain=args.domain)
    with Server(data_dir=args.data, smtp_port=-1, pop3_port=-1, imap_port=-1) as server:
        bar = Progress(args.users, "provision", unit="users")
        added = server.provision(population, progress=bar.update)
        elapsed = bar.close()
        total = server.user_count()
    print(f"provisioned {added:,} new users of {args.users:,} (seed {args.seed}) into {args.data} "
          f"in {elapsed:.1f} s ({args.users / max(elapsed, 1e-9):,.0f} users/s); "
          f"{total:,} users in the store")
    return 0


def cmd_demo(args: argparse.Namespace, rest: list[str]) -> int:
    from .demo import run_demo

    result = run_demo(users=args.users, seconds=args.seconds, senders=args.senders,
                      readers=args.readers, imap_readers=args.imap_readers, seed=args.seed, data_dir=args.data,
                      report_dir=args.report_dir)
    return 0 if result["oracle"]["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="millipost",
        description="millipost: reference mail server, conformance suite and load simulator.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the reference server (millipost-server) in the foreground",
                       description="Runs millipost-server; options after -- go to it "
                                   "(see millipost-server --help).")
    p.add_argument("--data", default="./data", help="data directory (default ./data)")
    p.add_argument("--config", help="TOML configuration file")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("provision", help="bulk-load a synthetic population into a store")
    p.add_argument("--data", default="./data", help="data directory (default ./data)")
    p.add_argument("--users", type=int, default=1000, help="population size (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="population seed (default 1)")
    p.add_argument("--password", help="one shared password instead of derived ones")
    p.add_argument("--domain", default="localhost", help="mail domain (default localhost)")
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser("demo", help="the main job: server on SQLite, population, concurrent SMTP "
                                    "deliveries, POP3 and IMAP retrievals, checked, with a JSON report")
    p.add_argument("--users", type=int, default=10000, help="population size (default 10000)")
    p.add_argument("--seconds", type=float, default=5.0, help="traffic duration (default 5)")
    p.add_argument("--senders", type=int, default=8, help="concurrent SMTP clients (default 8)")
    p.add_argument("--readers", type=int, default=4, help="concurrent POP3 clients (default 4)")
    p.add_argument("--imap-readers", type=int, default=2,
                   help="concurrent IMAP clients (default 2)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: time-based, printed)")
    p.add_argument("--data", default=None, help="data directory (default: a temporary one)")
    p.add_argument("--report-dir", default="reports/out", help="where the JSON report goes")
    p.set_defaults(func=cmd_demo)

    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "serve":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if rest and rest[0] == "--":
        rest = rest[1:]
    try:
        return args.func(args, rest)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
