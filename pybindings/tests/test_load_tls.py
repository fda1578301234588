"""The load engine against a production-configured server (issue 6): implicit TLS (imaps://,
pop3s://, smtps://), STARTTLS (submission://, ``?starttls``) and SASL logins (PLAIN, LOGIN,
SCRAM-SHA-256 with the server's signature checked). Runs must be as clean as plain ones: no
errors, no contract breaches (the checker judges the plaintext inside TLS), every acknowledged
message verified, the verification itself over TLS."""
from __future__ import annotations

import os
import shutil

import pytest

import millipost
from millipost import _core

SEED = 9
USERS = 12
PASSWORD = "pw"


@pytest.fixture(scope="module")
def server():
    with millipost.Server(tls="self-signed") as s:
        s.provision(millipost.Population(SEED, USERS, password=PASSWORD))
        yield s


def config(targets, **over):
    cfg = {"targets": targets, "users": USERS, "seed": SEED, "password": PASSWORD,
           "duration": 2.0, "mode": "closed", "sessions": 4, "think_ms": 5,
           "idle_seconds": 0.2,
           "profiles": {"webmail": 3, "mobile": 1, "pop3": 2, "sender": 3}}
    cfg.update(over)
    return cfg


def implicit(s):
    return [f"imaps://127.0.0.1:{s.imaps_port}", f"pop3s://127.0.0.1:{s.pop3s_port}",
            f"submission://127.0.0.1:{s.submission_port}"]


def assert_clean(r):
    t = r["totals"]
    assert r["errors"] == {}, r.get("error_samples")
    assert r["breaches"] == [] and t["contract_breaches"] == 0
    assert r["violations"] == [] and t["oracle_violations"] == 0
    assert t["messages_delivered"] > 0
    assert t["messages_delivered"] == t["messages_verified"]
    assert r["verification"] == "done" and r["interrupted"] is False


def test_implicit_tls_submission_and_scram_run_clean(server):
    r = _core.run_load(config(implicit(server), auth="scram-sha-256"))
    assert_clean(r)
    cmds = r["commands"]
    for verb in ("IMAP TLS", "POP3 TLS", "SMTP TLS", "SMTP STARTTLS", "IMAP AUTHENTICATE",
                 "POP3 AUTH", "SMTP AUTH"):
        assert cmds.get(verb, {}).get("count", 0) > 0, verb
        assert cmds[verb]["errors"] == 0, verb
    # SCRAM replaces LOGIN and USER/PASS entirely.
    assert "IMAP LOGIN" not in cmds and "POP3 USER" not in cmds
    # One PBKDF2 per user at most (the engine caches SaltedPassword), however many logins.
    logins = cmds["IMAP AUTHENTICATE"]["count"] + cmds["POP3 AUTH"]["count"]
    assert 0 < r["engine"]["scram_pbkdf2"] <= USERS < logins
    assert r["config"]["auth"] == "scram-sha-256"
    assert r["config"]["targets"] == sorted(implicit(server), key=lambda u: (
        {"imaps": "imap", "pop3s": "pop3", "submission": "smtp"}[u.split(":")[0]]))


def test_starttls_with_plain_runs_clean(server):
    targets = [f"imap://127.0.0.1:{server.imap_port}?starttls",
               f"pop3://127.0.0.1:{server.pop3_port}?starttls",
               f"smtp://127.0.0.1:{server.smtp_port}?starttls"]
    r = _core.run_load(config(targets, auth="plain"))
    assert_clean(r)
    cmds = r["commands"]
    for verb in ("IMAP STARTTLS", "IMAP CAPABILITY", "POP3 STLS", "SMTP STARTTLS", "IMAP TLS",
                 "POP3 TLS", "SMTP TLS", "IMAP AUTHENTICATE", "POP3 AUTH", "SMTP AUTH"):
        assert cmds.get(verb, {}).get("count", 0) > 0, verb
    # EHLO before and after the handshake (RFC 3207 §4.2).
    assert cmds["SMTP EHLO"]["count"] >= 2 * cmds["SMTP STARTTLS"]["count"]
    assert any(t.endswith("?starttls") for t in r["config"]["targets"])


def starttls_targets(s):
    return [f"imap://127.0.0.1:{s.imap_port}?starttls",
            f"pop3://127.0.0.1:{s.pop3_port}?starttls",
            f"smtp://127.0.0.1:{s.smtp_port}?starttls"]


def test_imap_contract_judges_the_session_across_starttls(server, tmp_path):
    # The engine no longer pauses IMAP checking across STARTTLS: one checker sees the STARTTLS
    # exchange and goes on with the decrypted session (imap.contract's `tls` state). A clean
    # run has zero breaches with every session checked ...
    r = _core.run_load(config(starttls_targets(server), auth="plain", contract_sample=1.0))
    assert_clean(r)
    assert r["config"]["contracts"] is True and r["config"]["contract_sample"] == 1.0
    assert r["commands"]["IMAP STARTTLS"]["count"] > 0
    # ... and the checker really judges what comes after the switch: a contract that also
    # forbids AUTH=PLAIN inside TLS (which the server advertises there) is broken by every
    # IMAP session, in the TLS state, by the CAPABILITY the engine asks for after STARTTLS.
    # The same for SMTP: its checker resumes inside TLS (smtp.contract `tls TLS READY
    # STARTTLS`) and judges the EHLO there; POP3's contract is used as it is.
    src = os.path.dirname(millipost.__file__) + "/contracts"
    shutil.copy(f"{src}/pop3.contract", tmp_path)
    for name, old, new in (("imap", "tls NOTAUTH-TLS STARTTLS", "AUTH=PLAIN"),
                           ("smtp", "tls TLS READY STARTTLS", "PIPELINING")):
        text = open(f"{src}/{name}.contract").read()
        assert f"\n{old}\n" in text
        (tmp_path / f"{name}.contract").write_text(text.replace(f"\n{old}\n",
                                                                f"\n{old} {new}\n"))
    r = _core.run_load(config(starttls_targets(server), auth="plain", verify=False,
                              contracts_dir=str(tmp_path)))
    imap = [b for b in r["breaches"] if b["protocol"] == "imap"]
    smtp = [b for b in r["breaches"] if b["protocol"] == "smtp"]
    assert imap and smtp and r["totals"]["contract_breaches"] >= len(imap) + len(smtp)
    assert all(b["who"] == "server" and "AUTH=PLAIN advertised inside TLS" in b["reason"]
               and b["state"] == "NOTAUTH-TLS" for b in imap), imap[:3]
    assert all(b["who"] == "server" and "PIPELINING advertised inside TLS" in b["reason"]
               for b in smtp), smtp[:3]
    assert not [b for b in r["breaches"] if b["protocol"] == "pop3"]


def test_login_mechanism_over_tls_runs_clean(server):
    # The default: IMAP LOGIN, POP3 USER/PASS; SMTP AUTH LOGIN on the submission target.
    r = _core.run_load(config(implicit(server)))
    assert_clean(r)
    for verb in ("IMAP LOGIN", "POP3 USER", "POP3 PASS", "SMTP AUTH"):
        assert r["commands"].get(verb, {}).get("count", 0) > 0, verb
    assert r["engine"]["scram_pbkdf2"] == 0


def test_wrong_password_with_scram_gives_login_errors(server):
    cfg = config(implicit(server), auth="scram-sha-256", password="not-the-password",
                 duration=1.0, sessions=2, verify=False,
                 profiles={"webmail": 1, "pop3": 1})
    r = _core.run_load(cfg)
    cmds = r["commands"]
    failed = sum(cmds.get(v, {}).get("errors", 0) for v in ("IMAP AUTHENTICATE", "POP3 AUTH"))
    assert failed > 0
    assert r["totals"]["errors"] > 0
    assert set(r["errors"]) <= {"NO reply", "-ERR reply"}, r["errors"]
    assert "IMAP SELECT" not in cmds and "POP3 STAT" not in cmds  # nobody got in
    assert r["breaches"] == []  # failing is a protocol outcome, not a breach


def test_certificate_is_checked_when_asked(server):
    tls_only = [f"imaps://127.0.0.1:{server.imaps_port}"]
    few = {"duration": 0.5, "sessions": 1, "verify": False, "profiles": {"webmail": 1}}
    # The self-signed certificate as trust anchor: accepted (its SAN has IP:127.0.0.1).
    r = _core.run_load(config(tls_only, ca_file=server.tls_cert_path, **few))
    assert r["errors"] == {}, r.get("error_samples")
    assert r["commands"]["IMAP TLS"]["count"] > 0
    assert r["config"]["tls_verify"] is True
    # Verification without that anchor: the system's roots do not know it.
    r = _core.run_load(config(tls_only, tls_verify=True, **few))
    assert r["commands"].get("IMAP TLS", {}).get("errors", 0) > 0
    assert any("certificate verify failed" in k for k in r["errors"]), r["errors"]


@pytest.mark.parametrize("bad, message", [
    ({"targets": "imaps://127.0.0.1:1?starttls"}, "starttls"),
    ({"targets": "smtp://127.0.0.1:1?tls"}, "starttls"),
    ({"targets": "gopher://127.0.0.1:1"}, "scheme"),
    ({"auth": "cram-md5"}, "auth"),
    ({"ca_file": "/nonexistent/ca.pem"}, "ca_file"),
])
def test_bad_tls_and_auth_configurations_are_value_errors(server, bad, message):
    cfg = config(implicit(server), duration=0.2)
    cfg.update(bad)
    with pytest.raises(ValueError, match=message):
        _core.run_load(cfg)


def test_load_api_takes_auth_and_tls_urls(server):
    r = millipost.load(implicit(server), users=USERS, seed=SEED, password=PASSWORD,
                       duration=1.5, mode="closed", sessions=3, auth="scram-sha-256",
                       ca_file=server.tls_cert_path, progress=False,
                       profile={"profiles": {"mobile": {"weight": 0}, "mx": {"weight": 0}}})
    assert r.ok, (r.get("breaches"), r.get("violations"))
    assert r.totals["errors"] == 0, r.get("error_samples")
    assert r.config["auth"] == "scram-sha-256" and r.config["tls_verify"] is True
    assert r.config["engine"]["auth"] == "scram-sha-256"
    assert r.commands["IMAP AUTHENTICATE"]["count"] > 0


def test_load_api_rejects_unknown_auth():
    with pytest.raises(millipost.LoadError, match="auth"):
        millipost.load(["imaps://127.0.0.1:1"], auth="md5", progress=False)


def test_a_wrong_scram_server_signature_is_an_error():
    # A server that knows the user's secret but signs with the wrong key (as a man in the
    # middle that relays the proof would): the engine must notice and cancel with "*".
    import base64
    import socket
    import threading

    from scramp import ScramMechanism

    mech = ScramMechanism("SCRAM-SHA-256")
    info = mech.make_auth_info(PASSWORD, iteration_count=4096)
    seen = []

    def serve(conn):
        with conn, conn.makefile("rb") as rf:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=SCRAM-SHA-256] fake\r\n")
            line = rf.readline().decode()
            tag, _, mechanism, ir = line.split()
            server = mech.make_server(lambda user: info)
            server.set_client_first(base64.b64decode(ir).decode())
            conn.sendall(b"+ " + base64.b64encode(server.get_server_first().encode()) + b"\r\n")
            server.set_client_final(base64.b64decode(rf.readline().strip()).decode())
            real = server.get_server_final()
            fake = "v=" + base64.b64encode(b"\x01" * 32).decode()
            assert real != fake
            conn.sendall(b"+ " + base64.b64encode(fake.encode()) + b"\r\n")
            seen.append(rf.readline().strip())
            conn.sendall(tag.encode() + b" BAD AUTHENTICATE cancelled\r\n")

    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]

    def accept():
        lsock.settimeout(10)
        try:
            conn, _ = lsock.accept()
            serve(conn)
        finally:
            lsock.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    r = _core.run_load({"targets": [f"imap://127.0.0.1:{port}"], "users": 1, "seed": SEED,
                        "password": PASSWORD, "duration": 0.5, "mode": "closed", "sessions": 1,
                        "max_sessions": 1, "auth": "scram-sha-256", "contracts": False,
                        "verify": False, "profiles": {"webmail": 1}})
    t.join(10)
    assert seen == [b"*"]
    assert r["errors"].get("SCRAM: wrong server signature") == 1, r["errors"]
    assert r["commands"]["IMAP AUTHENTICATE"]["errors"] == 1
