"""Charts as inline SVG, generated here: no script, no plotting library, no request leaves the page.

``svg_chart`` draws series (a step line of bests, a cloud of dots thinned to ``MAX_POINTS``, lines)
with nice ticks, horizontal reference lines and a legend; the report and the dashboard use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

MAX_POINTS = 2000  # candidate dots per chart (evenly thinned beyond)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= step * mult:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def fmt_number(v: float) -> str:
    return f"{v:.4g}"


@dataclass
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    colour: str
    kind: str = "step"  # step | line | dots
    titles: list[str] | None = None
    links: list[str] | None = None


def svg_chart(series: list[Series], xlabel: str, ylabel: str, hlines: Sequence[tuple[str, float, str]] = (),
              width: int = 780, height: int = 320, title: str = "", css_class: str = "chart", focus: bool = True,
              vlines: Sequence[tuple[str, float, str]] = ()) -> str:
    """A plain inline-SVG chart: step lines, lines and dot clouds, horizontal and vertical reference lines
    (``focus``: the y range follows the lines, dots far outside are counted, not drawn)."""
    left, right, top, bottom = 70, 200, 28, 44
    xs = [x for s in series for x, _ in s.points]
    # the y range follows the lines (a cloud of dots far below them would flatten the curve): dots
    # extend it by at most half the lines' span; the ones beyond are counted in the legend
    line_ys = [y for s in series if s.kind != "dots" for _, y in s.points] + [v for _, v, _ in hlines]
    dot_ys = [y for s in series if s.kind == "dots" for _, y in s.points]
    line_ys = [y for y in line_ys if math.isfinite(y)]
    dot_ys = [y for y in dot_ys if math.isfinite(y)]
    if not xs or not (line_ys or dot_ys):
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    x0, x1 = min(0.0, min(xs)), max(xs) or 1.0
    y0, y1 = min(line_ys or dot_ys), max(line_ys or dot_ys)
    span = max(y1 - y0, 1e-9 + 0.05 * abs(y1))
    if not focus:
        y0, y1 = min(line_ys + dot_ys), max(line_ys + dot_ys)
    elif dot_ys and line_ys:
        y0 = max(min(y0, min(dot_ys)), y0 - 0.5 * span)
        y1 = min(max(y1, max(dot_ys)), y1 + 0.5 * span)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.04 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    hidden = sum(1 for y in dot_ys if not y0 <= y <= y1)
    if x1 <= x0:
        x1 = x0 + 1
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + pw * (x - x0) / (x1 - x0)

    def py(y: float) -> float:
        return top + ph * (1 - (y - y0) / (y1 - y0))

    out = [f'<svg class="{css_class}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="{escape(title)}">',
           f'<text x="{left}" y="16" class="ctitle">{escape(title)}</text>']
    for v in _nice_ticks(y0, y1):
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(v):.1f}" y2="{py(v):.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{fmt_number(v)}</text>')
    for v in _nice_ticks(x0, x1, 6):
        out.append(f'<text x="{px(v):.1f}" y="{top + ph + 16}" text-anchor="middle">{fmt_number(v)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 6}" text-anchor="middle">{escape(xlabel)}</text>')
    out.append(f'<text x="14" y="{top + ph / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 14 {top + ph / 2:.0f})">{escape(ylabel)}</text>')
    legend = []
    for name, v, colour in hlines:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="{colour}" '
                   f'stroke-dasharray="5 4"/>')
        legend.append((f"{name} ({fmt_number(v)})", colour, "dash"))
    for name, v, colour in vlines:
        out.append(f'<line x1="{px(v):.1f}" x2="{px(v):.1f}" y1="{top}" y2="{top + ph}" stroke="{colour}" '
                   f'stroke-dasharray="4 3"/><text x="{px(v) + 3:.1f}" y="{top + 12}" fill="{colour}">'
                   f"{escape(name)}</text>")
    for s in series:
        pts = [(x, y) for x, y in s.points if math.isfinite(y)]
        if not pts:
            continue
        if s.kind == "dots":
            pts = [(x, y) for x, y in pts if y0 <= y <= y1]
            step = max(1, math.ceil(len(pts) / MAX_POINTS))
            # one path of round zero-length strokes (dots of radius 1.6): one element, not thousands, for the
            # browser to parse and lay out (a live page redraws it at every refresh)
            out.append(f'<path class="dots" fill="none" stroke="{s.colour}" stroke-width="3.2" stroke-linecap="round" '
                       'd="' + "".join(f"M{px(x):.1f} {py(y):.1f}h0" for x, y in pts[::step]) + '"/>')
        else:
            path = []
            for i, (x, y) in enumerate(pts):
                if i == 0:
                    path.append(f"M{px(x):.1f},{py(y):.1f}")
                elif s.kind == "step":
                    path.append(f"H{px(x):.1f}V{py(y):.1f}")
                else:
                    path.append(f"L{px(x):.1f},{py(y):.1f}")
            if s.kind == "step":
                path.append(f"H{px(x1):.1f}")
            out.append(f'<path d="{"".join(path)}" fill="none" stroke="{s.colour}" stroke-width="2" '
                       f'class="series" data-name="{escape(s.name)}"/>')
            for i, (x, y) in enumerate(pts[:400]):
                dot = f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{s.colour}">'
                if s.titles:
                    dot += f"<title>{escape(s.titles[i])}</title>"
                dot += "</circle>"
                if s.links and s.links[i]:
                    dot = f'<a href="{escape(s.links[i])}">{dot}</a>'
                out.append(dot)
        legend.append((s.name if s.kind != "dots" or not hidden else f"{s.name} ({hidden} below)", s.colour, s.kind))
    ly = top + 8
    for name, colour, kind in legend:
        lx = left + pw + 12
        if kind == "dots":
            out.append(f'<circle cx="{lx + 10}" cy="{ly}" r="3" fill="{colour}"/>')
        else:
            dash = ' stroke-dasharray="5 4"' if kind == "dash" else ""
            out.append(f'<line x1="{lx}" x2="{lx + 20}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 26}" y="{ly + 4}">{escape(name[:30])}</text>')
        ly += 18
    out.append("</svg>")
    return "".join(out)
