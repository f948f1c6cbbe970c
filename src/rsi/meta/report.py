"""The self-improvement report: the generation table and the curves; the test measurements.

This module is the only place in the self-improvement loop that loads test problems
(``measure_test``), and it is called only after a generation's decision is recorded: the test
meta-utility is shown, never used.

    generations.md    the table, as printed
    generations.json  the same rows, with every decision's evidence summary
    curves.svg        incumbent's training / validation / test meta-utility per generation, every
                      candidate's training meta-utility (grey), adoptions (dashed lines)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

from .metautil import MetaEvaluator, MetaResult


def measure_test(sources: dict[Hashable, str], config, scratch: Path,
                 stop: Callable[[], bool] | None = None, executor: str = "local",
                 address: str | None = None, memory: Mapping[str, Any] | None = None) -> dict[Hashable, MetaResult]:
    """Test meta-utility of each improver (reporting only; never passed to a decision), given the
    run's memory if it has one (learned on training problems only)."""
    try:
        with MetaEvaluator(config.suite("test"), config.budget, config.workers, config.limits, scratch,
                           allow_test=True, isolation=config.isolation, executor=executor, address=address,
                           memory=memory) as meta:
            return meta.measure(sources, meta.units("test", config.seeds_of("test")), stop=stop)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


HEADER = ("| gen | driven by | candidates (failed) | best train this gen | incumbent | train | validation | test "
          "| challenger | Δ validation (sign p) | adopted? |")


def row_line(row: dict[str, Any]) -> str:
    """One generation: the incumbent after its decision, and the decision (Δ: challenger minus
    incumbent, paired over validation units, as the gate tested it)."""
    decision = row.get("decision") or {}
    outcome = decision.get("outcome")
    if row["generation"] == 0:
        challenger, delta, adopted = "—", "—", "(start)"
    elif not decision.get("challenger"):
        challenger, delta, adopted = "none beat the incumbent on training", "—", "no"
    else:
        challenger = f"#{decision['challenger']} ({_num(decision.get('train'))} train)" if decision.get(
            "train") is not None else f"#{decision['challenger']}"
        effect, p = decision.get("effect"), decision.get("p_value")
        delta = f"{effect:+.3f} (p={p:.2g})" if effect is not None and p is not None else "—"
        words = {"adopted": "yes", "pending": "waits for approval", "refused": "no"}
        adopted = words.get(outcome or "", outcome or "no")
    driver = "—" if row.get("driver") is None else f"#{row['driver']}"
    return (f"| {row['generation']} | {driver} | {row['candidates']} ({row['failed']}) "
            f"| {_num(row['best_train_this_generation'])} | #{row['incumbent']} | {_num(row['train'])} "
            f"| {_num(row['validation'])} | {_num(row['test'])} | {challenger} | {delta} | {adopted} |")


def table(rows: list[dict[str, Any]]) -> str:
    lines = [HEADER, "|" + "|".join("---" for _ in range(HEADER.count("|") - 1)) + "|"]
    lines += [row_line(row) for row in rows]
    return "\n".join(lines) + "\n"


def write(out: Path, rows: list[dict[str, Any]], points: list[tuple[int, float]]) -> None:
    out = Path(out)
    text = ["# Self-improvement: generations", "",
            "Meta-utility = mean normalised gain (0 = the suite's seed programs, 1 = their references) of the "
            "best program found by an rsi search driven by the improver; train / validation / test are the "
            "incumbent's (test: reporting only). Δval is the paired validation difference the gate tested.", "",
            table(rows)]
    (out / "generations.md").write_text("\n".join(text))
    (out / "generations.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "curves.svg").write_text(svg(rows, points))


def svg(rows: list[dict[str, Any]], points: list[tuple[int, float]], width: int = 720, height: int = 400) -> str:
    """A plain SVG line chart (no plotting library needed)."""
    left, right, top, bottom = 60, 150, 30, 50
    series = {
        "train (incumbent)": ("#1f77b4", [(r["generation"], r["train"]) for r in rows]),
        "validation (incumbent)": ("#ff7f0e", [(r["generation"], r["validation"]) for r in rows]),
        "test (incumbent)": ("#2ca02c", [(r["generation"], r["test"]) for r in rows]),
    }
    values = [v for _, pts in series.values() for _, v in pts if v is not None] + [v for _, v in points]
    last = max([r["generation"] for r in rows] + [g for g, _ in points] + [1])
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def x(g: float) -> float:
        return left + (width - left - right) * g / last

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - lo) / (hi - lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="18" font-size="14">Meta-utility per generation</text>']
    for i in range(6):  # horizontal grid and labels
        v = lo + (hi - lo) * i / 5
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.3f}</text>')
    for g in range(last + 1):
        parts.append(f'<text x="{x(g):.1f}" y="{height - bottom + 18}" text-anchor="middle">{g}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 12}" text-anchor="middle">generation</text>')
    for r in rows:
        decision = r.get("decision") or {}
        if decision.get("outcome") == "adopted":
            parts.append(f'<line x1="{x(r["generation"]):.1f}" x2="{x(r["generation"]):.1f}" y1="{top}" '
                         f'y2="{height - bottom}" stroke="#999" stroke-dasharray="4 3"/>')
            parts.append(f'<text x="{x(r["generation"]) + 3:.1f}" y="{top + 12}" fill="#666">'
                         f'adopt #{decision["challenger"]}</text>')
    for g, v in points:
        parts.append(f'<circle cx="{x(g):.1f}" cy="{y(v):.1f}" r="2.5" fill="#bbb"/>')
    legend_y = top + 10
    for name, (colour, pts) in series.items():
        known = [(g, v) for g, v in pts if v is not None]
        if len(known) > 1:
            path = " ".join(f"{'M' if i == 0 else 'L'}{x(g):.1f},{y(v):.1f}" for i, (g, v) in enumerate(known))
            parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for g, v in known:
            parts.append(f'<circle cx="{x(g):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}"/>')
        parts.append(f'<line x1="{width - right + 10}" x2="{width - right + 30}" y1="{legend_y}" y2="{legend_y}" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{width - right + 35}" y="{legend_y + 4}">{name}</text>')
        legend_y += 18
    parts.append(f'<circle cx="{width - right + 20}" cy="{legend_y}" r="2.5" fill="#bbb"/>')
    parts.append(f'<text x="{width - right + 35}" y="{legend_y + 4}">candidates (train)</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
