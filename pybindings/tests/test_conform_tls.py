"""`millipost conform` against a production-configured server (issue 6): TLS everywhere
(``tls="self-signed"``) and no plaintext logins without it (``plaintext_auth="never"``). The
harness speaks imaps://, pop3s://, smtps://, submission:// and ``?starttls`` URLs, logs in
with SASL (``--auth``), and the STARTTLS and SASL scenarios (fixtures/scenarios/*/starttls*,
stls*, logindisabled, *scram*, authenticate-bad-base64) run and pass, each connection held to
the protocol's contract inside TLS too."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import millipost
from millipost.conform import ConformError, Scram, Target
from millipost.scenarios import discover

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "scenarios"))
USERS = {"alice": "secret", "bob": "hunter2"}

#: The scenarios this issue added: each must PASS (not be skipped) on the production server.
TLS_SCENARIOS = {
    "imap": ["imap/starttls", "imap/starttls-injection", "imap/logindisabled",
             "imap/authenticate-scram-full", "imap/authenticate-bad-base64"],
    "smtp": ["smtp/starttls", "smtp/starttls-injection", "smtp/auth-scram"],
    "pop3": ["pop3/stls", "pop3/stls-injection", "pop3/auth-scram"],
}

#: Not offered by the reference server (as in test_conform.py).
NOT_OFFERED = {"pop3/apop"}


@pytest.fixture(scope="module")
def server():
    # No failed-login delays or lockouts: the scenarios fail logins on purpose.
    s = millipost.Server(tls="self-signed", plaintext_auth="never", auth_fail_delay=0,
                         auth_fail_limit=0)
    for login, password in USERS.items():
        s.add_user(login, password)
    yield s
    s.stop()


#: On the submission ports (submission://, smtps://) the server's submission policy refuses
#: the foreign sender (conform@example.org) of the MX-oriented SMTP scenarios (553, RFC 6409
#: 6.1 lets an MSA do so), and MAIL before AUTH (530): there the TLS and SASL scenarios run,
#: with those that send no mail.
SUBMISSION_SCENARIOS = TLS_SCENARIOS["smtp"] + ["smtp/vrfy-help-expn", "smtp/noop-quit",
                                                "smtp/unknown-command"]


def urls(s, protocol: str) -> list[str]:
    """The STARTTLS URL (SMTP: the MX port 25 with ?starttls) and the implicit TLS one."""
    h = s.host
    return {"imap": [f"imap://alice:secret@{h}:{s.imap_port}?starttls",
                     f"imaps://alice:secret@{h}:{s.imaps_port}"],
            "smtp": [f"smtp://alice:secret@{h}:{s.smtp_port}?starttls",
                     f"smtps://alice:secret@{h}:{s.submissions_port}"],
            "pop3": [f"pop3://alice:secret@{h}:{s.pop3_port}?starttls",
                     f"pop3s://alice:secret@{h}:{s.pop3s_port}"]}[protocol]


def deliver(s) -> str:
    return f"smtp://{s.host}:{s.smtp_port}"


def failures(report) -> list[str]:
    return [f"{r.id}: {r.message}" for r in report.results
            if r.status == "FAIL" or (r.status == "SKIPPED" and r.id not in NOT_OFFERED
                                      and not r.message.startswith("reads its own greeting")
                                      and not r.message.startswith("capability not advertised"))]


@pytest.mark.parametrize("auth", [None, "scram-sha-256", "plain"])
@pytest.mark.parametrize("protocol", ["imap", "smtp", "pop3"])
def test_starttls_runs_pass_and_run_the_tls_and_sasl_scenarios(server, protocol, auth):
    url = urls(server, protocol)[0]
    report = millipost.conform(url, users=[("bob", "hunter2")], root=ROOT, auth=auth,
                               deliver_via=deliver(server))
    assert report.target.endswith("?starttls")
    bad = failures(report)
    assert not bad, "\n\n".join(bad)
    status = {r.id: r.status for r in report.results}
    for sid in TLS_SCENARIOS[protocol]:
        assert status[sid] == "PASS", (sid, status[sid])
    # Scripts that read their own greeting cannot run inside STARTTLS: skipped, and said why.
    own = [s.id for s in discover(ROOT) if s.protocol == protocol and "none" in s.setup
           and "cleartext" not in s.setup]
    for sid in own:
        assert status[sid] == "SKIPPED", sid
    # Most of the suite runs inside TLS.
    assert sum(st == "PASS" for st in status.values()) >= 0.6 * len(status), report.summary()
    assert report.ok
    caps = set(report.capabilities)
    assert {"imap": "STARTTLS", "smtp": "STARTTLS", "pop3": "STLS"}[protocol] in caps


@pytest.mark.parametrize("protocol", ["imap", "smtp", "pop3"])
def test_implicit_tls_runs_pass(server, protocol):
    report = millipost.conform(urls(server, protocol)[1], users=[("bob", "hunter2")], root=ROOT,
                               auth="scram-sha-256", deliver_via=deliver(server),
                               scenarios=SUBMISSION_SCENARIOS if protocol == "smtp" else None)
    bad = failures(report)
    assert not bad, "\n\n".join(bad)
    status = {r.id: r.status for r in report.results}
    # Over implicit TLS STARTTLS is not offered: those scenarios are skipped by capability;
    # the SASL ones run.
    for sid in TLS_SCENARIOS[protocol]:
        want = "SKIPPED" if ("tls" in sid or "logindisabled" in sid) else "PASS"
        assert status[sid] == want, (sid, status[sid])
    assert report.ok


@pytest.mark.parametrize("auth", [None, "plain", "scram-sha-256"])
def test_submission_url_runs_the_tls_and_sasl_scenarios(server, auth):
    url = f"submission://alice:secret@{server.host}:{server.submission_port}"
    report = millipost.conform(url, root=ROOT, auth=auth, scenarios=SUBMISSION_SCENARIOS)
    assert report.target.startswith("submission://")
    assert {r.id: r.status for r in report.results} == {sid: "PASS" for sid in
                                                         SUBMISSION_SCENARIOS}, report.summary()
    # The submission policy is real: mail from a foreign sender is refused after AUTH.
    bad = millipost.conform(url, root=ROOT, auth=auth, scenarios=["smtp/mail-rcpt-data"])
    assert not bad.ok and "553" in bad.results[0].message


def test_a_server_that_runs_injected_commands_fails_the_injection_scenario(server, tmp_path):
    # The scenario must be able to fail: a STARTTLS go-ahead followed by the injected command's
    # answer inside TLS is what a vulnerable server sends. Simulated by a scenario that sends
    # the command again after the handshake: the server's answer to it is then "injected".
    d = tmp_path / "imap"
    d.mkdir()
    text = open(os.path.join(ROOT, "imap", "starttls-injection.scenario")).read()
    (d / "inj.scenario").write_text(text.replace("C: a3 NOOP", "C: a2 LOGOUT"))
    report = millipost.conform(urls(server, "imap")[0], root=str(tmp_path))
    (r,) = report.results
    assert r.status == "FAIL" and "must not appear" in r.message, r.message


def test_login_before_tls_is_refused_and_the_server_is_held_to_logindisabled(server):
    # Plain imap:// without ?starttls: the harness's LOGIN is refused (LOGINDISABLED), so the
    # run cannot start, and says so.
    with pytest.raises(ConformError, match="LOGIN"):
        millipost.conform(f"imap://alice:secret@{server.host}:{server.imap_port}", root=ROOT,
                          scenarios=["imap/login"])


def test_certificate_checking(server):
    ok = millipost.conform(urls(server, "imap")[1], root=ROOT, scenarios=["imap/capability"],
                           ca_file=server.tls_cert_path)
    assert ok.ok and ok.results[0].status == "PASS", ok.results[0].message
    # Checked against the system's trust anchors, a self-signed certificate is refused.
    with pytest.raises(ConformError, match="certificate verify failed|CERTIFICATE_VERIFY"):
        millipost.conform(urls(server, "imap")[1], root=ROOT, scenarios=["imap/capability"],
                          tls_verify=True)


def test_url_forms_and_flags():
    t = Target.parse("submission://u:p@mx.example")
    assert (t.protocol, t.port, t.tls, t.starttls) == ("smtp", 587, False, True)
    t = Target.parse("imap://u:p@h?starttls", auth="SCRAM-SHA-256", ca_file="/x.pem")
    assert (t.port, t.starttls, t.auth, t.tls_verify, t.ca_file) == (143, True, "scram-sha-256",
                                                                    True, "/x.pem")
    assert Target.parse("pop3s://u:p@h").port == 995 and Target.parse("smtps://h").tls
    for bad in ("imaps://h?starttls", "imap://h?tls", "smtp://h?starttls&x=1"):
        with pytest.raises(ConformError):
            Target.parse(bad)
    with pytest.raises(ConformError, match="--auth"):
        Target.parse("imap://h", auth="cram-md5")


def test_scram_client_matches_rfc7677_example():
    # RFC 7677 3: user "user", password "pencil", client nonce rOprNGfwEbeRWgbNEkqO.
    c = Scram("user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    assert c.first == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = c.final("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert final == ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    assert c.server_final == "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    with pytest.raises(ValueError):
        c.final("r=someone-else,s=QSXCR+Q6sek8bf92,i=4096")


def test_cli_takes_auth_and_tls_flags(server):
    exe = os.path.join(os.path.dirname(sys.executable), "millipost")
    r = subprocess.run([exe, "conform", urls(server, "pop3")[0], "--scenarios", ROOT,
                        "--scenario", "pop3/stls", "--scenario", "pop3/auth-scram",
                        "--auth", "scram-sha-256", "--ca-file", server.tls_cert_path],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS     pop3/stls" in r.stdout and "PASS     pop3/auth-scram" in r.stdout
    h = subprocess.run([exe, "conform", "--help"], capture_output=True, text=True, timeout=60)
    for flag in ("--auth", "--tls-verify", "--ca-file", "submission://", "?starttls"):
        assert flag in h.stdout, flag
