#!/usr/bin/env python3
"""bench/tls_compare.py: what TLS costs, on millipost and on Dovecot 2.3 from Debian, same run,
same certificate and key. Measured, never asserted; not run by CI.

    python3 bench/tls_compare.py                 # EC P-256 key, 5 s per measurement
    python3 bench/tls_compare.py --key rsa       # RSA 2048 (the server's signature dominates)
    python3 bench/tls_compare.py --quick         # about a minute

Figures, for each server:
- full TLS handshakes per second on the implicit-TLS IMAP port (993's role), measured with
  OpenSSL's own client, `openssl s_time -new` (a new session each time, no resumption), as many
  client processes as --clients; and the server's CPU per handshake;
- IMAP commands per second and server CPU per 1,000 commands of the simulator's webmail mix in
  closed loop without think time (bench/load_compare.py's closed-loop run), over plain IMAP,
  over implicit TLS (imaps://) and over STARTTLS (imap://...?starttls); every webmail session
  connects anew, so each one pays a handshake, as a webmail front end without connection reuse
  does.

Dovecot runs twice: with its defaults for the login processes (a new imap-login process per
connection, "high-security mode"), as it is deployed out of the box, and in its documented
"high-performance mode" (`service_count = 0`, one long-lived imap-login process per CPU handling
many connections), which is what a busy TLS site configures; its CPU is the master's and its
children's (reaped ones included). millipost runs in its own process
(bench/load_compare.py's child mode). Server, clients and this script share the machine: compare
ratios, not absolutes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from load_compare import (PASSWORD, MillipostProc, cpu_per_k, dovecot_master, fmt,  # noqa: E402
                          run_load, tree_cpu, webmail_profile)

S_TIME = re.compile(r"(\d+) connections in [\d.]+s")

#: Dovecot's login processes in high-performance mode (doc.dovecot.org, "Login processes").
DOVECOT_PERFORMANCE = f"""
service imap-login {{
  service_count = 0
  process_min_avail = {os.cpu_count() or 1}
}}
"""
#: The servers measured, in table order: (name, label).
SERVERS = [("millipost", "millipost"), ("dovecot", "Dovecot"),
           ("dovecot-perf", "Dovecot perf.")]


def make_certificate(work: str, key: str) -> tuple[str, str]:
    """A self-signed certificate for localhost and 127.0.0.1, shared by both servers."""
    cert, keyfile = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else \
        ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", keyfile, "-out", cert], check=True, capture_output=True)
    os.chmod(keyfile, 0o644)  # read by both servers' processes; a scratch key
    return cert, keyfile


def handshakes(port: int, clients: int, seconds: float, pids: list[int],
               tls_version: str | None) -> dict:
    """Full handshakes per second with `clients` parallel `openssl s_time -new` processes."""
    cmd = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time",
           str(max(1, round(seconds)))]
    if tls_version:
        cmd.append({"1.2": "-tls1_2", "1.3": "-tls1_3"}[tls_version])
    cpu0 = tree_cpu(pids)
    t0 = time.monotonic()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(clients)]
    outs = [p.communicate() for p in procs]
    wall = time.monotonic() - t0
    cpu = tree_cpu(pids) - cpu0
    total = 0
    for out, err in outs:
        m = S_TIME.search(out)
        if not m:
            raise RuntimeError(f"openssl s_time gave no count: {out[-300:]} {err[-300:]}")
        total += int(m.group(1))
    return {"handshakes": total, "seconds": wall, "per_second": total / wall,
            "server_cpu_s": cpu, "cpu_ms_per_handshake": cpu * 1000 / total if total else None,
            "command": " ".join(cmd) + f"  (x{clients})"}


def imap_runs(name: str, plain: int, imaps: int, args, pids: list[int], pid, log) -> dict:
    out = {}
    for label, url in (("plain", f"imap://127.0.0.1:{plain}"),
                       ("imaps", f"imaps://127.0.0.1:{imaps}"),
                       ("starttls", f"imap://127.0.0.1:{plain}?starttls")):
        r = run_load(url, args.users, args.seed, args.seconds, pids, pid, mode="closed",
                     sessions=args.sessions, profile=webmail_profile(0.0))
        r["cpu_ms_per_1000"] = cpu_per_k(r)
        out[label] = r
        log(f"  {name} {label:9}: {r['per_second']:7.0f} commands/s, "
            f"{r['sessions']} sessions, server CPU {fmt(r['cpu_ms_per_1000'])} ms/1000, "
            f"p99 {fmt(r['p99_ms'])} ms, errors {r['errors']}, breaches {r['breaches']}")
        if r["errors"]:
            log(f"    errors: {r['errors_by_kind']}")
    return out


def measure(name: str, args, work: str, tls: tuple[str, str], log) -> dict:
    import millipost

    log(f"{name}: starting, {args.users} users x {args.messages} messages")
    res: dict = {}
    if name == "millipost":
        srv = MillipostProc(work, args.users, args.messages, args.seed, tls=tls)
        pids, pid, plain, imaps = srv.pids(), srv.pid, srv.imap_port, srv.imaps_port
    else:
        from peers import DovecotPeer

        from millipost.provision import populate_over_protocol

        srv = DovecotPeer(users=[(f"user{i}", PASSWORD) for i in range(args.users)],
                          workdir=os.path.join(work, name), tls=tls,
                          extra_conf=DOVECOT_PERFORMANCE if name == "dovecot-perf" else "")
        srv.start()
        pop = millipost.Population(args.seed, args.users, password=PASSWORD)
        if args.messages:
            populate_over_protocol(f"imap://127.0.0.1:{srv.imap_port}", pop,
                                   messages=args.messages, parallel=4)
        master = dovecot_master(srv.dir)
        pids, pid, plain, imaps = srv.pids(), master, srv.imap_port, srv.imaps_port
    try:
        for v in args.tls_versions:
            h = handshakes(imaps, args.clients, args.seconds, pids if name == "millipost"
                           else srv.pids(), v)
            res[f"handshakes_tls{v}"] = h
            log(f"  {name} TLS {v} handshakes: {h['per_second']:7.0f}/s, server CPU "
                f"{fmt(h['cpu_ms_per_handshake'], 2)} ms each")
        res["imap"] = imap_runs(name, plain, imaps, args,
                                pids if name == "millipost" else srv.pids(), pid, log)
    finally:
        srv.stop()
    return res


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "–"


def table(results: dict, args) -> str:
    names = [(n, label) for n, label in SERVERS if n in results]
    others = [(n, label) for n, label in names if n != "millipost"]
    m = results.get("millipost", {})
    rows = [("figure", *[label for _, label in names],
             *[f"vs {label}" for _, label in others if "millipost" in results])]

    def add(title, get, digits, higher_is_better=True):
        vals = [get(results[n]) for n, _ in names]
        cells = [fmt(v, digits) for v in vals]
        if "millipost" in results:
            a = get(m)
            for n, _ in others:
                b = get(results[n])
                cells.append(ratio(a, b) if higher_is_better else ratio(b, a) + " less")
        rows.append((title, *cells))

    for v in args.tls_versions:
        k = f"handshakes_tls{v}"
        add(f"TLS {v} handshakes/s ({args.clients} s_time clients)",
            lambda r: r.get(k, {}).get("per_second"), 0)
        add(f"  server CPU ms per TLS {v} handshake",
            lambda r: r.get(k, {}).get("cpu_ms_per_handshake"), 2, False)
    for label in ("plain", "imaps", "starttls"):
        add(f"IMAP commands/s, webmail closed loop, {label}",
            lambda r: r.get("imap", {}).get(label, {}).get("per_second"), 0)
        add(f"  server CPU ms per 1,000 commands, {label}",
            lambda r: r.get("imap", {}).get(label, {}).get("cpu_ms_per_1000"), 1, False)
    add("imaps throughput as a share of plain (%)",
        lambda r: share(r.get("imap", {}), "imaps", "plain"), 0)
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(f"{r[0]:<{w[0]}}" + "".join(f"  {c:>{w[i + 1]}}" for i, c in
                                                  enumerate(r[1:])) for r in rows)


def share(imap: dict, a: str, b: str) -> float | None:
    x, y = imap.get(a, {}).get("per_second"), imap.get(b, {}).get("per_second")
    return 100.0 * x / y if x and y else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 s runs, few users")
    ap.add_argument("--seconds", type=float, help="length of each measurement (default 5)")
    ap.add_argument("--clients", type=int, default=2, help="parallel s_time processes")
    ap.add_argument("--sessions", type=int, default=8, help="closed-loop IMAP sessions")
    ap.add_argument("--users", type=int, help="users (default 20)")
    ap.add_argument("--messages", type=int, help="messages per user before the runs (20)")
    ap.add_argument("--key", choices=["ec", "rsa"], default="ec",
                    help="EC P-256 (what `millipost-server cert --self-signed` makes) or RSA 2048")
    ap.add_argument("--tls", choices=["1.2", "1.3", "both"], default="both",
                    help="TLS versions of the handshake runs")
    ap.add_argument("--only", choices=[n for n, _ in SERVERS])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    q = args.quick
    args.seconds = args.seconds or (2.0 if q else 5.0)
    args.users = args.users or (10 if q else 20)
    args.messages = args.messages if args.messages is not None else (10 if q else 20)
    args.tls_versions = ["1.2", "1.3"] if args.tls == "both" else [args.tls]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def log(s: str) -> None:
        print(s, flush=True)

    work = tempfile.mkdtemp(prefix="millipost-tls-")
    os.chmod(work, 0o755)  # Dovecot's auth process reads its passwd file below it
    results: dict = {"config": {k: v for k, v in vars(args).items()},
                     "openssl": subprocess.run(["openssl", "version"], capture_output=True,
                                               text=True).stdout.strip(),
                     "loadavg_before": os.getloadavg()}
    try:
        tls = make_certificate(work, args.key)
        for name, _ in SERVERS:
            if args.only in (None, name):
                results[name] = measure(name, args, work, tls, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["loadavg_after"] = os.getloadavg()
    print()
    print(f"{results['openssl']}; {args.key} key; load average before "
          f"{results['loadavg_before'][0]:.2f}, after {results['loadavg_after'][0]:.2f}")
    print(table(results, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
