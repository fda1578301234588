"""The reference server in-process: real sockets, a real SQLite file, threads outside the GIL."""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Callable, Optional, Tuple, Union

from . import _core
from .population import Population


class Server:
    """Runs millipost in this process on ephemeral loopback ports.

    ``data_dir=None`` uses a temporary directory removed by :meth:`stop`. Other keyword options
    map to the server's configuration: ``hostname``, ``domains``, ``smtp_port``, ``pop3_port``,
    ``imap_port`` (0 = ephemeral, -1 = off), ``max_message_size``, ``max_recipients``, ``max_connections``,
    ``max_connections_per_address`` (default 100, loopback included; 0 = no limit),
    ``smtp_timeout``, ``pop3_timeout``, ``imap_timeout`` (seconds; after login),
    ``pop3_login_timeout``, ``imap_login_timeout``, ``smtp_login_timeout`` (seconds; before
    login, on SMTP before AUTH on the submission listeners; default 60), ``prelogin_max_time``
    (seconds from accept to login, however busy the client; default 180), ``listen`` (the
    listeners' address, default ``"127.0.0.1"``; ``host`` stays 127.0.0.1),
    ``io_threads``, ``store_threads``,
    ``special_use_mailboxes`` (default True: Drafts, Sent, Trash, Junk and Archive are created
    at a user's first login), ``quota_storage`` (KiB) and ``quota_messages`` (per-user quota,
    0 = unlimited),
    ``postmaster`` (the login that receives mail for <postmaster>; created without a usable
    password when missing),
    ``log_level`` (default ``"warn"``),
    ``plaintext_auth`` (``"never"``, ``"loopback"`` (default) or ``"always"``: where PLAIN,
    LOGIN, IMAP LOGIN and POP3 USER/PASS are allowed without TLS), failed-login throttling:
    ``auth_fail_delay`` and ``auth_fail_max_delay`` (seconds; 0 = no delay), ``auth_fail_limit``
    (failures before refusal; 0 = never), ``auth_lockout``, ``auth_fail_window`` (seconds),
    ``auth_throttle_entries`` (see docs/auth.md),
    ``directory`` (``"store"`` (default) or ``"ldap"``: where logins are checked) and ``ldap``
    (a dict of the ``[ldap]`` keys: ``uri``, ``base_dn``, ``user_filter``, ``bind_dn``,
    ``bind_password``, ``starttls``, ``ca_file``, ``timeout`` (seconds), ``login_attribute``,
    ``mail_attribute``; see docs/auth.md),
    ``sender_aliases`` (``{"alice": ["sales@example.com"]}``: addresses a login may send as,
    besides its own) and ``inbound_auth_relay`` (default False: whether a client authenticated on
    ``smtp_port`` may relay to other domains; see docs/submission.md).

    Outbound delivery of the submission queue (docs/submission.md, "Outbound delivery"):
    ``outbound_routes`` (``{"example.org": "127.0.0.1:2525"}``: where mail for a domain goes),
    ``relayhost`` (``"host:port"``: a smarthost for all of it) with ``relay_user`` and
    ``relay_password`` (AUTH PLAIN, only over TLS), ``outbound_tls`` (``"none"``, ``"may"``
    (default: STARTTLS when offered, no certificate check), ``"encrypt"`` or ``"verify"``),
    ``outbound_tls_policy`` (``{domain: level}``), ``outbound_tls_ca_file`` (for ``"verify"``),
    ``retry_min`` and ``retry_max`` (seconds; the retry delay doubles from one to the other),
    ``max_queue_lifetime`` (seconds until a deferred message bounces; default 5 days),
    ``outbound_timeout`` (caps every SMTP client timeout, seconds), ``outbound_max_concurrent``,
    ``outbound_mx_lookup`` (default False in-process: a domain without a route stays deferred
    instead of asking DNS), ``outbound_nameserver`` (``"127.0.0.1:5353"``: the DNS server MX and
    MX host lookups ask instead of resolv.conf's), ``outbound_mx_port`` (the port MX hosts are
    contacted on; 25 except in test setups) and ``outbound_delivery`` (default True; False leaves the queue alone).

    ``tls`` turns TLS on (docs/tls.md): ``"self-signed"`` makes a development certificate for
    localhost/127.0.0.1 in the data directory, ``("cert.pem", "key.pem")`` uses those files,
    ``None`` (the default) means no TLS. With TLS, SMTP/IMAP/POP3 offer STARTTLS/STLS and four more
    listeners open: ``submission_port`` (plain + STARTTLS), ``submissions_port``, ``imaps_port`` and
    ``pop3s_port`` (implicit TLS; each 0 = ephemeral, -1 = off). ``tls_cert_path`` is the
    certificate to trust (``ssl.create_default_context(cafile=s.tls_cert_path)``).

        with Server() as s:
            s.add_user("alice", "secret")
            smtplib.SMTP(s.host, s.smtp_port).sendmail(...)
    """

    host = "127.0.0.1"

    def __init__(self, data_dir: Optional[str] = None, start: bool = True,
                 tls: Union[None, str, Tuple[str, str]] = None, **options):
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="millipost-")
            data_dir = self._tmp
        self.data_dir = str(data_dir)
        options.setdefault("log_level", "warn")
        options["data_dir"] = self.data_dir
        self.tls_cert_path: Optional[str] = None
        self.tls_key_path: Optional[str] = None
        try:
            if tls == "self-signed":
                cert, key = _core.write_self_signed(os.path.join(self.data_dir, "tls"),
                                                    "localhost")
            elif isinstance(tls, (tuple, list)) and len(tls) == 2:
                cert, key = (os.fspath(p) for p in tls)
            elif tls is not None:
                raise ValueError('tls must be "self-signed", (cert, key) or None')
            if tls is not None:
                self.tls_cert_path, self.tls_key_path = str(cert), str(key)
                options["tls_cert"], options["tls_key"] = self.tls_cert_path, self.tls_key_path
            self._service = _core.Service(options)
            if start:
                self.start()
        except BaseException:
            self._remove_tmp()
            raise

    def start(self) -> "Server":
        self._service.start()
        return self

    def stop(self) -> None:
        """Stops gracefully: no new connections, in-flight deliveries finish, store closed."""
        self._service.stop()
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._service.running

    @property
    def smtp_port(self) -> int:
        return self._service.smtp_port

    @property
    def pop3_port(self) -> int:
        return self._service.pop3_port

    @property
    def imap_port(self) -> int:
        return self._service.imap_port

    @property
    def submission_port(self) -> int:
        """SMTP submission, plain + STARTTLS (0 without TLS): AUTH required, senders must
        belong to the user, other domains are queued for outbound delivery (docs/submission.md)."""
        return self._service.submission_port

    @property
    def submissions_port(self) -> int:
        """SMTP submission over implicit TLS (RFC 8314; 0 without TLS)."""
        return self._service.submissions_port

    @property
    def imaps_port(self) -> int:
        """IMAP over implicit TLS (0 without TLS)."""
        return self._service.imaps_port

    @property
    def pop3s_port(self) -> int:
        """POP3 over implicit TLS (0 without TLS)."""
        return self._service.pop3s_port

    @property
    def tls(self) -> bool:
        return self.tls_cert_path is not None

    def reload_tls(self) -> bool:
        """Reloads the certificate and key from their paths, as SIGHUP does for
        millipost-server: new handshakes use them. False (old ones kept) on a bad file."""
        return self._service.reload_tls()

    def outbound_queue(self) -> list:
        """Messages accepted by submission for other domains and not yet delivered (oldest
        first), as dicts ``id``, ``sender``, ``recipients`` (those still pending), ``bytes``,
        ``queued_at``, ``attempts`` (attempts that left recipients pending),
        ``next_attempt_at`` (seconds since the epoch) and ``last_error``."""
        return self._service.outbound_queue()

    @property
    def hostname(self) -> str:
        return self._service.hostname

    def add_user(self, login: str, password: str) -> int:
        """Adds one user (PBKDF2-SHA256 SCRAM secret; no cleartext kept). Returns its id."""
        if not login or not password:
            raise ValueError("login and password must be non-empty")
        return self._service.add_user(login, password)

    def provision(self, population: Population, first: int = 0, last: Optional[int] = None,
                  progress: Optional[Callable[[int], None]] = None,
                  messages_per_user: int = 0, vary: bool = False,
                  max_message_size: Optional[int] = None,
                  message_progress: Optional[Callable[[int, int], None]] = None) -> int:
        """Bulk-loads users [first, last) of a population; returns how many were new.

        Synthetic users get one-iteration secrets marked ``scram-sha-256-synthetic``: cheap to
        make by the million, and never to be mistaken for real accounts. With
        ``messages_per_user`` the mailboxes of users [first, last) are then filled as by
        :meth:`populate_mailboxes` (``vary``, ``max_message_size`` and ``message_progress``
        are its arguments).
        """
        last = population.size if last is None else min(last, population.size)
        added = self._service.provision(population._core, first, last, progress)
        if messages_per_user > 0:
            self.populate_mailboxes(population, first, last, messages=messages_per_user,
                                    vary=vary, max_message_size=max_message_size,
                                    progress=message_progress)
        return added

    def populate_mailboxes(self, population: Population, first: int = 0,
                           last: Optional[int] = None, messages: int = 100, vary: bool = False,
                           max_message_size: Optional[int] = None,
                           progress: Optional[Callable[[int, int], None]] = None) -> int:
        """Fills the mailboxes of provisioned users [first, last) with generated mail.

        Each user gets ``messages`` messages (with ``vary``, a lognormal count with that median,
        at most 20 times it): about 85% in INBOX, 10% in Archive, 5% in Sent, older ones \\Seen,
        some replies to earlier ones. Message k of user i is the generator's message
        ``(population.seed, Population.message_index(i, k))`` and carries its X-Millipost-Id.
        ``max_message_size`` skips larger messages (the heavy tail reaches ~20 MB).
        ``progress(users_done, messages_added)``. Not idempotent: a second call adds more.
        Returns how many messages were added. Bulk-loaded messages raise no events; SEARCH
        indexes them when it first searches the mailbox.
        """
        if messages < 0:
            raise ValueError("messages must be >= 0")
        last = population.size if last is None else min(last, population.size)
        return self._service.populate_mailboxes(population._core, first, last, messages, vary,
                                                max_message_size or 0, progress)

    def user_count(self) -> int:
        return self._service.user_count()

    def mailbox_uids(self, login: str, mailbox: str = "INBOX") -> list[int]:
        """UIDs in a user's mailbox, read from the store (for tests and oracles)."""
        return self._service.mailbox_uids(login, mailbox)

    def counters(self) -> dict:
        return self._service.counters()

    def __repr__(self) -> str:
        state = (f"smtp={self.smtp_port} pop3={self.pop3_port} imap={self.imap_port}"
                 if self.running else "stopped")
        if self.running and self.tls:
            state += (f" submission={self.submission_port} submissions={self.submissions_port}"
                      f" imaps={self.imaps_port} pop3s={self.pop3s_port}")
        return f"<millipost.Server {state} data_dir={self.data_dir!r}>"
