"""The search core: ``ask()`` for a task, evaluate it anywhere, ``tell()`` the result.

    search = Search.create("examples/binpack", out="runs/bp")   # or Search.resume("runs/bp")
    while not search.done:
        task = search.ask()                 # an EvalTask, or None: wait for a result first
        if task is not None:
            executor.submit(task)
        for result in executor.collect(timeout=0.2):
            search.tell(result)
    summary = search.finish()

``rsi.run.drive`` is that loop with an executor, a stop file and progress; every driver in rsi (the
``rsi run`` command, the inner searches of self-improvement, ``rsi self-improve``) is a search and
an executor put together by it. The search does no evaluation, no signals, no printing and no I/O
but through its store, so it runs off the main thread and inside other programs.

**Protocol.** The first task is the seed (the initial program); nothing else is asked until its
result is told (a seed that fails stops the search with an error naming the fix). Each further task
is one child: the improver picks a step, the proposer writes the child, and children that do not
parse, edit outside the EVOLVE-BLOCKs or repeat an earlier program are recorded and never become
tasks. ``tell`` takes each result exactly once, in any order.

**Determinism.** Results are applied to the archive and the improver in ticket order, and the
``k``-th child is proposed knowing exactly the results of children up to ``k - parallel``
(``parallel`` = ``[run] workers``): a result that arrives early waits for the ones before it, and
``ask`` answers None while an earlier result is due. So a seed gives the same candidates whatever
the order in which results come back, on any machine with the same versions; the price is that a
worker may idle while a slow evaluation before its next task finishes (``benchmarks/ordering.py``
measured 8% of throughput with evaluations of 20-200 ms). ``[run] ordered = false`` applies
results as they arrive instead: a little faster, not repeatable.

**Proposals written ahead** (``[run] lookahead`` > 0; by default the concurrency of a model
proposer): a model writes the next children in threads while ``ask`` answers None and the driver
goes on telling results; in the order they were chosen (``[run] proposal_order = "chosen"``, the
same seed gives the same run) or as soon as they are written (``"written"``: a slow model call
holds up nothing, the run depends on timing and replays from its stored order). ``rsi.pipeline``
holds the pending proposals and decides the order of events; ``writing`` counts the proposals in
flight, ``wait_for_proposal`` blocks until one is written.

**Budgets** are engine state: evaluations, proposals, wall time, CPU seconds of evaluations, LLM
tokens and money are counted here, where no improver or proposer can reach them; the improver sees
a frozen snapshot (``rsi.improvers.ImproverContext``).

**Hooks** add work around the search: ``rsi.oversight.promotion.PromotionGate`` (re-evaluates
the best against the incumbent and adopts it or not), ``rsi.oversight.holdout.HeldOutReports``
(held-out results, reporting only). A hook may ask for extra evaluations (``request``); those
come out of ``ask`` before any new child and their results go back to the hook.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .archive import Archive
from .budgets import spent
from .errors import ProposalFailed, RsiError, RunError, SearchError
from .improvers import Improver, ImproverFailed, Outcome, Step, snapshot
from .memory import carried as carried_memory
from .memory import check as check_memory
from .memory import load_memory
from .memory import plain as plain_memory
from .oversight.adoption import review_candidate
from .pipeline import Drained, Pending, Pipeline, begin, default_lookahead, replay_schedule
from .problem import Problem, load_problem
from .program import code_size, fingerprint
from .proposal import check_step, defect, failed_fields, proposal_fields, request_for, request_seed
from .proposers.base import ProposalRequest, Proposer
from .proposers.improver_ops import improver_operators
from .registry import ALWAYS_AVAILABLE, make_proposer
from .sandbox.improver_host import close_improver, open_improver
from .sandbox.types import EvalResult, EvalTask, Kind
from .search_types import BaseHook, Hook, Overrides, Snapshot, Summary, Usage, eval_seed
from .settings import ProblemSettings
from .status import EVALUATED, Status, StopReason
from .storage import Candidate, Store
from .version import __version__

__all__ = ["SEED_ID", "BaseHook", "Hook", "Overrides", "Search", "Snapshot", "Summary", "Usage", "eval_seed"]

SEED_ID = 1
FEEDBACK_KEPT = 3  # failure reasons of a proposer's recent children, shown in its next requests
ARTIFACT_CHARS = 64_000  # the most of a candidate's artifacts (as JSON) kept in the run database
ABANDONS = (StopReason.INTERRUPTED, StopReason.IMPROVER_FAILED)  # stops that leave what is in flight pending


@dataclass
class _Child:
    """A child handed out by ``ask`` and not yet applied."""

    seq: int
    candidate_id: int
    step: Step
    parent_score: float | None
    source: str
    tokens: int = 0  # what its proposal spent
    cost: float = 0.0
    seconds: float = 0.0
    key: str | None = None  # the proposer's name for it (Proposal.key), handed back to its observe


class Search:
    """One search over a problem: a store, an archive, an improver and its proposers.

    Build it with ``Search.create(problem_or_folder, out=...)`` or ``Search.resume(run_folder)``;
    then ``ask`` / ``tell`` until ``done`` and ``finish`` (see the module docstring for the
    protocol). Read-only state: ``best``, ``archive`` (a copy), ``counts``, ``usage``,
    ``stop_reason``, ``in_flight``. ``stop(reason)`` ends it early (a driver's kill switch).
    """

    def __init__(self, store: Store, problem: Problem, settings: ProblemSettings, improver: Improver,
                 *, proposers: Mapping[str, Proposer] | None = None, hooks: Iterable[Hook] = (),
                 clock: Callable[[], float] = time.monotonic, memory: Mapping[str, Any] | None = None):
        improver.check_settings(settings.improver)
        self.store = store
        self.problem = problem
        self.settings = settings
        self.improver = improver
        self.run_dir = store.path.parent
        self.proposers: dict[str, Proposer] = dict(proposers) if proposers is not None else {
            name: make_proposer(name, settings.proposer.get(name, {}), problem.root)
            for name in settings.run.proposers}
        for name in ALWAYS_AVAILABLE:
            if name not in self.proposers:
                self.proposers[name] = make_proposer(name, settings.proposer.get(name, {}), problem.root)
        self._offered = set(self.proposers) - (set(ALWAYS_AVAILABLE) - set(settings.run.proposers))
        self.proposers.update(improver_operators(improver, settings.improver, lambda: self._improver_state))
        self.parallel = settings.run.workers
        self.ordered = settings.run.ordered
        self.lookahead = default_lookahead(settings.run.lookahead, self.proposers)
        self.written = settings.run.proposal_order == "written"  # proposals resolved as they are written
        self._clock = clock
        self._rng = random.Random(settings.run.seed)
        self._archive = Archive(settings.archive.features, settings.archive.bins, settings.archive.islands,
                                settings.archive.min_improvement)
        self._improver_state: dict[str, Any] = {}
        self._population: list[tuple[int, float]] = []
        self._evaluations = 0
        self._proposals = 0
        self._since_migration = 0
        self._usage = {"cpu_seconds": 0.0, "tokens": 0, "cost": 0.0}
        self._next_id = SEED_ID
        self._sources: dict[int, str] = {}
        self._stop: StopReason | None = None
        self._started = clock()
        self._evals_at_start = 0
        # tasks handed out and not yet applied
        self._tickets = 0
        self._seq = 0  # children handed out this session (the ordering's clock)
        self._children: dict[int, _Child] = {}  # ticket -> child
        self._order: deque[int] = deque()  # tickets of children, in the order they were asked
        self._arrived: dict[int, EvalResult] = {}
        self._requests: deque[tuple[EvalTask, Hook]] = deque()
        self._requested: dict[int, Hook] = {}  # ticket -> the hook that asked
        self._steps: deque[Step] = deque()  # further children of the improver's last step
        self._seed_state = "none"  # none -> asked -> applied
        self._resubmit: deque[Candidate] = deque()
        self._ended = False  # hooks' at_end called
        self._finished = False
        self.hooks: list[Hook] = list(hooks)
        self._failures: dict[str, deque[str]] = {}  # proposer -> why its recent children failed
        # proposals written ahead (lookahead > 0): chosen, not yet resolved; replaying a run whose
        # proposals resolved as written, where it resolved each model proposal
        self._pipeline = Pipeline(self.lookahead, self.written, replay_schedule(self.proposers) if self.written else {})
        self._description = problem.description
        self._memory = check_memory(memory, "the run's memory") if memory else None

    # --- creating and resuming --------------------------------------------------------------------
    @classmethod
    def create(cls, problem: Problem | str | Path, out: str | Path | None = None,
               overrides: Overrides | None = None, improver: Improver | str | Path | None = None,
               *, hooks: Iterable[Hook] = (), proposers: Mapping[str, Proposer] | None = None,
               meta: Mapping[str, Any] | None = None, memory: Mapping[str, Any] | None = None,
               trust_improver: bool = False, improver_memory: bool = True) -> Search:
        """A new search of ``problem`` (a ``Problem`` or a problem folder) in the run folder ``out``
        (default ``runs/<problem>-<time>``), which must not hold a run yet. An improver given as a
        file runs in a sandboxed host (``rsi.sandbox.improver_host``) unless it is one shipped with
        rsi or ``trust_improver`` (recorded in the audit trail as ``improver.trusted``). The run's
        memory: ``memory``, else ``[run] memory``, else the one the improver carries (its ``MEMORY``,
        ``rsi.memory.carried``; not with ``improver_memory`` False)."""
        problem = problem if isinstance(problem, Problem) else load_problem(problem)
        settings = (overrides or Overrides()).apply(problem.settings)
        improver = improver if isinstance(improver, Improver) else open_improver(improver, trusted=trust_improver)
        try:
            improver.check_settings(settings.improver)
        except RsiError:
            close_improver(improver)
            raise
        hosted = bool(getattr(improver, "hosted", False))
        try:
            if memory is None and settings.run.memory:
                file = Path(settings.run.memory)
                memory = load_memory(file if file.is_absolute() else problem.root / file)
            if memory is None and improver_memory:
                memory = carried_memory(improver.source, f"the improver {improver.path}")
        except RsiError:
            close_improver(improver)
            raise
        run_dir = Path(out) if out else Path("runs") / f"{problem.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        record = {
            "problem_dir": str(problem.root),
            "evaluator_path": str(problem.evaluator_path) if problem.evaluator_path else None,
            "settings": settings.model_dump(mode="json"),
            "improver_path": str(improver.path),
            "improver_source": improver.source,
            "improver_trusted": trust_improver and not hosted,
            "evaluator_hash": problem.evaluator_hash(),
            "rsi_version": __version__,
            "memory": plain_memory(check_memory(memory, "the run's memory")) if memory else None,
            **(meta or {}),
        }
        if proposers is None:  # built before the run folder exists: a bad [proposer.X] leaves nothing behind
            proposers = {name: make_proposer(name, settings.proposer.get(name, {}), problem.root)
                         for name in (*settings.run.proposers, *ALWAYS_AVAILABLE)}
        store = Store.create(run_dir, record)
        store.log("run.started", {
            "problem": str(problem.root), "seed": settings.run.seed,
            "settings_sha256": _sha(json.dumps(record["settings"], sort_keys=True)),
            "evaluator_sha256": record["evaluator_hash"], "improver_sha256": _sha(improver.source),
            "improver_sandboxed": hosted,
        })
        if trust_improver and not hosted:
            store.log("improver.trusted", {"improver": str(improver.path), "improver_sha256": _sha(improver.source),
                                           "why": "--trust-improver: runs in the engine's process, unsandboxed"},
                      actor="person")
        search = cls(store, problem, settings, improver, proposers=proposers, hooks=hooks, memory=memory)
        search._start_improver()
        for hook in search.hooks:
            hook.attach(search, None)
        return search

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: Overrides | None = None, *, problem: Problem | None = None,
               improver: Improver | None = None, hooks: Iterable[Hook] = (),
               proposers: Mapping[str, Proposer] | None = None) -> Search:
        """Continue the search stored in ``run_dir`` (after a stop, a crash or kill -9). The
        problem is reloaded from where it was (or given, e.g. one with a callable evaluator) and
        must have the same evaluator files."""
        store = Store.open(Path(run_dir))
        try:
            record = store.meta()
            if problem is None:
                problem = load_problem(record["problem_dir"])
            if problem.evaluator_hash() != record["evaluator_hash"]:
                raise RunError(f"the evaluator of {problem.root} changed since this run started; scores would not "
                               "be comparable. Restore it, or start a new run.")
            settings = (overrides or Overrides()).apply(ProblemSettings.model_validate(record["settings"]))
            if improver is None:
                improver_file = Path(record["improver_path"])
                if not improver_file.is_file() or improver_file.read_text() != record["improver_source"]:
                    improver_file = store.path.parent / "improver.py"
                    improver_file.write_text(record["improver_source"])
                improver = open_improver(improver_file, trusted=bool(record.get("improver_trusted")))
            search = cls(store, problem, settings, improver, proposers=proposers, hooks=hooks,
                         memory=record.get("memory"))  # the copy recorded at start
        except BaseException:
            store.close()
            raise
        state = store.load_state()
        if state is not None:
            search._restore(state)
        else:
            search._start_improver()
        for hook in search.hooks:
            hook.attach(search, (state or {}).get("hooks", {}).get(hook.name) if state else None)
        search._population = [(c.id, c.score) for c in store.candidates((Status.OK,)) if c.score is not None]
        search._next_id = store.next_id()
        if search._next_id > SEED_ID:
            seed = store.get(SEED_ID)
            if seed.status not in (Status.OK, Status.PENDING):
                store.close()
                raise RunError(f"{run_dir}: the initial program failed its evaluation ({seed.status}: {seed.error}), "
                               "so this run never started; fix the problem and start a new run")
            search._seed_state = "applied" if seed.status == Status.OK else "none"
        search._resubmit.extend(c for c in store.candidates((Status.PENDING,)) if c.id != SEED_ID)
        search._evals_at_start = search._evaluations
        store.log("run.resumed", {"overrides": (overrides or Overrides()).given(), "evaluations": search._evaluations})
        return search

    def _restore(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._archive = Archive.from_json(state["archive"])
        self._improver_state = state["improver"]
        self._proposals = state["attempts"]
        self._since_migration = state["since_migration"]
        self._evaluations = state["evaluations"]
        self._usage = state["usage"]

    def _state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        hooks = {h.name: s for h in self.hooks if (s := h.state()) is not None}
        return {
            "rng": [version, list(internal), gauss], "archive": self._archive.to_json(),
            "improver": self._improver_state, "attempts": self._proposals,
            "since_migration": self._since_migration, "evaluations": self._evaluations,
            "usage": self._usage, "hooks": hooks,
        }

    def _start_improver(self) -> None:
        self.improver.start(self._context())

    def _context(self):
        return snapshot(self._archive, self._rng, self._improver_state,
                        {name: p.operators for name, p in self.proposers.items()
                         if name in self._offered or name not in ALWAYS_AVAILABLE}, self.settings.improver,
                        self.settings.run.budget, self._evaluations, self._population, self._memory,
                        writing=tuple((p.step.proposer, p.step.operator) for p in self._pipeline.pending))

    # --- read-only state ---------------------------------------------------------------------------
    @property
    def stop_reason(self) -> StopReason | None:
        return self._stop

    @property
    def evaluations(self) -> int:
        return self._evaluations

    @property
    def archive(self) -> Archive:
        """A copy of the archive (changing it changes nothing here)."""
        return self._archive.copy()

    @property
    def best(self) -> Candidate | None:
        return self.store.best()

    @property
    def counts(self) -> dict[str, int]:
        return self.store.counts()

    @property
    def usage(self) -> Usage:
        return Usage(self._evaluations, self._proposals, self._usage["cpu_seconds"], int(self._usage["tokens"]),
                     self._usage["cost"], self._clock() - self._started)

    @property
    def in_flight(self) -> int:
        """Tasks handed out by ``ask`` whose results have not been applied yet."""
        return len(self._children) + len(self._requested)

    @property
    def done(self) -> bool:
        """True once the search stopped and nothing it handed out (or its hooks asked for at the
        end) is still owed a result."""
        if self._stop in ABANDONS:
            return True
        return (self._stop is not None and self._ended and not self._children and not self._requested
                and not self._requests and not self._pipeline.pending)

    @property
    def writing(self) -> int:
        """Proposals written ahead and not resolved yet (``[run] lookahead``); while ``ask`` waits for
        one, a driver with nothing to collect calls ``wait_for_proposal``."""
        return len(self._pipeline)

    def wait_for_proposal(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until the proposal ``ask`` waits for is written (the
        oldest; resolved as written: any). False if there is none (``ask`` has something to do, or
        waits for a result instead)."""
        return self._pipeline.wait(timeout)

    def source(self, candidate_id: int) -> str:
        """The program of a stored candidate ('' for one that has none)."""
        if candidate_id not in self._sources:
            self._sources[candidate_id] = self.store.get(candidate_id).source or ""
        return self._sources[candidate_id]

    def snapshot(self) -> Snapshot:
        counts = self.store.counts()
        elapsed = self._clock() - self._started
        done_here = self._evaluations - self._evals_at_start
        rate = done_here / elapsed if elapsed > 0 else 0.0
        evaluated = sum(counts.get(s, 0) for s in EVALUATED)
        failed = counts.get(Status.ERROR, 0) + counts.get(Status.TIMEOUT, 0)
        run = self.settings.run
        left = [(run.budget - self._evaluations) / rate] if rate > 0 else []
        if run.time is not None:
            left.append(max(0.0, run.time - elapsed))
        best = self._archive.best()
        return Snapshot(
            evaluations=self._evaluations, budget=run.budget,
            best_score=best.score if best else None, best_id=best.id if best else None,
            evals_per_second=rate, failed_share=failed / evaluated if evaluated else 0.0,
            elapsed=elapsed, time_left=min(left) if left else None, counts=counts,
            waiting=", ".join(f"approval of #{r['candidate_id']}" for r in self.store.promotions("pending")) or None,
            tokens=int(self._usage["tokens"]), cost=float(self._usage["cost"]),
        )

    # --- control -------------------------------------------------------------------------------------
    def stop(self, reason: StopReason | str, detail: str | None = None) -> None:
        """Stop proposing (the first reason given is kept, but for a spent budget, which any other
        reason replaces). ``INTERRUPTED`` abandons what is in flight (those candidates stay pending
        and are evaluated on resume); other reasons let it finish."""
        reason = StopReason(reason)
        if reason in ABANDONS or self._stop in (None, StopReason.BUDGET):
            first = self._stop is None
            self._stop = reason
            if reason is StopReason.EVALUATOR_CHANGED and first:
                self.store.log("run.evaluator_changed", {"problem": detail})
            if reason is StopReason.IMPROVER_FAILED:
                self.store.log("improver.failed", {"improver": str(self.improver.path), "error": (detail or "")[:4000]})
        if reason in ABANDONS:
            self._children.clear()
            self._order.clear()
            self._arrived.clear()
            self._requests.clear()
            self._requested.clear()
            self._discard_pending()
        else:
            self._apply_due()
            self._maybe_end()

    def extend(self, budget: int) -> None:
        """Raise the evaluation budget and let a search stopped by its budget go on."""
        if budget < self.settings.run.budget:
            raise SearchError(f"extend() can only raise the budget ({self.settings.run.budget}), not lower it")
        self.settings.run.budget = budget
        if self._stop is StopReason.BUDGET:
            self._stop = None
            self._ended = False

    def enqueue(self, step: Step) -> None:
        """A step decided outside the improver (the self-improvement run's own move), taken before
        the improver is asked for its next; checked as the improver's are. Not saved: a run resumed
        before taking it does not take it unless it is enqueued again."""
        self._check_step(step)
        self._steps.append(step)

    def use_improver(self, improver: Improver, *, reset: bool = True) -> None:
        """Let ``improver`` make the next steps (self-improvement adopts improvers this way);
        ``reset``: it starts with a fresh state (its own ``start``), else it keeps the saved one."""
        improver.check_settings(self.settings.improver)
        if improver is not self.improver:
            close_improver(self.improver)
        self.improver = improver
        self.proposers = {**{n: p for n, p in self.proposers.items() if n != "improver"},
                          **improver_operators(improver, self.settings.improver, lambda: self._improver_state)}
        self._steps.clear()
        if reset:
            self._improver_state = {}
            self._start_improver()

    def request(self, hook: Hook, candidate_id: int, kind: Kind, seed: int) -> None:
        """A hook asks for an extra evaluation of a stored candidate; its result goes to
        ``hook.on_result``. Requests come out of ``ask`` before any new child."""
        self._requests.append((EvalTask(candidate_id, self.source(candidate_id), seed, kind), hook))

    # --- ask ------------------------------------------------------------------------------------------
    def ask(self) -> EvalTask | None:
        """The next task to evaluate, or None: nothing to do until a result is told (or ``done``)."""
        if self._finished:
            raise SearchError("this search is finished; resume it with Search.resume(run_dir) to go on")
        self._maybe_end()
        if self._requests:
            request, hook = self._requests.popleft()
            ticketed = self._ticketed(request)
            self._requested[ticketed.ticket] = hook
            return ticketed
        if self._stop is not None:
            return self._ask_pipelined() if self._pipeline.pending else None
        if self._seed_state == "none":
            return self._ask_seed()
        if self._seed_state == "asked":
            return None
        if self._resubmit:
            return self._child_task(self._resubmit.popleft())
        if self.lookahead:
            return self._ask_pipelined()
        self._apply_due()
        if self._check_budgets():
            self._apply_due()
            self._maybe_end()
            return self.ask() if self._requests else None
        if self.ordered and self._order and self._children[self._order[0]].seq <= self._seq + 1 - self.parallel:
            return None  # an earlier result is due before the next child may be proposed
        if not self.ordered and len(self._children) >= self.parallel:
            return None  # as many children in flight as there are workers
        while self._stop is None:
            task = self._propose()
            if task is not None:
                return task
            self._check_budgets()
        self._apply_due()
        self._maybe_end()
        return self.ask() if self._requests else None

    def _ask_pipelined(self) -> EvalTask | None:
        """``ask`` with proposals written ahead: ``rsi.pipeline`` orders the events."""
        answer = self._pipeline.ask(self)
        if not isinstance(answer, Drained):
            return answer
        self._apply_due()
        self._maybe_end()
        return self.ask() if self._requests else None

    def _chosen(self) -> int:
        return self._proposals

    def _may_choose(self) -> bool:
        """Whether the next proposal may be chosen: ordered, every result it must know (up to child
        ``T + 1 - parallel``) is applied now."""
        return not self.ordered or self._apply_through(self._seq + 1 - self.parallel)

    def _out_of_time(self) -> bool:
        """The time limit, checked while a model writes (a stop then, not after its call)."""
        limit = self.settings.run.time
        if limit is None or self._clock() - self._started < limit:
            return False
        self._stop = StopReason.TIME
        self.store.log("budget.reached", {"budget": "wall_seconds", "limit": limit})
        return True

    def _apply_through(self, limit: int) -> bool:
        """Apply arrived results in ticket order up to child number ``limit``; True when every
        child up to it is applied."""
        while self._order and self._children[self._order[0]].seq <= limit:
            ticket = self._order[0]
            if ticket not in self._arrived:
                return False
            self._order.popleft()
            self._apply(self._children.pop(ticket), self._arrived.pop(ticket))
        return True

    def _discard_pending(self) -> None:
        self._pipeline.clear()

    def _ticketed(self, task: EvalTask) -> EvalTask:
        self._tickets += 1
        return EvalTask(task.candidate_id, task.source, task.seed, task.kind, self._tickets, task.context)

    def _ask_seed(self) -> EvalTask:
        source = self.problem.initial_source
        if self._next_id > SEED_ID:  # stored before a crash, never evaluated
            self._seed_state = "asked"
            return self._hand_out(SEED_ID, Step(parent=SEED_ID), None, self.source(SEED_ID),
                                  eval_seed(self.settings.run.seed, SEED_ID))
        cid = self._insert({
            "proposer": "seed", "operator": None, "rationale": "the initial program", "source": source,
            "diff": "", "fingerprint": fingerprint(source), "status": Status.PENDING,
            "eval_seed": eval_seed(self.settings.run.seed, SEED_ID), "island": 0,
        }, events=[("candidate.proposed", {"proposer": "seed"})])
        self._seed_state = "asked"
        return self._hand_out(cid, Step(parent=cid), None, source, eval_seed(self.settings.run.seed, cid))

    def _child_task(self, cand: Candidate) -> EvalTask:
        """A child stored before a crash but never evaluated: evaluate it now."""
        parent_score = self.store.get(cand.parent_id).score if cand.parent_id else None
        step = Step(parent=cand.parent_id or cand.id, inspirations=cand.inspiration_ids, island=cand.island,
                    proposer=cand.proposer, operator=cand.operator)
        return self._hand_out(cand.id, step, parent_score, cand.source or "",
                              cand.eval_seed or eval_seed(self.settings.run.seed, cand.id))

    def _hand_out(self, cid: int, step: Step, parent_score: float | None, source: str, seed: int) -> EvalTask:
        self._seq += 1
        task = self._ticketed(EvalTask(cid, source, seed))
        self._children[task.ticket] = _Child(self._seq, cid, step, parent_score, source)
        self._order.append(task.ticket)
        return task

    def _check_budgets(self, reserved: int = 0) -> bool:
        """Set the stop reason if a budget is spent; True if the search stops proposing (for now:
        ``reserved`` proposals being written count against the evaluation budget)."""
        if self._stop is not None:
            return True
        run = self.settings.run
        if self._evaluations + len(self._children) + reserved >= run.budget:
            if self._evaluations >= run.budget:
                self._stop = StopReason.BUDGET
                self.store.log("budget.reached", {"budget": "evaluations", "limit": run.budget})
            return True  # every remaining evaluation is in flight
        reached = spent(run, elapsed=self._clock() - self._started, usage=self._usage, proposals=self._proposals)
        if reached is None:
            return False
        self._stop, payload = reached
        if payload is not None:
            self.store.log("budget.reached", payload)
        return True

    def _next_step(self) -> Step:
        if self._steps:
            return self._steps.popleft()
        step = self.improver.next_step(self._context())
        self._check_step(step)
        self._steps.extend([step] * (step.children - 1))
        return step

    def _check_step(self, step: Step) -> None:
        check_step(step, f"the improver {self.improver.path} returned {step}", self.proposers,
                   self._archive.n_islands, lambda cid: SEED_ID <= cid < self._next_id and bool(self.source(cid)))

    def _propose(self) -> EvalTask | None:
        """One proposal: a task for a child worth evaluating, or None (recorded as invalid,
        rejected or duplicate, and told to the improver)."""
        return self._resolve(self._choose())

    def _choose(self, ahead: bool = False) -> Pending:
        """The improver's step and the proposer's request; the proposal is written now, or, ahead
        and by a proposer that calls out (``concurrency``), in a thread (``rsi.pipeline.begin``)."""
        self._proposals += 1
        step = self._next_step()
        parent = self.store.get(step.parent)
        return begin(step, parent, self.proposers[step.proposer], self._request(step, parent), ahead)

    def _resolve(self, pending: Pending, hand_out: bool = True) -> EvalTask | None:
        """A written proposal: a task for a child worth evaluating, or None (recorded as invalid,
        rejected or duplicate, and told to the improver; ``hand_out`` False, after a stop: a valid
        child is stored pending, evaluated when the run is resumed)."""
        step, parent = pending.step, pending.parent
        parent_source = parent.source or ""
        base: dict[str, Any] = {"parent_id": parent.id, "inspiration_ids": list(step.inspirations),
                                "island": step.island, "proposer": step.proposer, "operator": step.operator,
                                "propose_seed": pending.seed, "resolved_after": self._proposals}
        proposal = pending.outcome()
        if isinstance(proposal, ProposalFailed):
            self._spend(proposal.tokens, proposal.cost)
            self._remember_failure(step.proposer, f"proposal failed: {proposal}")
            self._settle(step, parent, {**base, **failed_fields(proposal)})
            return None
        self._spend(proposal.tokens, proposal.cost)
        base.update(proposal_fields(proposal, parent_source))
        found = defect(parent_source, proposal.source)
        if found is not None:
            status, error, feedback = found
            self._proposer_observe(step.proposer, proposal.key, None)
            self._remember_failure(step.proposer, feedback)
            self._settle(step, parent, {**base, "status": status, "error": error})
            return None
        duplicate_of = self.store.first_with_fingerprint(base["fingerprint"])
        if duplicate_of is not None:
            self._remember_failure(step.proposer, f"the child repeats candidate {duplicate_of}")
            self._proposer_observe(step.proposer, proposal.key, self.store.get(duplicate_of).score)
            self._settle(step, parent, {**base, "status": Status.DUPLICATE, "source": None, "diff": None,
                                               "duplicate_of": duplicate_of,
                                               "error": f"same program as candidate {duplicate_of}"})
            return None
        cid = self._next_id
        seed = eval_seed(self.settings.run.seed, cid)
        flags = [asdict(f) for f in review_candidate(self.problem, parent_source, proposal.source)]
        events = [("candidate.proposed", {"parent": parent.id, "proposer": step.proposer, "operator": proposal.operator,
                                          "rationale": proposal.rationale, "diff": base["diff"][:20_000]})]
        if flags:
            events.append(("candidate.flagged", {"flags": flags}))
        self._insert({**base, "status": Status.PENDING, "eval_seed": seed, "flags": flags or None}, events=events)
        self._sources[cid] = proposal.source
        if not hand_out:
            return None
        task = self._hand_out(cid, step, parent.score, proposal.source, seed)
        self._children[task.ticket] = dataclasses.replace(self._children[task.ticket], tokens=proposal.tokens,
                                                          cost=proposal.cost, seconds=proposal.seconds,
                                                          key=proposal.key)
        return task

    def _request(self, step: Step, parent: Candidate) -> ProposalRequest:
        """What the proposer is shown for this child."""
        return request_for(step, parent, [self.store.get(i) for i in step.inspirations], rng=self._rng,
                           seed=request_seed(self.settings.run.seed, self._proposals), problem=self._description,
                           feedback=self._failures.get(step.proposer, ()))

    def _proposer_observe(self, name: str, key: str | None, score: float | None) -> None:
        """Tell a proposer that learns from its children (``Proposal.key``) what one of them scored."""
        observe = getattr(self.proposers.get(name), "observe", None)
        if key is not None and callable(observe):
            observe(key, score)

    def _spend(self, tokens: int, cost: float) -> None:
        self._usage["tokens"] += tokens
        self._usage["cost"] += cost

    def _remember_failure(self, proposer: str, reason: str) -> None:
        """Why a proposer's child failed: shown to it in its next requests (the last few)."""
        self._failures.setdefault(proposer, deque(maxlen=FEEDBACK_KEPT)).append(reason[:500])

    def _settle(self, step: Step, parent: Candidate, fields: dict[str, Any]) -> None:
        """Record a child that is never evaluated, and tell the improver."""
        cid = self._next_id
        best = self._archive.best()
        failure = self._observe(step, Outcome(
            cid, fields["status"], None, parent.score, best.score if best else None, fields.get("tokens") or 0,
            fields.get("cost") or 0.0, fields.get("propose_seconds") or 0.0))
        self._insert(fields, events=[("candidate.proposed", {"parent": parent.id, "status": fields["status"],
                                                             "reason": fields.get("error")})])
        if failure is not None:
            raise failure

    def _observe(self, step: Step, outcome: Outcome) -> ImproverFailed | None:
        """Tell the improver; its failure is returned, to be raised once the result is stored."""
        try:
            self.improver.observe(self._context(), step, outcome)
        except ImproverFailed as exc:
            return exc
        return None

    def _insert(self, fields: dict[str, Any], events: list[tuple[str, dict[str, Any]]]) -> int:
        cid = self._next_id
        self._next_id += 1
        self.store.insert_candidate({"id": cid, **fields}, state=self._state(), events=events)
        return cid

    # --- tell -----------------------------------------------------------------------------------------
    def tell(self, result: EvalResult) -> list[Outcome]:
        """Hand back the result of a task from ``ask``. Returns the outcomes of the children applied
        now: this one's, unless an earlier result is still due (then it waits, and comes out of a
        later ``tell`` or ``ask``), and any later ones it released."""
        ticket = result.ticket
        if ticket in self._requested:
            hook = self._requested.pop(ticket)
            hook.on_result(self, result)
            self._maybe_end()
            return []
        child = self._children.get(ticket)
        if child is None or ticket in self._arrived:
            raise SearchError(f"tell() got a result with ticket {ticket} (candidate {result.candidate_id}), which is "
                              "not a task this search handed out and is waiting for: pass each result from ask()'s "
                              "tasks exactly once, with the task's ticket (executors copy it)")
        if result.candidate_id != child.candidate_id:
            raise SearchError(f"tell(): ticket {ticket} is candidate {child.candidate_id}, the result says "
                              f"{result.candidate_id}; results must come from the task with that ticket")
        self._arrived[ticket] = result
        if child.candidate_id == SEED_ID and self._seed_state == "asked":
            return self._apply_seed(ticket)
        outcomes = self._apply_due()
        self._maybe_end()
        return outcomes

    def _apply_due(self) -> list[Outcome]:
        """Apply arrived results in ticket order, up to what the next child may know (unordered:
        every arrived result, in the order they arrived)."""
        outcomes: list[Outcome] = []
        if self.lookahead and self.ordered and self._proposing():
            return outcomes  # applied by ask, just before the next proposal is chosen (_ask_ahead)
        if not self.ordered:
            for ticket in list(self._arrived):
                outcomes.append(self._apply(self._children.pop(ticket), self._arrived.pop(ticket)))
                self._order.remove(ticket)
            return outcomes
        limit = self._seq + 1 - self.parallel if self._proposing() else None
        while self._order and self._order[0] in self._arrived:
            child = self._children[self._order[0]]
            if limit is not None and child.seq > limit:
                break
            ticket = self._order.popleft()
            outcomes.append(self._apply(child, self._arrived.pop(ticket)))
            del self._children[ticket]
        return outcomes

    def _proposing(self) -> bool:
        """Whether more children may still be asked for (otherwise results apply as they come)."""
        run = self.settings.run
        return self._stop is None and self._evaluations + len(self._children) < run.budget

    def _apply_seed(self, ticket: int) -> list[Outcome]:
        result = self._arrived.pop(ticket)
        child = self._children.pop(ticket)
        self._order.remove(ticket)
        outcome = self._apply(child, result)
        if Status(result.status) is not Status.OK:
            self._finished = True
            raise RunError(
                f"the initial program fails its own evaluation ({result.status}), so the run cannot start.\n"
                f"{result.error or ''}\nFix {self.problem.root / 'initial.py'} or "
                f"{self.problem.evaluator_path or 'the evaluator'}, then start again."
            )
        self._seed_state = "applied"
        self._check_features(result.metrics)
        return [outcome]

    def _features(self, source: str, metrics: dict[str, float]) -> tuple[float, ...]:
        return tuple(float(code_size(source)) if name == "code_size" else float(metrics.get(name, 0.0))
                     for name in self._archive.features)

    def _apply(self, child: _Child, result: EvalResult) -> Outcome:
        cid = child.candidate_id
        status = Status(result.status)
        best = self._archive.best()
        best_before = best.score if best else None
        score = result.metrics.get("combined_score") if status is Status.OK else None
        outcome = Outcome(cid, status, score, child.parent_score, best_before, child.tokens, child.cost,
                          child.seconds + result.wall_seconds)
        fields: dict[str, Any] = {
            "status": status, "error": result.error, "score": score, "metrics": result.metrics,
            "stdout": result.stdout, "stderr": result.stderr, "evaluated_at": time.time(),
            "wall_seconds": result.wall_seconds, "cpu_seconds": result.cpu_seconds,
        }
        if result.data is not None and result.kind == "train":
            fields["artifacts"] = stored_artifacts(result.data)
        events: list[tuple[str, dict[str, Any]]] = [
            ("candidate.evaluated", {"status": status, "score": score, "error": (result.error or "")[:200]})]
        self._evaluations += 1
        self._usage["cpu_seconds"] += result.cpu_seconds
        if score is not None:
            features = self._features(child.source, result.metrics)
            fields["features"] = dict(zip(self._archive.features, features, strict=True))
            islands = range(self._archive.n_islands) if cid == SEED_ID else [child.step.island]
            placed = [self._archive.add(cid, island, score, features, code_size(child.source)) for island in islands]
            self._population.append((cid, score))
            if any(placed):
                events.append(("candidate.archived", {"island": child.step.island,
                                                      "cell": list(self._archive.cell_of(features))}))
        else:
            self._sources.pop(cid, None)
            lines = [line for line in (result.error or status).strip().splitlines() if line.strip()]
            self._remember_failure(child.step.proposer, f"the child's evaluation failed ({status}): "
                                                        f"{lines[-1] if lines else status}")
        self._since_migration += 1
        if self._since_migration >= self.settings.archive.migration_interval:
            self._since_migration = 0
            moves = self._archive.migrate()
            if moves:
                events.append(("archive.migrated", {"moves": moves}))
        failure = None
        if cid != SEED_ID:
            failure = self._observe(child.step, outcome)
            self._proposer_observe(child.step.proposer, child.key, score)
        self.store.update_candidate(cid, fields, state=self._state(), events=events)
        if failure is not None:
            raise failure
        for hook in self.hooks:
            hook.after(self, outcome)
        return outcome

    def _check_features(self, metrics: dict[str, float]) -> None:
        missing = [f for f in self._archive.features if f != "code_size" and f not in metrics]
        if not missing:
            return
        if "features" in self.problem.settings.archive.model_fields_set:
            raise RunError(
                f"problem.toml asks for archive features {missing}, but evaluate() returned no such metric "
                f"(it returned {sorted(metrics)}); return them from evaluate() or change [archive] features"
            )
        # defaults: drop the behaviour descriptor the evaluator does not provide
        kept = [f for f in self._archive.features if f not in missing] or ["code_size"]
        old = self._archive
        self._archive = Archive(kept, old.bins, old.n_islands, old.min_improvement)
        for island in range(old.n_islands):
            for elite in old.elites(island):
                cand = self.store.get(elite.id)
                self._archive.add(elite.id, island, elite.score, self._features(cand.source or "", cand.metrics),
                                  elite.size)
        self.settings.archive.features = kept

    # --- the end --------------------------------------------------------------------------------------
    def _maybe_end(self) -> None:
        """Once stopped with every child in, let the hooks make their final requests (once)."""
        if (self._stop is None or self._ended or self._children or self._pipeline.pending
                or self._stop in ABANDONS):
            return
        self._ended = True
        if self._stop.checks_at_end:
            for hook in self.hooks:
                hook.at_end(self)

    def finish(self) -> Summary:
        """Record the end of the search (``run.stopped``) and say how it ended. Call once ``done``
        (or after ``stop(INTERRUPTED)``); a finished search can be resumed from its folder."""
        reason = self._stop or StopReason.BUDGET
        best = self.store.best()
        self.store.log("run.stopped", {"reason": reason, "evaluations": self._evaluations,
                                       "best_id": best.id if best else None,
                                       "best_score": best.score if best else None})
        self._finished = True
        self._discard_pending()  # nothing is pending here but after an interrupt
        close_improver(self.improver)
        seed = self.store.get(SEED_ID) if self.store.next_id() > SEED_ID else None  # None: stopped before it
        return Summary(self.run_dir, reason, self._evaluations, best, seed, self.store.counts())

    def close(self) -> None:
        self._discard_pending()
        close_improver(self.improver)
        self.store.close()


def stored_artifacts(data: object) -> object:
    """An evaluation's artifacts as stored with the candidate: as they are, or, when their JSON is
    longer than ``ARTIFACT_CHARS``, its head with a note of the full length."""
    text = json.dumps(data)
    if len(text) <= ARTIFACT_CHARS:
        return data
    return {"rsi_cut": f"artifacts of {len(text)} characters as JSON; the first {ARTIFACT_CHARS} kept",
            "head": text[:ARTIFACT_CHARS]}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
