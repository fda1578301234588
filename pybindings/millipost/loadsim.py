"""The load simulator from Python: ``millipost.load(...)`` (docs/load.md).

(The module is ``loadsim`` so that the function ``millipost.load`` does not shadow it.)

This module builds the engine's configuration (the behaviour profile merged over the built-in
default, the population, the arrival process, the targets), optionally starts the reference
server in this process and provisions the population into it, runs the C++ engine
(``_core.run_load``) and returns its results as a :class:`Results` dict.

    import millipost
    r = millipost.load(reference=True, users=100_000, duration="30s", seed=7)
    print(r.totals["commands"], r.commands["IMAP FETCH"]["latency_us"]["p99"], r.ok)
    r.write_html("reports/out/run.html")
"""
from __future__ import annotations

import json
import os
import re
import time
from typing import Callable, Mapping, Optional, Sequence

from . import profile as profiles

#: Concurrent sessions of a closed-loop run when ``sessions`` is not given (at most one per user).
DEFAULT_CLOSED_SESSIONS = 64

#: Seconds between progress callbacks the bar redraws at most (the engine decides how often it
#: calls; this only throttles drawing).
PROGRESS_REDRAW = 0.2

#: URL schemes the engine connects to, and their protocols: plain TCP (``?starttls`` after the
#: port: STARTTLS first), implicit TLS (imaps, pop3s, smtps) and submission (STARTTLS, then AUTH).
_SCHEMES = {"imap": "imap", "pop3": "pop3", "pop": "pop3", "smtp": "smtp", "imaps": "imap",
            "pop3s": "pop3", "pops": "pop3", "smtps": "smtp", "submission": "smtp"}

#: Values of ``auth``: how sessions log in (sim/README.md).
AUTH_MECHANISMS = ("login", "plain", "scram-sha-256")

class LoadError(RuntimeError):
    """A run that could not start: bad arguments, a bad profile, no engine."""


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``30``, ``30s``, ``2.5m``, ``1h``, ``1m30s`` or ``500ms``."""
    if isinstance(value, bool):
        raise LoadError(f"duration {value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?", text)
        if not text or not parts or re.sub(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?", "",
                                           text).strip():
            raise LoadError(f"duration {value!r} is not a duration (examples: 30, 30s, 5m, "
                            f"1h, 1m30s, 500ms)")
        unit = {"ms": 0.001, "s": 1.0, "": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
        seconds = sum(float(n) * unit[u] for n, u in parts)
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise LoadError(f"duration {value!r} must be positive and finite")
    return seconds


def _check_target(url: str) -> str:
    m = re.match(r"^([a-z0-9]+)://", url)
    if not m or m.group(1) not in _SCHEMES:
        raise LoadError(f"target {url!r}: expected a URL whose scheme is one of "
                        f"{', '.join(_SCHEMES)} (e.g. imap://127.0.0.1:143)")
    return url


def _protocol_of(url: str) -> str:
    return _SCHEMES[url.split("://", 1)[0]]


def build_config(targets: Sequence[str] = (), users: int = 1000, duration: str | float = "30s",
                 seed: int = 1, profile: str | os.PathLike | Mapping | None = None,
                 mode: str = "open", sessions: Optional[int] = None,
                 rate: Optional[float] = None, domain: str = "localhost",
                 password: Optional[str] = None, target_pid: Optional[int] = None,
                 reference: bool = False, workers: int = 1, auth: Optional[str] = None,
                 tls_verify: bool = False, ca_file: str | os.PathLike | None = None) -> dict:
    """The engine configuration (docs/load.md, "Engine configuration"), validated, with every
    default filled in: the results carry it, so a run can be repeated from its JSON alone."""
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise LoadError(f"users must be a positive integer, not {users!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise LoadError(f"seed must be a non-negative integer, not {seed!r}")
    if mode not in ("open", "closed"):
        raise LoadError(f"mode must be 'open' or 'closed', not {mode!r}")
    if auth is not None and auth not in AUTH_MECHANISMS:
        raise LoadError(f"auth must be one of {', '.join(AUTH_MECHANISMS)}, not {auth!r}")
    seconds = parse_duration(duration)
    try:
        prof = profiles.load(profile)
    except profiles.ProfileError as e:
        raise LoadError(str(e)) from None
    targets = [_check_target(t) for t in targets]
    if not targets:
        raise LoadError("no targets: give server URLs (imap://HOST:PORT, pop3://..., "
                        "smtp://...) or reference=True")
    have = {_protocol_of(t) for t in targets}
    missing = sorted(profiles.protocols(prof) - have)
    if missing:
        needing = sorted(n for n, q in prof["profiles"].items()
                         if q["weight"] > 0 and profiles.KIND_PROTOCOL[q["kind"]] in missing)
        raise LoadError(f"no {' or '.join(missing)} target for the profiles "
                        f"{', '.join(needing)}: add a URL or set their weight to 0 in a profile")
    if sessions is not None and (isinstance(sessions, bool) or not isinstance(sessions, int)
                                 or sessions < 1):
        raise LoadError(f"sessions must be a positive integer, not {sessions!r}")
    if sessions is not None and mode != "closed":
        raise LoadError("sessions applies to closed-loop runs (mode='closed'); an open-loop "
                        "run's concurrency is what its arrival rate and the target make it")
    per_hour = prof["load"]["rate_per_user_per_hour"]
    if rate is not None:
        if mode != "open":
            raise LoadError("rate applies to open-loop runs (mode='open')")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise LoadError(f"rate must be a positive number of sessions per second, "
                            f"not {rate!r}")
        rate = float(rate)
    elif mode == "open":
        rate = users * per_hour / 3600.0
        if rate <= 0:
            raise LoadError("the profile's load.rate_per_user_per_hour is 0: nothing would "
                            "arrive; give rate or use mode='closed'")
    if mode == "closed" and sessions is None:
        sessions = min(users, DEFAULT_CLOSED_SESSIONS)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise LoadError(f"workers must be a positive integer, not {workers!r}")
    if workers > users:
        raise LoadError(f"workers ({workers}) cannot exceed users ({users}): each worker owns "
                        f"the users i with i % workers == its number")
    if mode == "closed" and sessions < workers:
        raise LoadError(f"sessions ({sessions}) must be at least workers ({workers}): the "
                        f"closed-loop sessions are split among them")
    return {
        "seed": seed,
        "targets": targets,
        "reference": bool(reference),
        "mode": mode,
        "users": users,
        "domain": domain,
        "password": password,
        "duration": seconds,
        "rate_per_user_per_hour": per_hour,
        # Open loop: Poisson arrivals of `rate` sessions per second. Closed loop: `sessions`
        # sessions, each starting again when it ends.
        "rate": rate if mode == "open" else None,
        "sessions": sessions,
        "target_pid": target_pid,
        "workers": workers,
        # Login: None = LOGIN / USER-PASS (SMTP AUTH only on submission targets); TLS
        # certificates are checked only with tls_verify or a ca_file.
        "auth": auth,
        "tls_verify": bool(tls_verify or ca_file),
        "ca_file": os.fspath(ca_file) if ca_file else None,
        "profile": prof,
    }


def _behaviour(name: str, q: Mapping) -> dict:
    """One profile behaviour in the engine's keys (sim/README.md, "Behaviours")."""
    b = {"name": name, "kind": q["kind"], "weight": float(q["weight"]),
         "think_ms": q["think_time_s"] * 1000.0,
         "think_max_ms": q["think_time_max_s"] * 1000.0}
    if q["kind"] in ("sender", "mx"):
        # actions_mean is the mean number of messages a session sends.
        b.update(messages_per_session=max(1.0, float(q["actions_mean"])),
                 recipients_mean=float(q["recipients_mean"]),
                 recipients_max=int(q["recipients_max"]), pipelining=bool(q["pipelining"]))
    else:
        b.update(actions_mean=float(q["actions_mean"]),
                 commands={k: float(w) for k, w in q["commands"].items()})
    if q["kind"] == "pop3":
        b.update(leave_on_server=float(q["leave_on_server"]))
    if q["kind"] == "mobile":
        b.update(idle_seconds=float(q["idle_hold_s"]),
                 idle_max_seconds=float(q["idle_hold_max_s"]), qresync=bool(q["qresync"]))
    return b


def engine_config(config: Mapping) -> dict:
    """The configuration in the keys the engine reads (sim/engine.cpp, parse_config; it
    rejects keys it does not know). Each behaviour of the profile goes through as it is, with
    its own weight, think times, action weights, IDLE hold, QRESYNC switch, POP3
    ``leave_on_server`` and messages and recipients per session; the ``[message]`` table as
    it is; the reply and session timeouts and ``closed_restart_s``. (Pre-populated mailboxes
    are filled by :func:`prepopulate` before the engine starts.)"""
    prof = config["profile"]
    out = {
        "targets": list(config["targets"]),
        "mode": config["mode"],
        "users": config["users"],
        "seed": config["seed"],
        "duration": config["duration"],
        "domain": config["domain"],
        "password": config["password"],
        "target_pid": config["target_pid"],
        "behaviours": [_behaviour(name, q) for name, q in prof["profiles"].items()
                       if q["weight"] > 0],
        "timeout": prof["load"]["reply_timeout_s"],
        "session_timeout": prof["load"]["session_timeout_s"],
        "message": dict(prof["message"]),
    }
    if config.get("auth"):
        out["auth"] = config["auth"]
    if config.get("tls_verify"):
        out["tls_verify"] = True
    if config.get("ca_file"):
        out["ca_file"] = config["ca_file"]
    if config.get("workers", 1) > 1:
        # Every worker must number its messages under the same run id.
        out["run_id"] = str(int.from_bytes(os.urandom(4), "big") % 1_000_000_000)
    if config["mode"] == "open":
        # The engine derives its arrival rate from users x rate_per_user_per_hour.
        out["rate_per_user_per_hour"] = config["rate"] * 3600.0 / config["users"]
    else:
        out["sessions"] = config["sessions"]
        out["closed_restart"] = prof["load"]["closed_restart_s"]
    return out


class Results(dict):
    """The results JSON of one run (docs/load.md, "Results JSON") as a dict, with shortcuts."""

    @property
    def totals(self) -> dict:
        return self.get("totals", {})

    @property
    def commands(self) -> dict:
        return self.get("commands", {})

    @property
    def timeline(self) -> list:
        return self.get("timeline", [])

    @property
    def seed(self) -> Optional[int]:
        return self.get("seed")

    @property
    def config(self) -> dict:
        return self.get("config", {})

    @property
    def interrupted(self) -> bool:
        return bool(self.get("interrupted"))

    @property
    def ok(self) -> bool:
        """No oracle violation and no contract breach (errors such as timeouts are measured,
        not failures: an overloaded server times out, and that is what a run finds out)."""
        t = self.totals
        return not (t.get("oracle_violations", 0) or t.get("contract_breaches", 0)
                    or self.get("violations") or self.get("breaches"))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Results":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise LoadError(f"{os.fspath(path)}: not a JSON file: {e}") from None
        if not isinstance(data, dict) or "totals" not in data or "commands" not in data:
            raise LoadError(f"{os.fspath(path)}: not a millipost load results file "
                            f"(no totals/commands)")
        return cls(data)

    def write_json(self, path: str | os.PathLike) -> str:
        path = os.fspath(path)
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self, f, indent=1)
            f.write("\n")
        return path

    def write_html(self, path: str | os.PathLike | None = None) -> str:
        """Writes the self-contained HTML report; ``None`` picks reports/out/load-<time>.html."""
        from . import load_report

        path = os.fspath(path) if path else load_report.default_path("load")
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(load_report.render(self))
        return path

    def summary(self) -> str:
        from . import load_report

        return load_report.summary(self)

    def __repr__(self) -> str:
        t = self.totals
        return (f"<millipost.Results seed={self.seed} sessions={t.get('sessions')} "
                f"commands={t.get('commands')} errors={t.get('errors')} ok={self.ok}"
                + (" interrupted" if self.interrupted else "") + ">")


def engine() -> Callable:
    """``_core.run_load``, or LoadError when this build has no load engine."""
    from . import _core

    run = getattr(_core, "run_load", None)
    if run is None:
        raise LoadError("this millipost build has no load engine (_core.run_load is missing): "
                        "the C++ simulator (sim/) is not compiled into the module; rebuild "
                        "millipost from a tree that has it")
    return run


class LiveStatus:
    """Turns the engine's progress callbacks into rates for a progress bar (and for tests).

    The engine passes ``{"t", "sessions", "sessions_active", "commands", "errors", "breaches",
    "delivered", ...}`` (cumulative counts); counts nested under ``totals`` with the results'
    key names (``contract_breaches``, ``oracle_violations``) are read too."""

    def __init__(self, duration: float, draw: Optional[Callable[[float, str], None]] = None):
        self.duration = duration
        self.draw = draw
        self.last: dict = {}
        self._prev: Optional[tuple[float, float, float]] = None
        self._rates = (0.0, 0.0)
        self._drawn = 0.0

    def __call__(self, status: Mapping) -> None:
        totals = status.get("totals", status)
        t = float(status.get("t", status.get("elapsed", 0.0)) or 0.0)
        sessions = float(totals.get("sessions", 0) or 0)
        commands = float(totals.get("commands", 0) or 0)
        if self._prev is not None and t > self._prev[0]:
            dt = t - self._prev[0]
            self._rates = ((sessions - self._prev[1]) / dt, (commands - self._prev[2]) / dt)
        self._prev = (t, sessions, commands)
        self.last = {"t": t, "sessions": int(sessions), "commands": int(commands),
                     "errors": int(totals.get("errors", 0) or 0),
                     "contract_breaches": int(totals.get("contract_breaches",
                                                         totals.get("breaches", 0)) or 0),
                     "oracle_violations": int(totals.get("oracle_violations",
                                                         totals.get("violations", 0)) or 0),
                     "sessions_active": int(status.get("sessions_active", 0) or 0)}
        now = time.monotonic()
        if self.draw is not None and now - self._drawn >= PROGRESS_REDRAW:
            self._drawn = now
            self.draw(t, self.text())

    def text(self) -> str:
        s = self.last
        return (f"{self._rates[0]:,.1f} sessions/s {self._rates[1]:,.0f} commands/s "
                f"{s.get('sessions_active', 0):,} open | {s.get('errors', 0):,} errors "
                f"{s.get('contract_breaches', 0):,} breaches "
                f"{s.get('oracle_violations', 0):,} violations")


def _start_reference(users: int, seed: int, domain: str, password: Optional[str],
                     progress: bool, messages: int = 0):
    from . import Population, Server
    from .progress import Progress

    # No per-address limit: without spread_sources every session comes from 127.0.0.1.
    server = Server(domains=[domain], max_connections=100_000, max_connections_per_address=0)
    try:
        population = Population(seed, users, password=password, domain=domain)
        bar = Progress(users, "provision", unit="users") if progress else None
        server.provision(population, progress=bar.update if bar else None)
        if bar:
            bar.close()
        if messages:
            # The fast path of `millipost provision --messages`: straight into the store.
            bar = Progress(users, "mailboxes", unit="users") if progress else None
            server.populate_mailboxes(population, messages=messages,
                                      progress=(lambda u, m: bar.update(u)) if bar else None)
            if bar:
                bar.close()
    except BaseException:
        server.stop()
        raise
    return server


def prepopulate(config: Mapping, progress: bool = False) -> int:
    """Fills every user's INBOX of a run against other servers with the profile's
    ``mailbox.prepopulate_messages`` generated messages, by IMAP APPEND (the reference server
    takes the store's fast path instead, in ``load``). Returns the messages added. The
    messages carry the generator's own ``X-Millipost-Id`` (``<seed hex>.<index hex>``), never
    a run's (``<seed>.<run_id>.<n>``): the oracle does not count them as the run's mail, so
    they are never ``unexpected``, and sessions read, flag, move and delete them like any
    other message (every UID seen is still held to the id it showed before)."""
    from . import Population
    from .progress import Progress
    from .provision import populate_over_protocol

    n = int(config["profile"]["mailbox"]["prepopulate_messages"])
    imap = [t for t in config["targets"] if _protocol_of(t) == "imap"]
    if not n or config.get("reference"):
        return 0
    if not imap:
        raise LoadError("mailbox.prepopulate_messages needs an imap:// target to APPEND to")
    population = Population(config["seed"], config["users"], password=config["password"],
                            domain=config["domain"])
    bar = Progress(config["users"], "mailboxes", unit="users") if progress else None
    try:
        r = populate_over_protocol(imap[0], population, messages=n,
                                   progress=(lambda u, m: bar.update(u)) if bar else None)
    finally:
        if bar:
            bar.close()
    if r.failed:
        raise LoadError(f"pre-populating the mailboxes failed for {r.failed} users: "
                        f"{'; '.join(r.errors[:3])}")
    return r.messages


def load(targets: Sequence[str] | str | None = None, *, reference: bool = False,
         users: int = 1000, duration: str | float = "30s", seed: int = 1,
         profile: str | os.PathLike | Mapping | None = None, mode: str = "open",
         sessions: Optional[int] = None, rate: Optional[float] = None,
         domain: str = "localhost", password: Optional[str] = None,
         target_pid: Optional[int] = None, json: str | os.PathLike | None = None,
         html: str | os.PathLike | bool | None = None, progress: bool = True,
         workers: int = 1, auth: Optional[str] = None, tls_verify: bool = False,
         ca_file: str | os.PathLike | None = None) -> Results:
    """Drives mail servers with the traffic of ``users`` synthetic users for ``duration``.

    ``targets``: server URLs (``imap://HOST:PORT``, ``pop3://...``, ``smtp://...``; every
    protocol the profile's sessions use needs one). ``reference=True`` instead starts the
    reference server in this process (SQLite in a temporary directory), provisions the
    population into it and measures it (its CPU and memory are this process's, simulator
    included). ``mode``: ``"open"`` (Poisson arrivals of ``rate`` sessions/s, default the rate
    the population generates) or ``"closed"`` (``sessions`` sessions back to back).
    ``profile``: a TOML file or dict merged over the default mix (docs/load.md). ``json`` and
    ``html`` write the results file and the HTML report (``html=True``: the default path).
    ``progress`` shows a progress bar on a terminal. Ctrl-C stops the run cleanly and returns
    the partial results (``interrupted`` is true). ``workers``: engine processes sharing the
    run (each owns the users ``i % workers``; for more connections than one process has file
    descriptors); their results are merged into one. ``auth``: ``"login"`` (IMAP LOGIN, POP3
    USER/PASS; the default), ``"plain"`` or ``"scram-sha-256"`` (SASL; SMTP senders then
    authenticate on every SMTP target, else only on ``submission://`` and ``smtps://``).
    TLS targets (``imaps://``, ``pop3s://``, ``smtps://``, ``submission://``, ``...?starttls``)
    are not verified unless ``tls_verify`` or ``ca_file`` (trust anchors) is given.
    """
    if isinstance(targets, str):
        targets = [targets]
    targets = list(targets or [])
    if reference and targets:
        raise LoadError("give target URLs or reference=True, not both")
    run = engine()
    server = None
    if reference:
        # Validate before the (possibly long) provisioning.
        pre = build_config(["imap://x", "pop3://x", "smtp://x"], users, duration, seed, profile,
                           mode, sessions, rate, domain, password, workers=workers)
        server = _start_reference(users, seed, domain, password, progress,
                                  pre["profile"]["mailbox"]["prepopulate_messages"])
        host = server.host
        targets = [f"imap://{host}:{server.imap_port}", f"pop3://{host}:{server.pop3_port}",
                   f"smtp://{host}:{server.smtp_port}"]
        target_pid = os.getpid()
    try:
        config = build_config(targets, users, duration, seed, profile, mode, sessions, rate,
                              domain, password, target_pid, reference, workers, auth,
                              tls_verify, ca_file)
        prepopulate(config, progress)
        results = _run(run, config, progress)
    finally:
        if server is not None:
            server.stop()
    if json:
        results.write_json(json)
    if html:
        results.write_html(None if html is True else html)
    return results


def _run(run: Callable, config: dict, progress: bool) -> Results:
    from .progress import Progress

    seconds = config["duration"]
    bar = Progress(max(1, round(seconds)), "load", unit="s", rate=False) if progress else None

    def draw(t: float, text: str) -> None:
        bar.update(min(int(t), bar.total), text)

    # A callback is always passed, even without a bar: Ctrl-C reaches Python code only when the
    # engine calls back into it, and that KeyboardInterrupt is what stops the engine cleanly.
    status = LiveStatus(seconds, draw if bar else None)
    try:
        if config.get("workers", 1) > 1:
            from . import loadworkers

            raw = loadworkers.run(engine_config(config), config["workers"], status)
        else:
            raw = run(engine_config(config), status)
        if bar and status.last and not (isinstance(raw, Mapping) and raw.get("interrupted")):
            bar.update(bar.total, status.text())  # the engine's last call is before the end
    except ValueError as e:  # the engine's verdict on a configuration that got past ours
        raise LoadError(f"the load engine rejected the configuration: {e}") from None
    finally:
        if bar:
            bar.close()
    if not isinstance(raw, Mapping):
        raise LoadError(f"the load engine returned {type(raw).__name__}, not a results dict")
    results = Results(raw)
    # The results carry the whole configuration (profile included) so that a run can be
    # repeated; what the engine made of it (its keys after defaults) goes along as "engine".
    echoed = results.get("config")
    results["config"] = dict(config, engine=echoed if isinstance(echoed, Mapping) else None)
    results.setdefault("seed", config["seed"])
    return results
