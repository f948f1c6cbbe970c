"""Per-candidate overhead of isolated evaluation, for a trivial evaluator.

    .venv/bin/python benchmarks/overhead.py [--n 200] [--n-fresh 40] [--scratch DIR]

Compares, per candidate (write the program, evaluate it, get the metrics back):
  - the rsi pool with full isolation: one warm worker (in its own network, mount, IPC and UTS
    namespaces, scratch tmpfs) forks a child per candidate, which changes uid, enters Landlock
    and seccomp, and gets all limits;
  - the same pool with isolation="none" (resource limits only);
  - a bare fork: this process (numpy and the evaluator imported) forks a child per candidate
    that evaluates and pipes the result back, nothing else: the floor of fork-per-candidate;
  - a fresh interpreter per candidate (`python -c` importing numpy and the evaluator);
  - bubblewrap per candidate (`bwrap --unshare-all` around that fresh interpreter), if installed;
  - a plain in-process call, the floor.
The evaluator reads the program file and returns {"combined_score": 1.0}.

Latency (median, p90) is what one candidate waits; "cpu" is the CPU time all processes spend per
candidate (this process, the workers, their children), which is what limits throughput when
every core is busy, and which other load on the machine disturbs less than latency.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def cpu_now() -> float:
    """CPU seconds of this process and of its reaped children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def measure_pool(evaluator: Path, scratch: Path, n: int, warmup: int,
                 isolation: str = "full") -> tuple[list[float], float]:
    # CPU: a pool's whole life (its workers are reaped at close), less that of a pool that
    # only starts and warms up.
    c0 = cpu_now()
    run_pool(evaluator, scratch, 0, warmup, isolation)
    c1 = cpu_now()
    times = run_pool(evaluator, scratch, n, warmup, isolation)
    c2 = cpu_now()
    return times, ((c2 - c1) - (c1 - c0)) / n


def run_pool(evaluator: Path, scratch: Path, n: int, warmup: int, isolation: str) -> list[float]:
    times = []
    with EvaluatorPool(evaluator, 1, Limits(), scratch, isolation=isolation) as pool:
        if isolation == "full" and pool.sandbox_level != "full":
            print(f"(note: this machine reaches {pool.sandbox_level} isolation)", file=sys.stderr)
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


THREADS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def timed(folder: Path, n: int, warmup: int, evaluate_one: Callable[[Path], float]) -> tuple[list[float], float]:
    """Write the program, run ``evaluate_one`` on it, remove it; ``warmup + n`` times. The wall
    times of the last ``n`` and their mean CPU seconds (this process and its children)."""
    times, cpu = [], 0.0
    for i in range(warmup + n):
        t0, c0 = time.perf_counter(), cpu_now()
        program = folder / f"{i}.py"
        program.write_text(PROGRAM)
        float(evaluate_one(program))
        program.unlink()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu += cpu_now() - c0
    return times, cpu / n


def _load_evaluate(evaluator: Path) -> Callable[[str], dict]:
    namespace: dict = {}
    exec(compile(evaluator.read_text(), str(evaluator), "exec"), namespace)
    return namespace["evaluate"]


def measure_fresh(evaluator: Path, folder: Path, n: int, warmup: int) -> tuple[list[float], float]:
    def one(program: Path) -> float:
        return float(subprocess.run([sys.executable, "-c", FRESH, str(evaluator), str(program)],
                                    capture_output=True, text=True, env=THREADS_ENV, check=True).stdout)

    return timed(folder, n, warmup, one)


def measure_bare_fork(evaluator: Path, folder: Path, n: int, warmup: int) -> tuple[list[float], float]:
    import numpy  # noqa: F401 - the child inherits it, as a warm worker's children do

    del numpy
    evaluate = _load_evaluate(evaluator)

    def one(program: Path) -> float:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, json.dumps(evaluate(str(program))).encode())
            os._exit(0)
        os.close(w)
        score = json.loads(os.read(r, 65536))["combined_score"]
        os.close(r)
        os.waitpid(pid, 0)
        return score

    return timed(folder, n, warmup, one)


def measure_bwrap(evaluator: Path, folder: Path, n: int, warmup: int) -> tuple[list[float], float]:
    bwrap = shutil.which("bwrap")

    def one(program: Path) -> float:
        return float(subprocess.run(
            [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
             "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--bind", str(folder),
             str(folder), sys.executable, "-c", FRESH,
             str(evaluator), str(program)],
            capture_output=True, text=True, env=THREADS_ENV, check=True).stdout)

    return timed(folder, n, warmup, one)


def measure_in_process(evaluator: Path, folder: Path, n: int, warmup: int) -> tuple[list[float], float]:
    evaluate = _load_evaluate(evaluator)
    return timed(folder, n, warmup, lambda program: evaluate(str(program))["combined_score"])


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
        full = "rsi pool, full isolation (fork per candidate)"
        rows = [
            (full, args.n, *measure_pool(evaluator, folder / "scratch", args.n, args.warmup)),
            ("rsi pool, isolation='none'", args.n,
             *measure_pool(evaluator, folder / "scratch-none", args.n, args.warmup, "none")),
            ("bare fork of a warm process", args.n,
             *measure_bare_fork(evaluator, folder, args.n, args.warmup)),
            ("fresh interpreter per candidate (python -c)", args.n_fresh,
             *measure_fresh(evaluator, folder, args.n_fresh, min(args.warmup, 3))),
        ]
        if shutil.which("bwrap"):
            rows.append(("bubblewrap + fresh interpreter per candidate", args.n_fresh,
                         *measure_bwrap(evaluator, folder, args.n_fresh, min(args.warmup, 3))))
        rows.append(("in-process call (no isolation)", args.n,
                     *measure_in_process(evaluator, folder, args.n, args.warmup)))
    print(f"per-candidate overhead, trivial evaluator; scratch in {args.scratch or tempfile.gettempdir()}"
          f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'method':<46} {'n':>5} {'median ms':>10} {'p90 ms':>9} {'cpu ms':>8}")
    stats = {}
    for name, n, times, cpu in rows:
        median, p90 = quantiles(times)
        stats[name] = (median, cpu)
        print(f"{name:<46} {n:>5} {median:>10.2f} {p90:>9.2f} {cpu * 1000:>8.2f}")
    (pool_ms, pool_cpu), (fork_ms, _) = stats[full], stats["bare fork of a warm process"]
    fresh_ms, fresh_cpu = stats["fresh interpreter per candidate (python -c)"]
    if not shutil.which("bwrap"):
        print("(bubblewrap not installed: apt-get install -y bubblewrap to compare)")
    else:
        print("(bubblewrap's cpu leaves out the sandboxed interpreter: bwrap, not this process, reaps it)")
    print(f"{'full isolation - bare fork':<46} {'':>5} {pool_ms - fork_ms:>+10.2f}")
    print(f"{'fresh interpreter / full isolation':<46} {'':>5} {fresh_ms / pool_ms:>9.0f}x {'':>9} "
          f"{fresh_cpu / pool_cpu:>7.0f}x")


if __name__ == "__main__":
    main()
