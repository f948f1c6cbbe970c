"""Throughput of the 'ray' executor against the local pool as concurrency grows, and per-task overhead.

    .venv/bin/python benchmarks/ray_scaling.py [--sleep 0.5] [--rounds 4] [--repeats 3] [--n-trivial 60]
                                               [--address HOST:PORT]

- Scaling: an evaluator that sleeps ``--sleep`` seconds (so the machine's cores are not the limit),
  run with 1, 2, 4, 8 and 16 evaluations in flight, ``--rounds`` x N evaluations per measurement.
  Throughput = evaluations per second; efficiency = throughput / (N x the same executor's throughput
  with one in flight). One pool of 16 workers per executor, so start-up is not counted.
- Overhead: a trivial evaluator (reads the program, returns a constant), one worker, one evaluation
  at a time: the median wall time from submit to result, Ray vs the local pool.

Both executors isolate every candidate the same way (``RayPool`` runs the local pool's sandboxed
worker inside each actor). Medians over ``--repeats``. Without ``--address`` the Ray side is a Ray
started in this process on this machine (16 logical CPUs, no dashboard); with it, an existing cluster.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rsi.sandbox.pool import EvaluatorPool
from rsi.sandbox.raypool import RayPool
from rsi.sandbox.types import EvalTask, Limits

CONCURRENCY = (1, 2, 4, 8, 16)
SLEEPY = """\
import time

def evaluate(program_path):
    time.sleep(SLEEP)
    return {"combined_score": 1.0}
"""
TRIVIAL = """\
def evaluate(program_path):
    with open(program_path) as f:
        f.read()
    return {"combined_score": 1.0}
"""
PROGRAM = "def solve(x):\n    return x + 1\n"


def run_tasks(pool, count: int, in_flight: int, first_id: int) -> float:
    """Seconds to evaluate ``count`` tasks keeping ``in_flight`` running."""
    start = time.perf_counter()
    sent = done = 0
    while done < count:
        while sent < count and pool.in_flight < in_flight:
            pool.submit(EvalTask(candidate_id=first_id + sent, source=PROGRAM, seed=0, ticket=first_id + sent))
            sent += 1
        for result in pool.collect(timeout=0.05):
            if result.status != "ok":
                raise RuntimeError(f"evaluation failed: {result.error}")
            done += 1
    return time.perf_counter() - start


def scaling(pool, rounds: int, repeats: int) -> dict[int, float]:
    """Median throughput (evaluations per second) at each concurrency."""
    run_tasks(pool, max(CONCURRENCY), max(CONCURRENCY), 0)  # warm every worker once
    out, next_id = {}, 1000
    for n in CONCURRENCY:
        rates = []
        for _ in range(repeats):
            count = rounds * n
            rates.append(count / run_tasks(pool, count, n, next_id))
            next_id += count
        out[n] = statistics.median(rates)
    return out


def latency(pools: dict, n: int, repeats: int) -> dict[str, float]:
    """Median seconds from submit to result, one at a time (median of per-repeat medians); the pools
    take turns within each repeat, so that the machine's other load falls on both alike."""
    for pool in pools.values():
        run_tasks(pool, 5, 1, 0)
    medians: dict[str, list[float]] = {name: [] for name in pools}
    next_id = 10_000
    for _ in range(repeats):
        times: dict[str, list[float]] = {name: [] for name in pools}
        for _ in range(n):
            for name, pool in pools.items():
                times[name].append(run_tasks(pool, 1, 1, next_id))
                next_id += 1
        for name in pools:
            medians[name].append(statistics.median(times[name]))
    return {name: statistics.median(values) for name, values in medians.items()}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=0.5, help="seconds each scaling evaluation sleeps")
    parser.add_argument("--rounds", type=int, default=4, help="evaluations per worker in a measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-trivial", type=int, default=60, help="trivial evaluations per overhead repeat")
    parser.add_argument("--address", help="an existing Ray cluster (default: start one in this process)")
    args = parser.parse_args()

    import ray

    workers = max(CONCURRENCY)
    if args.address:
        ray.init(address=args.address, logging_level=logging.ERROR, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=100 * 1024 * 1024,
                 logging_level=logging.ERROR, log_to_driver=False)
    print(f"load before: {uptime()}", file=sys.stderr)
    limits = Limits(wall_seconds=30 + args.sleep)
    with tempfile.TemporaryDirectory(prefix="rsi-ray-bench-") as tmp:
        folder = Path(tmp)
        (folder / "sleepy").mkdir()
        (folder / "sleepy" / "evaluate.py").write_text(SLEEPY.replace("SLEEP", repr(args.sleep)))
        (folder / "trivial").mkdir()
        (folder / "trivial" / "evaluate.py").write_text(TRIVIAL)
        rates = {}
        for name in ("local pool", "ray"):
            started = time.perf_counter()
            pool: EvaluatorPool | RayPool
            if name == "ray":
                pool = RayPool(folder / "sleepy" / "evaluate.py", workers, limits)
            else:
                pool = EvaluatorPool(folder / "sleepy" / "evaluate.py", workers, limits, folder / "s-local")
            print(f"{name}: {workers} workers started in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            with pool:
                rates[name] = scaling(pool, args.rounds, args.repeats)
        with EvaluatorPool(folder / "trivial" / "evaluate.py", 1, Limits(), folder / "t-local") as local, \
                RayPool(folder / "trivial" / "evaluate.py", 1, Limits()) as on_ray:
            overhead = latency({"local pool": local, "ray": on_ray}, args.n_trivial, args.repeats)
    print(f"load after: {uptime()}", file=sys.stderr)
    ray.shutdown()

    print(f"Throughput, evaluator sleeping {args.sleep:g} s, {args.rounds} evaluations per worker, median of "
          f"{args.repeats} (ideal: N / {args.sleep:g} per second); {os.cpu_count()} cores")
    print()
    print("| in flight (N) | local pool eval/s | efficiency | ray eval/s | efficiency | ray / local |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in CONCURRENCY:
        local, on_ray = rates["local pool"][n], rates["ray"][n]
        print(f"| {n} | {local:.2f} | {local / (n * rates['local pool'][1]):.0%} | {on_ray:.2f} | "
              f"{on_ray / (n * rates['ray'][1]):.0%} | {on_ray / local:.2f} |")
    print()
    print(f"Per-task wall time, trivial evaluator, one worker, one at a time, the two taking turns (median of "
          f"{args.repeats} x {args.n_trivial}):")
    print()
    print("| executor | ms per evaluation | overhead vs local pool |")
    print("|---|---:|---:|")
    for name in ("local pool", "ray"):
        print(f"| {name} | {overhead[name] * 1000:.1f} | {1000 * (overhead[name] - overhead['local pool']):+.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
