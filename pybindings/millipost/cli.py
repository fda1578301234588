"""The millipost command: serve, provision, demo, conform."""
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


def cmd_conform(args: argparse.Namespace, rest: list[str]) -> int:
    from .conform import ConformError, conform, format_result

    try:
        report = conform(args.url, scenarios=args.scenario or None, users=args.user,
                         domain=args.domain, deliver_via=args.smtp,
                         capabilities=args.capabilities.split() if args.capabilities is not None
                         else None, expect=args.expect, timeout=args.timeout, root=args.scenarios)
    except ConformError as e:
        print(f"millipost conform: {e}", file=sys.stderr)
        return 2
    print(f"conform {report.target}: capabilities {' '.join(report.capabilities) or '(none)'}")
    for r in report.results:
        print(format_result(r, verbose=args.verbose))
    differs = [r for r in report.results if r.differs]
    if differs:
        print("differences from the expected-results file:")
        for r in differs:
            print(f"  {r.id}: expected {r.expected}, got {r.status}"
                  + (f" ({r.reason})" if r.reason else ""))
    print(report.summary())
    if args.json:
        report.write_json(args.json)
        print(f"JSON report: {args.json}")
    if args.junit:
        report.write_junit(args.junit)
        print(f"JUnit XML: {args.junit}")
    status = 0 if report.ok else 1
    if args.models:
        status = max(status, _conform_models(args))
    return status


def _conform_models(args: argparse.Namespace) -> int:
    """Runs millipost-check's model-based properties for `millipost conform --models`."""
    from .conform import ConformError, run_models

    try:
        res = run_models(args.url, users=args.user, models=args.models.split(","), runs=args.runs,
                         seconds=args.model_seconds, seed=args.model_seed)
    except ConformError as e:
        print(f"millipost conform: models: {e}", file=sys.stderr)
        return 2
    for r in res["results"]:
        line = (f"{'PASS' if r['passed'] else 'FAIL':8} model {r['model']:30} {r['runs']} cases, "
                f"{r['seconds']:.1f} s, seed {r['seed']}")
        if r["failure"]:
            f = r["failure"]
            line += (f"\n         {f['message']}\n         shrunk to {f['size']} commands:"
                     + "".join(f"\n           {step}" for step in f["counterexample"])
                     + f"\n         replay: RC_PARAMS=\"reproduce={f['reproduce']}\" millipost-check "
                       f"--model {r['model']} --target URL")
        print(line)
    return 0 if res["passed"] else 1


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

    p = sub.add_parser(
        "conform", help="run the scripted conformance scenarios against any IMAP, SMTP or POP3 server",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Runs the scenarios of fixtures/scenarios/ for the URL's protocol against a "
                    "server and prints PASS, FAIL or SKIPPED (capability not advertised) per "
                    "case with the RFC sections it checks. Exit status: 0 when nothing failed "
                    "(failures listed in --expect excepted), 1 on failures, 2 when the run "
                    "could not start.",
        epilog="examples:\n"
               "  millipost conform imap://alice:secret@127.0.0.1:143 --user bob:hunter2\n"
               "  millipost conform pop3://alice:secret@mail.example:110 --smtp smtp://mail.example:25\n"
               "  millipost conform smtp://alice:x@127.0.0.1:2525 --junit reports/out/smtp.xml\n"
               "  millipost conform imaps://u:p@host --expect fixtures/expected/dovecot.txt\n"
               "The HTML report (--html) is not written yet.")
    p.add_argument("url", help="imap://, imaps://, smtp://, smtps://, pop3:// or pop3s:// "
                               "LOGIN:PASSWORD@HOST[:PORT]; the login is ${user} in scenarios")
    p.add_argument("--user", action="append", default=[], metavar="LOGIN:PASSWORD",
                   help="another existing user (the first is ${user2}); repeatable")
    p.add_argument("--domain", default="localhost",
                   help="mail domain for ${rcpt} = LOGIN@DOMAIN (default localhost)")
    p.add_argument("--smtp", metavar="URL",
                   help="smtp://HOST:PORT used to deliver messages that POP3 scenarios need "
                        "(without it those scenarios are skipped)")
    p.add_argument("--scenario", action="append", metavar="ID",
                   help="run only scenarios whose id starts with ID (e.g. imap/select); "
                        "repeatable")
    p.add_argument("--scenarios", metavar="DIR",
                   help="scenario directory (default: the bundled fixtures/scenarios)")
    p.add_argument("--capabilities", metavar="'CAP ...'",
                   help="use these capabilities instead of asking the server")
    p.add_argument("--expect", metavar="FILE",
                   help="expected-results file: 'ID FAIL|SKIPPED [# reason]' lines; listed "
                        "failures do not fail the run and changes are shown as a diff")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--junit", metavar="FILE", help="write the results as JUnit XML (for CI)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds one server reply may take (default 5)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show details of expected failures too")
    p.add_argument("--models", metavar="imap,imap-multi",
                   help="also run these RapidCheck model-based properties (millipost-check) "
                        "against the imap:// URL")
    p.add_argument("--runs", type=int, help="cases per model (default 100)")
    p.add_argument("--model-seconds", type=float, metavar="S",
                   help="run each model for S seconds instead of a number of cases")
    p.add_argument("--model-seed", type=int, metavar="N", help="seed for the models (default random)")
    p.set_defaults(func=cmd_conform)

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
