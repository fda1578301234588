"""The load simulator's Python side: profiles, millipost.load(), the `load` and `report`
commands, the terminal and HTML reports (docs/load.md).

Two kinds of results appear here, and they are kept apart on purpose:
- RENDERING FIXTURES (`fixture_results`): results dicts built in this file following the
  results schema (docs/load.md, "Results JSON"), to test the reports and `millipost report`
  without the engine. They prove the reports render what the schema holds, not that the engine
  measures anything.
- The END-TO-END test (`test_load_reference_end_to_end`) runs the real engine
  (`_core.run_load`) against the in-process reference server. It fails, with a message saying
  so, in a build without the engine.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import socket
import subprocess
import sys

import pytest

import millipost
from millipost import _core, load_report, profile as prof, svgplot
from millipost.loadsim import (LiveStatus, LoadError, Results, build_config, engine_config,
                               parse_duration)

#: The configuration keys the engine accepts (sim/engine.cpp, parse_config: it rejects others).
ENGINE_KEYS = {"targets", "mode", "users", "rate_per_user_per_hour", "sessions", "duration",
               "max_sessions", "max_commands", "seed", "run_id", "io_threads", "password",
               "domain", "prefix", "behaviours", "profiles", "think_ms", "idle_seconds",
               "timeout", "messages_per_session", "contracts", "contract_sample",
               "contracts_dir", "target_pid", "verify", "verify_bytes", "spread_sources",
               "session_timeout", "closed_restart", "message", "worker", "workers"}

COMMANDS = {
    "IMAP LOGIN": (900, 0.6), "IMAP SELECT": (700, 0.8), "IMAP UID FETCH": (4000, 1.5),
    "IMAP IDLE": (300, 0.4), "POP3 RETR": (500, 2.0), "SMTP DATA": (800, 4.0),
}


def tool(name: str) -> str:
    path = shutil.which(name) or os.path.join(os.path.dirname(sys.executable), name)
    assert os.access(path, os.X_OK), f"{name} is not installed on PATH"
    return path


def run(*argv: str, timeout: float = 120, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd)


# --- rendering fixtures ---------------------------------------------------------------------

def bucket_lower(us: int, sub: int = 16) -> int:
    """The log-linear bucket (docs/load.md) a latency falls in: exact below `sub` µs, then each
    [2^k, 2^(k+1)) in `sub` equal parts."""
    if us < sub:
        return us
    width = 2 ** (us.bit_length() - 1) // sub
    return us // width * width


def fixture_results(seed: int = 7, speed: float = 1.0, seconds: int = 10,
                    violations: int = 0) -> dict:
    """A RENDERING FIXTURE following the results schema (not produced by the engine)."""
    rng = random.Random(seed)
    commands, all_samples = {}, []
    for name, (count, median_ms) in COMMANDS.items():
        samples = sorted(max(1, int(rng.lognormvariate(math.log(median_ms * 1000 / speed), 0.7)))
                         for _ in range(count))
        all_samples += samples
        buckets: dict[int, int] = {}
        for s in samples:
            buckets[bucket_lower(s)] = buckets.get(bucket_lower(s), 0) + 1
        q = lambda p: samples[min(len(samples) - 1, int(p * len(samples)))]
        commands[name] = {
            "count": count, "errors": 3 if name == "SMTP DATA" else 0,
            "latency_us": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999),
                           "max": samples[-1], "mean": sum(samples) / len(samples)},
            "histogram": {"scheme": "log-linear", "sub_buckets": 16,
                          "counts": sorted([k, v] for k, v in buckets.items())}}
    total = sum(c["count"] for c in commands.values())
    timeline = [{"t": float(t), "commands": int(total // seconds * speed) + rng.randint(-50, 50),
                 "errors": rng.randint(0, 1), "sessions_active": 40 + t,
                 "p50_us": 900.0 / speed + t * 10, "p99_us": 9000.0 / speed + t * 50,
                 "target_cpu": 0.3 + 0.01 * t, "target_rss_bytes": (60 + t) * 1048576}
                for t in range(seconds)]
    config = build_config(["imap://127.0.0.1:1143", "pop3://127.0.0.1:1110",
                           "smtp://127.0.0.1:2525"], users=5000, duration=seconds, seed=seed)
    breaches = ([{"session": 17, "protocol": "imap", "who": "server", "rule": "tagged-response",
                  "state": "selected", "bytes": "* 3 FETCH (<script>", "reason": "bad token"}]
                if violations else [])
    viols = [{"kind": "lost", "user": f"user{i}", "mailbox": "INBOX",
              "message_id": f"{seed}.{i}", "detail": "acknowledged by SMTP, never seen <b>",
              "transcript": "C: a1 UID FETCH 1:* (BODY[])\nS: a1 OK"} for i in range(violations)]
    return {"tool": "millipost load", "version": 1, "seed": seed,
            "started": "2026-11-28T19:00:00Z", "seconds": float(seconds), "config": config,
            "totals": {"sessions": 420, "commands": total, "errors": 3 * bool(total) + 0,
                       "contract_breaches": len(breaches), "oracle_violations": violations,
                       "messages_delivered": 800, "messages_verified": 800 - violations},
            "commands": commands, "timeline": timeline,
            "errors": {"timeout": 2, "NO reply": 1},
            "breaches": breaches, "violations": viols,
            "target": {"pid": 4242, "cpu_seconds": 3.5, "max_rss_bytes": 70 * 1048576},
            "interrupted": False}


@pytest.fixture
def results_files(tmp_path):
    a, b = tmp_path / "millipost.json", tmp_path / "dovecot.json"
    a.write_text(json.dumps(fixture_results(seed=7, speed=1.0)))
    b.write_text(json.dumps(fixture_results(seed=7, speed=0.5)))
    return a, b


# --- profiles -------------------------------------------------------------------------------

def test_default_profile_is_the_documented_mix():
    p = prof.default()
    assert set(p["profiles"]) == {"webmail", "mobile", "pop3", "sender", "mx"}
    mix = prof.mix(p)
    assert math.isclose(sum(mix.values()), 1.0)
    assert all(v > 0 for v in mix.values())
    # Each user checks mail every 15 minutes on average.
    assert p["load"]["rate_per_user_per_hour"] == 4.0
    assert prof.protocols(p) == {"imap", "pop3", "smtp"}
    assert p["profiles"]["mobile"]["idle_hold_max_s"] <= 29 * 60  # RFC 2177


def write(tmp_path, text: str) -> str:
    path = tmp_path / "p.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text,message", [
    ("[lod]\nx = 1\n", "unknown key lod"),
    ("[profiles.webmail.commands]\nreed = 3\n", "profiles.webmail.commands.reed"),
    ("[profiles.pop3]\nidle_hold_s = 3\n", "unknown key profiles.pop3.idle_hold_s"),
    ("[load]\nrate_per_user_per_hour = -1\n", "load.rate_per_user_per_hour = -1 is out of range"),
    ("[message]\ntail_fraction = 1.5\n", "message.tail_fraction = 1.5 is out of range [0, 1]"),
    ("[message]\nsize_max_bytes = 'big'\n", "message.size_max_bytes must be an integer"),
    ("[profiles.sender]\npipelining = 1\n", "profiles.sender.pipelining must be true or false"),
    ("[profiles.heavy]\nweight = 3\n", "profiles.heavy needs kind"),
    ("[profiles.heavy]\nkind = 'imap'\n", "profiles.heavy.kind = 'imap' is not one of"),
    ("version = 2\n", "version = 2 is not supported"),
    ("[profiles.mobile]\nidle_hold_s = 100\nidle_hold_max_s = 10\n",
     "idle_hold_max_s must be at least idle_hold_s"),
    ("[profiles.webmail]\nweight=0\n[profiles.mobile]\nweight=0\n[profiles.pop3]\nweight=0\n"
     "[profiles.sender]\nweight=0\n[profiles.mx]\nweight=0\n", "every profile has weight 0"),
    ("[load\n", "not valid TOML"),
])
def test_profile_errors_name_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(prof.ProfileError) as e:
        prof.load(path)
    assert message in str(e.value)
    assert path in str(e.value)


def test_profile_missing_file():
    with pytest.raises(prof.ProfileError, match="cannot read"):
        prof.load("/nonexistent/profile.toml")


def test_profile_merges_over_default_and_custom_profiles_inherit_their_kind(tmp_path):
    p = prof.load(write(tmp_path, """
[load]
rate_per_user_per_hour = 12
[profiles.pop3]
weight = 0
[profiles.searcher]
kind = "webmail"
weight = 20
[profiles.searcher.commands]
search = 90
"""))
    assert p["load"]["rate_per_user_per_hour"] == 12.0
    assert p["load"]["reply_timeout_s"] == prof.default()["load"]["reply_timeout_s"]
    assert p["profiles"]["pop3"]["weight"] == 0
    s = p["profiles"]["searcher"]
    assert s["kind"] == "webmail" and s["weight"] == 20.0
    assert s["commands"]["search"] == 90.0
    # Unnamed keys come from the webmail profile.
    assert s["commands"]["read"] == p["profiles"]["webmail"]["commands"]["read"]
    assert s["think_time_s"] == p["profiles"]["webmail"]["think_time_s"]
    assert "pop3" not in prof.protocols({"profiles": {k: v for k, v in p["profiles"].items()
                                                      if k != "pop3"}})


def test_profile_dict_and_toml_round_trip():
    p = prof.load({"profiles": {"mx": {"weight": 50, "recipients_max": 3}}})
    assert p["profiles"]["mx"]["recipients_max"] == 3
    import tomllib
    assert prof.load(tomllib.loads(prof.to_toml(p))) == p


def test_example_profile_in_fixtures_is_valid():
    here = os.path.dirname(os.path.abspath(__file__))
    example = os.path.join(here, "..", "..", "fixtures", "load", "imap-heavy.toml")
    p = prof.load(example)
    assert p["profiles"]["pop3"]["weight"] == 0


# --- configuration --------------------------------------------------------------------------

@pytest.mark.parametrize("text,seconds", [(30, 30.0), ("30", 30.0), ("30s", 30.0),
                                          ("2.5m", 150.0), ("1h", 3600.0), ("1m30s", 90.0),
                                          ("500ms", 0.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "abc", "-3s", "0", "10 parsecs", "3x"])
def test_parse_duration_rejects(bad):
    with pytest.raises(LoadError):
        parse_duration(bad)


def test_build_config_open_loop_rate_is_the_populations():
    c = build_config(["imap://h:1", "pop3://h:2", "smtp://h:3"], users=900_000, duration="1m",
                     seed=3)
    assert c["mode"] == "open" and c["duration"] == 60.0 and c["seed"] == 3
    assert math.isclose(c["rate"], 900_000 * 4 / 3600)  # one session per user per 15 minutes
    assert c["profile"] == prof.default()
    json.dumps(c)  # the engine and the results carry it as JSON


def test_build_config_closed_loop_and_errors():
    t = ["imap://h:1", "pop3://h:2", "smtp://h:3"]
    c = build_config(t, users=10, mode="closed")
    assert c["sessions"] == 10 and c["rate"] is None
    with pytest.raises(LoadError, match="no pop3 target for the profiles pop3"):
        build_config(["imap://h:1", "smtp://h:3"])
    with pytest.raises(LoadError, match="scheme"):
        build_config(["http://h:1"])
    # TLS schemes stand for their protocols (test_load_tls.py runs them).
    c = build_config(["imaps://h:1", "pop3s://h:2", "submission://h:3"], auth="scram-sha-256")
    assert c["auth"] == "scram-sha-256" and c["tls_verify"] is False
    with pytest.raises(LoadError, match="no smtp target"):
        build_config(["imaps://h:1", "pop3s://h:2"])
    with pytest.raises(LoadError, match="auth must be one of"):
        build_config(t, auth="cram-md5")
    with pytest.raises(LoadError, match="sessions applies to closed-loop"):
        build_config(t, sessions=5)
    with pytest.raises(LoadError, match="rate applies to open-loop"):
        build_config(t, mode="closed", rate=5)
    with pytest.raises(LoadError, match="users"):
        build_config(t, users=0)
    # A profile without POP3 needs no POP3 target.
    c = build_config(["imap://h:1", "smtp://h:3"], profile={"profiles": {"pop3": {"weight": 0}}})
    assert c["profile"]["profiles"]["pop3"]["weight"] == 0


def test_engine_config_passes_each_behaviour_through():
    t = ["imap://h:1", "pop3://h:2", "smtp://h:3"]
    c = build_config(t, users=3600, seed=4, profile={"profiles": {
        "mx": {"weight": 5, "actions_mean": 3, "recipients_max": 4},
        "sender": {"weight": 15, "actions_mean": 3},
        "pop3": {"weight": 0},
        "extra": {"kind": "mobile", "weight": 10, "idle_hold_s": 100, "qresync": False}}})
    e = engine_config(c)
    assert set(e) <= ENGINE_KEYS
    assert "profiles" not in e and "think_ms" not in e  # the condensed first form is gone
    b = {x["name"]: x for x in e["behaviours"]}
    assert set(b) == {"webmail", "mobile", "sender", "mx", "extra"}  # weight 0 left out
    p = c["profile"]["profiles"]
    for name, x in b.items():
        assert x["kind"] == p[name]["kind"] and x["weight"] == p[name]["weight"]
        assert math.isclose(x["think_ms"], p[name]["think_time_s"] * 1000)
        assert math.isclose(x["think_max_ms"], p[name]["think_time_max_s"] * 1000)
    assert b["extra"]["idle_seconds"] == 100 and b["extra"]["qresync"] is False
    assert b["mobile"]["idle_seconds"] == p["mobile"]["idle_hold_s"]
    assert b["mobile"]["idle_max_seconds"] == p["mobile"]["idle_hold_max_s"]
    assert b["webmail"]["commands"] == p["webmail"]["commands"]
    assert b["webmail"]["actions_mean"] == p["webmail"]["actions_mean"]
    assert b["mx"]["messages_per_session"] == 3 and b["mx"]["recipients_max"] == 4
    assert b["sender"]["recipients_mean"] == p["sender"]["recipients_mean"]
    assert "commands" not in b["mx"]
    assert e["timeout"] == c["profile"]["load"]["reply_timeout_s"]
    assert math.isclose(e["rate_per_user_per_hour"], 4.0) and "sessions" not in e
    assert e["session_timeout"] == c["profile"]["load"]["session_timeout_s"]
    assert e["message"] == c["profile"]["message"] and "closed_restart" not in e
    # --rate becomes the per-user rate the engine multiplies back.
    e = engine_config(build_config(t, users=100, rate=5.0))
    assert math.isclose(e["rate_per_user_per_hour"] * 100 / 3600, 5.0)
    e = engine_config(build_config(t, users=100, mode="closed", sessions=7, profile={
        "load": {"closed_restart_s": 2.5}, "profiles": {"pop3": {"leave_on_server": 0.25}}}))
    assert e["sessions"] == 7 and "rate_per_user_per_hour" not in e
    assert e["closed_restart"] == 2.5
    assert {b["name"]: b for b in e["behaviours"]}["pop3"]["leave_on_server"] == 0.25
    assert set(e) <= ENGINE_KEYS


# --- millipost.load() with a stand-in engine ----------------------------------------------------
# FAKE ENGINE: these tests check the plumbing around _core.run_load (configuration passed,
# progress callback, Ctrl-C contract, files written), not the engine.

def fake_engine(calls: list, interrupt_at: int | None = None):
    def run_load(config, progress):
        calls.append((config, progress))
        interrupted = False
        for i in range(5):
            try:
                progress({"t": float(i), "totals": {"sessions": 10 * i, "commands": 100 * i,
                                                    "errors": 0}, "sessions_active": 3})
                if interrupt_at is not None and i == interrupt_at:
                    raise KeyboardInterrupt  # as Ctrl-C surfaces in the callback
            except KeyboardInterrupt:
                interrupted = True
                break
        r = fixture_results(seed=config["seed"])
        r["config"], r["interrupted"] = config, interrupted
        return r
    return run_load


def test_load_without_engine_fails_clearly(monkeypatch):
    monkeypatch.delattr(_core, "run_load", raising=False)
    with pytest.raises(LoadError, match=r"_core\.run_load is missing"):
        millipost.load(["imap://h:1", "pop3://h:2", "smtp://h:3"], duration=1)


def test_load_passes_config_and_writes_reports(monkeypatch, tmp_path):
    calls: list = []
    monkeypatch.setattr(_core, "run_load", fake_engine(calls), raising=False)
    r = millipost.load(["imap://h:1", "pop3://h:2", "smtp://h:3"], users=50, duration="2s",
                       seed=9, progress=False, json=tmp_path / "r.json",
                       html=tmp_path / "r.html")
    config, callback = calls[0]
    assert set(config) <= ENGINE_KEYS
    assert config["users"] == 50 and config["seed"] == 9 and config["duration"] == 2.0
    assert callback is not None  # always: Ctrl-C reaches the engine through it
    assert isinstance(r, Results) and r.ok and not r.interrupted
    # The results carry the whole configuration, and the engine's echo of its part.
    assert r.config["profile"] == prof.default() and r.config["engine"]["users"] == 50
    assert r.totals["commands"] == sum(c["count"] for c in r.commands.values())
    assert json.loads((tmp_path / "r.json").read_text())["seed"] == 9
    assert "IMAP UID FETCH" in (tmp_path / "r.html").read_text()


def test_load_interrupted_returns_partial_results(monkeypatch):
    monkeypatch.setattr(_core, "run_load", fake_engine([], interrupt_at=2), raising=False)
    r = millipost.load(["imap://h:1", "pop3://h:2", "smtp://h:3"], duration=5, progress=False)
    assert r.interrupted and r.ok


def test_load_reference_starts_and_provisions_the_server(monkeypatch):
    seen = {}

    def run_load(config, progress):
        seen["config"] = config
        port = int(config["targets"][0].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            seen["greeting"] = s.recv(100)
        return fixture_results(seed=config["seed"])

    monkeypatch.setattr(_core, "run_load", run_load, raising=False)
    r = millipost.load(reference=True, users=20, duration=1, progress=False)
    c = seen["config"]
    assert r.config["reference"] and c["target_pid"] == os.getpid()
    assert [t.split("://")[0] for t in c["targets"]] == ["imap", "pop3", "smtp"]
    assert seen["greeting"].startswith(b"* OK")


def test_load_engine_rejection_is_a_load_error(monkeypatch):
    def run_load(config, progress):
        raise ValueError("load config: unknown key x")
    monkeypatch.setattr(_core, "run_load", run_load, raising=False)
    with pytest.raises(LoadError, match="engine rejected the configuration: load config"):
        millipost.load(["imap://h:1", "pop3://h:2", "smtp://h:3"], duration=1, progress=False)


def test_live_status_rates():
    drawn = []
    s = LiveStatus(10, lambda t, text: drawn.append(text))
    s({"t": 1.0, "totals": {"sessions": 10, "commands": 100, "errors": 1}})
    s.__dict__["_drawn"] = 0.0  # let the next call draw
    s({"t": 2.0, "totals": {"sessions": 30, "commands": 400, "errors": 2,
                            "contract_breaches": 1}, "sessions_active": 7})
    assert "20.0 sessions/s" in drawn[-1] and "300 commands/s" in drawn[-1]
    assert "1 breaches" in drawn[-1] and "7 open" in drawn[-1]
    # The engine's own flat form.
    s.__dict__["_drawn"] = 0.0
    s({"t": 4.0, "sessions": 50, "sessions_active": 2, "commands": 1000, "errors": 3,
       "breaches": 4, "delivered": 9})
    assert "10.0 sessions/s" in drawn[-1] and "300 commands/s" in drawn[-1]
    assert "4 breaches" in drawn[-1] and "3 errors" in drawn[-1]


# --- reports (RENDERING FIXTURES) -----------------------------------------------------------

def assert_self_contained(page: str) -> None:
    assert not re.search(r"https?://", page), "the report must not reference any URL"
    for tag in ("<script", "<link", "<img", "<iframe", "@import", "url("):
        assert tag not in page.lower(), tag


def test_html_report_plots_and_tables():
    r = fixture_results(violations=2)
    page = load_report.render(r)
    assert_self_contained(page)
    for series in ("commands/s", "errors/s", "p50 ms", "p99 ms", "sessions open", "cpu %",
                   "rss MiB"):
        assert f'data-series="{series}"' in page, series
    for name in COMMANDS:
        assert f'<td class="name">{name}</td>' in page, name
        assert f'data-series="{name}"' in page, name  # its latency distribution
        assert f"{name}: latency distribution" in page
    # Every timeline second is a point of the throughput line.
    line = re.search(r'data-series="commands/s"><polyline points="([^"]+)"', page).group(1)
    assert len(line.split()) == len(r["timeline"])
    # Repeatable: the seed, the command line and the configuration are in the page.
    assert "--seed 7" in page and "rate_per_user_per_hour" in page
    assert "--rate" not in load_report.repeat_command(r)  # derived from the population
    r2 = dict(r, config=build_config(r["config"]["targets"], users=10, rate=2.5))
    assert "--users 10 --duration 30s --seed 7 --mode open --rate 2.5 " in \
        load_report.repeat_command(r2) + " "
    assert "FAILED: 2 oracle violation(s), 1 contract breach(es)" in page
    # Untrusted bytes are escaped.
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "acknowledged by SMTP, never seen &lt;b&gt;" in page


def test_html_report_of_partial_results():
    r = fixture_results()
    del r["timeline"], r["target"], r["errors"]
    r["interrupted"] = True
    page = load_report.render(r)
    assert_self_contained(page)
    assert "INTERRUPTED" in page and "no data" in page
    # A target the engine could not sample: null figures.
    r["target"] = {"pid": 99, "cpu_seconds": None, "max_rss_bytes": None}
    assert "target pid 99: not sampled" in load_report.summary(r)
    assert_self_contained(load_report.render(r))
    assert "target max rss" in load_report.compare([("a", r), ("b", fixture_results())])
    assert_self_contained(load_report.render_compare([("a", r), ("b", fixture_results())]))


def test_terminal_summary():
    r = fixture_results()
    text = load_report.summary(r)
    lat = r["commands"]["IMAP UID FETCH"]["latency_us"]
    row = next(line for line in text.splitlines() if line.startswith("IMAP UID FETCH"))
    assert "4,000" in row and load_report._ms(lat["p99"]) in row
    assert load_report._ms(lat["p999"]) in row
    assert "errors by kind: timeout 2, NO reply 1" in text
    assert text.splitlines()[-1].startswith("OK")


def test_compare_text_and_html():
    a, b = fixture_results(speed=1.0), fixture_results(speed=0.5)
    b["commands"]["IMAP UID FETCH"]["count"] *= 2
    text = load_report.compare([("a.json", a), ("b.json", b)])
    row = next(line for line in text.split("commands per second")[1].splitlines()
               if line.startswith("IMAP UID FETCH"))
    assert "x2.00" in row
    page = load_report.render_compare([("a.json", a), ("b.json", b)])
    assert_self_contained(page)
    for series in ("A: a.json", "B: b.json"):
        assert page.count(f'data-series="{series}"') >= 6 + len(COMMANDS), series
    assert "(&times;2.00)" in page


def test_svg_histogram_density_is_normalised():
    # One bucket per octave's worth of values: equal shares give equal heights.
    svg = svgplot.histogram_chart([("x", [(1024, 10), (2048, 10)])], "t")
    assert 'data-series="x"' in svg and "<polygon" in svg
    assert svgplot.bucket_width(17) == 1 and svgplot.bucket_width(1024) == 64


def test_cli_report_compare(results_files, tmp_path):
    a, b = results_files
    out = tmp_path / "cmp.html"
    r = run(tool("millipost"), "report", str(a), str(b), "--html", str(out))
    assert r.returncode == 0, r.stderr
    assert "A = millipost.json" in r.stdout and "B = dovecot.json" in r.stdout
    assert "p99 latency ms (ratio to A)" in r.stdout
    page = out.read_text()
    assert_self_contained(page)
    assert 'data-series="B: dovecot.json"' in page


def test_cli_report_single_and_default_path(results_files, tmp_path):
    a, _ = results_files
    r = run(tool("millipost"), "report", str(a), "--html", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "IMAP UID FETCH" in r.stdout
    made = os.listdir(tmp_path / "reports" / "out")
    assert len(made) == 1 and re.fullmatch(r"load-\d{8}-\d{6}\.html", made[0])


def test_cli_report_exit_status(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(fixture_results(violations=1)))
    r = run(tool("millipost"), "report", str(bad))
    assert r.returncode == 1 and "VIOLATION lost: user user0" in r.stdout
    (tmp_path / "junk.json").write_text("{}")
    r = run(tool("millipost"), "report", str(tmp_path / "junk.json"))
    assert r.returncode == 2 and "not a millipost load results file" in r.stderr


# --- the load command -------------------------------------------------------------------------

def test_cli_load_help():
    r = run(tool("millipost"), "load", "--help")
    assert r.returncode == 0, r.stderr
    for flag in ("--reference", "--users", "--duration", "--seed", "--profile", "--mode",
                 "--sessions", "--rate", "--json", "--html", "--repeat", "exit status"):
        assert flag in r.stdout, flag


def test_cli_load_rejects_bad_profile_before_anything(tmp_path):
    path = write(tmp_path, "[profiles.webmail.commands]\nreed = 3\n")
    r = run(tool("millipost"), "load", "--reference", "--profile", path)
    assert r.returncode == 2
    assert "profiles.webmail.commands.reed" in r.stderr


def test_cli_load_needs_targets():
    r = run(tool("millipost"), "load", "--users", "5")
    assert r.returncode == 2 and "--reference" in r.stderr


def test_load_reference_end_to_end(tmp_path):
    """The real engine against the reference server: 1,000 users, 3 seconds."""
    if not hasattr(_core, "run_load"):
        pytest.fail("the load engine (_core.run_load) is not in this build: merge the engine "
                    "branch (sim/ and its binding) before running this test")
    out, page = tmp_path / "run.json", tmp_path / "run.html"
    r = run(tool("millipost"), "load", "--reference", "--users", "1000", "--duration", "3s",
            "--seed", "11", "--json", str(out), "--html", str(page), timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert res["tool"] == "millipost load" and res["version"] == 1 and res["seed"] == 11
    assert res["config"]["users"] == 1000 and res["config"]["reference"] is True
    t = res["totals"]
    for key in ("sessions", "commands", "errors", "contract_breaches", "oracle_violations",
                "messages_delivered", "messages_verified"):
        assert key in t, key
    assert t["sessions"] > 0 and t["commands"] > 0
    assert t["contract_breaches"] == 0 and t["oracle_violations"] == 0
    assert sum(c["count"] for c in res["commands"].values()) == t["commands"]
    for name, c in res["commands"].items():
        assert re.fullmatch(r"(IMAP|POP3|SMTP) [A-Z ]+", name), name
        lat = c["latency_us"]
        assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"], name
        assert sum(n for _, n in c["histogram"]["counts"]) == c["count"], name
    assert len(res["timeline"]) >= 2
    assert res["target"]["pid"] == res["config"]["target_pid"]
    assert "total" in r.stdout and "OK" in r.stdout
    html = page.read_text()
    assert_self_contained(html)
    assert 'data-series="commands/s"' in html
    # Repeatable from its own results.
    r2 = run(tool("millipost"), "report", str(out))
    assert r2.returncode == 0, r2.stderr


# --- the load command's exit status and --repeat (in-process, FAKE ENGINE) --------------------

def test_cli_load_exit_status_and_repeat(monkeypatch, tmp_path, capsys):
    from millipost import cli

    calls: list = []
    monkeypatch.setattr(_core, "run_load", fake_engine(calls), raising=False)
    targets = ["imap://127.0.0.1:1", "pop3://127.0.0.1:2", "smtp://127.0.0.1:3"]
    out = tmp_path / "run.json"
    assert cli.main(["load", *targets, "--users", "77", "--duration", "2s", "--seed", "5",
                     "--mode", "closed", "--sessions", "9", "--json", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "IMAP UID FETCH" in text and "JSON results:" in text
    first = calls[-1][0]
    assert (first["users"], first["seed"], first["mode"], first["sessions"]) == (77, 5,
                                                                                 "closed", 9)
    # --repeat takes everything from the results; a flag given overrides.
    assert cli.main(["load", "--repeat", str(out), "--duration", "1s", "-q"]) == 0
    again = calls[-1][0]
    assert again["duration"] == 1.0
    assert {k: v for k, v in again.items() if k != "duration"} == \
        {k: v for k, v in first.items() if k != "duration"}

    def with_violation(config, progress):
        r = fixture_results(violations=1)
        r["config"] = config
        return r
    monkeypatch.setattr(_core, "run_load", with_violation, raising=False)
    assert cli.main(["load", *targets, "--duration", "1", "-q"]) == 1
    assert "VIOLATION lost" in capsys.readouterr().out
    monkeypatch.setattr(_core, "run_load", fake_engine([], interrupt_at=1), raising=False)
    assert cli.main(["load", *targets, "--duration", "1", "-q"]) == 130
