"""Small inline-SVG charts for the HTML reports: line charts (linear or log axes) and latency
histograms. No JavaScript and no external assets, so that a report opens offline from a CI
artifact and still shows its plots; the charts are plain SVG elements a browser draws itself.

The ``<svg>`` elements have no ``xmlns``: inline in HTML5 the parser puts them in the SVG
namespace itself, and the page then holds no URL at all. Every series is a
``<g class="series" data-series="NAME">`` group, so that a test (or a person
reading the source) can find what a chart plots.
"""
from __future__ import annotations

import html
import math
from typing import Callable, Optional, Sequence

#: Series colours (colour-blind friendly, Okabe-Ito order).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
           "#000000")

Point = tuple[float, float]

_W, _H = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 28, 40


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _nice_step(span: float, target: int = 5) -> float:
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _linear_ticks(lo: float, hi: float) -> list[float]:
    step = _nice_step(hi - lo)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], first
    while v <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    return [10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            if lo * (1 - 1e-9) <= 10.0 ** k <= hi * (1 + 1e-9)]


def fmt_number(v: float) -> str:
    """Short tick labels: 1.5k, 2M, 0.25, 12."""
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:g}G"
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    if a >= 1 or a == 0:
        return f"{v:.4g}"
    return f"{v:.3g}"


class _Axis:
    def __init__(self, lo: float, hi: float, log: bool, pixels: tuple[float, float]):
        if log:
            lo = max(lo, 1e-12)
            hi = max(hi, lo * 10)
            # Whole decades, so the ticks land on the edges.
            lo = 10.0 ** math.floor(math.log10(lo))
            hi = 10.0 ** math.ceil(math.log10(hi))
        elif hi <= lo:
            hi = lo + 1.0
        self.lo, self.hi, self.log, self.pixels = lo, hi, log, pixels

    def __call__(self, v: float) -> float:
        a, b = self.pixels
        if self.log:
            v = max(v, self.lo)
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return a + f * (b - a)

    def ticks(self) -> list[float]:
        return _log_ticks(self.lo, self.hi) if self.log else _linear_ticks(self.lo, self.hi)


def _frame(title: str, x: _Axis, y: _Axis, x_label: str, y_label: str,
           x_fmt: Callable[[float], str], y_fmt: Callable[[float], str], width: int,
           height: int) -> list[str]:
    out = [f'<svg class="chart" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{html.escape(title)}">',
           f'<title>{html.escape(title)}</title>',
           f'<text x="{_LEFT}" y="16" class="ct">{html.escape(title)}</text>']
    x0, x1 = x.pixels
    y0, y1 = y.pixels
    out.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" class="pa"/>')
    for t in y.ticks():
        py = y(t)
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{py:.1f}" y2="{py:.1f}" class="gr"/>'
                   f'<text x="{x0 - 6}" y="{py + 4:.1f}" class="tl" text-anchor="end">'
                   f'{html.escape(y_fmt(t))}</text>')
    for t in x.ticks():
        px = x(t)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y0}" y2="{y0 + 4}" class="ax"/>'
                   f'<text x="{px:.1f}" y="{y0 + 16}" class="tl" text-anchor="middle">'
                   f'{html.escape(x_fmt(t))}</text>')
    out.append(f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" class="ax"/>'
               f'<line x1="{x0}" x2="{x0}" y1="{y0}" y2="{y1}" class="ax"/>')
    out.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{height - 6}" class="al" '
               f'text-anchor="middle">{html.escape(x_label)}</text>')
    out.append(f'<text x="14" y="{(y0 + y1) / 2:.0f}" class="al" text-anchor="middle" '
               f'transform="rotate(-90 14 {(y0 + y1) / 2:.0f})">{html.escape(y_label)}</text>')
    return out


def _legend_width(names: Sequence[str]) -> float:
    return sum(22 + 7.5 * len(n) for n in names)


def _top(title: str, names: Sequence[str], width: int) -> tuple[float, float]:
    """(legend baseline row y, plot top): the legend shares the title's row when both fit,
    else it gets a row of its own below the title."""
    if _LEFT + 8.5 * len(title) + 16 + _legend_width(names) <= width - _RIGHT:
        return 8.0, _TOP
    return 22.0, _TOP + 16


def _legend(names: Sequence[str], width: int, y: float = 8.0) -> list[str]:
    out, x = [], width - _RIGHT
    # Right-aligned, laid out from the right so long names do not run off the chart.
    items = []
    for i, name in reversed(list(enumerate(names))):
        w = _legend_width([name])
        x -= w
        items.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="10" height="10" '
                     f'fill="{colour(i)}"/><text x="{x + 14:.0f}" y="{y + 9:.0f}" class="lg">'
                     f'{html.escape(name)}</text>')
    out.append('<g class="legend">' + "".join(reversed(items)) + "</g>")
    return out


def empty_chart(title: str, why: str = "no data", width: int = _W, height: int = 80) -> str:
    return (f'<svg class="chart empty" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>'
            f'<text x="{_LEFT}" y="16" class="ct">{html.escape(title)}</text>'
            f'<text x="{_LEFT}" y="48" class="tl">{html.escape(why)}</text></svg>')


def line_chart(series: Sequence[tuple[str, Sequence[Point]]], title: str, x_label: str,
               y_label: str, log_x: bool = False, log_y: bool = False,
               x_fmt: Callable[[float], str] = fmt_number,
               y_fmt: Callable[[float], str] = fmt_number, width: int = _W, height: int = _H,
               y_min: Optional[float] = 0.0, dashed: Sequence[bool] = ()) -> str:
    """Lines through each series' points (sorted by x); points with None or non-finite values,
    or non-positive ones on a log axis, are gaps."""
    def ok(v, log):
        return v is not None and math.isfinite(v) and (v > 0 or not log)

    clean = [(name, [(x, y) for x, y in pts if ok(x, log_x) and ok(y, log_y)])
             for name, pts in series]
    xs = [x for _, pts in clean for x, _ in pts]
    ys = [y for _, pts in clean for _, y in pts]
    if not xs:
        return empty_chart(title)
    ylo = min(ys) if (y_min is None or log_y) else min(y_min, min(ys))
    yhi = max(ys)
    if not log_y and yhi > ylo:
        yhi += (yhi - ylo) * 0.05
    legend_y, top = _top(title, [n for n, _ in clean], width)
    x = _Axis(min(xs), max(xs), log_x, (_LEFT, width - _RIGHT))
    y = _Axis(ylo, yhi, log_y, (height - _BOTTOM, top))
    out = _frame(title, x, y, x_label, y_label, x_fmt, y_fmt, width, height)
    for i, (name, pts) in enumerate(clean):
        pts = sorted(pts)
        dash = ' stroke-dasharray="5 3"' if i < len(dashed) and dashed[i] else ""
        path = " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py in pts)
        out.append(f'<g class="series" data-series="{html.escape(name)}">'
                   f'<polyline points="{path}" fill="none" stroke="{colour(i)}" '
                   f'stroke-width="1.6"{dash}/>'
                   + (f'<circle cx="{x(pts[0][0]):.1f}" cy="{y(pts[0][1]):.1f}" r="2" '
                      f'fill="{colour(i)}"/>' if len(pts) == 1 else "") + "</g>")
    out += _legend([n for n, _ in clean], width, legend_y)
    out.append("</svg>")
    return "\n".join(out)


def bucket_width(lower: float, sub_buckets: int = 16) -> float:
    """The width of a log-linear bucket that starts at ``lower`` (microseconds): buckets below
    ``sub_buckets`` are 1 wide; above, each power-of-two range [2^k, 2^(k+1)) is cut into
    ``sub_buckets`` equal parts."""
    if lower < sub_buckets:
        return 1.0
    return max(1.0, 2.0 ** math.floor(math.log2(lower)) / sub_buckets)


def histogram_chart(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], title: str,
                    x_label: str = "latency (ms, log scale)",
                    y_label: str = "% of commands per octave",
                    sub_buckets: int = 16, width: int = _W, height: int = _H,
                    scale: float = 1e-3, bins_per_octave: int = 4) -> str:
    """Latency distributions as filled step outlines over a log x axis. Each series is a list
    of (bucket_lower_us, count), regrouped into bins of 1/``bins_per_octave`` of a doubling of
    latency. A bin's height is its share of the series' commands per octave (a density, so that
    runs of different sizes and bin widths compare). ``scale`` converts microseconds to the
    axis unit (default milliseconds)."""
    lines = []
    for name, buckets in series:
        b = sorted((float(lo), float(c)) for lo, c in buckets if c > 0)
        total = sum(c for _, c in b)
        if not total:
            lines.append((name, []))
            continue
        # Regrouped into bins of equal width in log-latency (bins_per_octave per doubling):
        # the engine's buckets are finer than a chart can show, and a few samples per bucket
        # draw noise rather than a shape.
        bins: dict[int, float] = {}
        for lo, c in b:
            mid = max(lo, 0.5) + bucket_width(lo, sub_buckets) / 2
            i = math.floor(math.log2(mid) * bins_per_octave)
            bins[i] = bins.get(i, 0.0) + c
        pts = []
        for i in sorted(bins):
            lo_s = 2.0 ** (i / bins_per_octave) * scale
            hi_s = 2.0 ** ((i + 1) / bins_per_octave) * scale
            pts.append((lo_s, hi_s, 100.0 * bins[i] / total * bins_per_octave))
        # Steps: a flat top per bucket, down to zero where buckets are not adjacent.
        step = []
        for i, (lo_s, hi_s, d) in enumerate(pts):
            if not step or abs(step[-1][0] - lo_s) > lo_s * 1e-9:
                if step:
                    step.append((step[-1][0], 0.0))
                step.append((lo_s, 0.0))
            step += [(lo_s, d), (hi_s, d)]
        step.append((step[-1][0], 0.0))
        lines.append((name, step))
    xs = [x for _, pts in lines for x, _ in pts]
    if not xs:
        return empty_chart(title)
    ys = [y for _, pts in lines for _, y in pts]
    names = [n for n, _ in lines] if len(lines) > 1 else []
    legend_y, top = _top(title, names, width)
    x = _Axis(min(xs), max(xs), True, (_LEFT, width - _RIGHT))
    y = _Axis(0.0, max(ys) * 1.05 or 1.0, False, (height - _BOTTOM, top))
    out = _frame(title, x, y, x_label, y_label, fmt_number, fmt_number, width, height)
    for i, (name, pts) in enumerate(lines):
        if not pts:
            continue
        path = " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py in pts)
        fill = ' fill-opacity="0.18"' if len(lines) > 1 else ' fill-opacity="0.35"'
        out.append(f'<g class="series" data-series="{html.escape(name)}">'
                   f'<polygon points="{path}" fill="{colour(i)}"{fill} stroke="{colour(i)}" '
                   f'stroke-width="1.2"/></g>')
    if names:
        out += _legend(names, width, legend_y)
    out.append("</svg>")
    return "\n".join(out)
