"""pytest plugin: millipost's reference server and conformance scenarios inside your own suite.

Installed with millipost (entry point ``pytest11``), so ``pip install millipost`` makes it
available in every pytest run; it does nothing unless its fixtures or options are used.

Options::

    --millipost-url URL          server under test: imap://LOGIN:PASS@HOST:PORT (or smtp://,
                                 pop3://, imaps://, ...); without it the reference server is used
    --millipost-user LOGIN:PASS  another user of that server (repeatable; the first is ${user2})
    --millipost-smtp URL         smtp:// or lmtp:// URL delivering messages for scenarios that
                                 need them (POP3 RETR, ...)
    --millipost-expect FILE      expected-results file (known divergences are xfail)
    --millipost-scenarios DIR    scenario directory (default: the bundled scenarios)
    --millipost-conform          collect one test item per scenario for the target's protocol(s)

Fixtures:

``millipost_server``
    a reference :class:`millipost.Server` in this process (session-scoped) with the users
    ``alice``/``secret`` and ``bob``/``hunter2`` (:data:`REFERENCE_USERS`).
``millipost_target``
    a :class:`ConformTarget`: the server given by the options, or the reference server.

Running the scenarios as your own tests, either ``pytest --millipost-conform`` (items named
``millipost-conform::imap/select-examine``), or parametrized in a test module::

    import pytest
    from millipost.pytest_plugin import conformance_cases, check_case

    @pytest.mark.parametrize("scenario", conformance_cases("imap"))
    def test_imap_conformance(millipost_target, scenario):
        check_case(millipost_target, scenario)

A case PASSes, FAILs with the failing step, the RFC sections and the transcript tail, is
skipped when the target does not advertise a capability it requires, and is an xfail when the
expected-results file lists it as FAIL (an unexpected pass of a listed case fails: strict).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import pytest

#: The users of the reference server started by ``millipost_server``.
REFERENCE_USERS = (("alice", "secret"), ("bob", "hunter2"))

_PROTOCOLS = ("imap", "smtp", "pop3")


@dataclasses.dataclass
class ConformTarget:
    """Where the conformance cases run: one URL per protocol (first user in the URL), more
    users, a delivery URL and the expected-results file and scenario directory to use."""

    urls: dict  # protocol -> URL
    users: list = dataclasses.field(default_factory=list)  # more (login, password) pairs
    deliver: Optional[str] = None
    expect: Optional[str] = None
    scenarios: Optional[str] = None
    reference: bool = False  # the in-process reference server
    _caps: dict = dataclasses.field(default_factory=dict, repr=False)
    _expectations: Optional[dict] = dataclasses.field(default=None, repr=False)

    @property
    def protocols(self) -> list:
        return [p for p in _PROTOCOLS if p in self.urls]

    def url(self, protocol: Optional[str] = None) -> str:
        """The URL for ``protocol`` (default: the only or first one)."""
        if protocol is None:
            return self.urls[self.protocols[0]]
        if protocol not in self.urls:
            raise KeyError(f"the millipost target has no {protocol}:// URL "
                           f"(it has {', '.join(self.protocols)})")
        return self.urls[protocol]

    def capabilities(self, protocol: str) -> list:
        """The protocol's advertised capabilities, read once per session."""
        from .conform import Target, read_capabilities
        if protocol not in self._caps:
            self._caps[protocol] = read_capabilities(Target.parse(self.url(protocol), self.users))
        return self._caps[protocol]

    def expectations(self) -> dict:
        from .conform import load_expectations
        if self._expectations is None:
            self._expectations = load_expectations(self.expect) if self.expect else {}
        return self._expectations

    def conform(self, protocol: Optional[str] = None, **kw):
        """:func:`millipost.conform` for one protocol of this target (a :class:`Report`)."""
        from .conform import conform
        protocol = protocol or self.protocols[0]
        kw.setdefault("users", self.users)
        kw.setdefault("deliver_via", self.deliver)
        kw.setdefault("expect", self.expectations())
        kw.setdefault("root", self.scenarios)
        kw.setdefault("capabilities", self.capabilities(protocol))
        return conform(self.url(protocol), **kw)


class ConformFailure(Exception):
    """A conformance case failed; the message names the step, the RFC and the transcript."""


def conformance_cases(protocol: Optional[str] = None, root: Optional[str] = None) -> list:
    """The scenarios as ``pytest.param(scenario, id=scenario.id)`` for ``parametrize``
    (``protocol`` keeps one protocol's; ``root`` is a scenario directory)."""
    from .scenarios import discover
    return [pytest.param(s, id=s.id) for s in discover(root)
            if protocol is None or s.protocol == protocol]


def check_case(target: ConformTarget, scenario) -> None:
    """Runs one scenario against ``target``: returns on PASS, ``pytest.skip`` when a required
    capability (or user, or delivery route) is missing, ``pytest.xfail`` for a listed
    divergence, raises :class:`ConformFailure` otherwise."""
    if scenario.protocol not in target.urls:
        pytest.skip(f"the target has no {scenario.protocol}:// URL")
    report = target.conform(scenario.protocol, scenarios=[scenario])
    [r] = report.results
    if r.status == "SKIPPED":
        pytest.skip(r.message)
    if r.status == "FAIL" and r.expected == "FAIL":
        pytest.xfail(f"expected divergence: {r.reason or 'listed'}")
    if r.status == "FAIL":
        raise ConformFailure(f"{scenario.id}: {r.title}\n{r.message}")
    if r.expected == "FAIL":
        raise ConformFailure(f"{scenario.id} passes but the expected-results file lists it as "
                             f"FAIL ({r.reason}): update the file")


# --- options ---------------------------------------------------------------------------------

def pytest_addoption(parser) -> None:
    group = parser.getgroup("millipost", "millipost conformance (millipost.pytest_plugin)")
    group.addoption("--millipost-url", metavar="URL",
                    help="server under test, e.g. imap://LOGIN:PASS@HOST:PORT (default: the "
                         "in-process reference server)")
    group.addoption("--millipost-user", action="append", default=[], metavar="LOGIN:PASS",
                    help="another user of the server under test (repeatable)")
    group.addoption("--millipost-smtp", metavar="URL",
                    help="smtp:// or lmtp:// URL that delivers messages scenarios need")
    group.addoption("--millipost-expect", metavar="FILE",
                    help="expected-results file: listed failures are xfail")
    group.addoption("--millipost-scenarios", metavar="DIR",
                    help="scenario directory (default: the bundled scenarios)")
    group.addoption("--millipost-conform", action="store_true", default=False,
                    help="collect one test per conformance scenario of the target's protocol(s)")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "millipost_conform: a millipost conformance scenario")


# --- fixtures --------------------------------------------------------------------------------

def _reference(config):
    """The run's reference server, started on first use (by a fixture or by the items) and
    stopped when pytest finishes. Kept on the config, so that a nested pytest run (pytester)
    has its own."""
    server = getattr(config, "_millipost_reference", None)
    if server is None:
        import millipost
        server = millipost.Server()
        for login, password in REFERENCE_USERS:
            server.add_user(login, password)
        config._millipost_reference = server
    return server


def _target_from(config) -> ConformTarget:
    opt = config.getoption
    url = opt("--millipost-url")
    expect, scenarios = opt("--millipost-expect"), opt("--millipost-scenarios")
    if url:
        from .conform import Target
        protocol = Target.parse(url).protocol  # raises ConformError on a bad URL
        return ConformTarget({protocol: url}, list(opt("--millipost-user")),
                             opt("--millipost-smtp"), expect, scenarios)
    s = _reference(config)
    (login, password), more = REFERENCE_USERS[0], list(REFERENCE_USERS[1:])
    urls = {p: f"{p}://{login}:{password}@{s.host}:{port}"
            for p, port in (("imap", s.imap_port), ("smtp", s.smtp_port), ("pop3", s.pop3_port))}
    return ConformTarget(urls, more + list(opt("--millipost-user")),
                         opt("--millipost-smtp") or f"smtp://{s.host}:{s.smtp_port}", expect,
                         scenarios, reference=True)


def _session_target(config) -> ConformTarget:
    target = getattr(config, "_millipost_target", None)
    if target is None:
        target = config._millipost_target = _target_from(config)
    return target


@pytest.fixture(scope="session")
def millipost_server(request):
    """The in-process reference server (users alice/secret and bob/hunter2), session-scoped."""
    return _reference(request.config)


@pytest.fixture(scope="session")
def millipost_target(request) -> ConformTarget:
    """The server under test from ``--millipost-url`` (and ``--millipost-user``,
    ``--millipost-smtp``), or the reference server when no URL is given."""
    return _session_target(request.config)


def pytest_unconfigure(config) -> None:
    server = getattr(config, "_millipost_reference", None)
    if server is not None:
        config._millipost_reference = None
        server.stop()


# --- one item per scenario (--millipost-conform) ---------------------------------------------

class ConformItem(pytest.Item):
    def __init__(self, *, scenario, **kw):
        super().__init__(**kw)
        self.scenario = scenario
        self.add_marker("millipost_conform")

    def runtest(self) -> None:
        check_case(_session_target(self.config), self.scenario)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ConformFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.scenario.path, self.scenario.steps[0].line - 1 if self.scenario.steps else 0, \
            f"millipost conform {self.scenario.id} ({', '.join(self.scenario.rfc)})"


class ConformCollector(pytest.Collector):
    def collect(self):
        from .scenarios import discover
        config = self.config
        protocols = None
        if config.getoption("--millipost-url"):
            from .conform import Target
            protocols = {Target.parse(config.getoption("--millipost-url")).protocol}
        for s in discover(config.getoption("--millipost-scenarios")):
            if protocols is None or s.protocol in protocols:
                yield ConformItem.from_parent(self, name=s.id, scenario=s)


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect, so they apply to these items too
def pytest_collection_modifyitems(session, config, items) -> None:
    if not config.getoption("--millipost-conform"):
        return
    collector = ConformCollector.from_parent(session, name="millipost-conform")
    items.extend(collector.collect())
