"""What the guard costs: a plain evaluator on bin packing, guarded, beside the split contract and
the plain contract loaded into the evaluator's process (guard off).

    PYTHONPATH=src .venv/bin/python benchmarks/guard.py [--n 7] [--calls 5000]

Three ways to evaluate the bin packing seed (Best Fit) on the example's 2 x 5,000 training items,
each through one warm sandboxed worker (full isolation), the same candidate every time:

  - split: examples/binpack/evaluate.py as it is (produce() beside the candidate, its packings
    through the codec to score() in the trusted scorer process);
  - plain, guard off: an OpenEvolve-style evaluator that loads the program with importlib and
    packs with its priority(): 10,000 calls in one process, the candidate loaded beside it;
  - guarded: the same evaluator, the candidate in a process of its own: each priority() call is a
    round trip (arguments pickled, the scores back through the codec).

Per way: evaluations per second (the median of ``--n`` evaluations' wall time, as the worker
measures it), priority() calls per second inside the evaluation (the evaluator times its packing
loop: trusted code), and calls per second of a trivial function (``noop(i)``, ``--calls`` of
them), which is the round trip alone. Medians over the repeats, all in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from rsi.sandbox.pool import EvaluatorPool
from rsi.sandbox.types import EvalTask, Limits

ROOT = Path(__file__).resolve().parents[1]
BINPACK = ROOT / "examples" / "binpack"

PLAIN = '''
import importlib.util
import time

_spec = importlib.util.spec_from_file_location("binpack_example", {evaluator!r})
ex = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ex)
CALLS = {calls}


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    start = time.perf_counter()
    packings = [ex.bp.pack(program.priority, inst.items, inst.capacity).assignment for inst in ex.TRAIN]
    pack_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(CALLS):
        program.noop(i)
    noop_seconds = time.perf_counter() - start
    metrics = ex.score(packings)
    items = sum(inst.items.size for inst in ex.TRAIN)
    return {{**metrics, "priority_calls_per_s": items / pack_seconds, "noop_calls_per_s": CALLS / noop_seconds}}
'''


def measure(evaluator: Path, source: str, scratch: Path, n: int, limits: Limits) -> dict:
    walls, priority, noop, score = [], [], [], None
    with EvaluatorPool(evaluator, 1, limits, scratch) as pool:
        for i in range(n + 1):  # the first is a warm-up
            pool.submit(EvalTask(candidate_id=i + 1, source=source, seed=i))
            results: list = []
            while not results:
                results = pool.collect(timeout=60)
            r = results[0]
            if r.status != "ok":
                raise SystemExit(f"{evaluator}: {r.status}: {r.error}")
            if i == 0:
                continue
            walls.append(r.wall_seconds)
            score = r.metrics["combined_score"]
            if "priority_calls_per_s" in r.metrics:
                priority.append(r.metrics["priority_calls_per_s"])
                noop.append(r.metrics["noop_calls_per_s"])
        mode = pool.score_mode
    return {"mode": mode, "wall": statistics.median(walls), "score": score,
            "priority": statistics.median(priority) if priority else None,
            "noop": statistics.median(noop) if noop else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=7, help="evaluations per way (after one warm-up)")
    parser.add_argument("--calls", type=int, default=5000, help="noop() calls per evaluation")
    args = parser.parse_args()
    seed = (BINPACK / "initial.py").read_text() + "\n\ndef noop(x):\n    return x\n"
    limits = Limits(wall_seconds=120, cpu_seconds=120, memory_mb=2048)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rsi-guard-bench-") as tmp:
        folder = Path(tmp) / "plain"
        folder.mkdir()
        plain = folder / "evaluator.py"
        plain.write_text(PLAIN.format(evaluator=str(BINPACK / "evaluate.py"), calls=args.calls))
        ways = [("split (produce / score)", BINPACK / "evaluate.py", limits),
                ("plain, guard off", plain, Limits(**{**vars(limits), "guard": False})),
                ("plain, guarded", plain, limits)]
        for label, evaluator, lim in ways:
            scratch = Path(tmp) / f"scratch-{len(rows)}"
            rows.append((label, measure(evaluator, seed, scratch, args.n, lim)))
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"bin packing seed (Best Fit), 2 x 5,000 items, 1 warm worker, full isolation; median of {args.n}")
    print(f"machine: {os.cpu_count()} CPUs; {load}")
    print()
    base = rows[1][1]["wall"]
    print(f"{'way':<26} {'mode':<8} {'s/eval':>8} {'evals/s':>8} {'vs plain':>9} {'priority/s':>11} {'noop/s':>9}")
    for label, m in rows:
        pri = f"{m['priority']:,.0f}" if m["priority"] else "-"
        nop = f"{m['noop']:,.0f}" if m["noop"] else "-"
        print(f"{label:<26} {m['mode']:<8} {m['wall']:>8.3f} {1 / m['wall']:>8.2f} {m['wall'] / base:>8.2f}x "
              f"{pri:>11} {nop:>9}")
    print()
    print("priority/s and noop/s are timed by the evaluator itself; split has no evaluator-side loop to time")
    print(f"every way scored the seed the same: {sorted({round(m['score'], 6) for _, m in rows})}")


if __name__ == "__main__":
    main()
