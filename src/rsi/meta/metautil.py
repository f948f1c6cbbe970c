"""Meta-utility: how good an improver is, measured by trusted code.

    meta-utility(improver, problems, seeds, budget) = mean normalised gain over problems x seeds,
    each gain that of the best program an rsi search of ``budget`` evaluations, driven by the
    improver, found on that problem with that seed.

The improver is untrusted code, so the measurement is split in two:

- *produce*, sandboxed: one search per unit (problem, seed) runs in an evaluation child of an
  ``EvaluatorPool`` over ``evaluators/produce.py``, under the pool's OS limits (CPU seconds,
  memory, wall time). It returns the source of the best program it found; nothing else it says
  is believed.
- *score*, trusted: that source must be a legal edit of the problem's initial program (only its
  EVOLVE-BLOCK regions changed) and pass the static review (nothing a mutation of that program
  could not contain: no evaluator or reference names, no process, file or introspection tricks);
  then a second pool (``evaluators/rescore.py``) evaluates it afresh with the problem's own
  evaluator, and the gain is computed here from that score. A program that fails either check,
  or its re-evaluation, counts as no gain (the seed program is always available).

A search that crashes or exceeds its limits fails the whole measurement: the improver is broken,
and its other units are cancelled at once.

``MetaEvaluator`` accepts only the problems it is built with; one that may see test problems must
say so (``allow_test=True``), which only the report and the benchmark do.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RsiError
from ..oversight.review import review
from ..problem import hash_evaluator_files
from ..program import edit_violation
from ..sandbox.pool import EvaluatorPool
from ..sandbox.types import EvalResult, EvalTask, Limits
from .protocol import parse_result, unit_context
from .suite import SuiteProblem

if TYPE_CHECKING:
    from ..sandbox.raypool import RayPool

EVALUATORS = Path(__file__).resolve().parent / "evaluators"
PRODUCE = EVALUATORS / "produce.py"
RESCORE = EVALUATORS / "rescore.py"
PROGRAM_PROTECTED = ("evaluate", "evaluate_holdout", "evaluate.py")
PROGRAM_SECRETS = ("reference.py",)
FAILED = ("error", "timeout")


@dataclass(frozen=True)
class UnitLimits:
    """OS limits of one inner search, and of each evaluation inside it.

    The search process gets ``cpu_base + cpu_per_eval * budget`` CPU seconds and
    ``wall_base + wall_per_eval * budget`` wall seconds (its evaluations are children: their
    time counts in the wall limit, not in its CPU limit); each evaluation ``eval_cpu`` CPU seconds
    and ``eval_wall`` wall seconds. The defaults leave ten times what the seed improver needs.
    """

    cpu_base: float = 10.0
    cpu_per_eval: float = 0.1
    wall_base: float = 30.0
    wall_per_eval: float = 0.5
    eval_cpu: float = 1.0
    eval_wall: float = 3.0
    memory_mb: int = 4096

    def search(self, budget: int) -> Limits:
        # guard off: the search's process is the candidate improver's own sandbox (the improver and its
        # inner search run there by design), and nothing it reports is believed (the rescore pool,
        # guarded, scores what it returns)
        return Limits(wall_seconds=self.wall_base + self.wall_per_eval * budget,
                      cpu_seconds=self.cpu_base + self.cpu_per_eval * budget,
                      memory_mb=self.memory_mb, output_bytes=65536, guard=False)


@dataclass
class UnitResult:
    """One (problem, seed) search: its trusted score and gain, and what it claimed."""

    problem: str
    seed: int
    status: str  # ok, invalid, flagged, unscored (re-evaluation failed), error, timeout, cancelled
    gain: float = 0.0
    score: float | None = None
    claimed: float | None = None
    evaluations: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    error: str | None = None
    flags: list[str] = field(default_factory=list)
    source: str | None = None
    operators: dict[str, dict[str, int]] = field(default_factory=dict)  # per arm, as the search counted (advisory)


@dataclass
class MetaResult:
    """An improver's measurement on one set of units; ``status`` ok unless a search failed."""

    key: Hashable
    split: str
    budget: int
    units: list[UnitResult]
    status: str = "ok"
    error: str | None = None
    wall_seconds: float = 0.0
    neutral_of: Hashable | None = None  # behaved exactly as this reference: the units not run are its results

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def utility(self) -> float | None:
        return statistics.fmean(u.gain for u in self.units) if self.ok and self.units else None

    @property
    def gains(self) -> list[float]:
        """Gains in unit order (problem, then seed): the pairing of the adoption gate."""
        return [u.gain for u in self.units]

    @property
    def cpu_seconds(self) -> float:
        return sum(u.cpu_seconds for u in self.units)

    def per_problem(self) -> dict[str, float]:
        by: dict[str, list[float]] = collections.defaultdict(list)
        for u in self.units:
            by[u.problem].append(u.gain)
        return {name: statistics.fmean(values) for name, values in sorted(by.items())}

    def counts(self) -> dict[str, int]:
        return dict(collections.Counter(u.status for u in self.units))

    def metrics(self) -> dict[str, float]:
        """What the outer run stores: the utility and a few diagnostics (all floats)."""
        out = {"combined_score": self.utility if self.utility is not None else math.nan,
               "units": float(len(self.units)), "cpu_seconds": self.cpu_seconds}
        for status, n in self.counts().items():
            if status != "ok":
                out[f"units_{status}"] = float(n)
        mismatched = sum(1 for u in self.units if u.status == "ok" and u.claimed is not None and u.score is not None
                         and not math.isclose(u.claimed, u.score, rel_tol=1e-6, abs_tol=1e-9))
        out["claims_wrong"] = float(mismatched)
        if self.neutral_of is not None:
            out["units_run"] = float(sum(1 for u in self.units if u.cpu_seconds > 0))
        out.update({f"gain_{name}": value for name, value in self.per_problem().items()})
        return out

    def summary(self) -> str:
        if not self.ok:
            return f"{self.status}: {self.error}"
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts().items()))
        return (f"meta-utility {self.utility:.4f} on {len(self.units)} {self.split} units ({counts}), "
                f"{self.cpu_seconds:.0f} CPU s, {self.wall_seconds:.0f} s")

    def to_json(self, sources: bool = False) -> dict[str, Any]:
        units = [{k: v for k, v in asdict(u).items() if sources or k != "source"} for u in self.units]
        return {"split": self.split, "budget": self.budget, "status": self.status, "error": self.error,
                "utility": self.utility, "wall_seconds": self.wall_seconds, "units": units,
                "neutral_of": self.neutral_of}

    @classmethod
    def from_json(cls, key: Hashable, data: dict[str, Any]) -> MetaResult:
        units = [UnitResult(**u) for u in data["units"]]
        neutral_of = data.get("neutral_of")
        return cls(key, data["split"], data["budget"], units, data["status"], data.get("error"),
                   data.get("wall_seconds", 0.0), tuple(neutral_of) if isinstance(neutral_of, list) else neutral_of)


@dataclass
class _Job:
    key: Hashable
    source: str
    units: list[tuple[SuiteProblem, int]]
    results: dict[int, UnitResult] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    failed: str | None = None
    error: str | None = None
    reference: MetaResult | None = None  # for neutral detection (see ``submit``)
    reference_units: dict[tuple[str, int], UnitResult] = field(default_factory=dict)
    neutral_after: int = 0
    same: int = 0
    differs: bool = False


class MetaEvaluator:
    """Measures improvers on units (problem, seed) of ``problems``, ``budget`` evaluations each.

    ``submit(key, source, units)`` queues an improver; ``collect(timeout)`` returns finished
    ``MetaResult``s; ``measure({key: source}, units)`` does both and waits. ``workers`` inner
    searches run at a time; one more process re-scores what they return. Only ``problems`` are
    loaded into the pools; test problems only with ``allow_test=True``. ``executor="ray"`` runs
    the searches (the expensive part) on the Ray cluster at ``address`` (``rsi.sandbox.raypool``),
    each in the same sandbox on its node; the re-scoring stays on this machine.
    """

    def __init__(self, problems: Iterable[SuiteProblem], budget: int, workers: int = 2,
                 limits: UnitLimits | None = None, scratch: Path | None = None, allow_test: bool = False,
                 isolation: str | None = None, memory: Mapping[str, Any] | None = None, executor: str = "local",
                 address: str | None = None):
        if executor not in ("local", "ray"):
            raise RsiError(f"self-improvement runs its inner searches on 'local' or 'ray', not {executor!r}")
        self.problems = sorted(problems, key=lambda p: p.name)
        self.memory = memory  # handed to every inner search's improver (ctx.memory), if given
        if not self.problems:
            raise RsiError("a meta-utility needs at least one problem")
        if not allow_test and any(p.split == "test" for p in self.problems):
            raise RsiError("test problems are for reports only: a decision's meta-evaluator may not load them "
                             f"(asked for {[p.name for p in self.problems if p.split == 'test']})")
        self.budget = int(budget)
        self.limits = limits or UnitLimits()
        self.by_name = {p.name: p for p in self.problems}
        # the suite's evaluators run inside the pools' workers but are loaded by path, out of the
        # candidates' reach (their folders hold the reference programs): hashed here instead
        self._suite_hash = self._hash_suite()
        self.initial = {p.name: p.initial.read_text() for p in self.problems}
        self._own_scratch = scratch is None
        self.scratch = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="rsi-meta-"))
        env = {"RSI_META_PROBLEMS": os.pathsep.join(str(p.path) for p in self.problems)}
        extra = {} if isolation is None else {"isolation": isolation}
        self._pools: list[EvaluatorPool | RayPool] = []
        try:
            self.produce: EvaluatorPool | RayPool
            if executor == "ray":
                from ..sandbox.raypool import RayPool

                self.produce = RayPool(PRODUCE, workers, self.limits.search(self.budget), address=address, env=env,
                                       isolation=isolation or "full")
            else:
                self.produce = EvaluatorPool(PRODUCE, workers, self.limits.search(self.budget),
                                             self.scratch / "produce", env=env, **extra)
            self._pools.append(self.produce)
            rescore_limits = Limits(wall_seconds=30.0, cpu_seconds=20.0, memory_mb=self.limits.memory_mb)
            self.rescore = EvaluatorPool(RESCORE, 1, rescore_limits, self.scratch / "rescore", env=env, **extra)
            self._pools.append(self.rescore)
        except BaseException:
            self.close()
            raise
        self._jobs: dict[Hashable, _Job] = {}
        self._produce_queue: collections.deque[tuple[Hashable, int]] = collections.deque()
        self._rescore_queue: collections.deque[tuple[Hashable, int]] = collections.deque()
        self._tasks: dict[int, tuple[str, Hashable, int]] = {}  # pool task id -> (stage, key, unit index)
        self._next_task = 1
        self._finished: list[MetaResult] = []

    def units(self, split: str | None, seeds: Iterable[int]) -> list[tuple[SuiteProblem, int]]:
        """Every loaded problem of ``split`` (None: all) with every seed, problem-major."""
        seeds = list(seeds)
        return [(p, s) for p in self.problems if split is None or p.split == split for s in seeds]

    # ------------------------------------------------------------------ public API

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def submit(self, key: Hashable, source: str, units: list[tuple[SuiteProblem, int]],
               reference: MetaResult | None = None, neutral_after: int = 0) -> None:
        """Queue ``source`` on ``units``. With a ``reference`` measurement of the same units (its
        parent's, say) and ``neutral_after`` > 0: once that many searches have returned exactly
        what the reference's did (the same best program after the same number of evaluations)
        and none differed, the improver is taken to behave as the reference (the searches are
        deterministic given their seeds): its other units are not run, its result is the
        reference's, marked ``neutral_of``. An edit that changed nothing in that many whole
        searches can act on the others only through code those never reached."""
        if key in self._jobs:
            raise RsiError(f"{key!r} is already being measured; wait for its result or cancel it")
        if not units:
            raise RsiError("nothing to measure: no units (give problems and seeds)")
        unknown = sorted({p.name for p, _ in units if p.name not in self.by_name})
        if unknown:
            raise RsiError(f"problems not loaded in this meta-evaluator: {unknown}; build it with them")
        job = _Job(key, source, list(units))
        if reference is not None and reference.ok and neutral_after > 0:
            by_unit = {(u.problem, u.seed): u for u in reference.units}
            if all((p.name, s) in by_unit and by_unit[(p.name, s)].source is not None for p, s in units):
                job.reference, job.reference_units, job.neutral_after = reference, by_unit, neutral_after
        self._jobs[key] = job
        # seeds outermost: the first searches cover every problem, so a broken improver fails fast
        seeds = list(dict.fromkeys(s for _, s in units))
        order = sorted(range(len(units)), key=lambda i: (seeds.index(units[i][1]), i))
        self._produce_queue.extend((key, i) for i in order)

    def collect(self, timeout: float) -> list[MetaResult]:
        deadline = time.monotonic() + timeout
        while True:
            self._fill()
            busy = [pool for pool in self._pools if pool.in_flight]
            for pool in busy:
                for result in pool.collect(timeout=0.05 if len(busy) > 1 else max(0.0, deadline - time.monotonic())):
                    self._on_result(result)
            self._fill()
            if self._finished or time.monotonic() >= deadline or not self._jobs:
                done, self._finished = self._finished, []
                return done

    def measure(self, sources: dict[Hashable, str], units: list[tuple[SuiteProblem, int]], on_result=None,
                stop=None) -> dict[Hashable, MetaResult]:
        """Measure every improver of ``sources`` on ``units`` and wait; ``stop()`` true: give up
        (cancel everything, return what finished)."""
        for key, source in sources.items():
            self.submit(key, source, units)
        out: dict[Hashable, MetaResult] = {}
        others: list[MetaResult] = []  # results of earlier submissions: kept for the next collect
        while len(out) < len(sources):
            if stop is not None and stop():
                for key in sources:
                    self.cancel(key)
                break
            for result in self.collect(0.5):
                if result.key not in sources:
                    others.append(result)
                    continue
                out[result.key] = result
                if on_result:
                    on_result(result)
        self._finished = others + self._finished
        return out

    def cancel(self, key: Hashable) -> None:
        job = self._jobs.pop(key, None)
        if job is not None:
            self._drop_queued(key)

    def cancel_all(self) -> None:
        self._jobs.clear()
        self._produce_queue.clear()
        self._rescore_queue.clear()
        self._tasks.clear()
        for pool in self._pools:
            pool.cancel_all()

    def _hash_suite(self) -> str:
        return hashlib.sha256("".join(hash_evaluator_files(p.path) for p in self.problems).encode()).hexdigest()

    def verify_evaluator(self) -> str | None:
        """None if the files of both pools' evaluators (the meta-utility's and the problems') are
        as they were when the pools started, else what changed."""
        if self._hash_suite() != self._suite_hash:
            return ("the suite problems' evaluator files changed while the meta-evaluator ran: "
                    "measurements before and after do not compare")
        for pool in self._pools:
            check = getattr(pool, "verify_evaluator", None)
            changed = check() if check else None
            if changed:
                return changed
        return None

    def close(self) -> None:
        for pool in self._pools:
            pool.close()
        self._pools = []
        if self._own_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> MetaEvaluator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ scheduling

    def _task_id(self, stage: str, key: Hashable, index: int) -> int:
        tid = self._next_task
        self._next_task += 1
        self._tasks[tid] = (stage, key, index)
        return tid

    def _fill(self) -> None:
        while self._produce_queue and self.produce.in_flight < self.produce.workers:
            key, index = self._produce_queue.popleft()
            job = self._jobs.get(key)
            if job is None:
                continue
            problem, seed = job.units[index]
            unit = unit_context(problem.name, seed, self.budget, self.limits.eval_cpu, self.limits.eval_wall,
                                self.memory)
            self.produce.submit(EvalTask(self._task_id("produce", key, index), job.source, seed, context=unit))
        while self._rescore_queue and self.rescore.in_flight < self.rescore.workers:
            key, index = self._rescore_queue.popleft()
            job = self._jobs.get(key)
            if job is None:
                continue
            found = job.results[index]
            self.rescore.submit(EvalTask(self._task_id("rescore", key, index), found.source or "", 0,
                                         context={"problem": found.problem}))

    def _drop_queued(self, key: Hashable) -> None:
        self._produce_queue = collections.deque(item for item in self._produce_queue if item[0] != key)
        self._rescore_queue = collections.deque(item for item in self._rescore_queue if item[0] != key)

    def _on_result(self, result: EvalResult) -> None:
        task = self._tasks.pop(result.candidate_id, None)
        job = self._jobs.get(task[1]) if task is not None else None
        if task is None or job is None:
            return  # cancelled, or its improver already failed
        stage, _, index = task
        if stage == "produce":
            self._on_search(job, index, result)
        else:
            self._on_rescore(job, index, result)
        if job.key not in self._jobs:
            return  # finished as neutral
        if job.failed or len(job.results) == len(job.units) and all(
                u.status not in ("pending",) for u in job.results.values()):
            self._finish(job)

    def _on_search(self, job: _Job, index: int, result: EvalResult) -> None:
        problem, seed = job.units[index]
        unit = UnitResult(problem.name, seed, "pending", cpu_seconds=result.cpu_seconds,
                          wall_seconds=result.wall_seconds)
        job.results[index] = unit
        if result.status != "ok":
            unit.status, unit.error = result.status, (result.error or "")[-2000:]
            job.failed = result.status
            job.error = f"the search on {problem.name} (seed {seed}) failed ({result.status}): {_last_line(unit.error)}"
            return
        reply = parse_result(result.data, problem.name, seed)
        if isinstance(reply, str):
            unit.status, unit.error = "error", reply
            job.failed, job.error = "error", f"the search on {problem.name} (seed {seed}) returned no result: {reply}"
            return
        unit.source, unit.claimed, unit.evaluations = reply["source"], reply["claimed"], reply["evaluations"]
        unit.operators = reply["operators"]
        if job.reference is not None and self._neutral(job, unit):
            return
        initial = self.initial[problem.name]
        violation = edit_violation(initial, unit.source)
        if violation:
            unit.status, unit.error = "invalid", violation
            return
        flags = review(initial, unit.source, PROGRAM_PROTECTED, PROGRAM_SECRETS)
        if flags:
            unit.status, unit.flags = "flagged", [str(f) for f in flags]
            unit.error = "the returned program adds constructs a mutation of this program cannot contain"
            return
        self._rescore_queue.append((job.key, index))

    def _neutral(self, job: _Job, unit: UnitResult) -> bool:
        """Count ``unit`` against the reference; True (and the job finished) once it is neutral."""
        ref = job.reference_units[(unit.problem, unit.seed)]
        # the same best program is not enough: an improver that made other children (another operator
        # mix, tuning moves) and happened to end on the same best on these units is not its parent
        if job.differs or (unit.source, unit.evaluations, unit.operators) != (ref.source, ref.evaluations,
                                                                               ref.operators):
            job.differs = True
            return False
        job.same += 1
        if job.same < job.neutral_after:
            return False
        ran = {(u.problem, u.seed): u for u in job.results.values()}
        units = []
        for problem, seed in job.units:
            mine = ran.get((problem.name, seed))
            copy = dataclasses.replace(job.reference_units[(problem.name, seed)])
            copy.cpu_seconds = mine.cpu_seconds if mine is not None else 0.0
            copy.wall_seconds = mine.wall_seconds if mine is not None else 0.0
            copy.claimed = mine.claimed if mine is not None else copy.claimed
            units.append(copy)
        del self._jobs[job.key]
        self._drop_queued(job.key)
        split = "+".join(sorted({self.by_name[u.problem].split for u in units}))
        reference = job.reference
        assert reference is not None  # only jobs with a reference are checked for neutrality
        self._finished.append(MetaResult(job.key, split, self.budget, units, "ok", None,
                                         time.monotonic() - job.started, neutral_of=reference.key))
        return True

    def _on_rescore(self, job: _Job, index: int, result: EvalResult) -> None:
        unit = job.results[index]
        problem = self.by_name[unit.problem]
        unit.cpu_seconds += result.cpu_seconds
        if result.status != "ok":
            unit.status, unit.error = "unscored", f"re-evaluation {result.status}: {(result.error or '')[-500:]}"
            return
        unit.score = result.metrics["combined_score"]
        unit.gain = problem.normalised_gain(unit.score)
        unit.status = "ok"

    def _finish(self, job: _Job) -> None:
        del self._jobs[job.key]
        self._drop_queued(job.key)
        units = [job.results.get(i) or UnitResult(p.name, s, "cancelled") for i, (p, s) in enumerate(job.units)]
        for unit in units:
            if unit.status == "pending":
                unit.status = "cancelled"
        split = "+".join(sorted({self.by_name[u.problem].split for u in units}))
        self._finished.append(MetaResult(job.key, split, self.budget, units, job.failed or "ok", job.error,
                                         time.monotonic() - job.started))



def _last_line(text: str) -> str:
    """The last non-empty line of an error (a traceback's message), at most 500 characters."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return (lines[-1] if lines else "no message")[:500]
