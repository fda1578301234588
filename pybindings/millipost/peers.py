"""millipost.peers: private instances of peer servers (Dovecot from Debian) on loopback, for
side-by-side runs: conformance (``millipost conform`` against Dovecot in CI) and benchmarks.

    from millipost.peers import DovecotPeer
    with DovecotPeer(users=[("user1", "pw")]) as d:
        d.imap_port, d.pop3_port, d.lmtp_port

Nothing here installs packages; :func:`unavailable_reason` says why a peer cannot start (tests
skip with it). ``bench/peers.py`` adds the Debian install for benchmark machines.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

DOVECOT_PACKAGES = ["dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd"]

#: Extra Dovecot settings for conformance runs: the special-use mailboxes of RFC 6154 (so LIST
#: (SPECIAL-USE) has something to report) and the quota plugin with IMAP QUOTA (RFC 9208).
CONFORMANCE_CONF = """
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
}
mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = count:User quota
  quota_rule = *:storage=1G
  quota_vsizes = yes
}
"""


class PeerUnavailable(RuntimeError):
    """The peer cannot run here (not installed, not root); the message says why."""


def unavailable_reason() -> str:
    """Why a private Dovecot cannot start here, or "" when it can."""
    if not (shutil.which("dovecot") or os.path.exists("/usr/sbin/dovecot")):
        return ("dovecot is not installed (scripts/install-deps.sh installs "
                + ", ".join(DOVECOT_PACKAGES) + ")")
    for exe in ("imap", "pop3", "lmtp"):
        if not os.path.exists(f"/usr/lib/dovecot/{exe}"):
            return f"/usr/lib/dovecot/{exe} missing (install dovecot-{exe}d)"
    if os.geteuid() != 0:
        return "a private Dovecot needs root (it switches to its mail user)"
    return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DovecotPeer:
    """A private Dovecot (IMAP, POP3, LMTP) on loopback ports, its own config, users and mail
    under a scratch folder; the system's Dovecot service (if any) is not touched.

    Needs root (Dovecot drops mail processes to ``UID``) and the Debian packages
    dovecot-imapd, dovecot-pop3d and dovecot-lmtpd (``scripts/install-deps.sh`` installs them
    with the system service disabled). ``extra_conf`` is appended to the generated config
    (:data:`CONFORMANCE_CONF` turns on special-use mailboxes and quota).
    """

    UID = 5000

    def __init__(self, users: list[tuple[str, str]], workdir: str | None = None,
                 extra_conf: str = "", tls: tuple[str, str] | None = None):
        problem = unavailable_reason()
        if problem:
            raise PeerUnavailable(problem)
        self.extra_conf = extra_conf
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="millipost-dovecot-")
        self.users = users
        self.imap_port, self.pop3_port, self.lmtp_port = free_port(), free_port(), free_port()
        self.tls = tls
        self.imaps_port = free_port() if tls else 0
        self.pop3s_port = free_port() if tls else 0
        self.conf = os.path.join(self.dir, "dovecot.conf")

    def __enter__(self) -> "DovecotPeer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        d = self.dir
        mail = os.path.join(d, "mail")
        for sub in ("run", "state", "mail"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chmod(d, 0o755)  # the auth process (user dovecot) reads the passwd file
        os.chown(mail, self.UID, self.UID)
        with open(os.path.join(d, "passwd"), "w") as f:
            for login, pw in self.users:
                f.write(f"{login}:{{PLAIN}}{pw}::::::\n")
        if self.tls:
            # "<path" makes Dovecot read the file (as root, in the master, before dropping).
            ssl = (f"ssl = yes\nssl_cert = <{os.path.abspath(self.tls[0])}\n"
                   f"ssl_key = <{os.path.abspath(self.tls[1])}\nssl_min_protocol = TLSv1.2")
        else:
            ssl = "ssl = no"
        with open(self.conf, "w") as f:
            f.write(f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
listen = 127.0.0.1
protocols = imap pop3 lmtp
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
}}
userdb {{
  driver = static
  args = uid={self.UID} gid={self.UID} home={mail}/%u
}}
mail_uid = {self.UID}
mail_gid = {self.UID}
first_valid_uid = {self.UID}
mail_location = maildir:{mail}/%u/Maildir
default_process_limit = 1000
default_client_limit = 4000
mail_max_userip_connections = 10000
# IDLE learns of new mail through inotify; when the machine runs out of inotify instances
# (many Dovecot processes) it falls back to polling every 30 s by default, longer than any
# client here waits. Poll every second instead.
mailbox_idle_check_interval = 1 secs
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
service imap {{
  process_limit = 1000
}}
service pop3 {{
  process_limit = 1000
}}
{self.extra_conf}
""")
        subprocess.run([shutil.which("dovecot") or "/usr/sbin/dovecot", "-c", self.conf],
                       check=True)
        deadline = time.monotonic() + 20
        for port in (self.imap_port, self.pop3_port, self.lmtp_port, self.imaps_port,
                     self.pop3s_port):
            if not port:
                continue
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"dovecot did not listen on {port}; see {d}/dovecot.log")
                    time.sleep(0.05)

    def pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-f", f"dovecot -c {self.conf}"], capture_output=True,
                             text=True)
        master = [int(p) for p in out.stdout.split()]
        kids = []
        for m in master:
            r = subprocess.run(["pgrep", "-P", str(m)], capture_output=True, text=True)
            kids += [int(p) for p in r.stdout.split()]
        return master + kids

    def stop(self) -> None:
        subprocess.run([shutil.which("doveadm") or "/usr/bin/doveadm", "-c", self.conf, "stop"],
                       capture_output=True)
        time.sleep(0.2)
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
