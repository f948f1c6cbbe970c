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
any other improver (e.g. a self-improvement run's best_improver.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

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


def table(rows: dict[str, MetaResult], budget: int, base: np.ndarray, half_base: float | None) -> list[str]:
    lines = [f"\n### inner budget {budget}: {len(base)} paired units (test problems x seeds)\n",
             "| improver | mean gain | Δ vs seed (95% CI) | relative (95% CI) | wins / losses (sign p) | CPU s |",
             "|---|---|---|---|---|---|"]
    for name, result in rows.items():
        gains = np.array(result.gains)
        if not result.ok:
            lines.append(f"| {name} | failed: {result.error} | | | | |")
            continue
        if name == "seed improver":
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
    parser.add_argument("--memory", metavar="FILE", help="also the seed improver given this memory file")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=FILE", help="another improver")
    parser.add_argument("--only", help="comma-separated row names to run (default all)")
    args = parser.parse_args()
    sources = improvers(args.extra)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")} | {"seed improver"}
        sources = {k: v for k, v in sources.items() if k in wanted}
    seeds = list(range(7001, 7001 + args.seeds))
    out = [f"## Improvers on the test problems ({', '.join(p.name for p in load_suite('test'))}), "
           f"{args.seeds} seeds each"]
    for budget in [int(b) for b in args.budgets.split(",")]:
        found, seconds = measure(sources, budget, seeds, args.workers)
        if args.memory:
            with_memory, more = measure({"seed improver + memory": SEED_IMPROVER.read_text()}, budget, seeds,
                                        args.workers, load_memory(args.memory))
            found.update(with_memory)
            seconds += more
        half, _ = measure({"seed improver": SEED_IMPROVER.read_text()}, max(1, budget // 2), seeds, args.workers)
        base = np.array(found["seed improver"].gains)
        out += table(found, budget, base, half["seed improver"].utility)
        out.append(f"time: {seconds:.0f} s wall for {len(found)} improvers x {len(base)} units")
        print("\n".join(out), flush=True)
        out = []
    return 0


if __name__ == "__main__":
    sys.exit(main())
