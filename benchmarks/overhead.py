"""Per-candidate overhead of isolated evaluation, for a trivial evaluator.

    .venv/bin/python benchmarks/overhead.py [--n 200] [--n-fresh 40] [--scratch DIR]

Compares, per candidate (write the program, evaluate it, get the metrics back):
  - the rsi pool: one warm worker that forks a child per candidate, all limits applied;
  - a fresh interpreter per candidate (`python -c` importing numpy and the evaluator);
  - a plain in-process call, the floor.
The evaluator reads the program file and returns {"combined_score": 1.0}.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rsi.sandbox.pool import EvaluatorPool
from rsi.sandbox.types import EvalTask, Limits

EVALUATOR = """\
def evaluate(program_path):
    with open(program_path) as f:
        f.read()
    return {"combined_score": 1.0}
"""
PROGRAM = "def solve(x):\n    return x + 1\n"
FRESH = """\
import importlib.util, sys
import numpy
spec = importlib.util.spec_from_file_location("evaluator", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(module.evaluate(sys.argv[2])["combined_score"])
"""


def time_pool(evaluator: Path, scratch: Path, n: int, warmup: int) -> list[float]:
    times = []
    with EvaluatorPool(evaluator, 1, Limits(), scratch) as pool:
        for i in range(warmup + n):
            t0 = time.perf_counter()
            pool.submit(EvalTask(candidate_id=i, source=PROGRAM, seed=i))
            results = []
            while not results:
                results = pool.collect(timeout=10.0)
            elapsed = time.perf_counter() - t0
            if results[0].status != "ok":
                raise SystemExit(f"pool evaluation failed: {results[0].error}")
            if i >= warmup:
                times.append(elapsed)
    return times


def time_fresh(evaluator: Path, folder: Path, n: int, warmup: int) -> list[float]:
    times = []
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for i in range(warmup + n):
        t0 = time.perf_counter()
        program = folder / f"{i}.py"
        program.write_text(PROGRAM)
        out = subprocess.run([sys.executable, "-c", FRESH, str(evaluator), str(program)],
                             capture_output=True, text=True, env=env, check=True).stdout
        float(out)
        program.unlink()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def time_in_process(evaluator: Path, folder: Path, n: int, warmup: int) -> list[float]:
    namespace: dict = {}
    exec(compile(evaluator.read_text(), str(evaluator), "exec"), namespace)
    evaluate = namespace["evaluate"]
    times = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        program = folder / f"{i}.py"
        program.write_text(PROGRAM)
        evaluate(str(program))["combined_score"]
        program.unlink()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def quantiles(times: list[float]) -> tuple[float, float]:
    ms = sorted(t * 1000 for t in times)
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.9 * len(ms)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="candidates timed (pool, in-process)")
    parser.add_argument("--n-fresh", type=int, default=40, help="candidates timed with fresh interpreters")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--scratch", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rsi-overhead-", dir=args.scratch) as tmp:
        folder = Path(tmp)
        evaluator = folder / "evaluate.py"
        evaluator.write_text(EVALUATOR)
        rows = [
            ("rsi pool (1 worker, fork per candidate)", args.n,
             time_pool(evaluator, folder / "scratch", args.n, args.warmup)),
            ("fresh interpreter per candidate (python -c)", args.n_fresh,
             time_fresh(evaluator, folder, args.n_fresh, min(args.warmup, 3))),
            ("in-process call (no isolation)", args.n,
             time_in_process(evaluator, folder, args.n, args.warmup)),
        ]
    print(f"per-candidate overhead, trivial evaluator; scratch in {args.scratch or tempfile.gettempdir()}")
    print(f"{'method':<46} {'n':>5} {'median ms':>10} {'p90 ms':>9}")
    stats = {}
    for name, n, times in rows:
        median, p90 = quantiles(times)
        stats[name] = median
        print(f"{name:<46} {n:>5} {median:>10.2f} {p90:>9.2f}")
    pool_ms, fresh_ms = stats[rows[0][0]], stats[rows[1][0]]
    print(f"{'fresh / rsi (medians)':<46} {'':>5} {fresh_ms / pool_ms:>9.0f}x")


if __name__ == "__main__":
    main()
