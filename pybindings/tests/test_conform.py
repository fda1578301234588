"""The conformance suite's scripted part: the scenario format, the runner, its reports.

Every bundled scenario must PASS against the reference server (those for optional features it
does not offer are SKIPPED by capability). The run against Dovecot is test_conform_dovecot.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

import millipost
from millipost.conform import ConformError, Target, load_expectations
from millipost.scenarios import ScenarioError, discover, match, parse

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "scenarios"))
USERS = {"alice": "secret", "bob": "hunter2"}

#: Scenarios for optional features the reference server does not offer (skipped by
#: capability): millipost does not implement APOP (RFC 1939 7, an optional command); without
#: a certificate there is no STARTTLS / STLS (test_conform_tls.py runs those scenarios against
#: a server with TLS), nor LOGINDISABLED (plaintext logins are allowed on loopback).
NOT_OFFERED = {"pop3/apop": "APOP", "imap/starttls": "STARTTLS",
               "imap/starttls-injection": "STARTTLS", "imap/logindisabled": "LOGINDISABLED",
               "smtp/starttls": "STARTTLS", "smtp/starttls-injection": "STARTTLS",
               "pop3/stls": "STLS", "pop3/stls-injection": "STLS"}


def url(server, protocol: str) -> str:
    port = {"imap": server.imap_port, "smtp": server.smtp_port, "pop3": server.pop3_port}[protocol]
    return f"{protocol}://alice:secret@{server.host}:{port}"


def smtp_url(server) -> str:
    return f"smtp://{server.host}:{server.smtp_port}"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "millipost")
    return subprocess.run([exe, "conform", *args], capture_output=True, text=True, timeout=300)


def write_scenario(tmp_path, sid: str, text: str) -> str:
    path = tmp_path / (sid + ".scenario")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return str(tmp_path)


# --- the bundled scenarios against the reference server ----------------------------------------

def test_bundled_scenarios_are_well_formed():
    found = discover(ROOT)
    assert 60 <= len(found) <= 200, len(found)
    assert {s.protocol for s in found} == {"imap", "smtp", "pop3"}
    for s in found:
        assert s.rfc and all(r.startswith("RFC ") for r in s.rfc), s.id
        assert s.id.startswith(s.protocol + "/"), s.id


@pytest.mark.parametrize("protocol", ["imap", "smtp", "pop3"])
def test_every_scenario_passes_against_the_reference_server(make_server, protocol):
    server = make_server(users=USERS)
    report = millipost.conform(url(server, protocol), users=[("bob", "hunter2")],
                               deliver_via=smtp_url(server), root=ROOT)
    expected = {s.id for s in discover(ROOT) if s.protocol == protocol}
    assert {r.id for r in report.results} == expected
    failures = [f"{r.id}: {r.message}" for r in report.results
                if r.status != "PASS" and not (r.status == "SKIPPED" and r.id in NOT_OFFERED)]
    assert not failures, "\n\n".join(failures)
    for r in report.results:  # what the reference server does not offer is skipped, no more
        if r.id in NOT_OFFERED:
            assert r.status == "SKIPPED" and NOT_OFFERED[r.id] in r.message, r
    assert report.ok
    assert "IMAP4REV1" in report.capabilities if protocol == "imap" else True


def test_cli_writes_json_and_junit(make_server, tmp_path):
    server = make_server(users=USERS)
    js, xml = tmp_path / "out" / "r.json", tmp_path / "out" / "r.xml"
    r = run_cli(url(server, "smtp"), "--scenarios", ROOT, "--json", str(js), "--junit", str(xml))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS     smtp/mail-rcpt-data" in r.stdout and "RFC 5321" in r.stdout
    data = json.loads(js.read_text())
    n = len([s for s in discover(ROOT) if s.protocol == "smtp"])
    assert data["ok"] is True and data["protocol"] == "smtp"
    skipped = {sid for sid in NOT_OFFERED if sid.startswith("smtp/")}
    assert data["counts"]["PASS"] == n - len(skipped) and n == len(data["results"])
    assert data["counts"]["SKIPPED"] == len(skipped)
    assert all(res["rfc"] and res["status"] == ("SKIPPED" if res["id"] in skipped else "PASS")
               for res in data["results"])
    assert "PIPELINING" in data["capabilities"]
    root = ET.parse(xml).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite.get("tests") == str(n) and suite.get("failures") == "0"
    cases = suite.findall("testcase")
    assert len(cases) == n
    assert not list(root.iter("failure"))
    rfcs = [p.get("value") for c in cases for p in c.iter("property") if p.get("name") == "rfc"]
    assert any(v.startswith("RFC 5321") for v in rfcs)


def test_help_explains_the_options():
    r = run_cli("--help")
    assert r.returncode == 0, r.stderr
    for flag in ("--user", "--smtp", "--expect", "--json", "--junit", "--scenario",
                 "--capabilities", "imap://", "pop3://", "smtp://", "HTML"):
        assert flag in r.stdout, flag


# --- failures, expected divergences, capability gating -----------------------------------------

WRONG = """
    protocol: imap
    title: deliberately wrong: NOOP is said to be BAD
    rfc: RFC 9051 6.1.2

    C: a1 NOOP
    S: a1 BAD *
    """


def test_a_wrong_expectation_fails_naming_the_step(make_server, tmp_path):
    server = make_server(users=USERS)
    root = write_scenario(tmp_path, "imap/wrong", WRONG)
    report = millipost.conform(url(server, "imap"), root=root)
    [r] = report.results
    assert r.status == "FAIL" and r.failed and not report.ok
    assert r.line == 6
    assert "wrong.scenario:6" in r.message and "`S: a1 BAD *`" in r.message
    assert "got `a1 OK" in r.message and "RFC 9051 6.1.2" in r.message
    assert "1 C: a1 NOOP" in r.message  # the transcript tail

    xml = tmp_path / "r.xml"
    cli = run_cli(url(server, "imap"), "--scenarios", root, "--junit", str(xml))
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "FAIL     imap/wrong" in cli.stdout and "wrong.scenario:6" in cli.stdout
    [failure] = ET.parse(xml).getroot().iter("failure")
    assert "a1 BAD" in failure.get("message")


def test_expected_results_file_turns_a_failure_into_a_divergence(make_server, tmp_path):
    server = make_server(users=USERS)
    root = write_scenario(tmp_path, "imap/wrong", WRONG)
    write_scenario(tmp_path, "imap/right", WRONG.replace("a1 BAD *", "a1 OK *"))
    expect = tmp_path / "expected.txt"
    expect.write_text("# known divergences\nimap/wrong FAIL  # NOOP is fine, the test is wrong\n"
                      "imap/right FAIL  # stale: it passes now\n")
    assert load_expectations(str(expect))["imap/wrong"] == ("FAIL", "NOOP is fine, the test is wrong")
    report = millipost.conform(url(server, "imap"), root=root, expect=str(expect))
    by = {r.id: r for r in report.results}
    assert by["imap/wrong"].status == "FAIL" and not by["imap/wrong"].failed
    assert by["imap/right"].status == "PASS" and by["imap/right"].differs
    assert report.ok

    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    cli = run_cli(url(server, "imap"), "--scenarios", root, "--expect", str(expect),
                  "--json", str(js), "--junit", str(xml))
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "XFAIL    imap/wrong" in cli.stdout
    assert "imap/right: expected FAIL, got PASS" in cli.stdout
    data = json.loads(js.read_text())
    assert data["counts"]["expected_fail"] == 1 and data["counts"]["differs"] == 1
    assert not list(ET.parse(xml).getroot().iter("failure"))

    bad = tmp_path / "bad.txt"
    bad.write_text("imap/wrong MAYBE\n")
    with pytest.raises(ConformError, match="bad.txt:1"):
        load_expectations(str(bad))


def test_scenarios_needing_an_absent_capability_are_skipped(make_server, tmp_path):
    server = make_server(users=USERS)
    root = write_scenario(tmp_path, "imap/needs-x", WRONG.replace(
        "rfc: RFC 9051 6.1.2", "rfc: RFC 9051 6.1.2\n    requires: IDLE X-CONFORM-NOPE"))
    report = millipost.conform(url(server, "imap"), root=root)
    [r] = report.results
    assert r.status == "SKIPPED" and "X-CONFORM-NOPE" in r.message and "IDLE" not in r.message
    assert report.ok
    # The bundled IDLE scenario is skipped when the (stated) capabilities lack IDLE.
    report = millipost.conform(url(server, "imap"), root=ROOT, scenarios=["imap/idle"],
                               capabilities=["IMAP4rev1"])
    [r] = report.results
    assert r.id == "imap/idle" and r.status == "SKIPPED" and "IDLE" in r.message
    xml = tmp_path / "r.xml"
    cli = run_cli(url(server, "imap"), "--scenarios", root, "--junit", str(xml))
    assert cli.returncode == 0 and "SKIPPED  imap/needs-x" in cli.stdout
    assert len(list(ET.parse(xml).getroot().iter("skipped"))) == 1


def test_pop3_deliveries_are_skipped_without_smtp(make_server):
    server = make_server(users=USERS)
    report = millipost.conform(url(server, "pop3"), root=ROOT, scenarios=["pop3/retr"])
    [r] = report.results
    assert r.status == "SKIPPED" and "--smtp" in r.message


def test_unreachable_server_is_an_error_not_a_result(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConformError, match="cannot connect"):
        millipost.conform(f"imap://a:b@127.0.0.1:{port}", root=ROOT)
    r = run_cli(f"imap://a:b@127.0.0.1:{port}", "--scenarios", ROOT)
    assert r.returncode == 2 and "cannot connect" in r.stderr


# --- the format ------------------------------------------------------------------------------

def test_urls():
    t = Target.parse("imaps://u%40x:p%3Aw@mail.example", ["v:q"])
    assert (t.protocol, t.port, t.tls, t.users) == ("imap", 993, True, [("u@x", "p:w"), ("v", "q")])
    assert Target.parse("pop3://h:1110").port == 1110 and not Target.parse("pop3://h").tls
    with pytest.raises(ConformError):
        Target.parse("http://h")


def test_patterns():
    assert match("* OK [UIDVALIDITY $uv]*", "* OK [UIDVALIDITY 7] ok", {}, {}) == {"uv": "7"}
    assert match("* $n EXISTS", "* 3 EXISTS", {"n": "3"}, {}) == {}
    assert match("* $n EXISTS", "* 4 EXISTS", {"n": "3"}, {}) is None  # bound: back-reference
    assert match("* SEARCH $a $a", "* SEARCH 2 3", {}, {}) is None  # same capture twice
    assert match("* FLAGS (\\Seen \\*)", "* flags (\\Seen \\*)", {}, {}) == {}  # case-insensitive
    assert match("* FLAGS (\\Seen \\*)", "* FLAGS (\\Seen \\x)", {}, {}) is None  # \* is literal
    assert match("* OK *", "x OK y", {}, {}) is None  # leading * is the untagged marker
    assert match("a OK {re:\\[READ-(WRITE|ONLY)\\]} *", "a OK [READ-ONLY] x", {}, {}) == {}
    assert match("* 1 FETCH (FLAGS ($$Junk))", "* 1 FETCH (FLAGS ($Junk))", {}, {}) == {}
    body = {"m": "a\r\nb\r\n"}
    assert match("* 1 FETCH (BODY[] {${m.size}}${m})", "* 1 FETCH (BODY[] {6}a\r\nb\r\n)", {}, body) == {}
    assert match("* 1 FETCH (BODY[] {${m.size}}${m})", "* 1 FETCH (BODY[] {6}a\r\nc\r\n)", {}, body) is None


GOOD = """
protocol: pop3
title: t
rfc: RFC 1939 5
setup: greeting

data m
Subject: x

.
C: STAT
2 S: +OK $n *
S: {
S: a
S: }
S... .
S: <EOF>
"""


def test_parse_and_its_errors():
    s = parse(GOOD, "g.scenario")
    assert s.protocol == "pop3" and s.setup == ["greeting"] and s.data["m"] == "Subject: x\r\n\r\n"
    assert [st.kind for st in s.steps] == ["send", "expect", "group", "skip-until", "eof"]
    assert s.steps[1].conn == 2 and s.connections == [1, 2]
    for bad, where in [
        (GOOD.replace("title: t", "titel: t"), "g.scenario:3: unknown header"),
        (GOOD.replace("S: }\nS... .\nS: <EOF>\n", ""), "not closed"),
        (GOOD.replace("S: }\n", ""), "S... inside an unordered group"),
        (GOOD.replace("setup: greeting", "setup: magic"), "unknown setup word"),
        (GOOD.replace("protocol: pop3", "protocol: nntp"), "protocol must be"),
        (GOOD.replace("rfc: RFC 1939 5\n", ""), "missing header 'rfc'"),
        (GOOD.replace("S... .", "S: {re:(}"), "g.scenario:16: bad {re:"),
        (GOOD.replace("C: STAT", "what is this"), "g.scenario:11: not a header"),
        (GOOD.replace("setup: greeting", "setup: greeting\ndeliver: nope"), "nope"),
    ]:
        with pytest.raises(ScenarioError, match=where.replace("(", "\\(").replace("{", "\\{")
                           .replace("[", "\\[")):
            parse(bad, "g.scenario")


# --- the scenarios are not vacuous -------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w$.{\-])\d+(?![\w}])")


def number_mutants(scenario):
    """Copies of the scenario with one number of one expected line changed (n -> n+1)."""
    for i, step in enumerate(scenario.steps):
        if step.kind != "expect" or "{re:" in step.text:
            continue
        m = _NUMBER.search(step.text)
        if m:
            text = step.text[:m.start()] + str(int(m.group()) + 1) + step.text[m.end():]
            steps = list(scenario.steps)
            steps[i] = dataclasses.replace(step, text=text)
            yield step, dataclasses.replace(scenario, steps=steps)


@pytest.mark.parametrize("protocol", ["imap", "smtp", "pop3"])
def test_a_changed_number_in_any_expected_line_fails_at_that_line(make_server, protocol):
    """Expected lines are load-bearing: `* 2 EXISTS` turned into `* 3 EXISTS` must FAIL at that
    step (the skipping of unsolicited IMAP untagged lines must not swallow it)."""
    # Each mutant run of a scenario with a wrong password is a failed login from 127.0.0.1: no
    # throttling, or the delays (doubling per failure) outgrow the 2 s timeout.
    server = make_server(users=USERS, auth_fail_delay=0, auth_fail_limit=0)
    checked = 0
    for s in discover(ROOT):
        if s.protocol != protocol or s.id in NOT_OFFERED:  # skipped here: nothing to fail
            continue
        for step, mutant in number_mutants(s):
            report = millipost.conform(url(server, protocol), scenarios=[mutant],
                                       users=[("bob", "hunter2")], deliver_via=smtp_url(server),
                                       timeout=2.0)
            [r] = report.results
            assert r.status == "FAIL" and r.line == step.line, (s.id, step.text, r)
            checked += 1
    assert checked >= 5, checked


# --- format extensions: S! (forbidden lines), ${repeat:N:TEXT}, ${auth_plain} -------------------

def test_forbidden_line_fails_at_the_s_bang_step(make_server, tmp_path):
    server = make_server(users=USERS)
    root = write_scenario(tmp_path, "imap/forbid", """
        protocol: imap
        title: CAPABILITY must not send CAPABILITY (deliberately wrong)
        rfc: RFC 9051 6.1.1

        C: a1 CAPABILITY
        S! * CAPABILITY *
        S: a1 OK *
        C: a2 NOOP
        S! * CAPABILITY *
        S: a2 OK *
        """)
    write_scenario(tmp_path, "imap/forbid-ok", """
        protocol: imap
        title: the S! of one command does not outlive it
        rfc: RFC 9051 6.1.2

        C: a1 NOOP
        S! * CAPABILITY *
        S: a1 OK *
        C: a2 CAPABILITY
        S: a2 OK *
        """)
    report = millipost.conform(url(server, "imap"), root=root)
    by = {r.id: r for r in report.results}
    assert by["imap/forbid"].status == "FAIL" and by["imap/forbid"].line == 6, by["imap/forbid"]
    assert "must not appear" in by["imap/forbid"].message
    assert by["imap/forbid-ok"].status == "PASS", by["imap/forbid-ok"].message
    with pytest.raises(ScenarioError, match="S! inside an unordered group"):
        parse(GOOD.replace("S: a\n", "S! a\n"), "g.scenario")


def test_repeat_and_auth_plain_expand():
    from millipost.scenarios import expand
    assert expand("NOOP ${repeat:3:ab}!", {}, {}) == "NOOP ababab!"
    with pytest.raises(KeyError):
        expand("${repeat:99999999:x}", {}, {})
    from millipost.conform import _Run
    s = parse(GOOD, "g.scenario")
    run = _Run(s, Target.parse("pop3://alice:secret@127.0.0.1:1"), 1.0, None)
    import base64
    assert base64.b64decode(run.vars["auth_plain"]) == b"\0alice\0secret"


# --- the HTML report -------------------------------------------------------------------------

def test_html_report_is_self_contained_with_every_status(make_server, tmp_path):
    server = make_server(users=USERS)
    root = write_scenario(tmp_path, "imap/wrong", WRONG)
    write_scenario(tmp_path, "imap/also-wrong", WRONG.replace("deliberately wrong", "wrong <b>too</b>"))
    write_scenario(tmp_path, "imap/right", WRONG.replace("a1 BAD *", "a1 OK *"))
    write_scenario(tmp_path, "imap/needs-x", WRONG.replace(
        "rfc: RFC 9051 6.1.2", "rfc: RFC 9051 6.1.2\n    requires: X-CONFORM-NOPE"))
    expect = tmp_path / "expected.txt"
    expect.write_text("imap/wrong FAIL  # RFC 9051 6.1.2: the test is wrong on purpose\n")
    report = millipost.conform(url(server, "imap"), root=root, expect=str(expect))
    page = report.html()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    for needle in ("EXPECTED-FAIL", ">FAIL<", ">PASS<", ">SKIPPED<", "X-CONFORM-NOPE",
                   "RFC 9051 6.1.2", "the test is wrong on purpose", "a1 NOOP",
                   "wrong &lt;b&gt;too&lt;/b&gt;", "4 scenarios", "1 EXPECTED-FAIL",
                   "FAILED: 1 unexpected failure"):
        assert needle in page, needle
    assert "<b>too</b>" not in page  # escaped
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing external
    assert "<script" not in page

    # CLI: --html FILE, and --html alone writes reports/out/conform-imap-<time>.html in cwd.
    out = tmp_path / "r.html"
    cli = run_cli(url(server, "imap"), "--scenarios", root, "--expect", str(expect), "--html", str(out))
    assert cli.returncode == 1 and out.exists() and "EXPECTED-FAIL" in out.read_text()
    exe = os.path.join(os.path.dirname(sys.executable), "millipost")
    cli = subprocess.run([exe, "conform", url(server, "imap"), "--scenarios", root,
                          "--scenario", "imap/right", "--html"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    [made] = (tmp_path / "reports" / "out").glob("conform-imap-*.html")
    assert "imap/right" in made.read_text() and str(made.name) in cli.stdout


# --- coverage: every command and every advertised extension has a scenario ---------------------

#: Capabilities of the reference server covered without a ``requires:`` (mandatory or
#: informational ones), each with the scenario that exercises it.
COVERED_WITHOUT_REQUIRES = {
    "IMAP4REV1": "imap/capability", "IMAP4REV2": "imap/capability",
    "AUTH=PLAIN": "imap/authenticate-plain",  # mandatory to implement (RFC 9051 11.1)
    "CHILDREN": "imap/list-extended",  # \HasNoChildren via RETURN (CHILDREN)
    "QUOTA=RES-STORAGE": "imap/quota", "QUOTA=RES-MESSAGE": "imap/quota",
    "HELP": "smtp/vrfy-help-expn",  # HELP is an RFC 5321 command whether advertised or not
    # POP3 CAPA tags that only inform (RFC 2449 6.5, 6.7, 6.9): the CAPA listing is checked.
    "EXPIRE": "pop3/capa", "LOGIN-DELAY": "pop3/capa", "IMPLEMENTATION": "pop3/capa",
}

#: Every command of the servers' command tables (server/*/commands.cpp) and of the RFCs.
COMMANDS = {
    "imap": ["CAPABILITY", "NOOP", "LOGOUT", "ID", "ENABLE", "LOGIN", "AUTHENTICATE", "SELECT",
             "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB",
             "NAMESPACE", "STATUS", "APPEND", "IDLE", "NOTIFY", "CANCELUPDATE", "GETQUOTAROOT",
             "FETCH", "STORE", "COPY", "MOVE", "SEARCH", "SORT", "THREAD", "EXPUNGE", "CHECK",
             "CLOSE", "UNSELECT", "UID"],
    "smtp": ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "EXPN", "HELP", "QUIT",
             "AUTH"],
    "pop3": ["USER", "PASS", "APOP", "STAT", "LIST", "UIDL", "TOP", "RETR", "DELE", "RSET", "NOOP",
             "QUIT", "CAPA", "AUTH"],
}


@pytest.mark.parametrize("protocol", ["imap", "smtp", "pop3"])
def test_every_command_and_advertised_capability_has_a_scenario(make_server, protocol):
    from millipost.conform import read_capabilities
    server = make_server(users=USERS)
    caps = read_capabilities(Target.parse(url(server, protocol)))
    scenarios = [s for s in discover(ROOT) if s.protocol == protocol]
    required = {c for s in scenarios for c in s.requires}
    ids = {s.id for s in scenarios}
    uncovered = []
    for cap in caps:
        if cap in COVERED_WITHOUT_REQUIRES and COVERED_WITHOUT_REQUIRES[cap].startswith(protocol):
            assert COVERED_WITHOUT_REQUIRES[cap] in ids, cap
        elif cap not in required and cap.split("=")[0] + "=*" not in required:
            uncovered.append(cap)
    assert not uncovered, f"advertised by the reference server but no scenario requires: {uncovered}"
    sent = set()
    for s in scenarios:
        for step in s.steps:
            if step.kind == "send":
                words = step.text.split()
                # IMAP lines start with a tag; SMTP/POP3 with the verb.
                for w in (words[1:3] if protocol == "imap" else words[:1]):
                    sent.add(w.upper())
    missing = [c for c in COMMANDS[protocol] if c not in sent]
    assert not missing, f"commands no scenario sends: {missing}"
