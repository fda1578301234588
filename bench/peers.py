"""bench/peers.py: private instances of peer servers from Debian, on loopback, for side-by-side
measurements. The peer itself is millipost.peers.DovecotPeer (shared with the conformance tests);
here it also installs the Debian packages it needs, for benchmark machines.

    with DovecotPeer(users=[("user1", "pw")]) as d:
        d.lmtp_port, d.pop3_port, d.imap_port
"""
from __future__ import annotations

import os
import subprocess

from millipost.peers import DOVECOT_PACKAGES, free_port  # noqa: F401  (re-exported)
from millipost.peers import DovecotPeer as _DovecotPeer


def ensure_packages(packages: list[str]) -> None:
    missing = [p for p in packages
               if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                                 text=True).stdout.find("install ok installed") < 0]
    if missing:
        print(f"peers: installing {' '.join(missing)} from Debian")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                       stdout=subprocess.DEVNULL)


class DovecotPeer(_DovecotPeer):
    def __init__(self, users: list[tuple[str, str]], workdir: str | None = None, **kw):
        ensure_packages(DOVECOT_PACKAGES)
        super().__init__(users, workdir, **kw)
