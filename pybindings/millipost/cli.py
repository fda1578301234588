"""The millipost command: serve, provision, demo, conform, contract, load, report."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
import time


def add_login_options(p: argparse.ArgumentParser, auth_help: str) -> None:
    """--auth, --tls-verify and --ca-file, shared by `conform` and `load`."""
    p.add_argument("--auth", choices=("login", "plain", "scram-sha-256"), default=None,
                   help=auth_help)
    p.add_argument("--tls-verify", action="store_true",
                   help="check TLS servers' certificates (default: not, for self-signed ones)")
    p.add_argument("--ca-file", metavar="PEM", default=None,
                   help="trust anchors for TLS servers' certificates (implies --tls-verify)")


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
    first = args.first
    if args.command or args.target:
        return _provision_other(args, population)
    with Server(data_dir=args.data, smtp_port=-1, pop3_port=-1, imap_port=-1) as server:
        bar = Progress(args.users - first, "provision", unit="users")
        added = server.provision(population, first=first,
                                 progress=lambda n: bar.update(n))
        elapsed = bar.close()
        total = server.user_count()
        print(f"provisioned {added:,} new users of {args.users:,} (seed {args.seed}) into "
              f"{args.data} in {elapsed:.1f} s ({(args.users - first) / max(elapsed, 1e-9):,.0f} "
              f"users/s); {total:,} users in the store")
        if args.messages:
            bar = Progress(args.users - first, "mailboxes", unit="users")
            n = server.populate_mailboxes(population, first, messages=args.messages,
                                          vary=args.vary, max_message_size=args.max_message_size,
                                          progress=lambda u, m: bar.update(u, f"{m:,} messages"))
            elapsed = bar.close()
            print(f"populated {n:,} messages ({args.messages} per user"
                  f"{', varied' if args.vary else ''}) in {elapsed:.1f} s "
                  f"({n / max(elapsed, 1e-9):,.0f} messages/s)")
    return 0


def _provision_other(args: argparse.Namespace, population) -> int:
    """The protocol path: a per-user command and/or mail through IMAP APPEND or SMTP."""
    from .progress import Progress
    from .provision import populate_over_protocol, run_provision_command

    status = 0
    if args.command:
        bar = Progress(args.users - args.first, "provision", unit="users")
        r = run_provision_command(population, args.command, args.first, parallel=args.parallel,
                                  progress=bar.update)
        bar.close()
        print(f"provisioning command: {r.ok:,} users ok, {r.failed:,} failed in "
              f"{r.seconds:.1f} s")
        for e in r.errors[:5]:
            print(f"  {e}", file=sys.stderr)
        status = 1 if r.failed else 0
    if args.target:
        if not args.messages:
            print("millipost provision: --target needs --messages N", file=sys.stderr)
            return 2
        bar = Progress(args.users - args.first, "mailboxes", unit="users")
        r = populate_over_protocol(args.target, population, args.first, messages=args.messages,
                                   parallel=args.parallel,
                                   progress=lambda u, m: bar.update(u, f"{m:,} messages"))
        bar.close()
        print(f"populated {r.messages:,} messages for {r.ok:,} users over {args.target} in "
              f"{r.seconds:.1f} s ({r.messages / max(r.seconds, 1e-9):,.0f} messages/s); "
              f"{r.failed:,} users failed")
        for e in r.errors[:5]:
            print(f"  {e}", file=sys.stderr)
        status = status or (1 if r.failed else 0)
    return status


def cmd_demo(args: argparse.Namespace, rest: list[str]) -> int:
    from .demo import run_demo

    result = run_demo(users=args.users, seconds=args.seconds, senders=args.senders,
                      readers=args.readers, imap_readers=args.imap_readers, seed=args.seed, data_dir=args.data,
                      report_dir=args.report_dir)
    return 0 if result["oracle"]["ok"] else 1


def cmd_conform(args: argparse.Namespace, rest: list[str]) -> int:
    from .conform import ConformError, conform, format_result

    if args.proxy:
        if args.url:
            print("millipost conform: give a URL or --proxy, not both", file=sys.stderr)
            return 2
        return run_proxy(args)
    if not args.url:
        print("millipost conform: a server URL (or --proxy LISTEN UPSTREAM) is needed",
              file=sys.stderr)
        return 2
    if args.contract or args.record:
        print("millipost conform: --contract and --record go with --proxy", file=sys.stderr)
        return 2
    try:
        report = conform(args.url, scenarios=args.scenario or None, users=args.user,
                         domain=args.domain, deliver_via=args.deliver or args.smtp,
                         capabilities=args.capabilities.split() if args.capabilities is not None
                         else None, expect=args.expect, timeout=args.timeout, root=args.scenarios,
                         auth=args.auth, tls_verify=args.tls_verify, ca_file=args.ca_file)
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
    if args.html is not None:
        print(f"HTML report: {report.write_html(args.html or None)}")
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


def run_proxy(args: argparse.Namespace) -> int:
    """millipost conform --proxy: a checking proxy in the foreground until Ctrl-C or SIGTERM."""
    import signal
    import threading

    from . import contracts as ct

    listen, upstream = args.proxy
    name = args.contract or ct.guess_contract(upstream)
    if name is None:
        print(f"millipost conform: cannot tell the protocol of {upstream!r} from its port or "
              f"scheme; give --contract NAME|PATH (available: {', '.join(ct.available())})",
              file=sys.stderr)
        return 2
    try:
        contract = None if name == "none" else ct.load(name)
        proxy = ct.Proxy(listen, upstream, contract, record_dir=args.record,
                         keep_records=False)
    except (ValueError, OSError) as e:
        print(f"millipost conform: {e}", file=sys.stderr)
        return 2
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            print(text, flush=True)

    def on_breach(b: ct.ProxyBreach) -> None:
        say(f"BREACH connection {b.connection}: {b.breach}")

    def on_close(c: ct.ProxyConnection) -> None:
        if c.error:
            say(f"connection {c.number}: {c.error}")
        if args.verbose:
            verdict = "breach" if c.breach is not None else "ok"
            say(f"connection {c.number} from {c.client[0]}:{c.client[1]} closed: {verdict} "
                f"({c.bytes_client} bytes from the client, {c.bytes_server} from the server)"
                + (f", {c.transcript}" if c.transcript else ""))

    proxy.on_breach, proxy.on_close = on_breach, on_close
    try:
        proxy.start()
    except OSError as e:
        print(f"millipost conform: {e}", file=sys.stderr)
        return 2
    # SIGTERM stops as Ctrl-C does: the summary is printed and transcripts are complete. SIGINT
    # is set explicitly: a shell starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    host, port = proxy.address
    say(f"proxy listening on {host}:{port}, forwarding to {proxy.upstream[0]}:"
        f"{proxy.upstream[1]}, contract {contract.name if contract else 'none (recording only)'}"
        + (f", transcripts in {args.record}" if args.record else "") + "; Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    conns = proxy.connections
    who = {"client": 0, "server": 0}
    for b in proxy.breaches:
        who[b.breach.who] += 1
    errors = sum(1 for c in conns if c.error)
    say(f"{len(conns)} connections, {len(proxy.breaches)} with a breach ({who['server']} server, "
        f"{who['client']} client), {errors} with errors"
        + ("" if contract else " (not checked: no contract)"))
    return 1 if proxy.breaches else 0


def _print_breach(where: str, breach, line) -> None:
    from .contracts import escape

    at = f"line {line}" if line is not None else "end of file"
    print(f"{where}: BREACH at {at}: {breach.who} broke the contract in state {breach.state}")
    print(f"  reason:   {breach.reason}")
    print(f"  expected: {breach.rule}")
    print(f"  bytes:    {escape(breach.bytes)}")


def cmd_contract_check(args: argparse.Namespace, rest: list[str]) -> int:
    from . import contracts as ct

    contract = None
    if args.contract:
        try:
            contract = ct.load(args.contract)
        except (ValueError, OSError) as e:
            print(f"millipost contract check: {e}", file=sys.stderr)
            return 2
    status = 0
    for path in args.transcripts:
        try:
            breach, line = ct.locate_breach(path, contract)
        except (ValueError, OSError) as e:  # TranscriptError and ContractError are ValueErrors
            print(f"{path}: ERROR {e}", file=sys.stderr)
            status = 2
            continue
        if breach is None:
            print(f"{path}: OK")
        else:
            _print_breach(path, breach, line)
            status = max(status, 1)
    return status


def cmd_contract_list(args: argparse.Namespace, rest: list[str]) -> int:
    from . import contracts as ct

    found = ct.available()
    if not found:
        print("no contracts found (looked in: " + ", ".join(ct.contract_dirs()) + ")")
        return 1
    status = 0
    for name, path in found.items():
        try:
            c = ct.load(path)
        except (ValueError, OSError) as e:
            print(f"{name:8} {path}\n         ERROR {e}")
            status = 1
            continue
        print(f"{name:8} {path}\n         {len(c.states)} states, {len(c.requests)} request types: "
              + " ".join(c.requests))
    return status


def _load_exit(results) -> int:
    """0: no violation or breach; 1: oracle violations or contract breaches; 130: interrupted
    by Ctrl-C without any (docs/load.md, "Exit status")."""
    if not results.ok:
        return 1
    return 130 if results.interrupted else 0


def cmd_load(args: argparse.Namespace, rest: list[str]) -> int:
    import signal

    from .loadsim import LoadError, Results, build_config, engine, load

    kwargs = dict(users=args.users, duration=args.duration, seed=args.seed, profile=args.profile,
                  mode=args.mode, sessions=args.sessions, rate=args.rate, domain=args.domain,
                  password=args.password, workers=args.workers, auth=args.auth,
                  ca_file=args.ca_file)
    targets, reference = list(args.urls), args.reference
    try:
        if args.repeat:
            # The run's own configuration; flags given on the command line still win.
            cfg = Results.from_file(args.repeat).config
            given = {k for k in kwargs if getattr(args, k) is not None}
            for key in ("users", "duration", "seed", "mode", "sessions", "rate", "domain",
                        "password", "profile", "workers", "auth", "ca_file"):
                if key not in given and cfg.get(key) is not None:
                    kwargs[key] = cfg[key]
            if not targets and not reference:
                reference = bool(cfg.get("reference"))
                targets = [] if reference else list(cfg.get("targets", []))
        defaults = {"users": 1000, "duration": "30s", "seed": 1, "mode": "open",
                    "domain": "localhost", "workers": 1}
        for k, v in defaults.items():
            if kwargs[k] is None:
                kwargs[k] = v
        if reference and targets:
            print("millipost load: give target URLs or --reference, not both", file=sys.stderr)
            return 2
        if not reference and not targets:
            print("millipost load: give target URLs (imap://HOST:PORT pop3://... smtp://...) or "
                  "--reference", file=sys.stderr)
            return 2
        # Arguments and profile first (their errors are the user's to fix), then the engine.
        build_config(targets or ["imap://-", "pop3://-", "smtp://-"], **kwargs)
        engine()  # fail before provisioning when the engine is missing
    except LoadError as e:
        print(f"millipost load: {e}", file=sys.stderr)
        return 2
    # SIGTERM stops a run as Ctrl-C does (partial results, report written). SIGINT is set
    # explicitly: a shell starts background jobs with it ignored.
    saved = {sig: signal.signal(sig, signal.default_int_handler)
             for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        results = load(targets or None, reference=reference, target_pid=args.target_pid,
                       progress=not args.quiet, tls_verify=args.tls_verify, **kwargs)
    except LoadError as e:
        print(f"millipost load: {e}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in saved.items():  # main() may be called in-process (tests)
            signal.signal(sig, handler)
    print(results.summary())
    if args.json:
        print(f"JSON results: {results.write_json(args.json)}")
    if args.html is not None:
        print(f"HTML report: {results.write_html(args.html or None)}")
    return _load_exit(results)


def cmd_report(args: argparse.Namespace, rest: list[str]) -> int:
    from . import load_report
    from .loadsim import LoadError, Results

    runs = []
    for path in args.results:
        try:
            runs.append((os.path.basename(path), Results.from_file(path)))
        except (LoadError, OSError) as e:
            print(f"millipost report: {e}", file=sys.stderr)
            return 2
    if len(runs) == 1:
        print(load_report.summary(runs[0][1]))
        page = load_report.render(runs[0][1]) if args.html is not None else None
        kind = "load"
    else:
        print(load_report.compare(runs))
        page = load_report.render_compare(runs) if args.html is not None else None
        kind = "compare"
    if page is not None:
        path = args.html or load_report.default_path(kind)
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
        print(f"HTML report: {path}")
    return 0 if all(r.ok for _, r in runs) else 1


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
    p.add_argument("--first", type=int, default=0, help="first user index (default 0)")
    p.add_argument("--messages", type=int, default=0,
                   help="also give every user N generated messages (INBOX, Archive, Sent)")
    p.add_argument("--vary", action="store_true",
                   help="vary --messages per user (lognormal with that median)")
    p.add_argument("--max-message-size", type=int, default=0,
                   help="skip generated messages larger than this many octets")
    p.add_argument("--command", metavar="CMD",
                   help="another server: run CMD per user instead of loading the store "
                        "(placeholders {login} {password} {address} {name} {index} {domain})")
    p.add_argument("--target", metavar="URL",
                   help="another server: deliver --messages per user by IMAP APPEND "
                        "(imap://host:port, imaps://) or SMTP (smtp://host:port)")
    p.add_argument("--parallel", type=int, default=8,
                   help="concurrent commands or sessions for --command/--target (default 8)")
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
               "  millipost conform imaps://u:p@host --expect fixtures/expected/dovecot.expect --html\n"
               "  millipost conform 'imap://u:p@host?starttls' --auth scram-sha-256\n"
               "  millipost conform submission://u:p@host --auth plain --ca-file ca.pem\n"
               "  millipost conform pop3://u:p@127.0.0.1:110 --deliver lmtp://127.0.0.1:24\n"
               "  millipost conform --proxy 127.0.0.1:2525 mail.example:25 --record out/\n"
               "\n"
               "With --proxy LISTEN UPSTREAM nothing is scripted: a transparent proxy listens on\n"
               "LISTEN ([HOST:]PORT), forwards every connection to UPSTREAM (HOST:PORT or\n"
               "smtp://HOST[:PORT]) byte for byte, and holds both directions to the protocol\n"
               "contract (properties/contracts/). Each breach is printed as it happens with its\n"
               "connection number; Ctrl-C (or SIGTERM) stops and prints a summary. Point any\n"
               "client (or this command's scenario mode) at LISTEN. Exit status: 0 when no\n"
               "connection broke the contract, 1 otherwise, 2 when it could not start.\n"
               "--html without FILE writes reports/out/conform-<protocol>-<timestamp>.html.")
    p.add_argument("url", nargs="?",
                   help="imap://, imaps://, smtp://, smtps://, submission:// (587, STARTTLS), "
                        "pop3:// or pop3s:// LOGIN:PASSWORD@HOST[:PORT][?starttls] (?starttls: "
                        "STARTTLS/STLS after the greeting); the login is ${user} in scenarios")
    p.add_argument("--proxy", nargs=2, metavar=("LISTEN", "UPSTREAM"),
                   help="run a contract-checking proxy instead of the scenarios (see below)")
    p.add_argument("--contract", metavar="NAME|PATH",
                   help="with --proxy: the contract (smtp, ... or a .contract file; 'none' only "
                        "records); default: guessed from UPSTREAM's scheme or port (25, 587, "
                        "2525: smtp; 110: pop3; 143: imap)")
    p.add_argument("--record", metavar="DIR",
                   help="with --proxy: write each connection's transcript to DIR/NNNNN.transcript "
                        "(check them later with 'millipost contract check')")
    p.add_argument("--user", action="append", default=[], metavar="LOGIN:PASSWORD",
                   help="another existing user (the first is ${user2}); repeatable")
    p.add_argument("--domain", default="localhost",
                   help="mail domain for ${rcpt} = LOGIN@DOMAIN (default localhost)")
    p.add_argument("--smtp", metavar="URL",
                   help="smtp://HOST:PORT used to deliver messages that POP3 scenarios need "
                        "(without it those scenarios are skipped); same as --deliver")
    p.add_argument("--deliver", metavar="URL",
                   help="smtp://HOST:PORT or lmtp://HOST:PORT (RFC 2033, e.g. Dovecot's LMTP) "
                        "used to deliver the messages that scenarios need")
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
    p.add_argument("--html", metavar="FILE", nargs="?", const="",
                   help="write a self-contained HTML report (default FILE: "
                        "reports/out/conform-<protocol>-<timestamp>.html)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds one server reply may take (default 5)")
    add_login_options(p, "how the harness logs in (default: IMAP LOGIN, POP3 USER/PASS; SMTP "
                         "authenticates on submission:// and smtps:// targets with LOGIN, or on "
                         "every SMTP target with this mechanism when given)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show details of expected failures too; with --proxy, every connection "
                        "as it closes")
    p.add_argument("--models", metavar="imap,imap-multi",
                   help="also run these RapidCheck model-based properties (millipost-check) "
                        "against the imap:// URL")
    p.add_argument("--runs", type=int, help="cases per model (default 100)")
    p.add_argument("--model-seconds", type=float, metavar="S",
                   help="run each model for S seconds instead of a number of cases")
    p.add_argument("--model-seed", type=int, metavar="N", help="seed for the models (default random)")
    p.set_defaults(func=cmd_conform)

    p = sub.add_parser(
        "contract", help="check transcripts against protocol contracts; list the contracts",
        description="Protocol contracts (properties/contracts/README.md): the RFCs' ABNF and a "
                    "state table per protocol, checked by a streaming engine.")
    csub = p.add_subparsers(dest="contract_command", required=True, metavar="SUBCOMMAND")
    c = csub.add_parser(
        "check", help="check recorded transcripts against a contract",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Feeds each transcript (millipost transcript v1: '# millipost transcript 1', "
                    "then 'C: ' and 'S: ' lines of escaped bytes) to a checker in wire order "
                    "and prints OK or the first breach: who broke the contract (client or "
                    "server), the line of the transcript, the state, the rule expected and the "
                    "offending bytes. End of file closes the connection unless the header "
                    "'# open: true' says the recording stopped first.",
        epilog="exit status: 0 all OK, 1 a breach in at least one transcript, 2 a transcript or "
               "contract could not be read\n"
               "examples:\n"
               "  millipost contract check out/00001.transcript\n"
               "  millipost contract check --contract smtp session.transcript\n"
               "  millipost contract check --contract ./my.contract out/*.transcript")
    c.add_argument("transcripts", nargs="+", metavar="TRANSCRIPT", help="transcript files")
    c.add_argument("--contract", metavar="NAME|PATH",
                   help="contract name (see 'millipost contract list') or .contract file; "
                        "default: each transcript's '# contract:' header")
    c.set_defaults(func=cmd_contract_check)
    c = csub.add_parser("list", help="list the contracts that can be named",
                        description="Lists every contract found by name (the package's, the "
                                    "source tree's, $MILLIPOST_CONTRACTS) with its states and "
                                    "request types; exit 1 if one does not load.")
    c.set_defaults(func=cmd_contract_list)

    p = sub.add_parser(
        "load", help="drive mail servers with a synthetic population's traffic and report how "
                     "they held up",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Simulates the mail traffic of a population of USERS synthetic users (webmail\n"
                    "readers, mobile IDLE clients, POP3 fetchers, SMTP senders, inbound MX; each\n"
                    "user checks mail every 15 minutes on average) against the target servers\n"
                    "for DURATION, checking every session against the protocol contracts and\n"
                    "every mailbox against an oracle (nothing lost, nothing duplicated, flags\n"
                    "consistent). Shows live rates, then a summary per command (count,\n"
                    "p50/p90/p99/p999/max latency, errors). See docs/load.md.",
        epilog="examples:\n"
               "  millipost load --reference --users 100000 --duration 30s --seed 7 --html\n"
               "  millipost load imap://127.0.0.1:143 pop3://127.0.0.1:110 smtp://127.0.0.1:25 \\\n"
               "      --users 2000 --password pass --duration 1m --json dovecot.json\n"
               "  millipost load --reference --mode closed --sessions 200 --duration 20s\n"
               "  millipost load --repeat reports/out/run.json\n"
               "  millipost report millipost.json dovecot.json --html\n"
               "\n"
               "Users are user0 .. user<N-1>@DOMAIN with passwords derived from the seed\n"
               "(--password: one shared password). Every protocol the profile uses needs a\n"
               "URL (a profile can set a behaviour's weight to 0).\n"
               "\n"
               "exit status: 0 no oracle violation and no contract breach; 1 violations or\n"
               "breaches; 2 the run could not start (bad arguments or profile, no engine);\n"
               "130 interrupted by Ctrl-C (or SIGTERM) without violations: the partial\n"
               "results are still summarised and written.")
    p.add_argument("urls", nargs="*", metavar="URL",
                   help="target servers: imap://HOST:PORT, pop3://HOST:PORT, smtp://HOST:PORT "
                        "(plain TCP)")
    p.add_argument("--reference", action="store_true",
                   help="start the reference server in-process (SQLite, temporary directory) "
                        "and provision the population into it")
    p.add_argument("--users", type=int, default=None, help="population size (default 1000)")
    p.add_argument("--duration", default=None,
                   help="run time: 30, 30s, 5m, 1h, 1m30s (default 30s)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the population, behaviour and messages (default 1)")
    p.add_argument("--profile", metavar="FILE",
                   help="TOML profile merged over the built-in mix (docs/load.md)")
    p.add_argument("--mode", choices=("open", "closed"), default=None,
                   help="open: Poisson session arrivals at the population's rate (default); "
                        "closed: --sessions sessions back to back, as fast as the target allows")
    p.add_argument("--sessions", type=int, metavar="N",
                   help="closed loop: concurrent sessions (default min(users, 64))")
    p.add_argument("--rate", type=float, metavar="R",
                   help="open loop: session arrivals per second (default: users x the "
                        "profile's rate_per_user_per_hour / 3600)")
    p.add_argument("--domain", default=None, help="mail domain of the users (default localhost)")
    p.add_argument("--password", help="one shared password instead of derived ones")
    p.add_argument("--workers", type=int, metavar="N", default=None,
                   help="engine processes sharing the run (default 1): each owns the users "
                        "i %% N, for more connections than one process has file descriptors")
    add_login_options(p, "how sessions log in (default login: IMAP LOGIN, POP3 USER/PASS; SMTP "
                         "senders authenticate on submission:// and smtps:// targets, or on "
                         "every SMTP target when --auth is given)")
    p.add_argument("--target-pid", type=int, metavar="PID",
                   help="sample this process's CPU and memory as the target's (with "
                        "--reference: this process)")
    p.add_argument("--repeat", metavar="RESULTS.json",
                   help="repeat the run whose JSON results these are (seed, configuration, "
                        "profile); other flags override")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--html", metavar="FILE", nargs="?", const="",
                   help="write a self-contained HTML report with plots (default FILE: "
                        "reports/out/load-<timestamp>.html)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser(
        "report", help="summarise a load run's JSON results or compare several side by side",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="With one results file: its summary (and HTML report). With several: a "
                    "side-by-side comparison, per command throughput and p99 latency with "
                    "ratios to the first run (A), totals, target CPU and memory; the HTML "
                    "report overlays the runs' plots.",
        epilog="exit status: 0 when no run had oracle violations or contract breaches, 1 when "
               "one had, 2 when a file could not be read\n"
               "example:\n"
               "  millipost report millipost.json dovecot.json --html reports/out/vs.html")
    p.add_argument("results", nargs="+", metavar="RESULTS.json",
                   help="JSON results of millipost load (--json)")
    p.add_argument("--html", metavar="FILE", nargs="?", const="",
                   help="write a self-contained HTML report (default FILE: "
                        "reports/out/load-<timestamp>.html for one run, "
                        "reports/out/compare-<timestamp>.html for several)")
    p.set_defaults(func=cmd_report)

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
