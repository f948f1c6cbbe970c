"""Tiny language model benchmark: validation bits per character of the training script's best
version after fixed evaluation budgets, with the noise of one evaluation measured first.

In one run: (1) the seed program evaluated ``--repeats`` times (each evaluation draws its own
initial weights and batches): its spread is what counts as noise, and becomes the runs' noise
margin ([archive] min_improvement: a child displaces an elite only when it beats it by more);
(2) rsi's seed improver and random search over the same operators, several seeds each;
(3) the best program of each run evaluated again ``--rescore`` times, against the seed's mean.

    .venv/bin/python benchmarks/tinylm.py                                   # the README table (short)
    .venv/bin/python benchmarks/tinylm.py --train-seconds 12 --budgets 30,60 --repeats 8   # long setting

``--train-seconds`` is the CPU budget the script is told (examples/tinylm uses 12); the sandbox's
cap is that plus 8 seconds. The runs use a copy of examples/tinylm with that budget in --work.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from searchbench import ROOT, best_within, load, run_all, spread, table, winning_edits

import rsi
from rsi.executors import evaluation_limits
from rsi.sandbox.pool import EvaluatorPool
from rsi.sandbox.types import EvalTask


def problem_copy(work: Path, train_seconds: float, margin: float | None) -> Path:
    """examples/tinylm with the given training budget (and noise margin) written into it."""
    folder = work / f"tinylm-{train_seconds:g}s"
    if not folder.exists():
        shutil.copytree(ROOT / "examples/tinylm", folder, ignore=shutil.ignore_patterns("__pycache__"))
    evaluate = folder / "evaluate.py"
    evaluate.write_text(re.sub(r"(?m)^TRAIN_SECONDS = [0-9.]+", f"TRAIN_SECONDS = {train_seconds!r}",
                               evaluate.read_text()))
    toml = folder / "problem.toml"
    text = re.sub(r"(?m)^cpu_seconds = [0-9.]+", f"cpu_seconds = {train_seconds + 8:g}", toml.read_text())
    if margin is not None:
        text = re.sub(r"(?m)^min_improvement = [0-9.e-]+", f"min_improvement = {margin:.4f}", text)
    toml.write_text(text)
    return folder


def repeat(problem: Path, source: str, seeds: list[int], workers: int = 2) -> list[float]:
    """Validation bpc of ``source`` evaluated once per seed, in the real sandbox."""
    settings = rsi.load_problem(problem).settings
    with EvaluatorPool(problem / "evaluate.py", workers, evaluation_limits(settings),
                       Path(tempfile.mkdtemp(prefix="rsi-tinylm-"))) as pool:
        waiting, results = list(enumerate(seeds)), []
        while len(results) < len(seeds):
            while waiting and pool.in_flight < pool.workers:
                i, seed = waiting.pop(0)
                pool.submit(EvalTask(candidate_id=i + 1, source=source, seed=seed, ticket=i))
            results += pool.collect(timeout=1.0)
    bad = [r for r in results if r.status != "ok"]
    if bad:
        raise SystemExit(f"an evaluation failed: {bad[0].error}")
    return [r.metrics["bpc"] for r in sorted(results, key=lambda r: r.ticket)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="5,10", help="comma-separated evaluation budgets")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5, help="evaluations of the seed program (its spread)")
    parser.add_argument("--rescore", type=int, default=2, help="evaluations again of each run's best")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one worker each)")
    parser.add_argument("--work", type=Path, help="folder for the runs (reused: interrupted runs are resumed)")
    args = parser.parse_args()
    budgets = sorted(int(b) for b in args.budgets.split(","))
    work = args.work or Path(tempfile.mkdtemp(prefix="rsi-tinylm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load before: {load()}")
    start = time.monotonic()
    problem = problem_copy(work, args.train_seconds, None)
    seed_source = (problem / "initial.py").read_text()
    seed_bpc = repeat(problem, seed_source, list(range(1000, 1000 + args.repeats)))
    margin = max(seed_bpc) - min(seed_bpc)
    problem = problem_copy(work, args.train_seconds, margin)
    print(f"\nseed program, {args.repeats} evaluations of {args.train_seconds:g} CPU s: validation bpc "
          f"{spread(seed_bpc, 3)}, mean {statistics.mean(seed_bpc):.3f}, sd {statistics.stdev(seed_bpc):.3f}; "
          f"noise margin (max - min) {margin:.3f} bits")
    finished = run_all(problem, work / "runs", list(range(1, args.seeds + 1)), budgets[-1], args.jobs)

    def value(f, b):
        best = best_within(f.out, b)
        return -best.score if best else float("nan")

    print(f"\nvalidation bits per character of the best program as selected (lower is better), "
          f"{args.seeds} seeds: median [min..max]")
    print("\n".join(table(finished, budgets, value, digits=3)))
    print(f"\neach run's best at {budgets[-1]} evaluations, evaluated {args.rescore} times more "
          f"(seed mean {statistics.mean(seed_bpc):.3f}):")
    for f in finished:
        best = best_within(f.out, budgets[-1])
        if best is None or best.id == 1:
            print(f"  {f.method} seed {f.seed}: the seed program itself")
            continue
        again = repeat(problem, best.source, list(range(2000, 2000 + args.rescore)))
        gain = statistics.mean(seed_bpc) - statistics.mean(again)
        print(f"  {f.method} seed {f.seed}: selected {-best.score:.3f}, again {', '.join(f'{v:.3f}' for v in again)}"
              f" (gain {gain:+.3f}, {'beyond' if gain > margin else 'within'} the noise margin) by: "
              + "; ".join(winning_edits(f.out, best.id)))
    print(f"\nwall time {(time.monotonic() - start) / 60:.1f} min; load after: {load()}")


if __name__ == "__main__":
    main()
