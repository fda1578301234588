"""The HTML report of ``millipost conform``: one self-contained file (inline CSS, no scripts, no
external assets) that opens offline from a CI artifact.

The page layout is ``reports/templates/conform.html`` (installed as
``millipost/templates/conform.html``), a :class:`string.Template` whose ``$names`` are filled
here; rows are built here because they need escaping and per-status logic.
"""
from __future__ import annotations

import datetime
import html
import os
import string

#: How many transcript lines one case shows (the last ones; a failure's context is at the end).
TRANSCRIPT_LINES = 60


def template_path() -> str:
    """The installed template, else the source tree's."""
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, "templates", "conform.html"),
                      os.path.join(here, "..", "..", "reports", "templates", "conform.html")):
        if os.path.isfile(candidate):
            return os.path.normpath(candidate)
    raise FileNotFoundError("conform.html template not found (reinstall millipost)")


def status_label(r) -> str:
    """PASS, FAIL, EXPECTED-FAIL or SKIPPED, as shown in the report."""
    if r.status == "FAIL" and r.expected == "FAIL":
        return "EXPECTED-FAIL"
    return r.status


_CSS_CLASS = {"PASS": "PASS", "FAIL": "FAIL", "EXPECTED-FAIL": "XFAIL", "SKIPPED": "SKIPPED"}


def _pre(lines, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<pre{attr}>" + html.escape("\n".join(lines)) + "</pre>"


def _row(r) -> str:
    label = status_label(r)
    parts = [html.escape(r.title)]
    if r.status == "SKIPPED":
        parts.append(f'<div class="why">skipped: {html.escape(r.message)}</div>')
    if r.expected is not None:
        why = f": {html.escape(r.reason)}" if r.reason else ""
        parts.append(f'<div class="why">expected-results file says {html.escape(r.expected)}'
                     f"{why}</div>")
    if r.differs:
        parts.append(f'<div class="count DIFFERS">differs from the expected-results file: '
                     f"expected {html.escape(r.expected)}, got {html.escape(r.status)}</div>")
    if r.status == "FAIL":
        # The message's first part (the failing step and why); the transcript is shown below.
        head = r.message.split("\n  transcript (last", 1)[0]
        parts.append(_pre(head.splitlines(), "msg"))
    transcript = list(getattr(r, "transcript", None) or [])
    if transcript:
        shown = transcript[-TRANSCRIPT_LINES:]
        cut = len(transcript) - len(shown)
        summary = (f"transcript ({len(transcript)} lines" +
                   (f", last {len(shown)} shown" if cut else "") + ")")
        opened = " open" if r.status == "FAIL" else ""
        parts.append(f"<details{opened}><summary>{summary}</summary>{_pre(shown)}</details>")
    rfc = "<br>".join(html.escape(x) for x in r.rfc)
    return (f'<tr id="{html.escape(r.id)}"><td class="status"><span class="{_CSS_CLASS[label]}">'
            f"{label}</span></td><td class=\"id\">{html.escape(r.id)}</td>"
            f'<td class="rfc">{rfc}</td><td>{"".join(parts)}</td></tr>')


def render(report, expect_path: str | None = None) -> str:
    """The report as one HTML document (str)."""
    c = report.counts()
    labels = [status_label(r) for r in report.results]
    counts = [("PASS", labels.count("PASS")), ("FAIL", labels.count("FAIL")),
              ("EXPECTED-FAIL", labels.count("EXPECTED-FAIL")), ("SKIPPED", labels.count("SKIPPED"))]
    count_html = "".join(f'<span class="count {_CSS_CLASS[k]}">{v} {k}</span>' for k, v in counts)
    count_html = f'<span class="count">{len(report.results)} scenarios</span>' + count_html
    if c["differs"]:
        count_html += f'<span class="count DIFFERS">{c["differs"]} differ from expectations</span>'
    differs = [r for r in report.results if r.differs]
    diff_html = ""
    if differs:
        items = "".join(f'<li><a href="#{html.escape(r.id)}">{html.escape(r.id)}</a>: expected '
                        f"{html.escape(r.expected)}, got {html.escape(r.status)}"
                        + (f" ({html.escape(r.reason)})" if r.reason else "") + "</li>"
                        for r in differs)
        diff_html = f"<h2>Differences from the expected-results file</h2><ul>{items}</ul>"
    with open(template_path(), encoding="utf-8") as f:
        template = string.Template(f.read())
    return template.substitute(
        protocol=html.escape(report.protocol.upper()),
        target=html.escape(report.target),
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        duration=f"{sum(r.seconds for r in report.results):.1f}",
        expect_line=(f" &middot; expected results <code>{html.escape(expect_path)}</code>"
                     if expect_path else ""),
        verdict="OK: no unexpected failures" if report.ok else
        f"FAILED: {sum(r.failed for r in report.results)} unexpected failure(s)",
        verdict_class="ok" if report.ok else "bad",
        counts=count_html,
        cap_count=len(report.capabilities),
        capabilities=html.escape(" ".join(report.capabilities)) or "(none)",
        differences=diff_html,
        rows="\n".join(_row(r) for r in report.results),
    )


def default_path(protocol: str, when: datetime.datetime | None = None) -> str:
    """``reports/out/conform-<protocol>-<timestamp>.html`` (relative to the working directory)."""
    when = when or datetime.datetime.now()
    return os.path.join("reports", "out", f"conform-{protocol}-{when:%Y%m%d-%H%M%S}.html")
