"""`millipost conform` against Dovecot 2.3 from Debian: a second, independent server, so that
the scenarios are shown to assert the RFCs rather than millipost's behaviour.

Dovecot runs as a private instance (millipost.peers.DovecotPeer: loopback ports, its own
config and mail under a temporary folder); messages for POP3 scenarios are delivered through
its LMTP (`--deliver lmtp://`). The run must match fixtures/expected/dovecot.expect exactly:
no unexpected failure, and no listed failure that now passes (the file would be stale).
Dovecot comes from scripts/install-deps.sh; when it cannot run here (not installed, not root)
the tests fail saying why, like every test of this suite, unless MILLIPOST_SKIP_DOVECOT=1
says to skip them on purpose.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

import millipost
from millipost.conform import load_expectations
from millipost.peers import CONFORMANCE_CONF, DovecotPeer, unavailable_reason
from millipost.scenarios import discover

HERE = os.path.dirname(__file__)
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "scenarios"))
EXPECT = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "expected", "dovecot.expect"))
EXPECT_TLS = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "expected",
                                           "dovecot-tls.expect"))

#: Scenarios that need STARTTLS or SCRAM-SHA-256: skipped by capability in the plain run.
TLS_SCENARIOS = {"imap/starttls", "imap/starttls-injection", "imap/logindisabled",
                 "imap/authenticate-scram-full", "imap/authenticate-bad-base64", "pop3/stls",
                 "pop3/stls-injection", "pop3/auth-scram"}

#: Dovecot as a production server: TLS required for logins, SCRAM-SHA-256 offered (the
#: settings after DovecotPeer's own `ssl = no` etc. replace them).
DOVECOT_TLS_CONF = """
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login scram-sha-256
"""
USERS = [("alice", "secret"), ("bob", "hunter2")]

@pytest.fixture(scope="module")
def dovecot():
    problem = unavailable_reason()
    if problem and os.environ.get("MILLIPOST_SKIP_DOVECOT") == "1":
        pytest.skip(f"MILLIPOST_SKIP_DOVECOT=1: {problem}")
    if problem:
        pytest.fail(f"cannot run Dovecot: {problem} (or set MILLIPOST_SKIP_DOVECOT=1)")
    with DovecotPeer(users=USERS, extra_conf=CONFORMANCE_CONF) as d:
        yield d


def run(dovecot, protocol: str):
    port = {"imap": dovecot.imap_port, "pop3": dovecot.pop3_port}[protocol]
    return millipost.conform(f"{protocol}://alice:secret@127.0.0.1:{port}", users=USERS[1:],
                             deliver_via=f"lmtp://127.0.0.1:{dovecot.lmtp_port}", root=ROOT,
                             expect=EXPECT, timeout=10.0)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_dovecot_matches_its_expected_results_exactly(dovecot, protocol):
    report = run(dovecot, protocol)
    expected = {sid: st for sid, (st, _) in load_expectations(EXPECT).items()
                if sid.startswith(protocol + "/")}
    assert {r.id for r in report.results} == {s.id for s in discover(ROOT) if s.protocol == protocol}
    unexpected = [f"{r.id}: {r.message}" for r in report.results if r.failed]
    assert not unexpected, "unexpected failures:\n\n" + "\n\n".join(unexpected)
    stale = [f"{r.id}: expected {r.expected}, got {r.status}" for r in report.results if r.differs]
    assert not stale, "dovecot.expect is stale:\n" + "\n".join(stale)
    got_fail = {r.id for r in report.results if r.status == "FAIL"}
    assert got_fail == {sid for sid, st in expected.items() if st == "FAIL"}
    assert report.ok
    # Every listed divergence carries its RFC reason.
    assert all(r.reason and "RFC" in r.reason for r in report.results if r.expected == "FAIL")
    # Most of the suite runs (capability gating skips only what Dovecot does not advertise;
    # the TLS and SCRAM scenarios need the TLS configuration, run below).
    counted = [r for r in report.results if r.id not in TLS_SCENARIOS]
    passed = sum(r.status == "PASS" for r in counted)
    assert passed >= 0.8 * len(counted), report.summary()
    skipped = [r for r in report.results if r.status == "SKIPPED"]
    assert all(r.message.startswith("capability not advertised") for r in skipped), skipped


def test_cli_against_dovecot_with_html_and_junit(dovecot, tmp_path):
    html, xml = tmp_path / "dovecot.html", tmp_path / "dovecot.xml"
    exe = os.path.join(os.path.dirname(sys.executable), "millipost")
    r = subprocess.run([exe, "conform", f"pop3://alice:secret@127.0.0.1:{dovecot.pop3_port}",
                        "--deliver", f"lmtp://127.0.0.1:{dovecot.lmtp_port}", "--scenarios", ROOT,
                        "--expect", EXPECT, "--junit", str(xml), "--timeout", "10",
                        "--html", str(html)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS     pop3/retr" in r.stdout  # delivered through LMTP, not skipped
    page = html.read_text()
    assert "pop3/uidl" in page and "RFC 1939" in page and "<style>" in page
    assert "http://" not in page and "https://" not in page  # self-contained


@pytest.fixture(scope="module")
def dovecot_tls():
    problem = unavailable_reason()
    if problem and os.environ.get("MILLIPOST_SKIP_DOVECOT") == "1":
        pytest.skip(f"MILLIPOST_SKIP_DOVECOT=1: {problem}")
    if problem:
        pytest.fail(f"cannot run Dovecot: {problem} (or set MILLIPOST_SKIP_DOVECOT=1)")
    with tempfile.TemporaryDirectory(prefix="millipost-dovecot-tls-") as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        os.chmod(key, 0o644)  # read by Dovecot's unprivileged login processes' parent
        conf = CONFORMANCE_CONF + DOVECOT_TLS_CONF.format(cert=cert, key=key)
        with DovecotPeer(users=USERS, extra_conf=conf) as dc:
            yield dc


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_dovecot_over_starttls_with_scram_matches_its_expected_results(dovecot_tls, protocol):
    port = {"imap": dovecot_tls.imap_port, "pop3": dovecot_tls.pop3_port}[protocol]
    report = millipost.conform(f"{protocol}://alice:secret@127.0.0.1:{port}?starttls",
                               users=USERS[1:], auth="scram-sha-256", root=ROOT,
                               deliver_via=f"lmtp://127.0.0.1:{dovecot_tls.lmtp_port}",
                               expect=EXPECT_TLS, timeout=10.0)
    assert {"imap": "STARTTLS", "pop3": "STLS"}[protocol] in report.capabilities
    unexpected = [f"{r.id}: {r.message}" for r in report.results if r.failed]
    assert not unexpected, "unexpected failures:\n\n" + "\n\n".join(unexpected)
    stale = [f"{r.id}: expected {r.expected}, got {r.status}" for r in report.results if r.differs]
    assert not stale, "dovecot-tls.expect is stale:\n" + "\n".join(stale)
    status = {r.id: r.status for r in report.results}
    # The TLS and SASL scenarios ran (Dovecot has no SMTP).
    ran = {"imap": ["imap/starttls", "imap/authenticate-scram-full"],
           "pop3": ["pop3/stls", "pop3/auth-scram"]}[protocol]
    assert all(status[sid] == "PASS" for sid in ran), {sid: status[sid] for sid in ran}
    assert report.ok
