"""What ordered telling costs: throughput of rsi's ordered search against telling results as they arrive.

A ``Search`` applies results in ticket order and proposes the k-th child knowing exactly the
results of children up to ``k - parallel`` (``parallel`` = ``[run] workers``): a fast result waits
for a slow earlier one, and a free worker may idle until it comes (``src/rsi/search.py``). That is
what makes a seed reproduce its candidates whatever the timing. This benchmark measures the price
on a toy problem whose evaluation time varies a lot between candidates: ``evaluate`` sleeps (or,
with ``--burn``, burns CPU) for a time drawn from the hash of the program, uniform in 20..200 ms,
times a random factor 1 +- ``--jitter`` (default 0.1: the noise any real machine adds; 0: none,
and then even arrival order mostly repeats itself), then scores the program's fit to a curve.
Modes, each on the sandboxed local pool:

- ``ordered``: rsi as it is, ``rsi.drive(search, executor)``.
- ``arrival``: results applied as they arrive (``[run] ordered = false``: ``ask`` never waits for
  an earlier result, ``tell`` applies each result at once), driven by ``rsi.drive``.
- ``blind``: only ``search.parallel = 10**6``, results told as they arrive (``rsi.drive``). ``ask``
  never waits, but ``tell`` applies nothing while the search still proposes (a result is applied
  only once every child before it may be known, and ``parallel`` pushes that to the end), so every
  child is proposed from the seed alone: a bound on throughput, not a search one would run.

Per mode and worker count: evaluations per second (median [min..max] over ``--repeats`` runs of
``--budget`` evaluations, the seed included, from the first task to the last result; executor
start-up and ``finish`` excluded); the share of worker time not spent inside an evaluation
(idle), split into: a worker free while the search had no task for it (waiting: for the seed, at
the end of the budget and, when ordered, for earlier results), a worker free while the search
told results and proposed children (engine), and the pool's own overhead (pool: fork, messages,
a result not yet collected); the mean and the largest number of earlier children whose results
were not applied when a child was proposed; the mean evaluation time (repeat r uses seed
``--seed + r``, so the drawn durations differ between runs and modes: the busy share, 1 - idle,
does not depend on them). Then determinism: one more run of ``ordered`` and of ``arrival`` with
workers=2 and seed ``--seed``, compared with the first repeat: the same list of (candidate id,
fingerprint, status)?

    .venv/bin/python benchmarks/ordering.py                         # 100 evaluations x 3 repeats per mode
    .venv/bin/python benchmarks/ordering.py --budget 40 --repeats 2  # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import rsi  # noqa: E402

MODES = ("ordered", "arrival", "blind")

INITIAL = '''\
"""Ordering benchmark: f(x) should follow a curve on [-2, 2]."""
import math

import numpy as np


# EVOLVE-BLOCK-START
def f(x: float) -> float:
    a = 0.5
    b = 1.0
    c = 0.25
    d = 0.1
    y = a * x * x + b * x + c
    y = y + d * np.sin(3.0 * x)
    return y
# EVOLVE-BLOCK-END
'''

EVALUATE = '''\
"""Trusted evaluator of the ordering benchmark: a duration drawn from the program's hash, then a fit."""
import hashlib
import importlib.util
import math
import random
import time

LOW, HIGH, BURN, JITTER = {low!r}, {high!r}, {burn!r}, {jitter!r}
XS = [i / 10 for i in range(-20, 21)]


def target(x):
    return math.sin(x) + 0.3 * x * x


def evaluate(program_path):
    source = open(program_path).read()
    draw = int.from_bytes(hashlib.sha256(source.encode()).digest()[:8], "big") / 2**64
    seconds = (LOW + (HIGH - LOW) * draw) * (1 + JITTER * (2 * random.SystemRandom().random() - 1))
    if BURN:
        start = time.process_time()
        while time.process_time() - start < seconds:
            sum(i * i for i in range(1000))
    else:
        time.sleep(seconds)
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    error = sum((float(module.f(x)) - target(x)) ** 2 for x in XS) / len(XS)
    if not math.isfinite(error):
        raise ValueError(f"non-finite error {{error}}")
    return {{"combined_score": -error, "drawn_seconds": seconds}}
'''

PROBLEM_TOML = '''\
[run]
budget = 100
time = 3600
workers = 2
seed = 0

[evaluator]
timeout = 10

[archive]
features = ["code_size"]
'''


def write_problem(folder: Path, low: float, high: float, burn: bool, jitter: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "initial.py").write_text(INITIAL)
    (folder / "evaluate.py").write_text(EVALUATE.format(low=low, high=high, burn=burn, jitter=jitter))
    (folder / "problem.toml").write_text(PROBLEM_TOML)
    return folder


@dataclass
class Timed:
    """An executor wrapper that accounts for worker time. ``busy``: inside evaluations (as the
    results report it). From the driver's view a worker is free from the collection of its result
    to its next submission; that free time is ``waiting`` while the driver waits in ``collect``
    (the search had no task for it) and ``engine`` otherwise (the search is telling, proposing,
    storing). The rest of the idle time is the pool's (fork, messages, a finished result not yet
    collected). It also notes, at each submission, how many earlier children's results the search
    had not applied yet."""

    inner: rsi.Executor
    search: rsi.Search
    busy: float = 0.0
    waiting: float = 0.0
    free: float = 0.0  # waiting + engine
    evaluated: int = 0
    submitted: int = 0
    unseen: list[int] = field(default_factory=list)
    _held: int = 0  # submitted, not yet collected
    _last: float | None = None

    @property
    def workers(self) -> int:
        return self.inner.workers

    @property
    def in_flight(self) -> int:
        return self.inner.in_flight

    @property
    def score_mode(self) -> str:
        return self.inner.score_mode

    @property
    def sandbox_level(self) -> str:
        return self.inner.sandbox_level

    def _tick(self) -> float:
        """Free worker time since the last event; the clock moves to now."""
        now = time.monotonic()
        free = 0.0 if self._last is None else (self.inner.workers - self._held) * (now - self._last)
        self._last = now
        self.free += free
        return free

    def submit(self, task) -> None:
        self._tick()
        if self.submitted > 0:  # children: earlier ones (seed included) not yet applied
            self.unseen.append(self.submitted - self.search.evaluations)
        self.submitted += 1
        self._held += 1
        self.inner.submit(task)

    def collect(self, timeout: float):
        self._tick()
        results = self.inner.collect(timeout)
        self.waiting += self._tick()
        self._held -= len(results)
        self.busy += sum(r.wall_seconds for r in results)
        self.evaluated += len(results)
        return results

    def cancel(self) -> None:
        self.inner.cancel()

    def verify_evaluator(self) -> str | None:
        return self.inner.verify_evaluator()

    def close(self) -> None:
        self.inner.close()


@dataclass
class Measured:
    mode: str
    workers: int
    evaluations: int
    seconds: float
    idle: float  # share of worker time outside evaluations
    waiting: float  # share of worker time free while the search had no task
    engine: float  # share of worker time free while the search told, proposed, stored
    unseen_max: int
    unseen_mean: float
    parent_cpu_ms: float  # this process's CPU per evaluation (proposing, storing, driving)
    eval_ms: float  # mean wall time of an evaluation, as the pool reports it
    candidates: list[tuple[int, str | None, str]]

    @property
    def rate(self) -> float:
        return self.evaluations / self.seconds


def measure(problem_dir: Path, mode: str, workers: int, budget: int, seed: int, out: Path) -> Measured:
    problem = rsi.load_problem(problem_dir)
    if mode == "arrival":
        run = problem.settings.run.model_copy(update={"ordered": False})
        problem = dataclasses.replace(problem, settings=problem.settings.model_copy(update={"run": run}))
    search = rsi.Search.create(problem, out, rsi.Overrides(budget=budget, seed=seed, workers=workers))
    if mode == "blind":
        search.parallel = 10**6
    scratch = out.parent / f"{out.name}-scratch"
    scratch.mkdir()
    inner = rsi.executors.create("local", problem, search.settings, scratch)
    executor = Timed(inner, search)
    try:
        cpu0, start = time.process_time(), time.monotonic()
        rsi.drive(search, executor, finish=False)
        executor._tick()  # up to the end of the loop
        seconds, cpu = time.monotonic() - start, time.process_time() - cpu0
        summary = search.finish()
    finally:
        executor.close()
        search.close()
    if summary.stop_reason is not rsi.StopReason.BUDGET:
        raise SystemExit(f"{mode} run {out} stopped early: {summary.stop_reason}")
    with rsi.open_run(out) as results:
        candidates = [(c.id, c.fingerprint, str(c.status)) for c in results.candidates()]
    capacity = workers * seconds
    return Measured(
        mode, workers, summary.evaluations, seconds,
        idle=1 - executor.busy / capacity, waiting=executor.waiting / capacity,
        engine=(executor.free - executor.waiting) / capacity,
        unseen_max=max(executor.unseen, default=0),
        unseen_mean=statistics.fmean(executor.unseen) if executor.unseen else 0.0,
        parent_cpu_ms=1000 * cpu / summary.evaluations,
        eval_ms=1000 * executor.busy / max(1, executor.evaluated), candidates=candidates)


def first_difference(a: list, b: list) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"from candidate {x[0]}"
    return "same prefix" if len(a) == len(b) else f"lengths {len(a)} / {len(b)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=100, help="evaluations per run, the seed included (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode and worker count (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="run seed of the first repeat (default 0)")
    parser.add_argument("--low", type=float, default=0.02, help="shortest evaluation, seconds (default 0.02)")
    parser.add_argument("--high", type=float, default=0.2, help="longest evaluation, seconds (default 0.2)")
    parser.add_argument("--burn", action="store_true", help="evaluations burn CPU instead of sleeping")
    parser.add_argument("--jitter", type=float, default=0.1,
                        help="random relative noise on each evaluation's time (default 0.1: +-10%%)")
    parser.add_argument("--configs", default="ordered:2,arrival:2,blind:2,ordered:1",
                        help="mode:workers pairs (modes: " + ", ".join(MODES) + "; default %(default)s)")
    parser.add_argument("--work", type=Path,
                        help="a new (or empty) folder for the problem and the runs (default: a new temp folder)")
    args = parser.parse_args()
    configs = [(mode, int(workers)) for mode, workers in (c.split(":") for c in args.configs.split(","))]
    if any(mode not in MODES for mode, _ in configs):
        parser.error(f"--configs: modes are {', '.join(MODES)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="rsi-ordering-"))
    problem_dir = write_problem(work / "problem", args.low, args.high, args.burn, args.jitter)
    load_before = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"] * 3
    print(f"{len(configs)} configurations x {args.repeats} repeats of {args.budget} evaluations, in {work}; "
          f"evaluations {'burn CPU' if args.burn else 'sleep'} {args.low * 1000:.0f}..{args.high * 1000:.0f} ms",
          file=sys.stderr)
    runs: dict[tuple[str, int], list[Measured]] = {c: [] for c in configs}
    for repeat in range(args.repeats):  # interleaved, so that a change in machine load hits every mode
        for mode, workers in configs:
            out = work / f"{mode}-w{workers}-r{repeat + 1}"
            m = measure(problem_dir, mode, workers, args.budget, args.seed + repeat, out)
            runs[(mode, workers)].append(m)
            print(f"  {mode} workers={workers} repeat {repeat + 1}: {m.rate:.2f} evals/s, idle {m.idle:.0%}, "
                  f"waiting {m.waiting:.0%} ({m.seconds:.1f} s)", file=sys.stderr)
    again: dict[str, Measured] = {}
    for mode in ("ordered", "arrival"):  # determinism: the first repeat again, same seed
        if (mode, 2) in runs:
            again[mode] = measure(problem_dir, mode, 2, args.budget, args.seed, work / f"{mode}-w2-again")
            print(f"  {mode} workers=2 again (seed {args.seed}): {again[mode].rate:.2f} evals/s", file=sys.stderr)
    load_after = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"] * 3

    def spread(values: list[float], fmt: str) -> str:
        return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}..{max(values):{fmt}}]"

    print(f"\nThroughput, {args.budget} evaluations per run (each {args.low * 1000:.0f}..{args.high * 1000:.0f} ms "
          f"+-{args.jitter:.0%}, {'burning CPU' if args.burn else 'sleeping'}), "
          f"median [min..max] over {args.repeats} runs (seeds "
          f"{args.seed}..{args.seed + args.repeats - 1}); load average {' '.join(load_before)} before, "
          f"{' '.join(load_after)} after\n")
    print("| mode | workers | evals/s | idle | = waiting for a task | + engine at work | + pool | mean eval ms | "
          "unseen results at proposal (mean / max) | engine CPU ms per eval |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (mode, workers), found in runs.items():
        print(f"| {mode} | {workers} | {spread([m.rate for m in found], '.2f')} | "
              f"{spread([100 * m.idle for m in found], '.0f')} % | "
              f"{statistics.median(100 * m.waiting for m in found):.0f} % | "
              f"{statistics.median(100 * m.engine for m in found):.0f} % | "
              f"{statistics.median(100 * (m.idle - m.waiting - m.engine) for m in found):.0f} % | "
              f"{statistics.median(m.eval_ms for m in found):.0f} | "
              f"{statistics.fmean(m.unseen_mean for m in found):.2f} / {max(m.unseen_max for m in found)} | "
              f"{statistics.median(m.parent_cpu_ms for m in found):.0f} |")
    rates = {key: statistics.median(m.rate for m in found) for key, found in runs.items()}
    busy = {key: statistics.median(1 - m.idle for m in found) for key, found in runs.items()}
    print()
    for workers in sorted({w for _, w in configs}):
        for other in ("arrival", "blind"):
            if ("ordered", workers) in rates and (other, workers) in rates:
                key, base = ("ordered", workers), (other, workers)
                print(f"ordered / {other}, workers={workers}: throughput {rates[key] / rates[base]:.2f}, "
                      f"busy share {busy[key] / busy[base]:.2f}")
    for mode in MODES:
        if (mode, 1) in rates and (mode, 2) in rates:
            print(f"{mode}: throughput workers=2 / workers=1: {rates[(mode, 2)] / rates[(mode, 1)]:.2f}")
    if again:
        print()
    for mode, m in again.items():
        first = runs[(mode, 2)][0]
        same = m.candidates == first.candidates
        detail = (f"{len(m.candidates)} candidates" if same
                  else f"they differ {first_difference(first.candidates, m.candidates)}")
        print(f"determinism, two {mode} runs, seed {args.seed}, workers=2, (id, fingerprint, status): "
              f"identical: {'yes' if same else 'no'} ({detail})")
    print(f"\ncommand: {' '.join([Path(sys.executable).name, *sys.argv])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
