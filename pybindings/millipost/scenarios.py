"""Scripted conformance scenarios: the file format's parser and its line pattern language.

The format is documented in ``fixtures/scenarios/README.md``; this module is its definition.
A scenario is parsed once into a :class:`Scenario` (header fields, named data blocks, steps);
the runner in :mod:`millipost.conform` executes the steps against a server.

Patterns (the text after ``S:``) compile to regular expressions matched against one whole
logical server line (CRLF removed, IMAP literals inlined), case-insensitively:

- ``*`` matches any text (possibly empty), except a ``*`` that starts the pattern (the IMAP
  untagged marker) and ``\\*`` (the IMAP flag ``\\*``), which are literal;
- ``$name`` captures a token (no spaces, parentheses or brackets) into variable ``name``, or,
  when ``name`` is already bound, matches exactly its value; ``${name}`` always matches the
  bound value (or a data block, or ``${name.size}``); ``$$`` is a literal ``$``;
- ``{re:REGEX}`` inlines a Python regular expression (no captures; use it for what the rest
  cannot say), and ``<EOF>`` as the whole pattern expects the server to close the connection.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional

PROTOCOLS = ("imap", "smtp", "pop3")

#: Header keys a scenario may use; anything else is a parse error (typos must not pass).
HEADER_KEYS = ("protocol", "title", "rfc", "requires", "users", "setup", "deliver")

#: Words of the ``setup:`` header.
SETUP_WORDS = ("none", "greeting", "login", "mailbox", "empty-maildrop", "cleartext")

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"

#: The largest N of ``${repeat:N:TEXT}`` (a typo must not build a gigabyte line).
MAX_REPEAT = 1_000_000
_STEP = re.compile(r"^(?:(\d+)\s+)?(C:|S:|S\.\.\.|S!)(?: (.*))?$")
#: What ``$name`` captures: one token (an atom, a number, a sequence set).
CAPTURE = r"[^\s()\[\]{}]+"


class ScenarioError(ValueError):
    """A scenario file that does not follow the format: names the file and line."""


@dataclasses.dataclass
class Step:
    kind: str  # "send", "expect", "skip-until", "group", "eof", "forbid", "tls"
    conn: int
    text: str = ""  # the raw client line or pattern, as written
    line: int = 0  # line number in the file
    patterns: list = dataclasses.field(default_factory=list)  # for groups: [(text, line)]

    def source(self) -> str:
        prefix = "" if self.conn == 1 else f"{self.conn} "
        if self.kind == "send":
            return f"{prefix}C: {self.text}"
        if self.kind == "tls":
            return f"{prefix}C: <TLS>"
        if self.kind == "skip-until":
            return f"{prefix}S... {self.text}"
        if self.kind == "forbid":
            return f"{prefix}S! {self.text}"
        if self.kind == "group":
            return f"{prefix}S: {{ " + " | ".join(p for p, _ in self.patterns) + " }"
        return f"{prefix}S: {self.text}"


@dataclasses.dataclass
class Scenario:
    id: str  # path relative to the scenario root, without ".scenario": "imap/select-examine"
    path: str
    protocol: str
    title: str
    rfc: list[str]
    requires: list[str]
    users: int
    setup: list[str]
    deliver: list[str]
    data: dict[str, str]
    steps: list[Step]

    @property
    def connections(self) -> list[int]:
        return sorted({s.conn for s in self.steps} | {1})


def parse(text: str, path: str = "<string>", id: Optional[str] = None) -> Scenario:
    """Parses one scenario file's text; raises :class:`ScenarioError` naming the line."""

    def fail(lineno: int, msg: str):
        raise ScenarioError(f"{path}:{lineno}: {msg}")

    header: dict[str, str] = {}
    data: dict[str, str] = {}
    steps: list[Step] = []
    group: Optional[Step] = None
    lines = text.splitlines()
    i = 0
    in_header = True
    while i < len(lines):
        raw = lines[i]
        lineno = i + 1
        i += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = re.match(rf"^data ({_NAME})$", raw)
        if m:  # a data block: lines up to a lone "." line, each ending in CRLF
            body = []
            while True:
                if i >= len(lines):
                    fail(lineno, f"data block {m.group(1)} has no closing '.' line")
                if lines[i] == ".":
                    i += 1
                    break
                body.append(lines[i])
                i += 1
            if m.group(1) in data:
                fail(lineno, f"data block {m.group(1)} defined twice")
            data[m.group(1)] = "".join(b + "\r\n" for b in body)
            continue
        m = _STEP.match(raw)
        if m:
            in_header = False
            conn = int(m.group(1) or 1)
            if conn < 1:
                fail(lineno, "connections are numbered from 1")
            op, rest = m.group(2), m.group(3) if m.group(3) is not None else ""
            if op == "C:":
                if group:
                    fail(lineno, "client line inside an unordered group")
                # ``C: <TLS>``: the TLS handshake, after the server's go-ahead to STARTTLS/STLS.
                steps.append(Step("tls" if rest == "<TLS>" else "send", conn, rest, lineno))
            elif op == "S!":
                if group:
                    fail(lineno, "S! inside an unordered group")
                if not rest:
                    fail(lineno, "S! needs a pattern")
                steps.append(Step("forbid", conn, rest, lineno))
            elif op == "S...":
                if group:
                    fail(lineno, "S... inside an unordered group")
                if not rest:
                    fail(lineno, "S... needs a pattern")
                steps.append(Step("skip-until", conn, rest, lineno))
            elif rest == "{":
                if group:
                    fail(lineno, "nested unordered group")
                group = Step("group", conn, "", lineno)
            elif rest == "}":
                if not group:
                    fail(lineno, "'}' without an open group")
                if group.conn != conn:
                    fail(lineno, "a group must stay on one connection")
                if not group.patterns:
                    fail(lineno, "empty unordered group")
                steps.append(group)
                group = None
            elif group:
                if group.conn != conn:
                    fail(lineno, "a group must stay on one connection")
                if rest == "<EOF>":
                    fail(lineno, "<EOF> inside a group")
                group.patterns.append((rest, lineno))
            elif rest == "<EOF>":
                steps.append(Step("eof", conn, rest, lineno))
            else:  # an empty pattern matches an empty line (a message's header/body break)
                steps.append(Step("expect", conn, rest, lineno))
            continue
        m = re.match(r"^([a-z]+):\s*(.*)$", raw)
        if m and in_header:
            key, value = m.group(1), m.group(2).strip()
            if key not in HEADER_KEYS:
                fail(lineno, f"unknown header {key!r} (known: {', '.join(HEADER_KEYS)})")
            if key in header:
                fail(lineno, f"header {key!r} given twice")
            header[key] = value
            continue
        fail(lineno, f"not a header, step or data block: {raw!r}")
    if group:
        fail(group.line, "unordered group not closed with 'S: }'")

    protocol = header.get("protocol", "").lower()
    if protocol not in PROTOCOLS:
        fail(1, f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    for key in ("title", "rfc"):
        if not header.get(key):
            fail(1, f"missing header {key!r}")
    if not steps:
        fail(1, "no steps")
    setup = header.get("setup", "login").split()
    for word in setup:
        if word not in SETUP_WORDS:
            fail(1, f"unknown setup word {word!r} (known: {', '.join(SETUP_WORDS)})")
    if "mailbox" in setup and protocol != "imap":
        fail(1, "setup 'mailbox' is for IMAP only")
    if "empty-maildrop" in setup and protocol != "pop3":
        fail(1, "setup 'empty-maildrop' is for POP3 only")
    try:
        users = int(header.get("users", "1"))
    except ValueError:
        fail(1, "users must be a number")
    if users not in (1, 2):
        fail(1, "users must be 1 or 2")
    deliver = header.get("deliver", "").split()
    for name in deliver:
        if name not in data:
            fail(1, f"deliver names data block {name!r}, which is not defined")
    scenario = Scenario(
        id=id or os.path.splitext(os.path.basename(path))[0], path=path, protocol=protocol,
        title=header["title"], rfc=[r.strip() for r in header["rfc"].split(",") if r.strip()],
        requires=[c.upper() for c in header.get("requires", "").split()], users=users,
        setup=setup, deliver=deliver, data=data, steps=steps)
    # Compile every pattern once now, so that a malformed one is an error at load time.
    for step in steps:
        for text, lineno in ([(step.text, step.line)]
                             if step.kind in ("expect", "skip-until", "forbid")
                             else step.patterns):
            try:
                compile_pattern(text, {}, data, dry=True)
            except ScenarioError as e:
                fail(lineno, str(e))
    return scenario


def load(path: str, root: Optional[str] = None) -> Scenario:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    sid = None
    if root:
        sid = os.path.splitext(os.path.relpath(path, root))[0].replace(os.sep, "/")
    return parse(text, path, sid)


def default_root() -> str:
    """The scenario directory: $MILLIPOST_SCENARIOS, the installed copy, or the source tree."""
    env = os.environ.get("MILLIPOST_SCENARIOS")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, "scenarios"),
                      os.path.join(here, "..", "..", "fixtures", "scenarios")):
        if os.path.isdir(candidate):
            return os.path.normpath(candidate)
    return os.path.join(here, "scenarios")


def discover(root: Optional[str] = None, select: Optional[list[str]] = None) -> list[Scenario]:
    """Every ``*.scenario`` under ``root``, sorted by id; ``select`` keeps ids (or id prefixes
    such as ``imap/`` or ``imap/select``) that start with one of its entries."""
    root = root or default_root()
    found = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith(".scenario"):
                found.append(load(os.path.join(dirpath, name), root))
    found.sort(key=lambda s: s.id)
    if select:
        found = [s for s in found if any(s.id.startswith(p) for p in select)]
    return found


# --- values and patterns ---------------------------------------------------------------------

def lookup(name: str, variables: dict, data: dict) -> Optional[str]:
    """``name`` (a variable or data block) or ``name.size`` (its length in octets)."""
    base, _, attr = name.partition(".")
    value = variables.get(base, data.get(base))
    if value is None:
        return None
    if attr == "size":
        return str(len(value.encode("utf-8")))
    if attr:
        return None
    return value


def expand(text: str, variables: dict, data: dict) -> str:
    """A client line with ``${name}``, ``${name.size}`` and ``$name`` replaced; ``$$`` is ``$``."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(2)
        value = lookup(name, variables, data)
        if value is None:
            raise KeyError(name)
        return value

    def repeat(m: re.Match) -> str:
        n = int(m.group(1))
        if n > MAX_REPEAT:
            raise KeyError(f"repeat:{n} (at most {MAX_REPEAT})")
        return m.group(2) * n

    # ${repeat:N:TEXT}: TEXT N times (long lines for limit checks), expanded first.
    text = re.sub(r"\$\{repeat:(\d+):([^{}]*)\}", repeat, text)
    return re.sub(rf"\$\$|\$\{{({_NAME}(?:\.size)?)\}}|\$({_NAME})", sub, text)


_TOKEN = re.compile(rf"\$\$|\$\{{({_NAME}(?:\.size)?)\}}|\$({_NAME})"  # $$, ${name}, $name
                    rf"|\{{re:((?:[^{{}}]|\{{[^{{}}]*\}})*)\}}"  # {re:...}, one level of braces
                    rf"|\\\*|\*")  # \* (the IMAP flag), * (wildcard)


def compile_pattern(text: str, variables: dict, data: dict, dry: bool = False):
    """Compiles a pattern into ``(regex, capture_names)`` given the variables bound so far.

    ``dry`` checks syntax only (unknown ``${name}`` references are allowed, as they may be
    bound by an earlier step at run time).
    """
    out = []
    captures: list[str] = []
    pos = 0
    if text.startswith("* ") or text == "*":
        out.append(re.escape("*"))
        pos = 1
    for m in _TOKEN.finditer(text, pos):
        out.append(re.escape(text[pos:m.start()]))
        pos = m.end()
        tok = m.group(0)
        if tok == "$$":
            out.append(re.escape("$"))
        elif tok == "\\*":
            out.append(re.escape("\\*"))
        elif tok == "*":
            out.append(".*?")
        elif m.group(3) is not None:
            try:
                re.compile(m.group(3))
            except re.error as e:
                raise ScenarioError(f"bad {{re:...}}: {e}")
            out.append(f"(?:{m.group(3)})")
        elif m.group(1) is not None:  # ${name}: a bound value, matched literally
            value = lookup(m.group(1), variables, data)
            if value is None:
                if dry:
                    out.append(".*?")
                    continue
                raise ScenarioError(f"${{{m.group(1)}}} is not bound")
            out.append(re.escape(value))
        else:  # $name: capture, or back-reference when bound
            name = m.group(2)
            value = lookup(name, variables, data)
            if value is not None:
                out.append(re.escape(value))
            elif name in captures:
                out.append(f"(?P={name})")
            else:
                captures.append(name)
                out.append(f"(?P<{name}>{CAPTURE})")
    out.append(re.escape(text[pos:]))
    try:
        regex = re.compile("^" + "".join(out) + "$", re.IGNORECASE | re.DOTALL)
    except re.error as e:
        raise ScenarioError(f"bad pattern {text!r}: {e}")
    return regex, captures


def match(text: str, line: str, variables: dict, data: dict) -> Optional[dict]:
    """Matches one server line; returns the new captures (possibly empty) or None."""
    regex, captures = compile_pattern(text, variables, data)
    m = regex.match(line)
    if not m:
        return None
    return {name: m.group(name) for name in captures}
