"""The HTML report of a run: one self-contained file (inline SVG charts, inline CSS; no request leaves it).

    rsi report runs/bp              # writes runs/bp/report.html
    rsi report runs/bp -o bp.html

Sections: best score against evaluations and against wall time (with the seed as a line), training
against held-out scores of the best candidates, the lineage of the best back to the seed (each
step's diff, proposer and rationale), proposer and operator statistics, failures by kind, review
flags, the adoption gate's decisions and, for a self-improvement folder (``selfimprove.json``), the
generations table and the meta-utility curve.

Everything is read through ``rsi.open_run`` (read-only; safe while the run is being written). The
section functions take a ``link`` callback for candidate ids, so the dashboard
(``rsi.report.dashboard``) shows the same views with links to its candidate pages. Charts thin the
cloud of candidate points to at most ``svg.MAX_POINTS`` so that a run of 10,000 candidates stays a file
of a few hundred kB.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from ..archive import Archive
from ..oversight.adoption import train_holdout_gap
from ..program import unified_diff
from ..results import Results, open_run
from ..storage import Candidate
from .calls import CallStats, call_stats
from .svg import Series, fmt_number, svg_chart
from .text import cascade_counts

REPORT_FILE = "report.html"
SELFIMPROVE_FILE = "selfimprove.json"
GENERATIONS_FILE = "generations.json"
LINEAGE_DIFF_CHARS = 20_000  # per step; a longer diff is cut with a note

Link = Callable[[int], str]


def plain_link(cid: int) -> str:
    """A candidate id as text (the report has no candidate pages; lineage steps have anchors)."""
    return f"#{cid}"


# ----------------------------------------------------------------------------- data


@dataclass
class Row:
    """One candidate without its bulky columns."""

    id: int
    parent_id: int | None
    status: str
    score: float | None
    proposer: str
    operator: str | None
    at: float
    tokens: int | None
    cost: float | None


@dataclass
class RunView:
    """What the report shows of a run, read once."""

    run_dir: Path
    meta: dict[str, Any]
    counts: dict[str, int]
    rows: list[Row]  # evaluated candidates, in evaluation order
    seed: Candidate | None
    best: Candidate | None
    lineage: list[Candidate]
    holdout: list[Candidate]
    stats: list[dict[str, Any]]
    failures: list[tuple[str, str, int]]  # status, kind, count
    flags: list[tuple[int, list[dict]]]
    promotions: list[dict[str, Any]]
    holdout_line: str | None
    archive: Archive | None = None
    generations: list[dict[str, Any]] | None = None
    selfimprove: dict[str, Any] | None = None
    cascade: tuple[int, int, int] | None = None  # ran, stopped early, stage evaluations saved
    calls: list[CallStats] = field(default_factory=list)  # model calls per proposer
    made_at: float = field(default_factory=time.time)

    @property
    def evaluated(self) -> int:
        return len(self.rows)

    def history(self) -> list[tuple[int, float, float, int]]:
        """(evaluation number, seconds since the first, best score so far, its id) at each new best."""
        out: list[tuple[int, float, float, int]] = []
        best: float | None = None
        start = self.rows[0].at if self.rows else 0.0
        for n, row in enumerate(self.rows, 1):
            if row.status == "ok" and row.score is not None and (best is None or row.score > best):
                best = row.score
                out.append((n, row.at - start, row.score, row.id))
        return out


def failure_kind(status: str, error: str | None) -> str:
    """A short name for why a candidate failed: the exception line of a traceback, or the first
    line of the reason, numbers and parentheses dropped so that alike failures group."""
    text = (error or status).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return status
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    line = re.sub(r"\(.*", "", line)
    line = re.sub(r"\d+(\.\d+)?", "N", line).strip()
    return line[:90] or status


def _candidate_rows(results: Results) -> list[Row]:
    query = ("SELECT id, parent_id, status, score, proposer, operator, COALESCE(evaluated_at, proposed_at), tokens, "
             "cost FROM candidates WHERE status IN ('ok','error','timeout') ORDER BY evaluated_at, id")
    return [Row(*r) for r in results.store.conn.execute(query)]


def _stats(results: Results) -> list[dict[str, Any]]:
    query = """
        SELECT c.proposer, COALESCE(c.operator, ''), COUNT(*),
               SUM(c.status = 'ok'), SUM(c.status IN ('error', 'timeout', 'invalid', 'rejected')),
               SUM(c.status = 'ok' AND p.score IS NOT NULL AND c.score > p.score),
               SUM(COALESCE(c.tokens, 0)), SUM(COALESCE(c.cost, 0)), COUNT(c.tokens), COUNT(c.cost),
               MAX(c.score)
        FROM candidates c LEFT JOIN candidates p ON p.id = c.parent_id
        WHERE c.parent_id IS NOT NULL
        GROUP BY 1, 2 ORDER BY 1, 2"""
    out = []
    for prop, op, tries, ok, failed, better, tokens, cost, n_tok, n_cost, top in results.store.conn.execute(query):
        out.append({"proposer": prop, "operator": op, "tries": tries, "ok": ok or 0, "failed": failed or 0,
                    "improved": better or 0, "tokens": tokens if n_tok else None, "cost": cost if n_cost else None,
                    "best": top})
    return out


def _failures(results: Results) -> list[tuple[str, str, int]]:
    counter: Counter[tuple[str, str]] = Counter()
    for status, error, n in results.store.conn.execute(  # alike errors counted by SQLite, each named once
            "SELECT status, error, COUNT(*) FROM candidates WHERE status NOT IN ('ok', 'pending', 'proposed', "
            "'running') GROUP BY status, error"):
        counter[(status, failure_kind(status, error))] += n
    return sorted_failures(counter)


def sorted_failures(counter: Counter[tuple[str, str]]) -> list[tuple[str, str, int]]:
    """(status, kind, count), the most frequent first (ties by status and kind: the same order however counted)."""
    return [(status, kind, n) for (status, kind), n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def collect(results: Results) -> RunView:
    """Read what the report shows (a handful of queries; candidate sources only for the lineage)."""
    store = results.store
    meta = store.meta()
    best = results.best()
    try:
        seed: Candidate | None = results.get(1)
    except Exception:  # an empty run
        seed = None
    lineage = results.lineage(best.id) if best is not None else []
    holdout = [results.get(cid) for (cid,) in store.conn.execute(
        "SELECT id FROM candidates WHERE status='ok' AND holdout IS NOT NULL ORDER BY score DESC, id LIMIT 15")]
    flags = [(cid, json.loads(text)) for cid, text in store.conn.execute(
        "SELECT id, flags FROM candidates WHERE flags IS NOT NULL AND flags != '[]' ORDER BY id")]
    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    holdout_line = (settings.get("report") or {}).get("holdout_line") if settings else None
    view = RunView(results.run_dir, meta, store.counts(), _candidate_rows(results), seed, best, lineage, holdout,
                   _stats(results), _failures(results), flags, store.promotions(), holdout_line)
    view.cascade = cascade_counts(store)
    view.calls = call_stats(store)
    state = store.load_state() or {}
    try:
        view.archive = Archive.from_json(state["archive"]) if isinstance(state.get("archive"), dict) else None
    except (KeyError, TypeError, ValueError):  # an improver that keeps another kind of archive
        view.archive = None
    config = results.run_dir / SELFIMPROVE_FILE
    if config.is_file():
        view.selfimprove = read_json(config)
        rows = read_json(results.run_dir / GENERATIONS_FILE)
        view.generations = rows if isinstance(rows, list) else []
    return view


# ----------------------------------------------------------------------------- sections


def num(v: Any, digits: int = 6) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return escape(str(v))


def html_table(header: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def diff_html(diff: str, limit: int = LINEAGE_DIFF_CHARS) -> str:
    """A unified diff, its lines coloured (escaped; cut at ``limit`` characters with a note)."""
    if not diff:
        return '<p class="empty">(no change)</p>'
    note = ""
    if len(diff) > limit:
        note = f'<p class="note">diff cut at {limit:,} of {len(diff):,} characters</p>'
        diff = diff[:limit]
    lines = []
    for line in diff.splitlines():
        css = ("add" if line.startswith("+") and not line.startswith("+++") else
               "del" if line.startswith("-") and not line.startswith("---") else
               "hunk" if line.startswith("@@") else "")
        lines.append(f'<span class="{css}">{escape(line)}</span>' if css else escape(line))
    return f'<pre class="diff">{chr(10).join(lines)}</pre>{note}'


def section_summary(view: RunView, link: Link) -> str:
    meta, counts = view.meta, view.counts
    items = [("run", escape(str(view.run_dir))), ("problem", num(meta.get("problem_dir"))),
             ("improver", num(meta.get("improver_path"))),
             ("candidates", f"{sum(counts.values()):,} proposed, {view.evaluated:,} evaluated: " +
              ", ".join(f"{escape(k)} {v:,}" for k, v in sorted(counts.items())))]
    if view.seed is not None:
        items.append(("seed", f"{link(view.seed.id)} score {num(view.seed.score)}"))
    if view.best is not None:
        items.append(("best", f'<b class="best-score">{link(view.best.id)} score {num(view.best.score)}</b>'))
        gap = train_holdout_gap(view.best)
        if gap is not None:
            items.append(("train / held-out gap", f"{gap:+.1%} of the training score"))
    pending = [p for p in view.promotions if p["status"] == "pending"]
    promoted = [p for p in view.promotions if p["status"] == "promoted"]
    items.append(("promoted", link(promoted[-1]["candidate_id"]) if promoted else "none yet"))
    if pending:
        items.append(("waiting for approval", ", ".join(link(p["candidate_id"]) for p in pending)))
    if view.cascade is not None:
        ran, stopped, saved = view.cascade
        items.append(("cascade", f"{stopped:,} of {ran:,} candidates stopped before the last stage: {saved:,} "
                                 "stage evaluations saved"))
    if view.rows:
        span = view.rows[-1].at - view.rows[0].at
        items.append(("evaluation span", f"{span:,.0f} s ({view.evaluated / max(span, 1e-9):.2f} evaluations/s)"))
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in items)
    return f'<section id="summary"><h2>Summary</h2><table class="kv">{body}</table></section>'


def section_curves(view: RunView, link: Link) -> str:
    hist = view.history()
    start = view.rows[0].at if view.rows else 0.0
    titles = [f"#{cid}: {score:.6g} at evaluation {n}" for n, _, score, cid in hist]
    links = [link_href(link, cid) for *_, cid in hist]
    hlines = [("seed", view.seed.score, "#888")] if view.seed is not None and view.seed.score is not None else []
    references = ((view.meta.get("settings") or {}).get("report") or {}).get("references") or {}
    hlines += [(str(label), float(value), "#c0392b") for label, value in references.items()]
    ok = [(n, r.score) for n, r in enumerate(view.rows, 1) if r.status == "ok" and r.score is not None]
    ok_t = [(r.at - start, r.score) for r in view.rows if r.status == "ok" and r.score is not None]
    charts = []
    for xlabel, pts, cloud in (("evaluations", [(n, s) for n, _, s, _ in hist], ok),
                               ("wall time (s)", [(t, s) for _, t, s, _ in hist], ok_t)):
        series = [Series("candidates", cloud, "#c8c8d8", "dots"),
                  Series("best so far", pts, "#1f5fbf", "step", titles, links)]
        charts.append(svg_chart(series, xlabel, "score", hlines, title=f"Best score vs {xlabel}"))
    steps = "".join(f"<tr><td>{n:,}</td><td>{t:,.1f}</td><td>{link(cid)}</td><td>{num(s)}</td></tr>"
                    for n, t, s, cid in hist[-30:])
    table = ('<details><summary>improvements (the last 30)</summary><table><thead><tr><th>evaluation</th><th>s</th>'
             f'<th>candidate</th><th>score</th></tr></thead><tbody>{steps}</tbody></table></details>')
    return f'<section id="curves"><h2>Best score</h2>{"".join(charts)}{table}</section>'


def link_href(link: Link, cid: int) -> str:
    """The href inside ``link(cid)`` if it makes one."""
    match = re.search(r'href="([^"]*)"', link(cid))
    return match.group(1) if match else ""


def section_holdout(view: RunView, link: Link) -> str:
    parts = ['<section id="holdout"><h2>Training vs held-out</h2>']
    if view.holdout_line:
        for label, cand in (("seed", view.seed), ("best", view.best)):
            if cand is not None and cand.holdout and "error" not in cand.holdout:
                try:
                    text = view.holdout_line.format(**cand.holdout)
                except (KeyError, ValueError, IndexError):
                    text = None
                if text:
                    parts.append(f'<p class="holdout-line"><b>held-out ({label})</b>: {escape(text)}</p>')
    if not view.holdout:
        parts.append('<p class="empty">no candidate has held-out results (the problem has no evaluate_holdout, or '
                     'no best has been re-checked yet)</p></section>')
        return "".join(parts)
    names = sorted({k for c in view.holdout for k in (c.holdout or {}) if k != "combined_score"})[:6]
    rows = []
    for c in view.holdout:
        h = c.holdout or {}
        gap = train_holdout_gap(c)
        rows.append([link(c.id), num(c.score), num(h.get("combined_score")),
                     "—" if gap is None else f"{gap:+.1%}"] + [num(h.get(n)) for n in names])
    parts.append(html_table(["candidate", "training score", "held-out score", "gap"] + names, rows, "holdout"))
    pts = sorted(view.holdout, key=lambda c: c.id)
    series = [Series("training", [(c.id, c.score) for c in pts if c.score is not None], "#1f5fbf", "line"),
              Series("held-out", [(c.id, (c.holdout or {}).get("combined_score", math.nan)) for c in pts],
                     "#d2691e", "line")]
    parts.append(svg_chart(series, "candidate id", "combined_score", title="Training vs held-out (best candidates)"))
    parts.append("</section>")
    return "".join(parts)


def section_lineage(view: RunView, link: Link) -> str:
    if not view.lineage:
        return '<section id="lineage"><h2>Lineage of the best</h2><p class="empty">no valid candidate</p></section>'
    steps = []
    prev: Candidate | None = None
    for c in view.lineage:
        delta = "" if prev is None or c.score is None or prev.score is None else f" ({c.score - prev.score:+.4g})"
        diff = "" if prev is None else (c.diff or unified_diff(prev.source or "", c.source or "",
                                                                f"candidate-{c.id}.py"))
        head = (f'<span class="cid">{link(c.id)}</span> score {num(c.score)}{escape(delta)} · '
                f'{escape(c.proposer)}{(" / " + escape(c.operator)) if c.operator else ""}')
        rationale = f'<div class="rationale">{escape(c.rationale)}</div>' if c.rationale else ""
        body = diff_html(diff) if prev is not None else '<p class="empty">the seed</p>'
        steps.append(f'<li id="step-{c.id}" class="step"><details{" open" if c is view.lineage[-1] else ""}>'
                     f"<summary>{head}</summary>{rationale}{body}</details></li>")
        prev = c
    whole = ""
    if view.seed is not None and view.best is not None and view.best.id != view.seed.id:
        whole = ('<details class="whole"><summary>the best against the seed (one diff)</summary>'
                 + diff_html(unified_diff(view.seed.source or "", view.best.source or "", "initial.py -> best.py"))
                 + "</details>")
    return (f'<section id="lineage"><h2>Lineage of the best ({len(view.lineage)} steps from the seed)</h2>'
            f'{whole}<ol class="lineage">{"".join(steps)}</ol></section>')


def _colour(t: float) -> str:
    """A blue (0) to yellow (1) ramp."""
    stops = [(0.0, (49, 54, 149)), (0.5, (116, 173, 209)), (0.75, (171, 217, 233)), (1.0, (254, 224, 144))]
    t = min(1.0, max(0.0, t))
    for (t0, c0), (t1, c1) in zip(stops, stops[1:], strict=False):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            return "#" + "".join(f"{round(a + (b - a) * f):02x}" for a, b in zip(c0, c1, strict=True))
    return "#fee090"


def section_map(view: RunView, link: Link) -> str:
    archive = view.archive
    if archive is None or not archive.elites():
        return ""
    best: dict[tuple[int, ...], tuple[Any, int]] = {}
    for pool in archive.cells:
        for cell, elite in pool.items():
            key = tuple(cell[:2]) if len(cell) >= 2 else (cell[0], 0)
            held = best.get(key)
            if held is None or elite.beats(held[0]):
                best[key] = (elite, (held[1] if held else 0) + 1)
            else:
                best[key] = (held[0], held[1] + 1)
    scores = [e.score for e, _ in best.values()]
    lo, hi = min(scores), max(scores)
    nx = archive.bins
    ny = archive.bins if len(archive.features) >= 2 else 1
    size, left, top = 46, 40, 10
    ranks = {v: k for k, v in enumerate(sorted(set(scores)))}
    out = [f'<svg class="chart map" viewBox="0 0 {left + nx * size + 20} {top + ny * size + 50}" '
           f'width="{left + nx * size + 20}" height="{top + ny * size + 50}" role="img" aria-label="MAP-Elites map">']
    for (i, j), (elite, count) in sorted(best.items()):
        x, y = left + i * size, top + (ny - 1 - j) * size
        t = 0.5 if len(ranks) < 2 else ranks[elite.score] / (len(ranks) - 1)
        mark = (f'<rect x="{x}" y="{y}" width="{size - 2}" height="{size - 2}" fill="{_colour(t)}">'
                f"<title>#{elite.id}: {elite.score:.6g} ({count} of {archive.n_islands} islands hold this cell)"
                f'</title></rect><text x="{x + size / 2 - 1:.0f}" y="{y + size / 2 + 3:.0f}" text-anchor="middle" '
                f'fill="{"#fff" if t < 0.45 else "#222"}" font-size="10">{fmt_number(elite.score)}</text>')
        href = link_href(link, elite.id)
        out.append(f'<a href="{escape(href)}">{mark}</a>' if href else mark)
    for i in range(nx):
        out.append(f'<rect x="{left + i * size}" y="{top}" width="{size - 2}" height="{ny * size - 2}" '
                   f'fill="none" stroke="#eee"/>')

    def axis(k: int) -> str:
        lo_k, hi_k = archive.lo[k], archive.hi[k]
        span = "" if lo_k is None or hi_k is None else f" ({fmt_number(lo_k)} to {fmt_number(hi_k)})"
        return escape(archive.features[k] + span)

    out.append(f'<text x="{left + nx * size / 2:.0f}" y="{top + ny * size + 20}" text-anchor="middle">{axis(0)} '
               "→</text>")
    if ny > 1:
        mid = top + ny * size / 2
        out.append(f'<text x="{left - 12}" y="{mid:.0f}" text-anchor="middle" transform="rotate(-90 {left - 12} '
                   f'{mid:.0f})">{axis(1)} →</text>')
    out.append("</svg>")
    coverage = archive.coverage()
    return (f'<section id="map"><h2>MAP-Elites map</h2><p class="note">the best elite of each cell over '
            f"{archive.n_islands} islands (colour: the score's rank, {fmt_number(lo)} blue to "
            f"{fmt_number(hi)} yellow); "
            f"{len(best)} of {nx * ny} cells filled, {coverage:.0%} of all islands' cells; "
            f'{len(archive.elites())} elites</p>{"".join(out)}</section>')


def section_stats(view: RunView, link: Link) -> str:
    if not view.stats:
        return '<section id="stats"><h2>Proposers and operators</h2><p class="empty">no proposal yet</p></section>'
    rows = []
    for s in sorted(view.stats, key=lambda s: -s["tries"]):
        rate = s["improved"] / s["tries"] if s["tries"] else 0
        rows.append([escape(s["proposer"]), escape(s["operator"] or "—"), f'{s["tries"]:,}', f'{s["ok"]:,}',
                     f'{s["failed"]:,}', f'{s["improved"]:,}', f"{rate:.1%}", num(s["best"]),
                     "—" if s["tokens"] is None else f'{s["tokens"]:,}',
                     "—" if s["cost"] is None else f'{s["cost"]:.4f}'])
    return ('<section id="stats"><h2>Proposers and operators</h2>'
            '<p class="note">improved: valid children that scored above their parent</p>'
            + html_table(["proposer", "operator", "tries", "valid", "failed", "improved", "rate", "best score",
                          "tokens", "cost"], rows, "stats") + _calls_table(view.calls) + "</section>")


def _calls_table(calls: list[CallStats]) -> str:
    """Model calls per proposer: totals, and per call the median tokens and the latency spread."""
    if not calls:
        return ""
    rows = [[escape(c.proposer), f"{c.calls:,}", f"{c.failed:,}", f"{c.prompt_tokens:,}", f"{c.prompt_median:,.0f}",
             f"{c.completion_tokens:,}", f"{c.completion_median:,.0f}", f"{c.cost:.4f}", f"{c.latency_median:.2f}",
             f"{c.latency_p90:.2f}", f"{c.latency_max:.2f}", f"{c.tokens_per_second:.1f}"] for c in calls]
    return ('<h3>Model calls</h3><p class="note">per proposer; "per call" columns are medians; latency in seconds; '
            'out/s: tokens written per second of model time</p>'
            + html_table(["proposer", "calls", "failed", "tokens in", "in per call", "tokens out", "out per call",
                          "cost", "latency median", "p90", "max", "out/s"], rows, "calls"))


def section_failures(view: RunView, link: Link) -> str:
    if not view.failures:
        return '<section id="failures"><h2>Failures by kind</h2><p class="empty">none</p></section>'
    total = sum(n for *_, n in view.failures)
    rows = [[escape(status), f"<code>{escape(kind)}</code>", f"{n:,}", f"{n / total:.1%}"]
            for status, kind, n in view.failures[:40]]
    more = f'<p class="note">{len(view.failures) - 40} more kinds</p>' if len(view.failures) > 40 else ""
    return (f'<section id="failures"><h2>Failures by kind ({total:,})</h2>'
            + html_table(["status", "kind", "count", "share"], rows) + more + "</section>")


def section_flags(view: RunView, link: Link) -> str:
    if not view.flags:
        return '<section id="flags"><h2>Review flags</h2><p class="empty">no candidate was flagged</p></section>'
    rows = [[link(cid), "<br>".join(f"<code>{escape(str(f.get('code')))}</code> line {escape(str(f.get('line')))}: "
                                    f"{escape(str(f.get('message')))}" for f in flags)]
            for cid, flags in view.flags[:200]]
    return (f'<section id="flags"><h2>Review flags ({len(view.flags)} candidates)</h2>'
            + html_table(["candidate", "flags"], rows) + "</section>")


def promotion_rows(promotions: list[dict[str, Any]], link: Link) -> list[list[str]]:
    rows = []
    for p in promotions:
        ev = p["evidence"]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p["decided_at"] or p["requested_at"]))
        flags = "; ".join(f"{f.get('code')} line {f.get('line')}" for f in ev.get("flags", []))
        rows.append([link(p["candidate_id"]), f'<span class="st-{escape(p["status"])}">{escape(p["status"])}</span>',
                     link(ev["incumbent"]) if isinstance(ev.get("incumbent"), int) else "—",
                     escape(str(ev.get("evidence", ""))), escape(str(ev.get("summary", ""))), escape(flags) or "—",
                     escape(when), escape(p.get("actor") or ""), escape(p.get("note") or "")])
    return rows


PROMOTION_HEADER = ["candidate", "status", "incumbent", "evidence", "test", "flags", "when", "by", "note"]


def section_promotions(view: RunView, link: Link) -> str:
    if not view.promotions:
        return '<section id="promotions"><h2>Adoption gate</h2><p class="empty">no gate decision yet</p></section>'
    return (f'<section id="promotions"><h2>Adoption gate ({len(view.promotions)} decisions)</h2>'
            + html_table(PROMOTION_HEADER, promotion_rows(view.promotions, link), "promotions") + "</section>")


def section_selfimprove(view: RunView, link: Link) -> str:
    if view.selfimprove is None:
        return ""
    rows = view.generations or []
    table = []
    for r in rows:
        d = r.get("decision") or {}
        table.append([str(r.get("generation")), link(r["driver"]) if isinstance(r.get("driver"), int) else "—",
                      f'{r.get("candidates", 0)} ({r.get("failed", 0)})', num(r.get("best_train_this_generation"), 4),
                      link(r["incumbent"]) if isinstance(r.get("incumbent"), int) else "—",
                      num(r.get("train"), 4), num(r.get("validation"), 4), num(r.get("test"), 4),
                      link(d["challenger"]) if isinstance(d.get("challenger"), int) else "—",
                      "—" if d.get("effect") is None else f'{d["effect"]:+.3f} (p={d.get("p_value", math.nan):.2g})',
                      escape(str(d.get("outcome") or ("start" if r.get("generation") == 0 else "—")))])
    series = [Series(name, [(r["generation"], r[key]) for r in rows if r.get(key) is not None], colour, "line")
              for name, key, colour in (("train (incumbent)", "train", "#1f5fbf"),
                                        ("validation (incumbent)", "validation", "#d2691e"),
                                        ("test (incumbent)", "test", "#2ca02c"))]
    bounds = [(r["generation"], r["next_id"]) for r in rows if isinstance(r.get("next_id"), int)]
    dots = []
    for row in view.rows:  # every candidate improver's training meta-utility, at its generation
        generation = next((g for g, next_id in bounds if row.id < next_id), None)
        if generation is not None and row.status == "ok" and row.score is not None:
            dots.append((float(generation), row.score))
    series.insert(0, Series("candidates (train)", dots, "#bbbbcc", "dots"))
    adoptions = [r for r in rows if (r.get("decision") or {}).get("outcome") == "adopted"]
    marks = [(f'adopt #{r["decision"]["challenger"]}', float(r["generation"]), "#777") for r in adoptions]
    chart = svg_chart(series, "generation", "meta-utility", title="Meta-utility per generation", focus=False,
                      vlines=marks)
    settings = ", ".join(f"{escape(k)}={escape(str(v))}" for k, v in (view.selfimprove or {}).items()
                         if not isinstance(v, dict | list))
    return ('<section id="selfimprove"><h2>Self-improvement</h2>'
            f'<p class="note">{settings}</p>{chart}'
            f'<p>adoptions: {", ".join(link(r["decision"]["challenger"]) for r in adoptions) or "none"}</p>'
            + html_table(["gen", "driven by", "candidates (failed)", "best train this gen", "incumbent", "train",
                      "validation", "test", "challenger", "Δ validation", "outcome"], table, "generations")
            + "</section>")


SECTIONS = (section_summary, section_selfimprove, section_curves, section_holdout, section_lineage, section_map,
            section_stats, section_failures, section_flags, section_promotions)


def sections(view: RunView, link: Link = plain_link) -> str:
    return "\n".join(section(view, link) for section in SECTIONS)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d24;background:#f6f6f9}
header{background:#22243a;color:#fff;padding:12px 24px}header h1{margin:0;font-size:20px}
header a{color:#cfe0ff}main{padding:8px 24px 40px;max-width:1200px}
section{background:#fff;border:1px solid #e0e0ea;border-radius:6px;padding:8px 16px 14px;margin:14px 0}
h2{font-size:16px;margin:8px 0 10px}table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #ececf2;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f8;font-weight:600}table.kv th{width:170px;background:none}
svg.chart{max-width:100%;height:auto;font:11px sans-serif;display:block;margin:6px 0 10px}
svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#bbb}svg .ctitle{font-size:13px;font-weight:600}
pre.diff{background:#fafafa;border:1px solid #eee;padding:6px 8px;overflow:auto;font-size:12px;max-height:480px}
pre.diff .add{color:#116329;background:#e6ffec}pre.diff .del{color:#82071e;background:#ffebe9}
pre.diff .hunk{color:#6639ba}.empty,.note{color:#777}.rationale{color:#444;margin:4px 0;font-style:italic}
ol.lineage{padding-left:22px}li.step summary{cursor:pointer}.best-score{color:#1f5fbf}
.st-pending{color:#b35c00;font-weight:600}.st-promoted{color:#116329;font-weight:600}.st-rejected{color:#82071e}
.st-refused{color:#777}code{font-size:12px}
"""


def render(view: RunView, link: Link = plain_link, title: str | None = None) -> str:
    """The whole report page for ``view``."""
    name = title or view.run_dir.name
    if link is plain_link:
        steps = {c.id for c in view.lineage}

        def link(cid: int) -> str:
            return f'<a href="#step-{cid}">#{cid}</a>' if cid in steps else f"#{cid}"
    made = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(view.made_at))
    nav = " · ".join(f'<a href="#{s}">{s}</a>' for s in ("summary", "curves", "holdout", "lineage", "map",
                                                         "stats", "failures", "flags", "promotions"))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>rsi report: {escape(name)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>rsi report: {escape(name)}</h1><div>{nav} · made {made}</div></header>"
            f"<main>{sections(view, link)}</main></body></html>\n")


def report_html(run_dir: str | Path) -> str:
    """The report page of a run folder, as a string."""
    with open_run(run_dir) as results:
        return render(collect(results))


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default RUN_DIR/report.html); return its path."""
    path = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    text = report_html(run_dir)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def write_after_run(run_dir: str | Path) -> Path | None:
    """``write_report`` at the end of ``rsi run``: a report that cannot be written is logged (``rsi.report``
    logger), never a reason to lose the run's summary."""
    try:
        return write_report(run_dir)
    except Exception as exc:  # the run's results are in rsi.db whatever happens here
        logging.getLogger("rsi.report").warning("%s: report.html not written: %s", run_dir, exc)
        return None
