"""Several engine processes for one run (``workers``, pybindings/millipost/loadworkers.py):
the engine's partition (user i belongs to worker i % N), the merge of the workers' results, and
a run of two workers against the reference server that verifies clean."""
from __future__ import annotations

import sys

import pytest

import millipost
from millipost import _core, loadworkers

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_load_engine import PASSWORD, SEED, behaviours, config  # noqa: E402

USERS = 12


@pytest.fixture(scope="module")
def server():
    with millipost.Server() as s:
        s.provision(millipost.Population(SEED, USERS, password=PASSWORD))
        yield s


def test_a_worker_sends_and_reads_only_within_its_partition(server):
    cfg = config(server, users=USERS, duration=1.5, mode="closed", sessions=3, think_ms=None,
                 idle_seconds=None, behaviours=behaviours(sender=2, mx=1), worker=1, workers=3)
    r = _core.run_load(cfg)
    assert r["errors"] == {} and r["violations"] == []
    t = r["totals"]
    assert t["messages_delivered"] > 0 and t["messages_verified"] == t["messages_delivered"]
    assert r["config"]["worker"] == 1 and r["config"]["workers"] == 3
    mail = {i: len(server.mailbox_uids(f"user{i}")) for i in range(USERS)}
    assert all(n == 0 for i, n in mail.items() if i % 3 != 1), mail  # not worker 1's users
    assert sum(mail.values()) > 0, mail


def test_engine_refuses_a_worker_outside_its_count(server):
    with pytest.raises(ValueError, match="worker must be below workers"):
        _core.run_load(config(server, users=USERS, worker=2, workers=2))
    with pytest.raises(ValueError, match="users at least workers"):
        _core.run_load(config(server, users=2, workers=3))


def test_merging_results_keeps_their_quantiles(server):
    r = _core.run_load(config(server, users=USERS, duration=1.0, mode="closed", sessions=3,
                              think_ms=None, idle_seconds=None,
                              behaviours=behaviours(webmail=2, sender=1)))
    m = loadworkers.merge([r])
    assert m["totals"] == r["totals"] and m["commands"] == r["commands"]
    # Two copies: every count doubles, the quantiles stay (recomputed from the merged buckets,
    # within a bucket's width: 1/16 of the value).
    m = loadworkers.merge([r, r])
    assert m["totals"]["commands"] == 2 * r["totals"]["commands"]
    for verb, c in r["commands"].items():
        got = m["commands"][verb]
        assert got["count"] == 2 * c["count"]
        assert [n for _, n in got["histogram"]["counts"]] == [
            2 * n for _, n in c["histogram"]["counts"]]
        for q in ("p50", "p90", "p99", "p999", "max"):
            want = c["latency_us"][q]
            assert abs(got["latency_us"][q] - want) <= max(1, want / 16), (verb, q)


def test_merge_adds_counts_histograms_and_timelines():
    def result(n, lat, errors, t0_cmds):
        return {"totals": {"sessions": n, "commands": n * 10, "errors": errors,
                           "contract_breaches": 0, "oracle_violations": 1,
                           "messages_delivered": n, "messages_verified": n},
                "commands": {"IMAP LOGIN": {"count": n, "errors": 0,
                                            "latency_us": {"max": lat, "mean": float(lat)},
                                            "histogram": {"scheme": "log-linear",
                                                          "sub_buckets": 16,
                                                          "counts": [[lat, n]]}}},
                "timeline": [{"t": 0.0, "commands": t0_cmds, "errors": 0, "sessions_active": n,
                              "p50_us": lat, "p99_us": lat}],
                "errors": {"timeout": errors}, "refusals": {},
                "violations": [{"kind": "lost"}], "breaches": [], "stuck": [],
                "error_samples": [], "seconds": 2.0, "verification": "done",
                "config": {"mode": "closed", "sessions": n, "worker": 0, "workers": 2},
                "engine": {"io_threads": 2, "cpu_seconds": 1.0}, "interrupted": False}

    m = loadworkers.merge([result(3, 100, 1, 10), result(5, 1000, 2, 30)])
    assert m["totals"]["sessions"] == 8 and m["totals"]["commands"] == 80
    assert m["errors"] == {"timeout": 3} and len(m["violations"]) == 2
    login = m["commands"]["IMAP LOGIN"]
    assert login["count"] == 8 and login["latency_us"]["max"] == 1000
    assert sum(n for _, n in login["histogram"]["counts"]) == 8
    assert login["latency_us"]["p50"] >= 992  # 5 of 8 samples are in the 1000 µs bucket
    assert login["latency_us"]["mean"] == pytest.approx((3 * 100 + 5 * 1000) / 8)
    (row,) = m["timeline"]
    assert row["commands"] == 40 and row["sessions_active"] == 8 and row["p99_us"] == 1000
    assert m["config"]["workers"] == 2 and m["config"]["sessions"] == 8
    assert "worker" not in m["config"] and m["engine"]["workers"] == 2


def test_two_worker_processes_run_one_verified_run(server):
    prof = {"profiles": {"webmail": {"think_time_s": 0.01, "think_time_max_s": 0.05},
                         "mobile": {"weight": 0}, "pop3": {"think_time_s": 0.01},
                         "sender": {"think_time_s": 0.01}, "mx": {"weight": 0}}}
    targets = [f"imap://127.0.0.1:{server.imap_port}", f"pop3://127.0.0.1:{server.pop3_port}",
               f"smtp://127.0.0.1:{server.smtp_port}"]
    r = millipost.load(targets, users=USERS, duration=2.0, seed=SEED, password=PASSWORD,
                       mode="closed", sessions=4, profile=prof, workers=2, progress=False)
    t = r.totals
    assert r.ok and r["errors"] == {}, (r["errors"], r["violations"][:2])
    assert len(r["workers"]) == 2 and all(w["sessions"] > 0 for w in r["workers"])
    assert t["sessions"] == sum(w["sessions"] for w in r["workers"])
    assert t["messages_delivered"] > 0 and t["messages_verified"] == t["messages_delivered"]
    assert r.config["workers"] == 2 and r.config["engine"]["workers"] == 2
    assert t["commands"] == sum(c["count"] for c in r.commands.values())


def test_workers_are_validated():
    with pytest.raises(millipost.LoadError, match="workers"):
        millipost.loadsim.build_config(["imap://h:1", "pop3://h:2", "smtp://h:3"], users=2,
                                       workers=3)
    with pytest.raises(millipost.LoadError, match="sessions .* at least workers"):
        millipost.loadsim.build_config(["imap://h:1", "pop3://h:2", "smtp://h:3"], users=20,
                                       mode="closed", sessions=2, workers=3)
