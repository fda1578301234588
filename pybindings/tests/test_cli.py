"""The command-line tools: millipost (serve, provision, demo) and millipost-server."""
from __future__ import annotations

import glob
import json
import os
import poplib
import shutil
import subprocess
import sys

import pytest

import millipost
from conftest import TIMEOUT, running


def run(*argv: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, input=input,
                          timeout=timeout)


def tool(name: str) -> str:
    path = shutil.which(name) or os.path.join(os.path.dirname(sys.executable), name)
    assert os.access(path, os.X_OK), f"{name} is not installed on PATH"
    return path


# --- help ------------------------------------------------------------------------------------

def test_millipost_server_help():
    r = run(tool("millipost-server"), "--help")
    assert r.returncode == 0, r.stderr
    for flag in ("--data", "--smtp", "--pop3", "--config", "--max-message-size",
                 "--max-connections", "--smtp-timeout", "--pop3-timeout", "--imap",
                 "--imap-timeout"):
        assert flag in r.stdout, flag


def test_millipost_help():
    r = run(tool("millipost"), "--help")
    assert r.returncode == 0, r.stderr
    for command in ("serve", "provision", "demo"):
        assert command in r.stdout, command


@pytest.mark.parametrize("command,flags", [
    ("serve", ("--data", "--config")),
    ("provision", ("--data", "--users", "--seed", "--password", "--domain")),
    ("demo", ("--users", "--seconds", "--seed", "--report-dir", "--data", "--readers",
              "--imap-readers")),
])
def test_millipost_subcommand_help(command, flags):
    r = run(tool("millipost"), command, "--help")
    assert r.returncode == 0, r.stderr
    for flag in flags:
        assert flag in r.stdout, flag


def test_millipost_server_version():
    r = run(tool("millipost-server"), "--version")
    assert r.returncode == 0
    assert millipost.__version__ in r.stdout


def test_millipost_without_command_fails():
    r = run(tool("millipost"))
    assert r.returncode == 2
    assert "COMMAND" in r.stderr or "required" in r.stderr


def test_millipost_server_unknown_flag_fails():
    r = run(tool("millipost-server"), "--no-such-flag", timeout=TIMEOUT)
    assert r.returncode != 0
    assert "no-such-flag" in (r.stdout + r.stderr)


# --- configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize("toml,key", [
    ("[smtp]\nport = 2525\nbogus_key = 1\n", "bogus_key"),
    ("[server]\nhostname = \"mx\"\nfrobnicate = true\n", "frobnicate"),
    ("[pop3]\nport = 1110\nwhatever = \"x\"\n", "whatever"),
    ("frobnicate = 1\n", "frobnicate"),
])
def test_config_unknown_key_exits_2(tmp_path, toml, key):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    r = run(tool("millipost-server"), "--config", str(cfg), "--data", str(tmp_path / "d"),
            timeout=TIMEOUT)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert key in r.stderr
    assert "unknown key" in r.stderr
    assert not os.path.exists(tmp_path / "d" / "millipost.db")


@pytest.mark.parametrize("toml,word", [
    ("[smtp]\ntimeout = 0\n", "timeout"),
    ("[smtp]\nport = \"twenty\"\n", "port"),
    ("[server\n", "bad.toml"),  # a TOML syntax error names the file
])
def test_config_bad_value_exits_2(tmp_path, toml, word):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    r = run(tool("millipost-server"), "--config", str(cfg), "--data", str(tmp_path / "d"),
            timeout=TIMEOUT)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert word in r.stderr


def test_config_missing_file_fails(tmp_path):
    r = run(tool("millipost-server"), "--config", str(tmp_path / "absent.toml"), timeout=TIMEOUT)
    assert r.returncode != 0
    assert "absent.toml" in (r.stdout + r.stderr)


# --- users -----------------------------------------------------------------------------------

def test_user_add_and_count(tmp_path):
    data = str(tmp_path / "data")
    server = tool("millipost-server")
    r = run(server, "--data", data, "user", "add", "carol", "--password", "pw")
    assert r.returncode == 0, r.stderr
    assert "carol" in r.stdout
    r = run(server, "--data", data, "user", "count")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"
    # The password can come from stdin.
    r = run(server, "--data", data, "user", "add", "dave", input="from stdin\n")
    assert r.returncode == 0, r.stderr
    assert run(server, "--data", data, "user", "count").stdout.strip() == "2"
    # A duplicate fails and adds nothing.
    r = run(server, "--data", data, "user", "add", "carol", "--password", "other")
    assert r.returncode != 0
    assert run(server, "--data", data, "user", "count").stdout.strip() == "2"
    # An empty password is refused.
    r = run(server, "--data", data, "user", "add", "erin", input="\n")
    assert r.returncode == 2
    assert run(server, "--data", data, "user", "count").stdout.strip() == "2"
    # The users log in on a server over the same data directory.
    with running(data_dir=data) as s:
        for login, password in (("carol", "pw"), ("dave", "from stdin")):
            p = poplib.POP3(s.host, s.pop3_port, timeout=TIMEOUT)
            try:
                p.user(login)
                assert p.pass_(password).startswith(b"+OK")
            finally:
                p.close()


def test_user_without_subcommand_fails(tmp_path):
    r = run(tool("millipost-server"), "--data", str(tmp_path), "user", timeout=TIMEOUT)
    assert r.returncode != 0


# --- provision and demo ----------------------------------------------------------------------

def test_provision(tmp_path):
    data = str(tmp_path / "data")
    r = run(tool("millipost"), "provision", "--data", data, "--users", "2000", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "2,000 new users" in r.stdout, r.stdout
    r = run(tool("millipost"), "provision", "--data", data, "--users", "2000", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "provisioned 0 new users" in r.stdout, r.stdout
    assert run(tool("millipost-server"), "--data", data, "user", "count").stdout.strip() == "2000"
    population = millipost.Population(3, 2000)
    with running(data_dir=data) as s:
        assert s.user_count() == 2000
        user = population[1234]
        p = poplib.POP3(s.host, s.pop3_port, timeout=TIMEOUT)
        try:
            p.user(user.login)
            assert p.pass_(user.password).startswith(b"+OK")
        finally:
            p.close()


def test_provision_rejects_stray_arguments(tmp_path):
    r = run(tool("millipost"), "provision", "--data", str(tmp_path), "--bogus")
    assert r.returncode == 2
    assert "--bogus" in r.stderr


def test_demo(tmp_path):
    reports = tmp_path / "reports"
    r = run(tool("millipost"), "demo", "--users", "500", "--seconds", "1", "--seed", "5",
            "--report-dir", str(reports), timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "oracle OK" in r.stdout, r.stdout
    files = glob.glob(str(reports / "*.json"))
    assert len(files) == 1, files
    with open(files[0]) as f:
        report = json.load(f)
    assert report["seed"] == 5
    assert report["oracle"]["ok"] is True
    assert files[0].endswith("-5.json")
    assert os.path.basename(files[0]) in r.stdout
    # Both protocols read mail, and together they read every delivery exactly once.
    totals = report["totals"]
    assert totals["retrieved_pop3"] > 0 and totals["retrieved_imap"] > 0, totals
    assert totals["retrieved_pop3"] + totals["retrieved_imap"] == totals["retrieved"]
    assert totals["retrieved"] == totals["deliveries"], totals
    assert totals["sessions_imap"] > 0 and report["latency"]["imap_session"]["count"] > 0
    assert report["config"]["imap_readers"] == 2
    assert report["oracle"]["violation_count"] == 0
    assert f"({totals['retrieved_pop3']:,} by POP3, {totals['retrieved_imap']:,} by IMAP)" \
        in r.stdout, r.stdout


def test_demo_imap_only(tmp_path):
    # No POP3 reader: IMAP sessions (SELECT, FETCH, STORE, EXPUNGE) retrieve everything.
    reports = tmp_path / "reports"
    r = run(tool("millipost"), "demo", "--users", "200", "--seconds", "1", "--seed", "7",
            "--readers", "0", "--imap-readers", "3", "--report-dir", str(reports), timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    with open(glob.glob(str(reports / "*.json"))[0]) as f:
        report = json.load(f)
    totals = report["totals"]
    assert report["oracle"]["ok"] is True
    assert totals["retrieved_pop3"] == 0 and totals["sessions_pop3"] == 0
    assert totals["retrieved_imap"] == totals["deliveries"] > 0, totals
