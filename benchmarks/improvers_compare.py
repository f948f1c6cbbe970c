"""Improvers side by side on the self-improvement suite's TEST problems, at one or more inner budgets.

Every improver drives rsi searches of the same budget on every test problem with the same seeds
(common random numbers: unit (problem, seed) is the same search task for all), and the normalised
gains of the best programs (re-scored by trusted code) are compared unit by unit with the seed
improver: mean difference, relative difference and their 95% bootstrap intervals, sign test.

    .venv/bin/python benchmarks/improvers_compare.py --budgets 100 --seeds 10
    .venv/bin/python benchmarks/improvers_compare.py --budgets 100,500 --seeds 6 \\
        --memory runs/memory-train.json --extra mine=my_improver.py

Rows: the seed improver; the hand-written one (benchmarks/improvers/hand_written.py, an hour of a
person's design); the composed improver with CMA-ES tuning moves; hill climbing and random search
(benchmarks/improvers/); with ``--memory FILE`` the seed improver given that memory (learn it from
the TRAINING problems: ``rsi memory learn --suite train --out FILE``); with ``--extra NAME=FILE``
any other improver (e.g. a self-improvement run's best_improver.py), given ``--extra-memory FILE``
if set (e.g. that run's memory.json). With ``--half``, every row is also measured at half the
budget and compared, unit by unit, with the seed improver at the full budget (the goal's "the
seed's gain with half the evaluations").

    .venv/bin/python benchmarks/improvers_compare.py --budgets 100 --seeds 8 --only none --half \
        --extra adopted=runs/si/best_improver.py --extra-memory runs/si/memory.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from selfimprove import bootstrap, sign_test  # noqa: E402

from rsi.improvers import SEED_IMPROVER  # noqa: E402
from rsi.improvers.components import COMPOSED_IMPROVER  # noqa: E402
from rsi.memory import load_memory  # noqa: E402
from rsi.meta.metautil import MetaEvaluator, MetaResult  # noqa: E402
from rsi.meta.suite import load_suite  # noqa: E402

TUNING = '"tuning": {"use": "cma", "every": 40, "children": 8, "target": "best"}'


def improvers(extra: list[str]) -> dict[str, str]:
    found = {
        "seed improver": SEED_IMPROVER.read_text(),
        "hand-written": (ROOT / "benchmarks" / "improvers" / "hand_written.py").read_text(),
        "composed + CMA-ES tuning": COMPOSED_IMPROVER.read_text().replace('"tuning": {"use": "none"}', TUNING),
        "hill climbing": (ROOT / "benchmarks" / "improvers" / "hill_climb.py").read_text(),
        "random search": (ROOT / "benchmarks" / "improvers" / "random_search.py").read_text(),
    }
    for item in extra:
        name, _, file = item.partition("=")
        if not file:
            raise SystemExit(f"--extra {item}: give NAME=FILE")
        found[name] = Path(file).read_text()
    return found


def measure(sources: dict[str, str], budget: int, seeds: list[int], workers: int, memory=None
            ) -> tuple[dict[str, MetaResult], float]:
    started = time.monotonic()
    with MetaEvaluator(load_suite("test"), budget, workers, allow_test=True, memory=memory) as meta:
        units = meta.units("test", seeds)
        found = meta.measure(sources, units, on_result=lambda r: print(f"  @{budget} {r.key}: {r.summary()}",
                                                                       file=sys.stderr, flush=True))
    return found, time.monotonic() - started


def table(rows: dict[str, MetaResult], budget: int, base: np.ndarray, half_base: float | None,
          title: str | None = None, base_row: str | None = "seed improver") -> list[str]:
    lines = [f"\n### {title or f'inner budget {budget}'}: {len(base)} paired units (test problems x seeds)\n",
             "| improver | mean gain | Δ vs seed (95% CI) | relative (95% CI) | wins / losses (sign p) | CPU s |",
             "|---|---|---|---|---|---|"]
    for name, result in rows.items():
        gains = np.array(result.gains)
        if not result.ok:
            lines.append(f"| {name} | failed: {result.error} | | | | |")
            continue
        if name == base_row:
            lines.append(f"| {name} | {gains.mean():.4f} | — | — | — | {result.cpu_seconds:.0f} |")
            continue
        (lo, hi), rel = bootstrap(gains, base)
        wins, losses, p = sign_test(gains - base)
        relative = (gains.mean() - base.mean()) / base.mean() if base.mean() > 0 else float("nan")
        rel_text = f"{relative:+.1%} ({rel[0]:+.1%}..{rel[1]:+.1%})" if rel is not None else f"{relative:+.1%}"
        lines.append(f"| {name} | {gains.mean():.4f} | {gains.mean() - base.mean():+.4f} ({lo:+.4f}..{hi:+.4f}) | "
                     f"{rel_text} | {wins} / {losses} (p={p:.2g}) | {result.cpu_seconds:.0f} |")
    if half_base is not None:
        lines.append(f"\nthe seed improver at budget {budget // 2}: mean gain {half_base:.4f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="100", help="inner budgets, comma-separated (default 100)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per test problem (default 10)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory", metavar="FILE", action="append", default=[],
                        help="also the seed improver given this memory file (repeat: one row per file)")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=FILE", help="another improver")
    parser.add_argument("--extra-memory", metavar="FILE", help="the memory the --extra improvers are given")
    parser.add_argument("--only", help="comma-separated row names to run (default all; 'none': the seed and --extra)")
    parser.add_argument("--half", action="store_true",
                        help="also every row at half the budget, against the seed improver at the full budget")
    args = parser.parse_args()
    sources = improvers([])
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")} | {"seed improver"}
        sources = {k: v for k, v in sources.items() if k in wanted}
    extra = {k: v for k, v in improvers(args.extra).items() if k not in improvers([])}
    # rows measured together share a memory (a meta-evaluator hands the same one to every search)
    groups: list[tuple[Any, dict[str, str]]] = [(None, sources)]
    for file in args.memory:
        name = "seed improver + memory" + (f" {Path(file).name}" if len(args.memory) > 1 else "")
        groups.append((load_memory(file), {name: SEED_IMPROVER.read_text()}))
    if extra:
        groups.append((load_memory(args.extra_memory) if args.extra_memory else None, extra))
    seeds = list(range(7001, 7001 + args.seeds))
    out = [f"## Improvers on the test problems ({', '.join(p.name for p in load_suite('test'))}), "
           f"{args.seeds} seeds each"]

    def measure_all(budget: int) -> tuple[dict[str, MetaResult], float]:
        found, seconds = {}, 0.0
        for memory, rows in groups:
            some, more = measure(rows, budget, seeds, args.workers, memory)
            found.update(some)
            seconds += more
        return found, seconds

    for budget in [int(b) for b in args.budgets.split(",")]:
        found, seconds = measure_all(budget)
        base = np.array(found["seed improver"].gains)
        if args.half:
            half, more = measure_all(max(1, budget // 2))
            out += table(found, budget, base, None)
            out += table(half, budget // 2, base, None, base_row=None,
                         title=f"at half the budget ({budget // 2}) against the seed improver at {budget}")
            seconds += more
        else:
            half, _ = measure({"seed improver": SEED_IMPROVER.read_text()}, max(1, budget // 2), seeds, args.workers)
            out += table(found, budget, base, half["seed improver"].utility)
        out.append(f"time: {seconds:.0f} s wall for {len(found)} improvers x {len(base)} units, load {uptime()}")
        print("\n".join(out), flush=True)
        out = []
    return 0


def uptime() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


if __name__ == "__main__":
    sys.exit(main())
