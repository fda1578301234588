#!/usr/bin/env python3
"""properties/faults/score.py: how many seeded faults does the conformance suite catch?

Copies the repository's sources to a scratch directory, builds ``millipost-server`` there, and
for each fault of ``faults.toml``: applies it, rebuilds, starts the faulty server on loopback,
runs ``millipost conform`` against it for IMAP, POP3 and SMTP (scenarios, plus the model-based
part when the installed ``millipost`` offers it), restores the source and records whether any
case that passed on the unmodified server now fails. Prints, per fault, the cases that caught
it and the size of the smallest counterexample (client commands up to the failing step for a
scenario; shrunk steps for a model), then the score.

    python3 properties/faults/score.py                # every fault
    python3 properties/faults/score.py --only missing-expunge --keep

It needs the ``millipost`` Python package installed (it is the suite under test) and the build
tools of scripts/install-deps.sh. It is deliberately not part of the ordinary test run: each
fault costs a rebuild of one source file and a relink. The repository itself is never modified.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
USERS = [("testuser1", "pass"), ("testuser2", "pass")]
PROTOCOLS = ("imap", "pop3", "smtp")


def log(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_sources(repo: str, dest: str) -> None:
    """The files git knows about plus untracked, not ignored ones: the working tree as it is.

    Copied over the previous scratch copy (its build directory stays, for incremental builds)."""
    out = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], check=True, capture_output=True).stdout
    for rel in filter(None, out.decode().split("\0")):
        src = os.path.join(repo, rel)
        if not os.path.isfile(src):
            continue  # deleted in the working tree
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)


def build(src: str, build_dir: str, jobs: int) -> tuple[bool, str]:
    # The build directory sits inside the copy as it does in a developer's tree, so with a
    # base directory ccache sees the same relative paths and reuses their objects.
    env = {**os.environ, "CCACHE_BASEDIR": os.path.dirname(src), "CCACHE_NOHASHDIR": "1"}
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        r = subprocess.run(["cmake", "-S", src, "-B", build_dir, "-G", "Ninja",
                            "-DMILLIPOST_PYTHON=OFF", "-DMILLIPOST_TESTS=OFF",
                            "-DMILLIPOST_WERROR=ON"],
                           capture_output=True, text=True, env=env)
        if r.returncode:
            return False, r.stdout + r.stderr
    r = subprocess.run(["nice", "ninja", "-C", build_dir, f"-j{jobs}", "millipost-server"],
                       capture_output=True, text=True, env=env)
    return r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]


class FaultyServer:
    """The scratch build of millipost-server on fresh ports with a fresh data directory."""

    def __init__(self, exe: str, work: str):
        self.exe, self.data = exe, os.path.join(work, "data")
        self.ports = {p: free_port() for p in PROTOCOLS}

    def __enter__(self) -> "FaultyServer":
        shutil.rmtree(self.data, ignore_errors=True)
        os.makedirs(self.data)
        for login, password in USERS:
            subprocess.run([self.exe, "--data", self.data, "user", "add", login, "-p", password],
                           check=True, capture_output=True)
        self.proc = subprocess.Popen(
            [self.exe, "--data", self.data, "--listen", "127.0.0.1", "--hostname", "localhost",
             "--smtp", str(self.ports["smtp"]), "--pop3", str(self.ports["pop3"]),
             "--imap", str(self.ports["imap"]), "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        for port in self.ports.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"millipost-server did not listen on {port}")
                    time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def millipost_cli() -> list[str]:
    exe = shutil.which("millipost")
    return [exe] if exe else [sys.executable, "-m", "millipost.cli"]


def models_available() -> bool:
    try:
        from millipost.conform import _check_binary
        _check_binary()
        return True
    except Exception:
        return False


def client_steps_until(scenario_id: str, line: int) -> int:
    """Client commands a scenario sends up to (and including the step at) ``line``."""
    try:
        from millipost import scenarios as sc
    except ImportError:
        return 0
    for s in sc.discover(None, [scenario_id]):
        if s.id == scenario_id:
            return sum(1 for st in s.steps if st.kind == "send" and (not line or st.line <= line))
    return 0


def run_suite(server: FaultyServer, work: str, timeout: float, models: int) -> dict:
    """Runs conform for every protocol; returns {case id: {"status", "message", "size"}}."""
    cases = {}
    host = "127.0.0.1"
    smtp_url = f"smtp://{host}:{server.ports['smtp']}"
    (u1, p1), (u2, p2) = USERS
    for proto in PROTOCOLS:
        out = os.path.join(work, f"conform-{proto}.json")
        if os.path.exists(out):
            os.remove(out)
        cmd = [*millipost_cli(), "conform", f"{proto}://{u1}:{p1}@{host}:{server.ports[proto]}",
               "--user", f"{u2}:{p2}", "--smtp", smtp_url, "--json", out,
               "--timeout", str(timeout)]
        try:
            subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            cases[f"{proto}/(whole run)"] = {"status": "FAIL", "message": "run timed out",
                                              "size": 0}
            continue
        if not os.path.exists(out):
            cases[f"{proto}/(whole run)"] = {"status": "FAIL", "message": "no report written",
                                              "size": 0}
            continue
        with open(out, encoding="utf-8") as f:
            report = json.load(f)
        for r in report.get("results", []):
            size = client_steps_until(r["id"], r.get("line", 0)) if r["status"] == "FAIL" else 0
            cases[r["id"]] = {"status": r["status"], "message": r.get("message", ""), "size": size}
    if models:  # the model-based part: millipost-check through millipost.conform.run_models
        from millipost.conform import ConformError, run_models

        url = f"imap://{u1}:{p1}@{host}:{server.ports['imap']}"
        for model in ("imap", "imap-multi"):
            try:
                res = run_models(url, users=[f"{u2}:{p2}"], models=[model], runs=models,
                                 timeout=300)
            except ConformError as e:
                cases[f"model/{model}"] = {"status": "FAIL", "message": str(e), "size": 0}
                continue
            for m in res.get("results", []):
                failure = m.get("failure") or {}
                cases[f"model/{m.get('model')}"] = {
                    "status": "PASS" if m.get("passed") else "FAIL",
                    "message": failure.get("message", ""), "size": failure.get("size", 0)}
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faults", default=os.path.join(HERE, "faults.toml"))
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                   "millipost-faults"),
                    help="scratch directory (sources, build, data); reused for ccache hits")
    ap.add_argument("--only", action="append", metavar="ID", help="run only this fault")
    ap.add_argument("--jobs", type=int, default=2, help="build parallelism (default 2)")
    ap.add_argument("--timeout", type=float, default=3.0,
                    help="seconds one server reply may take in conform (default 3)")
    ap.add_argument("--models", type=int, default=100, metavar="RUNS",
                    help="cases per IMAP model (millipost-check, when installed; 0 = off; default 100)")
    ap.add_argument("--json", metavar="FILE", help="write the score and details as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()

    with open(args.faults, "rb") as f:
        faults = tomllib.load(f)["fault"]
    if args.only:
        unknown = set(args.only) - {f["id"] for f in faults}
        if unknown:
            ap.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
        faults = [f for f in faults if f["id"] in args.only]
    models = args.models if args.models and models_available() else 0

    src = os.path.join(args.work, "src")
    build_dir = os.path.join(src, "build")
    log(f"scratch copy of {REPO} in {src}")
    copy_sources(REPO, src)
    exe = os.path.join(build_dir, "server", "millipost-server")

    for fault in faults:  # every fault must still apply before anything is built
        text = open(os.path.join(src, fault["file"]), encoding="utf-8").read()
        if text.count(fault["find"]) != 1:
            log(f"fault {fault['id']}: `find` occurs {text.count(fault['find'])} times in "
                f"{fault['file']} (must be once); update faults.toml")
            return 2

    log("building the unmodified server ...")
    ok, out = build(src, build_dir, args.jobs)
    if not ok:
        log(out)
        return 2
    log("baseline: the suite against the unmodified server ...")
    with FaultyServer(exe, args.work) as server:
        baseline = run_suite(server, args.work, args.timeout, models)
    broken = sorted(k for k, v in baseline.items() if v["status"] == "FAIL")
    if broken:
        log(f"  {len(broken)} case(s) fail without any fault and are left out: {', '.join(broken)}")
    log(f"  {sum(v['status'] == 'PASS' for v in baseline.values())} cases pass"
        + (f" (models: {models} runs each)" if models else " (no model-based part available)"))

    rows = []
    for n, fault in enumerate(faults, 1):
        path = os.path.join(src, fault["file"])
        original = open(path, encoding="utf-8").read()
        log(f"[{n}/{len(faults)}] {fault['id']}: {fault['title']}")
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original.replace(fault["find"], fault["replace"], 1))
            ok, out = build(src, build_dir, args.jobs)
            if not ok:
                log(f"  does not build:\n{out}")
                rows.append({**fault, "caught": False, "error": "build failed", "by": []})
                continue
            with FaultyServer(exe, args.work) as server:
                cases = run_suite(server, args.work, args.timeout, models)
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)
        by = sorted((k for k, v in cases.items()
                     if v["status"] == "FAIL" and baseline.get(k, {}).get("status") != "FAIL"),
                    key=lambda k: (cases[k]["size"] or 10**9, k))
        smallest = cases[by[0]]["size"] if by else None
        rows.append({**fault, "caught": bool(by), "by": by, "smallest": smallest,
                     "details": {k: cases[k] for k in by}})
        if by:
            log(f"  CAUGHT by {len(by)} case(s): {', '.join(by[:6])}{' ...' if len(by) > 6 else ''}")
            log(f"  smallest counterexample: {smallest} client command(s) ({by[0]}: "
                f"{cases[by[0]]['message'][:160]})")
        else:
            log("  MISSED")

    log("build restored to the unmodified sources")
    build(src, build_dir, args.jobs)
    caught = sum(r["caught"] for r in rows)
    log("")
    log(f"{'fault':34} {'caught':7} {'cases':>5} {'smallest':>8}")
    for r in rows:
        log(f"{r['id']:34} {'yes' if r['caught'] else 'NO':7} {len(r['by']):5} "
            f"{r.get('smallest') if r.get('smallest') is not None else '-':>8}")
    log(f"score: {caught} of {len(rows)} seeded faults caught")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"caught": caught, "faults": len(rows), "models": models,
                       "baseline_failures": broken, "results": rows}, f, indent=2)
    if not args.keep:
        shutil.rmtree(os.path.join(args.work, "data"), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
