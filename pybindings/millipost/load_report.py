"""Reports of ``millipost load`` runs: the terminal summary, the side-by-side comparison of
several runs (``millipost report``), and self-contained HTML pages with inline SVG plots.

Everything here reads results dicts of the shape docs/load.md ("Results JSON") describes and
tolerates missing optional parts (an interrupted run may have no timeline, an old engine no
target figures), because a report that crashes on a partial run hides exactly the run that
needs looking at.
"""
from __future__ import annotations

import datetime
import html
import json
import math
import os
import string
from typing import Mapping, Optional, Sequence

from . import svgplot

#: Commands shown as latency-distribution charts (the most frequent ones).
MAX_HISTOGRAMS = 24
#: Breaches and violations listed in the terminal summary (all the JSON has go to HTML).
MAX_LISTED = 10

Run = tuple[str, Mapping]  # (label, results)


# --- small helpers ----------------------------------------------------------------------------

def _ms(us) -> str:
    if us is None or not isinstance(us, (int, float)) or not math.isfinite(us):
        return "-"
    ms = us / 1000.0
    return f"{ms:,.0f}" if ms >= 1000 else f"{ms:.3g}" if ms >= 0.01 else f"{ms:.2f}"


def _int(v) -> str:
    return f"{int(v):,}" if isinstance(v, (int, float)) else "-"


def _mib(b) -> str:
    return f"{b / 1048576:,.1f} MiB" if isinstance(b, (int, float)) else "-"


def _seconds(r: Mapping) -> float:
    s = r.get("seconds") or r.get("config", {}).get("duration") or 0.0
    return float(s) if s else 0.0


def _rate(n, seconds: float) -> Optional[float]:
    return n / seconds if seconds > 0 and isinstance(n, (int, float)) else None


def _fmt_rate(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:,.1f}"


def _commands_by_count(commands: Mapping) -> list[str]:
    return sorted(commands, key=lambda k: (-(commands[k].get("count") or 0), k))


def _lat(c: Mapping, key: str):
    return (c.get("latency_us") or {}).get(key)


def verdict(r: Mapping) -> tuple[str, str]:
    """(text, css class): FAILED on violations or breaches, else OK (interrupted noted)."""
    t = r.get("totals", {})
    v = t.get("oracle_violations", 0) or len(r.get("violations") or [])
    b = t.get("contract_breaches", 0) or len(r.get("breaches") or [])
    if v or b:
        return (f"FAILED: {v:,} oracle violation(s), {b:,} contract breach(es)", "bad")
    if r.get("interrupted"):
        return ("INTERRUPTED: partial run, no violation or breach so far", "warn")
    return ("OK: no oracle violation, no contract breach", "ok")


def describe(r: Mapping) -> str:
    """One line: seed, mode, population, duration, targets."""
    c = r.get("config", {})
    mode = c.get("mode", "?")
    how = (f"{c.get('rate'):,.2f} sessions/s" if mode == "open" and c.get("rate")
           else f"{c.get('sessions')} sessions" if c.get("sessions") else "")
    targets = "reference server" if c.get("reference") else ", ".join(c.get("targets", []))
    return (f"seed {r.get('seed', c.get('seed'))}, {mode} loop{' (' + how + ')' if how else ''}, "
            f"{_int(c.get('users'))} users, {_seconds(r):.1f} s"
            + (" (interrupted)" if r.get("interrupted") else "") + f", {targets}")


def repeat_command(r: Mapping, profile_file: str = "PROFILE.toml") -> str:
    """The command line that repeats a run (its profile saved as ``profile_file``)."""
    c = r.get("config", {})
    argv = ["millipost", "load"]
    argv += ["--reference"] if c.get("reference") else list(c.get("targets", []))
    argv += ["--users", str(c.get("users")), "--duration", f"{c.get('duration', 0):g}s",
             "--seed", str(r.get("seed", c.get("seed"))), "--mode", str(c.get("mode", "open"))]
    if c.get("mode") == "closed" and c.get("sessions"):
        argv += ["--sessions", str(c["sessions"])]
    if c.get("mode") == "open" and c.get("rate"):
        derived = (c.get("users") or 0) * (c.get("rate_per_user_per_hour") or 0) / 3600.0
        if not math.isclose(c["rate"], derived, rel_tol=1e-9):  # only a rate given explicitly
            argv += ["--rate", repr(float(c["rate"]))]
    if c.get("domain") not in (None, "localhost"):
        argv += ["--domain", c["domain"]]
    if c.get("profile"):
        argv += ["--profile", profile_file]
    return " ".join(argv)


# --- terminal -------------------------------------------------------------------------------

def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def summary(r: Mapping) -> str:
    """The terminal summary of one run."""
    out = [f"millipost load: {describe(r)}"]
    commands = r.get("commands", {})
    seconds = _seconds(r)
    rows = []
    for name in _commands_by_count(commands):
        c = commands[name]
        rows.append([name, _int(c.get("count")), _fmt_rate(_rate(c.get("count"), seconds)),
                     _int(c.get("errors", 0)), _ms(_lat(c, "p50")), _ms(_lat(c, "p90")),
                     _ms(_lat(c, "p99")), _ms(_lat(c, "p999")), _ms(_lat(c, "max"))])
    t = r.get("totals", {})
    rows.append(["total", _int(t.get("commands")), _fmt_rate(_rate(t.get("commands"), seconds)),
                 _int(t.get("errors")), "", "", "", "", ""])
    out.append(_table(["command", "count", "per s", "errors", "p50 ms", "p90 ms", "p99 ms",
                       "p999 ms", "max ms"], rows))
    out.append(f"sessions {_int(t.get('sessions'))} ({_fmt_rate(_rate(t.get('sessions'), seconds))}"
               f"/s), commands {_int(t.get('commands'))}, errors {_int(t.get('errors'))}, "
               f"messages delivered {_int(t.get('messages_delivered'))}, verified "
               f"{_int(t.get('messages_verified'))}")
    errors = r.get("errors") or {}
    if errors:
        out.append("errors by kind: " + ", ".join(f"{k} {v:,}" for k, v in
                                                  sorted(errors.items(), key=lambda kv: -kv[1])))
    out.append(f"contract breaches: {_int(t.get('contract_breaches', 0))}, oracle violations: "
               f"{_int(t.get('oracle_violations', 0))}")
    for b in (r.get("breaches") or [])[:MAX_LISTED]:
        out.append(f"  BREACH session {b.get('session')} ({b.get('protocol')}): "
                   f"{b.get('who')} in state {b.get('state')}: {b.get('reason')} "
                   f"(expected {b.get('rule')}) bytes {b.get('bytes')!r}")
    for v in (r.get("violations") or [])[:MAX_LISTED]:
        out.append(f"  VIOLATION {v.get('kind')}: user {v.get('user')} mailbox "
                   f"{v.get('mailbox')} message {v.get('message_id')}: {v.get('detail')}")
    shown = min(len(r.get("breaches") or []), MAX_LISTED) + min(len(r.get("violations") or []),
                                                                 MAX_LISTED)
    listed = len(r.get("breaches") or []) + len(r.get("violations") or [])
    if listed > shown:
        out.append(f"  ... {listed - shown} more in the JSON results / HTML report")
    tg = r.get("target") or {}
    if tg.get("pid"):
        cpu = tg.get("cpu_seconds")
        if isinstance(cpu, (int, float)):
            out.append(f"target pid {tg['pid']}: cpu {cpu:,.1f} s"
                       + (f" ({100 * cpu / seconds:.0f}% of a core)" if seconds else "")
                       + f", max rss {_mib(tg.get('max_rss_bytes'))}")
        else:  # the engine could not read the process (gone, or not on this machine)
            out.append(f"target pid {tg['pid']}: not sampled")
    text, _ = verdict(r)
    out.append(text)
    return "\n".join(out)


def _labels(runs: Sequence[Run]) -> list[str]:
    return [chr(ord("A") + i) if i < 26 else f"R{i}" for i in range(len(runs))]


def compare(runs: Sequence[Run]) -> str:
    """Runs side by side: per command throughput and p99 with ratios to the first run."""
    letters = _labels(runs)
    out = ["runs:"] + [f"  {k} = {name}: {describe(r)}" for k, (name, r) in zip(letters, runs)]
    base_name, base = runs[0]
    names: list[str] = []
    for _, r in runs:
        for n in _commands_by_count(r.get("commands", {})):
            if n not in names:
                names.append(n)

    def cell(v: Optional[float], b: Optional[float], fmt) -> str:
        if v is None:
            return "-"
        if b and b > 0 and v is not None:
            return f"{fmt(v)} x{v / b:.2f}"
        return fmt(v)

    def cmd_rate(r, n):
        c = r.get("commands", {}).get(n)
        return _rate(c.get("count"), _seconds(r)) if c else None

    def cmd_p99(r, n):
        c = r.get("commands", {}).get(n)
        v = _lat(c, "p99") if c else None
        return v / 1000.0 if isinstance(v, (int, float)) else None

    for title, get, fmt in (("commands per second (ratio to A)", cmd_rate, lambda v: f"{v:,.1f}"),
                            ("p99 latency ms (ratio to A)", cmd_p99, lambda v: f"{v:.3g}")):
        rows = []
        for n in names:
            b = get(base, n)
            rows.append([n] + [fmt(b) if b is not None else "-"] +
                        [cell(get(r, n), b, fmt) for _, r in runs[1:]])
        out.append("")
        out.append(title)
        out.append(_table(["command"] + letters, rows))
    rows = []

    def total(r, key):
        return (r.get("totals") or {}).get(key)

    per_s = lambda v: f"{v:,.1f}"
    for label, get, fmt in (
            ("sessions/s", lambda r: _rate(total(r, "sessions"), _seconds(r)), per_s),
            ("commands/s", lambda r: _rate(total(r, "commands"), _seconds(r)), per_s),
            ("errors", lambda r: total(r, "errors"), lambda v: f"{v:,.0f}"),
            ("contract breaches", lambda r: total(r, "contract_breaches"), lambda v: f"{v:,.0f}"),
            ("oracle violations", lambda r: total(r, "oracle_violations"), lambda v: f"{v:,.0f}"),
            ("target cpu s", lambda r: (r.get("target") or {}).get("cpu_seconds"),
             lambda v: f"{v:,.1f}"),
            ("target max rss MiB", lambda r: ((r.get("target") or {}).get("max_rss_bytes") or 0)
             / 1048576 or None, lambda v: f"{v:,.1f}")):
        b = get(base)
        rows.append([label, fmt(b) if b is not None else "-"] +
                    [cell(get(r), b, fmt) for _, r in runs[1:]])
    out.append("")
    out.append("totals")
    out.append(_table([""] + letters, rows))
    out.append("")
    out.append("verdicts: " + "; ".join(f"{k} {verdict(r)[0]}" for k, (_, r) in
                                          zip(letters, runs)))
    return "\n".join(out)


# --- HTML -----------------------------------------------------------------------------------

def template_path() -> str:
    """The installed template, else the source tree's."""
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, "templates", "load.html"),
                      os.path.join(here, "..", "..", "reports", "templates", "load.html")):
        if os.path.isfile(candidate):
            return os.path.normpath(candidate)
    raise FileNotFoundError("load.html template not found (reinstall millipost)")


def default_path(kind: str = "load", when: datetime.datetime | None = None) -> str:
    """``reports/out/<kind>-<timestamp>.html`` (relative to the working directory)."""
    when = when or datetime.datetime.now()
    return os.path.join("reports", "out", f"{kind}-{when:%Y%m%d-%H%M%S}.html")


def _page(title: str, heading: str, meta: str, verdict_text: str, verdict_class: str,
          body: str) -> str:
    from . import __version__

    with open(template_path(), encoding="utf-8") as f:
        template = string.Template(f.read())
    return template.substitute(
        title=html.escape(title), heading=html.escape(heading), meta=meta,
        verdict=html.escape(verdict_text), verdict_class=verdict_class, body=body,
        version=html.escape(__version__),
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))


def _timeline_series(r: Mapping) -> dict[str, list[tuple[float, float]]]:
    """Per-second series from the timeline: each entry counts what happened in the interval
    that ends at the next entry's ``t`` (the last one: one second)."""
    tl = [e for e in (r.get("timeline") or []) if isinstance(e.get("t"), (int, float))]
    tl.sort(key=lambda e: e["t"])
    s: dict[str, list[tuple[float, float]]] = {k: [] for k in (
        "commands/s", "errors/s", "sessions open", "p50 ms", "p99 ms", "cpu %", "rss MiB")}
    for i, e in enumerate(tl):
        t = float(e["t"])
        dt = (tl[i + 1]["t"] - t) if i + 1 < len(tl) else (t - tl[i - 1]["t"] if i else 1.0)
        dt = dt if dt > 0 else 1.0
        end = t + dt  # plotted at the end of the interval the counts cover
        for key, field, f in (("commands/s", "commands", lambda v: v / dt),
                              ("errors/s", "errors", lambda v: v / dt),
                              ("sessions open", "sessions_active", lambda v: v),
                              ("p50 ms", "p50_us", lambda v: v / 1000.0),
                              ("p99 ms", "p99_us", lambda v: v / 1000.0),
                              ("cpu %", "target_cpu", lambda v: 100.0 * v),
                              ("rss MiB", "target_rss_bytes", lambda v: v / 1048576.0)):
            v = e.get(field)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                s[key].append((end, f(v)))
    return s


def _cards(items: Sequence[tuple[str, str, bool]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card{" bad" if bad else ""}"><b>{html.escape(v)}</b>'
        f'<span>{html.escape(k)}</span></div>' for k, v, bad in items) + "</div>"


def _command_table(r: Mapping) -> str:
    commands = r.get("commands", {})
    seconds = _seconds(r)
    rows = []
    for name in _commands_by_count(commands):
        c = commands[name]
        err = c.get("errors", 0) or 0
        rows.append(
            f'<tr><td class="name">{html.escape(name)}</td><td>{_int(c.get("count"))}</td>'
            f'<td>{_fmt_rate(_rate(c.get("count"), seconds))}</td>'
            f'<td{" class=err" if err else ""}>{_int(err)}</td>'
            + "".join(f"<td>{_ms(_lat(c, k))}</td>" for k in ("p50", "p90", "p99", "p999",
                                                               "max", "mean")) + "</tr>")
    t = r.get("totals", {})
    rows.append(f'<tr class="total"><td>total</td><td>{_int(t.get("commands"))}</td>'
                f'<td>{_fmt_rate(_rate(t.get("commands"), seconds))}</td>'
                f'<td>{_int(t.get("errors"))}</td>' + "<td></td>" * 6 + "</tr>")
    return ('<table class="commands"><thead><tr><th>command</th><th>count</th><th>per s</th>'
            "<th>errors</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p999 ms</th>"
            "<th>max ms</th><th>mean ms</th></tr></thead><tbody>" + "\n".join(rows)
            + "</tbody></table>")


def _histogram(c: Mapping) -> tuple[list, int]:
    h = c.get("histogram") or {}
    counts = [(b[0], b[1]) for b in h.get("counts", []) if isinstance(b, (list, tuple))
              and len(b) == 2]
    return counts, int(h.get("sub_buckets", 16) or 16)


def _listing(r: Mapping) -> str:
    parts = []
    errors = r.get("errors") or {}
    if errors:
        parts.append("<h2>Errors by kind</h2><table><thead><tr><th>kind</th><th>count</th></tr>"
                     "</thead><tbody>" + "".join(
                         f"<tr><td>{html.escape(str(k))}</td><td>{_int(v)}</td></tr>"
                         for k, v in sorted(errors.items(), key=lambda kv: -kv[1]))
                     + "</tbody></table>")
    breaches = r.get("breaches") or []
    t = r.get("totals", {})
    parts.append(f"<h2>Contract breaches ({_int(t.get('contract_breaches', len(breaches)))})</h2>")
    if breaches:
        items = []
        for b in breaches:
            items.append(
                f"<li>session <code>{html.escape(str(b.get('session')))}</code> "
                f"({html.escape(str(b.get('protocol')))}): <b>{html.escape(str(b.get('who')))}"
                f"</b> broke the contract in state <code>{html.escape(str(b.get('state')))}"
                f"</code>: {html.escape(str(b.get('reason')))}<br>expected "
                f"<code>{html.escape(str(b.get('rule')))}</code>, bytes "
                f"<code>{html.escape(str(b.get('bytes')))}</code></li>")
        parts.append('<ul class="list">' + "".join(items) + "</ul>")
    else:
        parts.append("<p>None.</p>")
    violations = r.get("violations") or []
    parts.append(f"<h2>Oracle violations ({_int(t.get('oracle_violations', len(violations)))})"
                 "</h2>")
    if violations:
        items = []
        for v in violations:
            tr = v.get("transcript")
            tr = "\n".join(tr) if isinstance(tr, list) else str(tr or "")
            items.append(
                f"<li><b>{html.escape(str(v.get('kind')))}</b>: user "
                f"<code>{html.escape(str(v.get('user')))}</code>, mailbox "
                f"<code>{html.escape(str(v.get('mailbox')))}</code>, message "
                f"<code>{html.escape(str(v.get('message_id')))}</code>: "
                f"{html.escape(str(v.get('detail')))}"
                + (f"<details><summary>transcript</summary><pre>{html.escape(tr)}</pre>"
                   "</details>" if tr else "") + "</li>")
        parts.append('<ul class="list">' + "".join(items) + "</ul>")
    else:
        parts.append("<p>None.</p>")
    return "\n".join(parts)


def _config_section(r: Mapping) -> str:
    from .profile import to_toml

    c = dict(r.get("config", {}))
    prof = c.get("profile")
    parts = ["<h2>Configuration (to repeat this run)</h2>",
             f"<p>Seed <code>{html.escape(str(r.get('seed', c.get('seed'))))}</code>; started "
             f"{html.escape(str(r.get('started', '?')))}. Save the profile below as "
             f"<code>PROFILE.toml</code> and run:</p>",
             f"<pre>{html.escape(repeat_command(r))}</pre>",
             "<p class=note>or <code>millipost load --repeat RESULTS.json</code> with this run's "
             "JSON results.</p>"]
    if isinstance(prof, Mapping):
        try:
            text = to_toml(prof)
        except (TypeError, ValueError):
            text = json.dumps(prof, indent=1)
        parts.append(f"<details><summary>profile (TOML)</summary><pre>{html.escape(text)}</pre>"
                     "</details>")
    parts.append("<details><summary>full configuration (JSON)</summary><pre>"
                 + html.escape(json.dumps(c, indent=1, sort_keys=True)) + "</pre></details>")
    return "\n".join(parts)


def render(r: Mapping) -> str:
    """One run as a self-contained HTML page."""
    t = r.get("totals", {})
    seconds = _seconds(r)
    tg = r.get("target") or {}
    cards = _cards([
        ("sessions", _int(t.get("sessions")), False),
        ("sessions/s", _fmt_rate(_rate(t.get("sessions"), seconds)), False),
        ("commands", _int(t.get("commands")), False),
        ("commands/s", _fmt_rate(_rate(t.get("commands"), seconds)), False),
        ("errors", _int(t.get("errors")), bool(t.get("errors"))),
        ("contract breaches", _int(t.get("contract_breaches", 0)),
         bool(t.get("contract_breaches"))),
        ("oracle violations", _int(t.get("oracle_violations", 0)),
         bool(t.get("oracle_violations"))),
        ("messages delivered", _int(t.get("messages_delivered")), False),
        ("messages verified", _int(t.get("messages_verified")), False),
        ("target cpu s", f"{tg['cpu_seconds']:,.1f}" if isinstance(tg.get("cpu_seconds"),
                                                                   (int, float)) else "-", False),
        ("target max rss", _mib(tg.get("max_rss_bytes")), False),
    ])
    s = _timeline_series(r)
    charts = [
        svgplot.line_chart([("commands/s", s["commands/s"]), ("errors/s", s["errors/s"])],
                           "Throughput over time", "seconds", "per second"),
        svgplot.line_chart([("p50 ms", s["p50 ms"]), ("p99 ms", s["p99 ms"])],
                           "Latency over time (all commands)", "seconds", "ms"),
        svgplot.line_chart([("sessions open", s["sessions open"])], "Open sessions",
                           "seconds", "sessions"),
        svgplot.line_chart([("cpu %", s["cpu %"])], "Target CPU (% of one core)", "seconds",
                           "%"),
        svgplot.line_chart([("rss MiB", s["rss MiB"])], "Target resident memory", "seconds",
                           "MiB"),
    ]
    commands = r.get("commands", {})
    names = _commands_by_count(commands)[:MAX_HISTOGRAMS]
    hist = []
    overlay = []
    for n in names:
        counts, sub = _histogram(commands[n])
        hist.append(svgplot.histogram_chart([(n, counts)], f"{n}: latency distribution",
                                            sub_buckets=sub, width=470, height=200))
        if len(overlay) < len(svgplot.PALETTE):
            overlay.append((n, counts))
    body = [cards, "<h2>Over time</h2>", '<div class="charts">' + "".join(charts) + "</div>",
            "<h2>Per command</h2>", _command_table(r),
            "<h2>Latency distribution per command</h2>",
            '<p class="note">Share of each command\'s replies per octave of latency (log scale); '
            "from the run's log-linear histograms.</p>",
            svgplot.histogram_chart(overlay, "Most frequent commands, overlaid", width=960),
            '<div class="charts">' + "".join(hist) + "</div>",
            _listing(r), _config_section(r)]
    text, cls = verdict(r)
    return _page(f"millipost load: {describe(r)}", "millipost load report",
                 html.escape(describe(r)), text, cls, "\n".join(body))


def render_compare(runs: Sequence[Run]) -> str:
    """Several runs overlaid on one page (the first is the baseline of the ratios)."""
    letters = _labels(runs)
    label = [f"{k}: {name}" for k, (name, _) in zip(letters, runs)]
    series = [_timeline_series(r) for _, r in runs]
    charts = [
        svgplot.line_chart([(l, s["commands/s"]) for l, s in zip(label, series)],
                           "Throughput over time (commands/s)", "seconds", "per second"),
        svgplot.line_chart([(l, s["p99 ms"]) for l, s in zip(label, series)],
                           "p99 latency over time", "seconds", "ms"),
        svgplot.line_chart([(l, s["p50 ms"]) for l, s in zip(label, series)],
                           "p50 latency over time", "seconds", "ms"),
        svgplot.line_chart([(l, s["sessions open"]) for l, s in zip(label, series)],
                           "Open sessions", "seconds", "sessions"),
        svgplot.line_chart([(l, s["cpu %"]) for l, s in zip(label, series)],
                           "Target CPU (% of one core)", "seconds", "%"),
        svgplot.line_chart([(l, s["rss MiB"]) for l, s in zip(label, series)],
                           "Target resident memory", "seconds", "MiB"),
    ]
    names: list[str] = []
    for _, r in runs:
        for n in _commands_by_count(r.get("commands", {})):
            if n not in names:
                names.append(n)
    base = runs[0][1]

    def ratio_cell(v, b, lower_is_better: bool, fmt) -> str:
        if v is None:
            return "<td>-</td>"
        if b:
            x = v / b
            good = (x < 1) if lower_is_better else (x > 1)
            cls = "" if abs(x - 1) < 0.05 else (' class="better"' if good else ' class="worse"')
            return f"<td{cls}>{fmt(v)} (&times;{x:.2f})</td>"
        return f"<td>{fmt(v)}</td>"

    head = "".join(f"<th>{html.escape(k)} cmd/s</th>" for k in letters) + "".join(
        f"<th>{html.escape(k)} p99 ms</th>" for k in letters)
    rows = []
    for n in names:
        rates, p99s = [], []
        for _, r in runs:
            c = r.get("commands", {}).get(n)
            rates.append(_rate(c.get("count"), _seconds(r)) if c else None)
            p = _lat(c, "p99") if c else None
            p99s.append(p / 1000.0 if isinstance(p, (int, float)) else None)
        cells = [ratio_cell(v, rates[0], False, lambda v: f"{v:,.1f}") for v in rates]
        cells += [ratio_cell(v, p99s[0], True, lambda v: f"{v:.3g}") for v in p99s]
        rows.append(f'<tr><td class="name">{html.escape(n)}</td>{"".join(cells)}</tr>')
    table = (f'<table class="compare"><thead><tr><th>command</th>{head}</tr></thead><tbody>'
             + "\n".join(rows) + "</tbody></table>")
    trows = []
    for key, lbl, lower in (("sessions", "sessions/s", False), ("commands", "commands/s", False),
                            ("errors", "errors", True), ("contract_breaches", "contract breaches",
                                                         True),
                            ("oracle_violations", "oracle violations", True)):
        vals = []
        for _, r in runs:
            v = (r.get("totals") or {}).get(key)
            if key in ("sessions", "commands"):
                v = _rate(v, _seconds(r))
            vals.append(v)
        trows.append(f"<tr><td>{lbl}</td>" + "".join(
            ratio_cell(v, vals[0], lower, lambda v: f"{v:,.1f}") for v in vals) + "</tr>")
    for key, lbl, f in (("cpu_seconds", "target cpu s", 1.0),
                        ("max_rss_bytes", "target max rss MiB", 1 / 1048576)):
        vals = [((r.get("target") or {}).get(key) or 0) * f or None for _, r in runs]
        trows.append(f"<tr><td>{lbl}</td>" + "".join(
            ratio_cell(v, vals[0], True, lambda v: f"{v:,.1f}") for v in vals) + "</tr>")
    totals = ("<table><thead><tr><th></th>" + "".join(f"<th>{html.escape(k)}</th>"
                                                      for k in letters)
              + "</tr></thead><tbody>" + "".join(trows) + "</tbody></table>")
    hist = []
    for n in names[:MAX_HISTOGRAMS]:
        ser = []
        sub = 16
        for l, (_, r) in zip(label, runs):
            c = r.get("commands", {}).get(n)
            counts, sub = _histogram(c) if c else ([], sub)
            ser.append((l, counts))
        hist.append(svgplot.histogram_chart(ser, f"{n}: latency distribution", sub_buckets=sub,
                                            width=470, height=220))
    runs_list = "<ul class=list>" + "".join(
        f"<li><b>{html.escape(k)}</b> = <code>{html.escape(name)}</code>: "
        f"{html.escape(describe(r))} &mdash; <span class=\"{verdict(r)[1]}\">"
        f"{html.escape(verdict(r)[0])}</span></li>"
        for k, (name, r) in zip(letters, runs)) + "</ul>"
    configs = "".join(
        f"<details><summary>{html.escape(k)}: configuration</summary><pre>"
        f"{html.escape(repeat_command(r))}\n\n"
        f"{html.escape(json.dumps(r.get('config', {}), indent=1, sort_keys=True))}</pre></details>"
        for k, (_, r) in zip(letters, runs))
    body = ["<h2>Runs</h2>", runs_list, "<h2>Totals</h2>",
            '<p class="note">Ratios are to run A; green is better, red worse (by more than '
            "5%).</p>", totals, "<h2>Over time</h2>",
            '<div class="charts">' + "".join(charts) + "</div>", "<h2>Per command</h2>", table,
            "<h2>Latency distribution per command</h2>", '<div class="charts">' + "".join(hist)
            + "</div>", "<h2>Configurations</h2>", configs]
    bad = [k for k, (_, r) in zip(letters, runs) if verdict(r)[1] == "bad"]
    text, cls = ((f"FAILED: run(s) {', '.join(bad)} had oracle violations or contract breaches",
                  "bad") if bad else ("OK: no run had an oracle violation or contract breach",
                                      "ok"))
    return _page("millipost load comparison: " + ", ".join(n for n, _ in runs),
                 "millipost load comparison", html.escape(" vs ".join(n for n, _ in runs)),
                 text, cls, "\n".join(body))
