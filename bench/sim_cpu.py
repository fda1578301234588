#!/usr/bin/env python3
"""bench/sim_cpu.py: the load simulator's own CPU per 1,000 commands, with the contract checker
on and off, against Dovecot (Debian's, a private instance) or the reference server, and Dovecot's
imaptest in stress mode against the same Dovecot for comparison. Not run by CI.

    python3 bench/sim_cpu.py --imaptest /path/to/imaptest          # Dovecot, both tools
    python3 bench/sim_cpu.py --target millipost                     # the reference server

The simulator runs the webmail profile in closed loop without think time (bench/load_compare.py's
closed-loop run) and reports results["engine"]: getrusage of its own threads (user + system), so
the server's CPU never counts even when it runs in this process. imaptest's figure is its
RUSAGE_CHILDREN over the same number of seconds and clients.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

PASSWORD = "pass"


def sim_run(port: int, users: int, sessions: int, seconds: float, seed: int,
            contracts: bool) -> dict:
    from load_compare import webmail_profile

    from millipost import _core
    from millipost.loadsim import build_config, engine_config

    cfg = build_config([f"imap://127.0.0.1:{port}"], users=users, duration=seconds, seed=seed,
                       profile=webmail_profile(0.0), mode="closed", sessions=sessions,
                       password=PASSWORD)
    cfg = engine_config(cfg)
    cfg["contracts"] = contracts
    r = _core.run_load(cfg, None)
    t, eng = r["totals"], r["engine"]
    return {"commands": t["commands"], "errors": t["errors"], "breaches": t["contract_breaches"],
            "violations": t["oracle_violations"], "cpu_s": eng["cpu_seconds"],
            "per_second": t["commands"] / r["seconds"],
            "cpu_ms_per_1000": eng["cpu_ms_per_1000_commands"], "errors_by_kind": r["errors"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=["dovecot", "millipost"], default="dovecot")
    ap.add_argument("--imaptest", default=os.environ.get("IMAPTEST"),
                    help="Dovecot's imaptest binary (Dovecot target only)")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--messages", type=int, default=40, help="messages per user beforehand")
    ap.add_argument("--sessions", type=int, default=8,
                    help="closed-loop sessions, imaptest clients")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each simulator variant")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--contracts", choices=["both", "on", "off"], default="both")
    args = ap.parse_args()

    import millipost

    work = tempfile.mkdtemp(prefix="millipost-simcpu-")
    os.chmod(work, 0o755)  # Dovecot's auth process reads its passwd file below it
    pop = millipost.Population(args.seed, args.users, password=PASSWORD)
    srv = None
    rows = []
    try:
        if args.target == "dovecot":
            from millipost.peers import DovecotPeer
            from millipost.provision import populate_over_protocol

            srv = DovecotPeer(users=[(f"user{i}", PASSWORD) for i in range(args.users)],
                              workdir=os.path.join(work, "dovecot"))
            srv.start()
            populate_over_protocol(f"imap://127.0.0.1:{srv.imap_port}", pop,
                                   messages=args.messages, parallel=4)
        else:
            srv = millipost.Server(data_dir=os.path.join(work, "millipost"),
                                   domains=["localhost"])
            srv.provision(pop)
            if args.messages:
                srv.populate_mailboxes(pop, messages=args.messages)
        port = srv.imap_port
        for contracts in {"both": (True, False), "on": (True,), "off": (False,)}[args.contracts]:
            for _ in range(args.repeat):
                r = sim_run(port, args.users, args.sessions, args.seconds, args.seed, contracts)
                label = f"simulator, contracts {'on' if contracts else 'off'}"
                rows.append((label, r))
                print(f"{label:30} {r['commands']:7} commands {r['per_second']:7.0f}/s "
                      f"{r['cpu_s']:6.2f} s CPU {r['cpu_ms_per_1000']:7.1f} ms/1000 "
                      f"(errors {r['errors']}, breaches {r['breaches']}, violations "
                      f"{r['violations']})", flush=True)
                if r["errors"]:
                    print(f"  errors: {r['errors_by_kind']}", flush=True)
        if args.target == "dovecot" and args.imaptest:
            from load_compare import imaptest_cpu

            mbox = os.path.join(work, "stress.mbox")
            subprocess.run([sys.executable, os.path.join(HERE, "make_mbox.py"), "--messages",
                            "200", "--out", mbox], check=True, capture_output=True)
            it = imaptest_cpu(args.imaptest, port, args.users, args.sessions, int(args.seconds),
                              mbox)
            rows.append(("imaptest", {**it}))
            print(f"{'imaptest':30} {it['commands']:7} commands {it['per_second']:7.0f}/s "
                  f"{it['cpu_s']:6.2f} s CPU {it['cpu_ms_per_1000']:7.1f} ms/1000 "
                  f"(errors {it['errors']})", flush=True)
    finally:
        if srv is not None:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    it = next((r for label, r in rows if label == "imaptest"), None)
    if it and it.get("cpu_ms_per_1000"):
        for label, r in rows:
            if label != "imaptest":
                print(f"  {label}: {r['cpu_ms_per_1000'] / it['cpu_ms_per_1000']:.2f}x imaptest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
