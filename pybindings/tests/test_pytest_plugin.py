"""millipost.pytest_plugin, tested the way users meet it: inner pytest runs (pytester) with the
plugin loaded from its pytest11 entry point."""
from __future__ import annotations

import textwrap

pytest_plugins = ["pytester"]

PASSING = """
protocol: imap
title: NOOP is OK
rfc: RFC 9051 6.1.2

C: a1 NOOP
S: a1 OK *
"""
FAILING = PASSING.replace("title: NOOP is OK", "title: deliberately wrong").replace("a1 OK *", "a1 BAD *")
NEEDS_CAP = PASSING.replace("rfc: RFC 9051 6.1.2", "rfc: RFC 9051 6.1.2\nrequires: X-CONFORM-NOPE")


def scenario_dir(pytester, files: dict) -> str:
    root = pytester.path / "scen"
    for sid, text in files.items():
        path = root / (sid + ".scenario")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return str(root)


def test_plugin_is_registered_and_lists_its_options(pytester):
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    for opt in ("--millipost-url", "--millipost-user", "--millipost-smtp", "--millipost-expect",
                "--millipost-scenarios", "--millipost-conform"):
        assert opt in out, opt


def test_fixtures_give_the_reference_server_by_default(pytester):
    pytester.makepyfile("""
        import imaplib, millipost

        def test_server(millipost_server):
            assert isinstance(millipost_server, millipost.Server)
            c = imaplib.IMAP4(millipost_server.host, millipost_server.imap_port)
            assert c.login("alice", "secret")[0] == "OK"
            c.logout()
            c = imaplib.IMAP4(millipost_server.host, millipost_server.imap_port)
            assert c.login("bob", "hunter2")[0] == "OK"
            c.logout()

        def test_target(millipost_target, millipost_server):
            assert millipost_target.reference
            assert millipost_target.protocols == ["imap", "smtp", "pop3"]
            assert str(millipost_server.imap_port) in millipost_target.url("imap")
            assert millipost_target.users == [("bob", "hunter2")]
            report = millipost_target.conform("smtp")
            assert report.ok and len(report.results) >= 10, report.summary()

        def test_same_server_for_the_session(millipost_server, millipost_target):
            assert str(millipost_server.smtp_port) in millipost_target.url("smtp")
    """)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_conform_items_pass_fail_skip_and_xfail(pytester):
    root = scenario_dir(pytester, {"imap/passing": PASSING, "imap/failing": FAILING,
                                   "imap/needs-cap": NEEDS_CAP, "imap/known": FAILING})
    expect = pytester.path / "expected.txt"
    expect.write_text("imap/known FAIL  # RFC 9051 6.1.2: wrong on purpose\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--millipost-conform",
                                "--millipost-scenarios", root, "--millipost-expect", str(expect),
                                "-rA")
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1)
    out = result.stdout.str()
    assert "millipost-conform/imap/failing" in out or "imap/failing" in out
    assert "failing.scenario:6" in out and "RFC 9051 6.1.2" in out and "got `a1 OK" in out
    assert "X-CONFORM-NOPE" in out and "wrong on purpose" in out
    # -k selects among the scenario items like any others.
    result = pytester.runpytest("-p", "no:cacheprovider", "--millipost-conform",
                                "--millipost-scenarios", root, "-k", "passing")
    result.assert_outcomes(passed=1)


def test_a_listed_failure_that_passes_fails_strictly(pytester):
    root = scenario_dir(pytester, {"imap/passing": PASSING})
    expect = pytester.path / "expected.txt"
    expect.write_text("imap/passing FAIL  # RFC 9051 6.1.2: stale\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--millipost-conform",
                                "--millipost-scenarios", root, "--millipost-expect", str(expect))
    result.assert_outcomes(failed=1)
    assert "update the file" in result.stdout.str()


def test_an_external_target_from_the_options_runs_the_bundled_scenarios(pytester, make_server):
    server = make_server(users={"carol": "pw1", "dave": "pw2"})
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--millipost-conform",
        "--millipost-url", f"pop3://carol:pw1@{server.host}:{server.pop3_port}",
        "--millipost-user", "dave:pw2",
        "--millipost-smtp", f"smtp://{server.host}:{server.smtp_port}", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 10
    # Not offered by this server: APOP, and STLS (no certificate) for the two STLS scenarios.
    out = result.stdout.str()
    assert outcomes.get("skipped", 0) == 3, out
    assert "not advertised: APOP" in out and "[2]" in out and "not advertised: STLS" in out
    assert "imap/" not in result.stdout.str()  # only the URL's protocol


def test_conformance_cases_parametrize_in_a_users_own_module(pytester, make_server):
    server = make_server(users={"carol": "pw1"})
    pytester.makepyfile(test_mine="""
        import pytest
        from millipost.pytest_plugin import check_case, conformance_cases

        @pytest.mark.parametrize("scenario", conformance_cases("smtp"))
        def test_smtp(millipost_target, scenario):
            check_case(millipost_target, scenario)

        def test_cases_have_ids():
            ids = [p.id for p in conformance_cases("smtp")]
            assert "smtp/mail-rcpt-data" in ids and all(i.startswith("smtp/") for i in ids)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-q", "--millipost-url",
                                f"smtp://carol:pw1@{server.host}:{server.smtp_port}")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 15


def test_no_clash_with_a_suites_own_fixtures(pytester):
    """A suite with fixtures named like ours (server, smtp, pop3: pybindings/tests/conftest.py)
    keeps them: the plugin's names all start with millipost_."""
    pytester.makeconftest("""
        import pytest

        @pytest.fixture
        def server():
            return "mine"

        @pytest.fixture
        def smtp():
            return "mine too"
    """)
    pytester.makepyfile("""
        def test_mine(server, smtp, millipost_target):
            assert server == "mine" and smtp == "mine too"
            assert millipost_target.reference
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_bad_url_is_a_usage_error_not_a_crash(pytester):
    pytester.makepyfile("def test_x(millipost_target): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--millipost-url", "http://nope")
    result.assert_outcomes(errors=1)
    assert "unsupported URL scheme" in result.stdout.str()
