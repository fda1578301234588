"""Source spreading (the engine's ``spread_sources``) beyond the ephemeral port range, proved in
a private network namespace: there the port range is cut to 200 ports, and 600 IMAP sessions
held open in IDLE against one reference server must all connect when each connection binds its
own loopback source address (127.0.0.1, .2, ...; the kernel picks the port per 4-tuple at
connect time, IP_BIND_ADDRESS_NO_PORT), while without spreading connects past the range fail
with EADDRNOTAVAIL. Needs ``unshare -n`` (root, or user namespaces): where it is not possible
the test fails, it does not skip, since a skipped proof proves nothing."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

SESSIONS = 600
PORTS = (40000, 40199)  # 200 ephemeral ports

SCRIPT = textwrap.dedent(f"""
    import json, subprocess, sys
    import millipost
    from millipost import _core
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
        f.write("{PORTS[0]} {PORTS[1]}")
    out = {{"range": open("/proc/sys/net/ipv4/ip_local_port_range").read().split()}}
    with millipost.Server(max_connections=4 * {SESSIONS},
                          max_connections_per_address=0) as server:
        server.provision(millipost.Population(3, 50, password="pw"))
        # Mobile sessions holding IDLE for about a minute: all {SESSIONS} stay open at once.
        mobile = {{"kind": "mobile", "think_ms": 1, "actions_mean": 1, "idle_seconds": 60,
                   "idle_max_seconds": 60, "qresync": False, "commands": {{"idle": 1}}}}
        for spread in (True, False):
            r = _core.run_load({{
                "targets": [f"imap://127.0.0.1:{{server.imap_port}}"], "users": 50, "seed": 3,
                "password": "pw", "mode": "closed", "sessions": {SESSIONS}, "duration": 4.0,
                "verify": False, "spread_sources": spread, "behaviours": [mobile],
                "timeout": 20}})
            out[str(spread).lower()] = {{
                "errors": r["errors"], "breaches": len(r["breaches"]),
                "idle": r["commands"].get("IMAP IDLE", {{}}).get("count", 0),
                "active": max(t["sessions_active"] for t in r["timeline"]),
                "stuck": len(r["stuck"])}}
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def namespace_run():
    unshare = shutil.which("unshare")
    assert unshare, "unshare(1) is missing: this test needs a private network namespace"
    p = subprocess.run([unshare, "-n", sys.executable, "-c", SCRIPT], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, f"the namespace run failed ({p.returncode}):\n{p.stderr[-3000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_namespace_has_the_small_port_range(namespace_run):
    assert namespace_run["range"] == [str(PORTS[0]), str(PORTS[1])]


def test_spread_sources_hold_more_connections_than_ephemeral_ports(namespace_run):
    r = namespace_run["true"]
    assert r["errors"] == {} and r["breaches"] == 0 and r["stuck"] == 0, r
    # Every session connected, logged in and entered IDLE, all open at the same time: three
    # times what one source address has ports for.
    assert r["idle"] >= SESSIONS and r["active"] == SESSIONS, r


def test_without_spreading_connects_fail_past_the_port_range(namespace_run):
    r = namespace_run["false"]
    assert r["errors"].get("connect: Cannot assign requested address", 0) > 0, r["errors"]
    assert set(r["errors"]) == {"connect: Cannot assign requested address"}, r["errors"]
    # No more sessions got to IDLE than there are ports (a few ended and freed theirs).
    assert r["idle"] < SESSIONS // 2, r
