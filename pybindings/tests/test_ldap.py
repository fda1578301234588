"""LDAP as the user directory (``directory="ldap"``, docs/auth.md) against a real OpenLDAP slapd
started here on an ephemeral loopback port with its own configuration and database: IMAP,
POP3 and SMTP logins by simple bind, refusals (wrong and empty passwords, filter injection),
SCRAM not offered, users created at first login or first mail, and the directory being down
or stuck as a temporary failure.

slapd and ldap-utils come from scripts/install-deps.sh: the tests fail, not skip, without them.
"""
from __future__ import annotations

import base64
import imaplib
import os
import poplib
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

import pytest

import millipost
from conftest import TIMEOUT, running

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
LDAPADD = shutil.which("ldapadd") or "/usr/bin/ldapadd"

BASE = "dc=example,dc=org"
ADMIN = f"cn=admin,{BASE}"
ADMIN_PW = "adminpw"
SERVICE = f"cn=millipost,ou=services,{BASE}"
SERVICE_PW = "servicepw"
BOB_DN = f"uid=bob,ou=people,{BASE}"

# bob's address is not his login (delivery needs the directory); carol's local part is hers.
DATA = f"""
dn: {BASE}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{BASE}
objectClass: organizationalUnit
ou: people

dn: ou=services,{BASE}
objectClass: organizationalUnit
ou: services

dn: {SERVICE}
objectClass: simpleSecurityObject
objectClass: organizationalRole
cn: millipost
userPassword: {SERVICE_PW}

dn: {BOB_DN}
objectClass: inetOrgPerson
uid: bob
cn: Bob Smith
sn: Smith
mail: robert.smith@example.org
userPassword: bobpw

dn: uid=carol,ou=people,{BASE}
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Jones
mail: carol@example.org
userPassword: carolpw
"""

# `allow bind_anon_dn`: this slapd says yes to an unauthenticated bind (a DN and an empty
# password, RFC 4513 §5.1.2), so a login with an empty password would succeed if millipost
# ever sent one. Anonymous users may read everything but passwords, which they may only bind
# with; the service account the same (the anonymous-search test needs no bind_dn).
CONF = """
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
allow bind_anon_dn
database mdb
maxsize 10485760
suffix "{base}"
rootdn "{admin}"
rootpw {admin_pw}
directory {dir}/db
access to attrs=userPassword by anonymous auth by * none
access to * by * read
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slapd:
    """A private slapd: ``start()``, ``stop()``, ``pause()``/``resume()`` (SIGSTOP/SIGCONT);
    its stats log (every BIND and SEARCH) is in ``log()``."""

    def __init__(self, tls=None):
        """``tls``: (certificate, key) PEM files for StartTLS."""
        for tool in (SLAPD, LDAPADD):
            if not os.access(tool, os.X_OK):
                pytest.fail(f"{tool} missing: run scripts/install-deps.sh (slapd, ldap-utils)")
        self.dir = tempfile.mkdtemp(prefix="millipost-slapd-")
        os.mkdir(os.path.join(self.dir, "db"))
        self.conf = os.path.join(self.dir, "slapd.conf")
        with open(self.conf, "w") as f:
            if tls:
                f.write(f"TLSCertificateFile {tls[0]}\nTLSCertificateKeyFile {tls[1]}\n")
            f.write(CONF.format(dir=self.dir, base=BASE, admin=ADMIN, admin_pw=ADMIN_PW))
        self.port = free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}/"
        self.proc = None
        self.logfile = os.path.join(self.dir, "slapd.log")

    def start(self):
        log = open(self.logfile, "ab")
        # -d 256: the stats log on stderr, in the foreground (so the process is ours to stop).
        self.proc = subprocess.Popen([SLAPD, "-f", self.conf, "-h", self.uri, "-d", "256"],
                                     stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"slapd did not start: {self.log()[-2000:]}")
                time.sleep(0.05)

    def load(self, ldif: str):
        subprocess.run([LDAPADD, "-x", "-H", self.uri, "-D", ADMIN, "-w", ADMIN_PW],
                       input=ldif.encode(), check=True, capture_output=True, timeout=TIMEOUT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def log(self) -> str:
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def binds(self, dn: str) -> int:
        # One "method=128" (simple) line per bind; a successful one logs a second line.
        return self.log().count(f'BIND dn="{dn}" method=128')

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def slapd():
    d = Slapd()
    d.start()
    d.load(DATA)
    yield d
    d.cleanup()


@pytest.fixture
def own_slapd():
    """A slapd of the test's own, to stop or pause."""
    d = Slapd()
    d.start()
    d.load(DATA)
    yield d
    d.cleanup()


@pytest.fixture(scope="module")
def tls_slapd(tmp_path_factory):
    """A slapd offering StartTLS with a self-signed certificate for localhost/127.0.0.1."""
    cert, key = millipost._core.write_self_signed(str(tmp_path_factory.mktemp("slapd-tls")),
                                                  "localhost")
    d = Slapd(tls=(str(cert), str(key)))
    d.cert = str(cert)
    d.start()
    d.load(DATA)
    yield d
    d.cleanup()


def ldap_options(d: Slapd, **over) -> dict:
    o = {"uri": d.uri, "base_dn": BASE, "bind_dn": SERVICE, "bind_password": SERVICE_PW,
         "timeout": 2}
    o.update(over)
    return o


def ldap_server(d: Slapd, ldap=None, **options):
    options.setdefault("domains", ["example.org"])
    options.setdefault("auth_fail_delay", 0)
    return running(directory="ldap", ldap=ldap or ldap_options(d), **options)


def imap(s) -> imaplib.IMAP4:
    return imaplib.IMAP4(s.host, s.imap_port, timeout=TIMEOUT)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# ---- logins ---------------------------------------------------------------------------------

def test_imap_login_creates_the_user(slapd, tmp_path):
    with ldap_server(slapd, data_dir=str(tmp_path)) as s:
        assert s.user_count() == 0
        m = imap(s)
        assert m.login("bob", "bobpw")[0] == "OK"
        assert m.select("INBOX")[0] == "OK"
        m.logout()
        assert s.user_count() == 1
        m = imap(s)
        assert m.login("bob", "bobpw")[0] == "OK"  # the same user again
        m.logout()
        assert s.user_count() == 1
        c = s.counters()
        assert c["auth_successes"] == 2 and c["auth_failures"] == 0
    # The password stays in the directory: the store's bob has no usable secret of its own.
    with running(data_dir=str(tmp_path), auth_fail_delay=0) as s:
        assert s.user_count() == 1
        m = imap(s)
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            m.login("bob", "bobpw")


def test_login_names_the_entrys_user(slapd):
    """uid matches case-insensitively in slapd: BOB is bob's entry, and the store's bob."""
    with ldap_server(slapd) as s:
        m = imap(s)
        m.login("bob", "bobpw")
        m.append("INBOX", None, None, b"Subject: mine\r\n\r\nx\r\n")
        m.logout()
        m = imap(s)
        assert m.login("BOB", "bobpw")[0] == "OK"
        assert m.select("INBOX")[1] == [b"1"]
        assert s.user_count() == 1


def test_pop3_user_pass_and_auth_plain(slapd):
    with ldap_server(slapd) as s:
        p = poplib.POP3(s.host, s.pop3_port, timeout=TIMEOUT)
        p.user("carol")
        assert p.pass_("carolpw").startswith(b"+OK")
        p.quit()
        p = poplib.POP3(s.host, s.pop3_port, timeout=TIMEOUT)
        r = p._shortcmd("AUTH PLAIN " + b64(b"\0bob\0bobpw"))
        assert r.startswith(b"+OK")
        p.quit()
        p = poplib.POP3(s.host, s.pop3_port, timeout=TIMEOUT)
        p.user("bob")
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            p.pass_("wrong")
        p.close()


def test_smtp_auth_plain_on_submission(slapd):
    with ldap_server(slapd, tls="self-signed") as s:
        with smtplib.SMTP(s.host, s.submission_port, timeout=TIMEOUT) as c:
            c.ehlo("client.test")
            auth = c.esmtp_features["auth"].split()
            assert "PLAIN" in auth and not any(m.startswith("SCRAM") for m in auth), auth
            code, _ = c.docmd("AUTH", "PLAIN " + b64(b"\0bob\0wrong"))
            assert code == 535
            code, _ = c.docmd("AUTH", "PLAIN " + b64(b"\0bob\0bobpw"))
            assert code == 235
            # The submission policy knows bob now: his own address at a local domain.
            assert c.docmd("MAIL", "FROM:<bob@example.org>")[0] == 250


def test_auth_login_mechanism_over_imap(slapd):
    with ldap_server(slapd) as s:
        m = imap(s)
        answers = iter([b"carol", b"carolpw"])
        assert m.authenticate("LOGIN", lambda _: next(answers))[0] == "OK"
        m.logout()


def test_wrong_password_and_unknown_user_are_refused_and_throttled(slapd):
    with ldap_server(slapd, auth_fail_delay=0.3, auth_fail_max_delay=0.3,
                     auth_fail_limit=0) as s:
        m = imap(s)
        for login, password in (("bob", "wrong"), ("nobody", "bobpw"), ("bob", "bobpw ")):
            t = time.monotonic()
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                m.login(login, password)
            assert time.monotonic() - t >= 0.3  # the throttle's delay applies
        assert s.counters()["auth_failures"] == 3
        # An unknown login was checked by binding as a DN that does not exist, so that it
        # costs the same round trips as a wrong password.
        assert slapd.binds(f"cn=millipost-no-such-user,{BASE}") >= 1
        assert m.login("bob", "bobpw")[0] == "OK"


def test_lockout_applies_to_ldap_logins(slapd):
    with ldap_server(slapd, auth_fail_limit=2, auth_lockout=60) as s:
        m = imap(s)
        for _ in range(2):
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                m.login("carol", "wrong")
        with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
            m.login("carol", "carolpw")


def test_empty_password_never_reaches_the_directory(slapd):
    """This slapd accepts unauthenticated binds: only millipost's refusal keeps them out."""
    with ldap_server(slapd) as s:
        before = slapd.binds(BOB_DN)
        m = imap(s)
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            m.login("bob", "")  # imaplib quotes it: LOGIN bob ""
        answers = iter([b"bob", b""])
        with pytest.raises(imaplib.IMAP4.error):
            m.authenticate("LOGIN", lambda _: next(answers))
        p = poplib.POP3(s.host, s.pop3_port, timeout=TIMEOUT)
        p.user("bob")
        with pytest.raises(poplib.error_proto):
            p._shortcmd("PASS ")
        p.close()
        with smtplib.SMTP(s.host, s.smtp_port, timeout=TIMEOUT) as c:
            c.ehlo("client.test")
            code, _ = c.docmd("AUTH", "PLAIN " + b64(b"\0bob\0"))
            assert code in (501, 535)
        assert slapd.binds(BOB_DN) == before
        assert m.login("bob", "bobpw")[0] == "OK"
        assert slapd.binds(BOB_DN) == before + 1


@pytest.mark.parametrize("login", ["*", "bo*", ")(uid=*", "bob)(uid=*", "bob)(|(uid=*",
                                   "*)(objectClass=*", "bob\\29", "b*b"])
def test_filter_injection_is_escaped(slapd, login):
    """With the filter below, each login would find bob's entry if it reached the filter
    unescaped, and bob's password would then log in."""
    flt = "(&(objectClass=inetOrgPerson)(uid=%u))"
    with ldap_server(slapd, ldap_options(slapd, user_filter=flt)) as s:
        with smtplib.SMTP(s.host, s.smtp_port, timeout=TIMEOUT) as c:
            c.ehlo("client.test")
            code, _ = c.docmd("AUTH", "PLAIN " + b64(b"\0" + login.encode() + b"\0bobpw"))
            assert code == 535, login
            assert c.docmd("AUTH", "PLAIN " + b64(b"\0bob\0bobpw"))[0] == 235


def test_concurrent_logins_share_the_pool(slapd):
    """Many sessions at once over the pooled service connections: each gets its own answer."""
    from concurrent.futures import ThreadPoolExecutor

    def attempt(i: int) -> bool:
        login, password = ("bob", "bobpw") if i % 2 else ("carol", "carolpw")
        if i % 3 == 0:
            password += "x"  # wrong
        m = imap(s)
        try:
            m.login(login, password)
            return True
        except imaplib.IMAP4.error:
            return False
        finally:
            m.shutdown()

    with ldap_server(slapd, store_threads=4, auth_fail_limit=0) as s:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(attempt, range(48)))
        assert results == [i % 3 != 0 for i in range(48)]
        c = s.counters()
        assert c["auth_successes"] == 32 and c["auth_failures"] == 16


def test_anonymous_search(slapd):
    with ldap_server(slapd, ldap_options(slapd, bind_dn="", bind_password="")) as s:
        m = imap(s)
        assert m.login("carol", "carolpw")[0] == "OK"


def test_scram_is_neither_offered_nor_run(slapd):
    with ldap_server(slapd) as s:
        m = imap(s)
        caps = m.capabilities
        assert "AUTH=PLAIN" in caps and not any(c.startswith("AUTH=SCRAM") for c in caps)
        tag = m._new_tag().decode()
        m.send(f"{tag} AUTHENTICATE SCRAM-SHA-256\r\n".encode())
        line = m.readline()
        assert line.startswith(f"{tag} NO [CANNOT]".encode()), line
        with smtplib.SMTP(s.host, s.smtp_port, timeout=TIMEOUT) as c:
            c.ehlo("client.test")
            assert c.docmd("AUTH", "SCRAM-SHA-256")[0] == 504


def test_bad_service_password_is_a_temporary_failure(slapd):
    with ldap_server(slapd, ldap_options(slapd, bind_password="wrong")) as s:
        m = imap(s)
        with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
            m.login("bob", "bobpw")
        assert s.counters()["auth_failures"] == 0


def test_starttls_with_our_ca(tls_slapd, tmp_path):
    opts = ldap_options(tls_slapd, starttls=True, ca_file=tls_slapd.cert)
    with ldap_server(tls_slapd, opts) as s:
        m = imap(s)
        assert m.login("bob", "bobpw")[0] == "OK"
    assert "oid=1.3.6.1.4.1.1466.20037" in tls_slapd.log()  # the StartTLS operation
    # Another CA does not vouch for this server: no bind happens, temporarily failed.
    other, _ = millipost._core.write_self_signed(str(tmp_path), "localhost")
    opts = ldap_options(tls_slapd, starttls=True, ca_file=str(other))
    with ldap_server(tls_slapd, opts) as s:
        m = imap(s)
        with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
            m.login("carol", "carolpw")


# ---- delivery -------------------------------------------------------------------------------

def test_mail_to_a_directory_address_before_the_first_login(slapd):
    with ldap_server(slapd) as s:
        with smtplib.SMTP(s.host, s.smtp_port, timeout=TIMEOUT) as c:
            refused = c.sendmail("sender@elsewhere.test",
                                 ["robert.smith@example.org", "carol@example.org"],
                                 b"Subject: hello\r\n\r\nfrom outside\r\n")
            assert refused == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                c.sendmail("sender@elsewhere.test", ["nobody@example.org"], b"\r\n")
        for login, password in (("bob", "bobpw"), ("carol", "carolpw")):
            m = imap(s)
            m.login(login, password)
            typ, data = m.select("INBOX")
            assert typ == "OK" and data == [b"1"], (login, data)
            m.logout()


# ---- the directory down or stuck -----------------------------------------------------------

def test_directory_down_is_a_temporary_failure(own_slapd):
    with ldap_server(own_slapd, tls="self-signed") as s:
        m = imap(s)
        assert m.login("bob", "bobpw")[0] == "OK"  # the pool has a connection now
        own_slapd.stop()
        m = imap(s)
        with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
            m.login("carol", "carolpw")
        p = poplib.POP3(s.host, s.pop3_port, timeout=TIMEOUT)
        p.user("carol")
        with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
            p.pass_("carolpw")
        p.close()
        with smtplib.SMTP(s.host, s.submission_port, timeout=TIMEOUT) as c:
            c.ehlo("client.test")
            code, msg = c.docmd("AUTH", "PLAIN " + b64(b"\0carol\0carolpw"))
            assert code == 454 and msg.startswith(b"4.7.0"), (code, msg)
        with smtplib.SMTP(s.host, s.smtp_port, timeout=TIMEOUT) as c:
            c.ehlo("client.test")
            c.docmd("MAIL", "FROM:<x@elsewhere.test>")
            code, msg = c.docmd("RCPT", "TO:<someone@example.org>")
            assert code == 451 and msg.startswith(b"4.4.3"), (code, msg)
        # Never "wrong password": no failure counted, nothing throttled.
        assert s.counters()["auth_failures"] == 0
        # Back: a new connection replaces the dead one in the pool.
        own_slapd.start()
        m = imap(s)
        assert m.login("carol", "carolpw")[0] == "OK"


def test_stuck_directory_times_out(own_slapd):
    with ldap_server(own_slapd, ldap_options(own_slapd, timeout=1)) as s:
        m = imap(s)
        assert m.login("bob", "bobpw")[0] == "OK"
        own_slapd.pause()
        try:
            m = imap(s)
            t = time.monotonic()
            with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
                m.login("carol", "carolpw")
            assert time.monotonic() - t < 4  # bounded by the timeout, not hung
        finally:
            own_slapd.resume()
        m = imap(s)
        assert m.login("carol", "carolpw")[0] == "OK"


def test_unreachable_uri_is_a_temporary_failure():
    port = free_port()  # nothing listens there
    opts = {"uri": f"ldap://127.0.0.1:{port}/", "base_dn": BASE, "timeout": 1}
    with running(directory="ldap", ldap=opts, auth_fail_delay=0) as s:
        m = imap(s)
        with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
            m.login("bob", "bobpw")


def test_millipost_server_reads_the_ldap_config(slapd, tmp_path):
    """The [auth] and [ldap] keys of a config file reach millipost-server."""
    server = shutil.which("millipost-server")
    assert server, "millipost-server is not installed on PATH"
    port = free_port()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""[server]\ndata_dir = "{tmp_path / 'd'}"\n[smtp]\nport = -1\n[pop3]\nport = -1
[imap]\nport = {port}\n[auth]\ndirectory = "ldap"\nfail_delay_ms = 0
[ldap]\nuri = "{slapd.uri}"\nbase_dn = "{BASE}"\nbind_dn = "{SERVICE}"
bind_password = "{SERVICE_PW}"\ntimeout = 2\n""")
    proc = subprocess.Popen([server, "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                m = imaplib.IMAP4("127.0.0.1", port, timeout=TIMEOUT)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "millipost-server did not listen"
                time.sleep(0.05)
        assert not any(c.startswith("AUTH=SCRAM") for c in m.capabilities)
        assert m.login("carol", "carolpw")[0] == "OK"
        m.logout()
    finally:
        proc.terminate()
        proc.wait(TIMEOUT)


def test_bad_directory_options_are_refused():
    with pytest.raises(ValueError):
        running(directory="nis").__enter__()
    with pytest.raises(TypeError):
        running(directory="ldap", ldap={"base_dn": BASE, "colour": "red"}).__enter__()
    with pytest.raises(Exception, match="base_dn"):
        running(directory="ldap", ldap={}).__enter__()
