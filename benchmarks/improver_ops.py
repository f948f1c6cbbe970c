"""What guarding an improver's own operator costs per proposal (``rsi.proposers.improver_ops``).

    .venv/bin/python benchmarks/improver_ops.py [--calls 300] [--ballast-mb 0]

One operator (set one constant of a suite program with the toolkit), called ``--calls`` times,
median wall and CPU milliseconds per call (CPU: this process plus its children), for:

- mutate: the built-in proposer's ``perturb_constant``, for scale;
- in-process: the operator called in the engine's process, no guard (``guard="none"``);
- in-process + itimer: the same with ``setitimer(ITIMER_PROF)`` armed and disarmed around the call
  and a SIGPROF handler installed (the alternative guard, measured here only);
- fork: each call in a forked child with rlimits (``confine=False``);
- fork + Landlock + seccomp: the default guard.

``--ballast-mb`` makes the engine process bigger first (fork copies page tables).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy  # noqa: E402,F401 - an engine has it loaded (runs measured at 72 MB RSS)

from rsi.improvers import load_improver  # noqa: E402
from rsi.proposers.base import Program, ProposalRequest  # noqa: E402
from rsi.proposers.improver_ops import ImproverOperators  # noqa: E402
from rsi.proposers.mutate import MutateProposer  # noqa: E402

IMPROVER = '''
def next_step(ctx):
    return None


def nudge(ctx):
    constant = ctx.rng.choice(ctx.parent.constants())
    return constant.set(constant.value * ctx.rng.uniform(0.5, 2.0), digits=6)


OPERATORS = {"nudge": nudge}
'''


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _measure(call, calls: int) -> tuple[float, float]:
    walls, cpus = [], []
    for i in range(calls):
        w, c = time.perf_counter(), _cpu()
        call(i)
        walls.append(time.perf_counter() - w)
        cpus.append(_cpu() - c)
    # os.times has 10 ms ticks: the mean of CPU is meaningful, a median of ticks is not
    return statistics.median(walls) * 1000, statistics.fmean(cpus) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--ballast-mb", type=int, default=0)
    args = parser.parse_args()
    ballast = bytearray(args.ballast_mb << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    source = (ROOT / "src" / "rsi" / "meta" / "suite" / "binpack_weibull" / "initial.py").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "improver.py"
        path.write_text(IMPROVER)
        improver = load_improver(path)
        guards = {
            "in-process (no guard)": ImproverOperators(improver, guard="none"),
            "fork + rlimits": ImproverOperators(improver, confine=False),
            "fork + rlimits + Landlock + seccomp (default)": ImproverOperators(improver),
        }

        def request(i: int) -> ProposalRequest:
            return ProposalRequest(parent=Program(1, source, 0.0), operator="nudge", seed=i)

        rows = []
        mutate = MutateProposer()
        rng = random.Random(0)
        rows.append(("mutate perturb_constant (for scale)",
                     *_measure(lambda i: mutate.edit(source, [], "perturb_constant", rng), args.calls)))
        for label, ops in guards.items():
            ops.propose(request(-1))  # warm: the jail is prepared on first use
            rows.append((label, *_measure(lambda i, ops=ops: ops.propose(request(i)), args.calls)))
            if label.startswith("in-process"):
                previous = signal.signal(signal.SIGPROF, lambda *a: None)

                def timed(i: int, ops=ops) -> None:
                    signal.setitimer(signal.ITIMER_PROF, 1.0)
                    try:
                        ops.propose(request(i))
                    finally:
                        signal.setitimer(signal.ITIMER_PROF, 0)

                rows.append(("in-process + setitimer(ITIMER_PROF)", *_measure(timed, args.calls)))
                signal.signal(signal.SIGPROF, previous)
    rss = next((int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith("VmRSS")), 0)
    load = os.getloadavg()[0]
    print(f"{args.calls} calls per row; engine process RSS {rss} MB; load {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'guard':<48} {'wall ms (median)':>17} {'CPU ms (mean)':>14}")
    for label, wall, cpu in rows:
        print(f"{label:<48} {wall:>17.2f} {cpu:>14.2f}")


if __name__ == "__main__":
    main()
