"""What benchmarks/circle_packing.py and benchmarks/tinylm.py share: rsi's seed improver against
random search over the same operators, several seeds each, run side by side in one process.

Each run is ``rsi.Run.create(...).execute()`` with one worker (so candidate ids are in evaluation
order and "the best within n evaluations" is well defined), one thread per run: evaluations happen
in each run's own sandboxed worker. A run left in ``--work`` by an interrupted benchmark is resumed.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import rsi  # noqa: E402

METHODS = {"rsi (seed improver)": None, "random search": ROOT / "benchmarks/improvers/random_search.py"}


@dataclass
class Finished:
    method: str
    seed: int
    out: Path
    seconds: float


def load() -> str:
    """The machine's load averages, as uptime prints them."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_all(problem: Path, work: Path, seeds: list[int], budget: int, jobs: int) -> list[Finished]:
    """Every method x seed on ``problem`` for ``budget`` evaluations, ``jobs`` runs at a time."""
    for name in rsi.load_problem(problem).settings.run.proposers:  # registries load plug-ins lazily:
        rsi.proposers.get(name)  # not from two threads at once
    rsi.executors.get(rsi.load_problem(problem).settings.run.executor)
    lock, running = threading.Lock(), []

    def job(item: tuple[str, int]) -> Finished:
        method, seed = item
        out = work / f"{method.split()[0]}-{seed}"
        start = time.monotonic()
        if (out / "rsi.db").exists():
            run = rsi.Run.resume(out, rsi.Overrides(budget=budget, time=10**6))
        else:
            run = rsi.Run.create(problem, out, rsi.Overrides(budget=budget, time=10**6, seed=seed, workers=1),
                                 METHODS[method])
        with lock:
            running.append(run)
        try:
            summary = run.execute()
        finally:
            run.search.close()
        if summary.stop_reason is not rsi.StopReason.BUDGET:
            print(f"  note: {out.name} stopped: {summary.stop_reason} after {summary.evaluations} evaluations",
                  file=sys.stderr)
        seconds = time.monotonic() - start
        print(f"  done {method} seed {seed} in {seconds:.0f}s", file=sys.stderr)
        return Finished(method, seed, out, seconds)

    items = [(m, s) for m in METHODS for s in seeds]
    try:
        with ThreadPoolExecutor(jobs) as pool:
            return list(pool.map(job, items))
    except KeyboardInterrupt:
        with lock:
            for run in running:
                run.search.stop(rsi.StopReason.INTERRUPTED)
        raise SystemExit(f"interrupted: run again with --work {work} to continue") from None


def best_within(out: Path, n: int):
    """The best valid candidate among the first ``n`` evaluations (None if none is valid)."""
    with rsi.open_run(out) as results:
        evaluated = results.candidates("ok", "error", "timeout")[:n]
    valid = [c for c in evaluated if c.status == "ok"]
    return max(valid, key=lambda c: (c.score, -c.id)) if valid else None


def winning_edits(out: Path, candidate_id: int) -> list[str]:
    """The rationales on the path from the seed to ``candidate_id`` (what its ancestors changed)."""
    with rsi.open_run(out) as results:
        return [c.rationale or "" for c in results.lineage(candidate_id)[1:]]


def spread(values: list[float], digits: int = 4) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}..{max(values):.{digits}f}]"


def table(finished: list[Finished], budgets: list[int], value: Callable[[Finished, int], float],
          digits: int = 4) -> list[str]:
    """One row per method: median [min..max] over seeds of ``value`` at each budget, then per seed."""
    width = 12 + 2 * (digits + 4)
    lines = [f"{'method':<22}" + "".join(f"{f'{b} evals':>{width}}" for b in budgets)
             + f"   per seed at {budgets[-1]}"]
    for method in METHODS:
        runs = [f for f in finished if f.method == method]
        row, last = f"{method:<22}", []
        for b in budgets:
            last = [value(f, b) for f in runs]
            row += f"{spread(last, digits):>{width}}"
        lines.append(row + "   " + ", ".join(f"{v:.{digits}f}" for v in last))
    return lines
