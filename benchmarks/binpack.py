"""Bin packing benchmark: held-out excess reached after fixed evaluation budgets.

Side by side, in one run: rsi's seed improver, random search over the same operators (no archive,
no credit) and plain hill climbing; several seeds each; then rsi trained on OR-like instances and
scored on OR3. Prints median and spread of the FunSearch test-set excess at each budget.

    .venv/bin/python benchmarks/binpack.py                      # the README table
    .venv/bin/python benchmarks/binpack.py --budgets 200,500 --seeds 2   # a quick look

Test sets are used here for reporting only: selection inside each run sees generated instances.

Each run is ``rsi.Run.create(...).execute()`` (``rsi.Run.resume`` for a run an interrupted benchmark
left in ``--work``), one thread per run in this process: evaluations happen in each run's own
sandboxed worker, so the threads share the interpreter only for proposing. Ctrl-C stops every
run cleanly; the same command with the same ``--work`` continues them.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import rsi  # noqa: E402
from rsi.program import fingerprint  # noqa: E402

METHODS = {
    "rsi (seed improver)": None,
    "random search": ROOT / "benchmarks/improvers/random_search.py",
    "hill climbing": ROOT / "benchmarks/improvers/hill_climb.py",
    "hand-written improver": ROOT / "benchmarks/improvers/hand_written.py",
}
MEMORY: dict[str, Path] = {}  # methods that hand the improver a memory file
PUBLISHED = {"weibull5k_excess_pct": (3.98, 0.68), "or3_excess_pct": (5.37, 3.11)}


def _load_holdout(problem: Path):
    spec = importlib.util.spec_from_file_location(f"holdout_{problem.name}", problem / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.evaluate_holdout


class _Interrupts:
    """Ctrl-C / SIGTERM stop every run in progress cleanly (resumable with the same --work)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[rsi.Run] = set()
        self.stopped = False

    def __enter__(self) -> _Interrupts:
        self.previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopped = True
        with self.lock:
            for run in self.running:
                run.search.stop(rsi.StopReason.INTERRUPTED)

    def add(self, run: rsi.Run) -> None:
        with self.lock:
            self.running.add(run)
            if self.stopped:
                run.search.stop(rsi.StopReason.INTERRUPTED)

    def remove(self, run: rsi.Run) -> None:
        with self.lock:
            self.running.discard(run)


def _run(problem: Path, improver: Path | None, seed: int, budget: int, out: Path, interrupts: _Interrupts,
         memory: Path | None = None) -> float:
    """One rsi run in this process (the runs of a benchmark share it, one thread each: evaluations
    happen in each run's own worker processes, so only proposing competes for the interpreter)."""
    start = time.monotonic()
    if (out / "rsi.db").exists():  # an earlier, interrupted benchmark: continue its run
        run = rsi.Run.resume(out, rsi.Overrides(budget=budget, time=100000))
    else:
        overrides = rsi.Overrides(budget=budget, time=100000, seed=seed, workers=1,
                                  memory=str(memory) if memory else None)
        run = rsi.Run.create(problem, out, overrides, improver)
    interrupts.add(run)
    try:
        summary = run.execute()
    finally:
        interrupts.remove(run)
        run.search.close()
    if summary.stop_reason is rsi.StopReason.INTERRUPTED:
        raise SystemExit(f"interrupted: run the benchmark again with --work {out.parent} to continue")
    if summary.stop_reason is not rsi.StopReason.BUDGET:
        print(f"  note: {out.name} stopped early: {summary.stop_reason} after {summary.evaluations} evaluations",
              file=sys.stderr)
    return time.monotonic() - start


def _best_within(out: Path, n: int):
    """Best valid candidate among the first n evaluations (ids are in evaluation order with 1 worker)."""
    with rsi.open_run(out) as results:
        evaluated = results.candidates("ok", "error", "timeout")[:n]
    valid = [c for c in evaluated if c.status == "ok"]
    return max(valid, key=lambda c: (c.score, -c.id))


def _best(out: Path):
    with rsi.open_run(out) as results:
        return results.best()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f}  [{min(values):.2f}..{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="500,1000,2000", help="comma-separated evaluation budgets")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--baseline-seeds", type=int,
                        help="seeds for random search and hill climbing (default --seeds)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one worker each)")
    parser.add_argument("--methods", default=",".join(METHODS), help="subset of: " + ", ".join(METHODS))
    parser.add_argument("--or-budget", type=int, default=2000, help="budget of the OR-trained rsi runs (0: skip)")
    parser.add_argument("--work", type=Path, help="folder for the runs (reused: interrupted runs are resumed)")
    parser.add_argument("--improver", action="append", default=[], metavar="NAME=FILE",
                        help="one more method: an improver file (e.g. a self-improvement run's best_improver.py)")
    parser.add_argument("--memory", metavar="FILE", help="one more method: the seed improver given this memory file "
                        "(rsi memory learn), e.g. one learned on the self-improvement suite's training problems")
    args = parser.parse_args()
    for item in args.improver:
        name, _, file = item.partition("=")
        if not file or not Path(file).is_file():
            raise SystemExit(f"--improver {item}: give NAME=FILE with an existing improver file")
        METHODS[name] = Path(file).resolve()
        args.methods += f",{name}"
    if args.memory:
        METHODS["rsi + memory"] = None
        MEMORY["rsi + memory"] = Path(args.memory).resolve()
        args.methods += ",rsi + memory"
    budgets = sorted(int(b) for b in args.budgets.split(","))
    methods = [m for m in METHODS if m in args.methods.split(",")]
    seeds = list(range(1, args.seeds + 1))
    weibull, orlike = ROOT / "examples/binpack", ROOT / "examples/binpack_or"
    holdout = {weibull: _load_holdout(weibull), orlike: _load_holdout(orlike)}
    cache: dict[str, dict] = {}

    def held_out(problem: Path, source: str) -> dict:
        key = fingerprint(source)
        if key not in cache:
            with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
                handle.write(source)
            cache[key] = holdout[problem](handle.name)
            Path(handle.name).unlink()
        return cache[key]

    baseline_seeds = seeds[: args.baseline_seeds] if args.baseline_seeds else seeds
    jobs = [(weibull, m, s, budgets[-1]) for m in methods
            for s in (seeds if m == "rsi (seed improver)" else baseline_seeds)]
    if args.or_budget:
        jobs += [(orlike, "rsi (seed improver)", s, args.or_budget) for s in seeds]
    work = args.work or Path(tempfile.mkdtemp(prefix="rsi-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    print(f"{len(jobs)} runs, {args.jobs} at a time, in {work}", file=sys.stderr)
    interrupts = _Interrupts()
    # rsi's registries import their plug-ins on first use, and two threads doing that at once
    # fail (KeyError in Registry.get): load them here, before the runs' threads start.
    for name in rsi.load_problem(weibull).settings.run.proposers:
        rsi.proposers.get(name)
    rsi.executors.get(rsi.load_problem(weibull).settings.run.executor)

    def job(item):
        problem, method, seed, budget = item
        slug = "".join(c if c.isalnum() else "-" for c in method.replace("rsi (seed improver)", "rsi")).strip("-")
        out = work / f"{problem.name}-{slug}-{seed}"
        seconds = _run(problem, METHODS[method], seed, budget, out, interrupts, MEMORY.get(method))
        print(f"  done {problem.name} {method} seed {seed} in {seconds:.0f}s", file=sys.stderr)
        return item, out, seconds

    with interrupts, ThreadPoolExecutor(args.jobs) as pool:
        finished = list(pool.map(job, jobs))
    total = time.monotonic() - start

    print(f"\nWeibull 5k test excess % (FunSearch test set; Best Fit 3.98, FunSearch 0.68), "
          f"{len(seeds)} seeds for rsi, {len(baseline_seeds)} for the baselines: median [min..max]")
    print(f"{'method':<22}" + "".join(f"{f'{b} evals':>26}" for b in budgets)
          + f"{'per-seed at ' + str(budgets[-1]):>28}")
    for method in methods:
        row, last = f"{method:<22}", []
        for b in budgets:
            values = []
            for (problem, m, _, _), out, _ in finished:
                if problem == weibull and m == method:
                    values.append(held_out(weibull, _best_within(out, b).source)["weibull5k_excess_pct"])
            row += f"{_spread(values):>26}"
            last = values
        print(row + "   " + " ".join(f"{v:.2f}" for v in last))
    or_runs = [(seed, out) for (problem, _, seed, _), out, _ in finished if problem == orlike]
    if or_runs:
        values = [held_out(orlike, _best(out).source)["or3_excess_pct"] for _, out in or_runs]
        print(f"\nOR3 test excess % after {args.or_budget} evals, trained on OR-like instances "
              f"(Best Fit 5.37, FunSearch 3.11): {_spread(values)}   per seed " + " ".join(f"{v:.2f}" for v in values))
    seconds = [s for _, _, s in finished]
    print(f"\nwall time {total / 60:.1f} min for {len(jobs)} runs ({args.jobs} in parallel); "
          f"median run {statistics.median(seconds):.0f}s")


if __name__ == "__main__":
    main()
