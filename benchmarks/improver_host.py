"""What running an improver in its sandboxed host costs per step, against the same code in process.

    PYTHONPATH=src python benchmarks/improver_host.py [--steps 200] [--repeats 5]

One step is what the search asks of an improver per child: ``next_step`` then ``observe``, each
with a fresh snapshot of the search (``rsi.improvers.snapshot``). The improver is rsi's seed
improver; "hosted" runs a copy of it (one comment added, so it is not byte for byte the seed)
in its host (``rsi.sandbox.improver_host``), "in process" the same code in this process. The
archive holds ``elites`` elites over 2 islands (the context sent per call grows with it). Medians
over ``repeats`` runs of ``steps`` steps; the host's start (interpreter, imports, sandbox) is
measured separately. Prints a table and the machine load.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from rsi.archive import Archive
from rsi.improvers import SEED_IMPROVER, Outcome, load_improver, snapshot
from rsi.sandbox.improver_host import HostedImprover
from rsi.status import Status


def _archive(elites: int) -> tuple[Archive, list[tuple[int, float]]]:
    rng = random.Random(0)
    archive = Archive(["code_size", "score"], 10, 2)
    population = []
    for cid in range(1, elites * 3 + 1):
        score = rng.random()
        archive.add(cid, cid % 2, score, (float(rng.randrange(1000)), score * 10), 100 + cid)
        population.append((cid, score))
    return archive, population


def _steps(improver, archive: Archive, population, steps: int) -> float:
    """Seconds per step (next_step + observe)."""
    rng, state = random.Random(1), {}
    operators = {"mutate": ["constant", "swap", "insert"]}

    def ctx():
        return snapshot(archive, rng, state, operators, {}, 10_000, len(population), population)

    improver.start(ctx())
    best = archive.best()
    started = time.perf_counter()
    for i in range(steps):
        step = improver.next_step(ctx())
        improver.observe(ctx(), step, Outcome(10_000 + i, Status.OK, 0.5, 0.4, best.score if best else None))
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "seed_copy.py"
        copy.write_text(SEED_IMPROVER.read_text() + "\n# a copy: sandboxed\n")
        starts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            host = HostedImprover(copy)
            starts.append(time.perf_counter() - t0)
            host.close()
        local = load_improver(copy)
        host = HostedImprover(copy)
        print(f"host start (interpreter, imports, sandbox): median {statistics.median(starts) * 1000:.0f} ms "
              f"over {args.repeats}; protections: {', '.join(host.protections)}")
        print("\n| elites in the archive | in process, ms/step | hosted, ms/step | ratio |")
        print("|---:|---:|---:|---:|")
        for elites in (10, 100, 1000):
            archive, population = _archive(elites)
            inproc = statistics.median(_steps(local, archive, population, args.steps) for _ in range(args.repeats))
            hosted = statistics.median(_steps(host, archive, population, args.steps) for _ in range(args.repeats))
            print(f"| {len(archive.elites())} | {inproc * 1000:.3f} | {hosted * 1000:.3f} | {hosted / inproc:.0f}x |")
        host.close()
    print(f"\nload: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"(1, 5, 15 min) on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
