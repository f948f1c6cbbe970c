"""The loop: ask the improver, ask a proposer, evaluate in isolation, store, repeat; and resume.

A Run owns one store, one evaluator pool, one archive and one improver. Everything it learns is
committed as it happens together with the loop state (RNG, archive, improver state), so that
``Run.resume`` continues a run killed at any moment, with no evaluated candidate lost.
"""

from __future__ import annotations

import json
import random
import signal
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .archive import Archive
from .errors import ProposalFailed, RunError
from .improvers import Improver, ImproverContext, Outcome, Step, load_improver
from .oversight import adoption
from .problem import Problem, load_problem
from .program import code_size, edit_violation, fingerprint, syntax_error, unified_diff
from .proposers.mutate import MutateProposer
from .sandbox.pool import EvaluatorPool
from .sandbox.scratch import new_scratch
from .sandbox.types import EvalResult, EvalTask, Limits
from .settings import ProblemSettings
from .storage import EVALUATED_STATUSES, Candidate, Store

SEED_ID = 1
STOP_FILE = "STOP"


@dataclass
class Overrides:
    """Command-line values that take precedence over problem.toml (None: keep the setting)."""

    budget: int | None = None
    time: float | None = None
    seed: int | None = None
    workers: int | None = None

    def apply(self, settings: ProblemSettings) -> ProblemSettings:
        run = settings.run.model_copy(
            update={k: v for k, v in vars(self).items() if v is not None}
        )
        return settings.model_copy(update={"run": run})


@dataclass
class Snapshot:
    """What the progress display shows; produced by the loop after each result."""

    evaluations: int
    budget: int
    best_score: float | None
    best_id: int | None
    evals_per_second: float
    failed_share: float
    elapsed: float
    time_left: float | None
    counts: dict[str, int]
    waiting: str | None = None


@dataclass
class RunSummary:
    run_dir: Path
    stop_reason: str
    evaluations: int
    best: Candidate | None
    seed: Candidate
    counts: dict[str, int] = field(default_factory=dict)


def eval_seed(run_seed: int, candidate_id: int, kind: str = "train") -> int:
    """Per-task evaluation seed: a function of the run seed and the candidate only."""
    salt = 0 if kind == "train" else 7919
    return (run_seed * 1_000_003 + candidate_id * 65_537 + salt) % (2**31 - 1)


class Run:
    def __init__(self, store: Store, problem: Problem, settings: ProblemSettings, improver: Improver):
        self.store = store
        self.problem = problem
        self.settings = settings
        self.improver = improver
        self.run_dir = store.path.parent
        self.proposers = {"mutate": MutateProposer()}
        self.rng = random.Random(settings.run.seed)
        self.archive = Archive(settings.archive.features, settings.archive.bins, settings.archive.islands)
        self.ctx = ImproverContext(
            archive=self.archive,
            rng=self.rng,
            state={},
            operators={name: p.operators for name, p in self.proposers.items()},
            settings=dict(settings.improver),
            budget=settings.run.budget,
        )
        self.attempts = 0
        self.since_migration = 0
        self.next_id = SEED_ID
        self.sources: dict[int, str] = {}
        self.in_flight: dict[int, tuple[Step, float | None]] = {}  # candidate id -> (step, parent score)
        self.holdout_queue: list[int] = []
        self.holdout_errors: dict[int, str] = {}
        self.stop_reason: str | None = None
        self.usage = {"cpu_seconds": 0.0, "tokens": 0, "cost": 0.0}
        self.last_promotion_try = 0
        self._started = time.monotonic()

    # --- creating and resuming ----------------------------------------------------------------
    @classmethod
    def create(cls, problem_dir: str | Path, out: str | Path | None = None, overrides: Overrides | None = None,
               improver_path: str | Path | None = None) -> "Run":
        problem = load_problem(problem_dir)
        settings = (overrides or Overrides()).apply(problem.settings)
        improver = load_improver(improver_path)
        run_dir = Path(out) if out else Path("runs") / f"{problem.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        meta = {
            "problem_dir": str(problem.root),
            "settings": settings.model_dump(mode="json"),
            "improver_path": str(improver.path),
            "improver_source": improver.source,
            "evaluator_hash": problem.evaluator_hash(),
            "rsi_version": __version__,
        }
        store = Store.create(run_dir, meta)
        store.log("run.started", {
            "problem": str(problem.root), "seed": settings.run.seed,
            "settings_sha256": _sha(json.dumps(meta["settings"], sort_keys=True)),
            "evaluator_sha256": meta["evaluator_hash"], "improver_sha256": _sha(improver.source),
        })
        run = cls(store, problem, settings, improver)
        run.improver.start(run.ctx)
        return run

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: Overrides | None = None) -> "Run":
        store = Store.open(Path(run_dir))
        meta = store.meta()
        problem = load_problem(meta["problem_dir"])
        if problem.evaluator_hash() != meta["evaluator_hash"]:
            raise RunError(
                f"the evaluator files in {problem.root} changed since this run started; scores would not be "
                "comparable. Restore them, or start a new run."
            )
        settings = (overrides or Overrides()).apply(ProblemSettings.model_validate(meta["settings"]))
        improver_file = Path(meta["improver_path"])
        if not improver_file.is_file() or improver_file.read_text() != meta["improver_source"]:
            improver_file = store.path.parent / "improver.py"
            improver_file.write_text(meta["improver_source"])
        run = cls(store, problem, settings, load_improver(improver_file))
        state = store.load_state()
        if state is not None:
            run.rng.setstate(_rng_state_from_json(state["rng"]))
            run.archive = Archive.from_json(state["archive"])
            run.ctx.archive = run.archive
            run.ctx.state = state["improver"]
            run.attempts = state["attempts"]
            run.since_migration = state["since_migration"]
            run.ctx.evaluations = state["evaluations"]
            run.usage = state["usage"]
            run.last_promotion_try = state["last_promotion_try"]
        else:
            run.improver.start(run.ctx)
        run.ctx.population = [(c.id, c.score) for c in store.candidates(("ok",))]
        run.next_id = (store.conn.execute("SELECT MAX(id) FROM candidates").fetchone()[0] or 0) + 1
        store.log("run.resumed", {"overrides": {k: v for k, v in vars(overrides or Overrides()).items() if v is not None},
                                  "evaluations": run.ctx.evaluations})
        return run

    # --- state -----------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "rng": _rng_state_to_json(self.rng.getstate()),
            "archive": self.archive.to_json(),
            "improver": self.ctx.state,
            "attempts": self.attempts,
            "since_migration": self.since_migration,
            "evaluations": self.ctx.evaluations,
            "usage": self.usage,
            "last_promotion_try": self.last_promotion_try,
        }

    def _source(self, cid: int) -> str:
        if cid not in self.sources:
            self.sources[cid] = self.store.get(cid).source or ""
        return self.sources[cid]

    def _features(self, source: str, metrics: dict[str, float]) -> tuple[float, ...]:
        return tuple(float(code_size(source)) if name == "code_size" else float(metrics.get(name, 0.0))
                     for name in self.archive.features)

    def _limits(self) -> Limits:
        ev = self.settings.evaluator
        return Limits(wall_seconds=ev.timeout, cpu_seconds=ev.cpu_seconds or 2 * ev.timeout,
                      memory_mb=ev.memory_mb, output_bytes=ev.output_bytes)

    # --- the loop ----------------------------------------------------------------------------
    def execute(self, on_progress: Callable[[Snapshot], None] | None = None) -> RunSummary:
        """Run until the budget, the time limit, a STOP file, `rsi stop` or Ctrl-C."""
        self._started = time.monotonic()
        self._evals_at_start = self.ctx.evaluations
        scratch = new_scratch()
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self._on_signal)
        try:
            with EvaluatorPool(self.problem.evaluator_path, self.settings.run.workers, self._limits(), scratch) as pool:
                self.pool = pool
                self.store.set_meta("score_mode", pool.score_mode)
                self.store.set_meta("sandbox_level", pool.sandbox.get("level", "unknown"))
                if self.next_id == SEED_ID:
                    self._evaluate_seed(pool)
                for cand in self.store.candidates(("pending",)):
                    self._resubmit(pool, cand)
                self._loop(pool, on_progress)
                if self.stop_reason == "interrupted":
                    pool.cancel_all()
                else:
                    self._drain(pool)
                    if self.stop_reason not in ("evaluator changed", "stop requested"):
                        self._try_promotion(pool)
                        self._final_holdout(pool)
                        self._recheck_best()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(scratch, ignore_errors=True)
        return self._finish()

    def _on_signal(self, signum, frame) -> None:
        if self.stop_reason == "interrupted":  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.stop_reason = "interrupted"

    def _check_stop(self) -> str | None:
        if self.stop_reason:
            return self.stop_reason
        run = self.settings.run
        stop_file = self.run_dir / STOP_FILE
        if stop_file.exists():
            stop_file.unlink(missing_ok=True)
            self.stop_reason = "stop requested"
        elif self.ctx.evaluations >= run.budget:
            self.stop_reason = "budget reached"
            self.store.log("budget.reached", {"budget": "evaluations", "limit": run.budget})
        elif run.time is not None and time.monotonic() - self._started >= run.time:
            self.stop_reason = "time limit reached"
            self.store.log("budget.reached", {"budget": "wall_seconds", "limit": run.time})
        elif run.cpu_seconds is not None and self.usage["cpu_seconds"] >= run.cpu_seconds:
            self.stop_reason = "CPU budget reached"
            self.store.log("budget.reached", {"budget": "cpu_seconds", "limit": run.cpu_seconds, "used": self.usage["cpu_seconds"]})
        elif run.max_tokens is not None and self.usage["tokens"] >= run.max_tokens:
            self.stop_reason = "token budget reached"
            self.store.log("budget.reached", {"budget": "tokens", "limit": run.max_tokens, "used": self.usage["tokens"]})
        elif run.max_cost is not None and self.usage["cost"] >= run.max_cost:
            self.stop_reason = "money budget reached"
            self.store.log("budget.reached", {"budget": "cost", "limit": run.max_cost, "used": self.usage["cost"]})
        elif self.attempts >= run.budget * run.max_attempts_factor:
            self.stop_reason = "too many proposals without evaluations (every child invalid or duplicate)"
        return self.stop_reason

    def _loop(self, pool: EvaluatorPool, on_progress) -> None:
        while not self._check_stop():
            while pool.in_flight < pool.workers and self.holdout_queue:
                cid = self.holdout_queue.pop(0)
                pool.submit(EvalTask(cid, self._source(cid), eval_seed(self.settings.run.seed, cid, "holdout"), "holdout"))
            while (pool.in_flight < pool.workers
                   and self.ctx.evaluations + len(self.in_flight) < self.settings.run.budget
                   and not self._check_stop()):
                self._propose(pool)
            results = pool.collect(timeout=0.2)
            for result in results:
                self._tell(result)
                if on_progress:
                    on_progress(self.snapshot())
            if results:
                self._verify_evaluator(pool)
            if self.ctx.evaluations - self.last_promotion_try >= self.settings.oversight.promote_every:
                self._try_promotion(pool)

    def _verify_evaluator(self, pool: EvaluatorPool) -> None:
        """The evaluator's files must never change under a run: if they do, stop and say so."""
        changed = pool.verify_evaluator()
        if changed and self.stop_reason != "evaluator changed":
            self.stop_reason = "evaluator changed"
            self.store.log("run.evaluator_changed", {"problem": changed})

    def _drain(self, pool: EvaluatorPool) -> None:
        """Wait for evaluations already running (budget or time reached: no new proposals)."""
        deadline = time.monotonic() + self.settings.evaluator.timeout + 5
        while pool.in_flight and time.monotonic() < deadline and self.stop_reason != "interrupted":
            for result in pool.collect(timeout=0.2):
                self._tell(result)
        if pool.in_flight:
            pool.cancel_all()

    def _evaluate_seed(self, pool: EvaluatorPool) -> None:
        source = self.problem.initial_source
        cid = self._insert({
            "proposer": "seed", "operator": None, "rationale": "the initial program", "source": source,
            "diff": "", "fingerprint": fingerprint(source), "status": "pending",
            "eval_seed": eval_seed(self.settings.run.seed, SEED_ID), "island": 0,
        }, events=[("candidate.proposed", {"proposer": "seed"})])
        self.in_flight[cid] = (Step(parent=cid), None)
        pool.submit(EvalTask(cid, source, eval_seed(self.settings.run.seed, cid)))
        result = self._wait_one(pool)
        if result.status != "ok":
            self._tell(result)
            raise RunError(
                f"the initial program fails its own evaluation ({result.status}), so the run cannot start.\n"
                f"{result.error or ''}\nFix {self.problem.root / 'initial.py'} or "
                f"{self.problem.evaluator_path}, then start again."
            )
        self._tell(result)
        self._check_features(result.metrics)

    def _wait_one(self, pool: EvaluatorPool) -> EvalResult:
        while True:
            if self.stop_reason == "interrupted":
                pool.cancel_all()
                raise RunError("interrupted while evaluating the initial program; nothing to resume, start again")
            results = pool.collect(timeout=0.2)
            if results:
                return results[0]

    def _check_features(self, metrics: dict[str, float]) -> None:
        missing = [f for f in self.archive.features if f != "code_size" and f not in metrics]
        if not missing:
            return
        explicit = "features" in self.problem.settings.archive.model_fields_set
        if explicit:
            raise RunError(
                f"problem.toml asks for archive features {missing}, but evaluate() returned no such metric "
                f"(it returned {sorted(metrics)}); return them from evaluate() or change [archive] features"
            )
        # defaults: drop the behaviour descriptor the evaluator does not provide
        kept = [f for f in self.archive.features if f not in missing] or ["code_size"]
        old = self.archive
        self.archive = Archive(kept, old.bins, old.n_islands)
        self.ctx.archive = self.archive
        for island in range(old.n_islands):
            for elite in old.elites(island):
                cand = self.store.get(elite.id)
                self.archive.add(elite.id, island, elite.score, self._features(cand.source or "", cand.metrics), elite.size)
        self.settings.archive.features = kept

    def _insert(self, fields: dict[str, Any], events=()) -> int:
        cid = self.next_id
        self.next_id += 1
        self.store.insert_candidate({"id": cid, **fields}, state=self._state(), events=list(events))
        return cid

    def _propose(self, pool: EvaluatorPool) -> None:
        self.attempts += 1
        try:
            step = self.improver.next_step(self.ctx)
        except Exception as exc:
            raise RunError(f"the improver {self.improver.path} failed in next_step: {type(exc).__name__}: {exc}") from exc
        parent = self.store.get(step.parent)
        if parent.source is None:
            raise RunError(f"the improver chose candidate {step.parent}, which has no source (status {parent.status})")
        proposer = self.proposers.get(step.proposer)
        if proposer is None:
            raise RunError(f"the improver asked for proposer {step.proposer!r}; available: {sorted(self.proposers)}")
        base = {"parent_id": parent.id, "inspiration_ids": step.inspirations, "island": step.island,
                "proposer": step.proposer, "operator": step.operator}
        try:
            proposal = proposer.propose(parent.source, [self._source(i) for i in step.inspirations],
                                        step.operator, self.rng)
        except ProposalFailed as exc:
            return self._settle(step, parent, {**base, "status": "invalid", "error": f"proposal failed: {exc}"})
        self.usage["tokens"] += proposal.tokens
        self.usage["cost"] += proposal.cost
        base.update(operator=proposal.operator, rationale=proposal.rationale, source=proposal.source,
                    diff=unified_diff(parent.source, proposal.source), fingerprint=fingerprint(proposal.source))
        problem = syntax_error(proposal.source)
        if problem:
            return self._settle(step, parent, {**base, "status": "invalid", "error": problem})
        violation = edit_violation(parent.source, proposal.source)
        if violation:
            return self._settle(step, parent, {**base, "status": "rejected", "error": violation})
        duplicate_of = self.store.conn.execute(
            "SELECT id FROM candidates WHERE fingerprint=? AND status!='duplicate' LIMIT 1", (base["fingerprint"],)
        ).fetchone()
        if duplicate_of:
            return self._settle(step, parent, {**base, "status": "duplicate", "source": None, "diff": None,
                                               "duplicate_of": duplicate_of[0],
                                               "error": f"same program as candidate {duplicate_of[0]}"})
        cid = self.next_id
        seed = eval_seed(self.settings.run.seed, cid)
        flags = [asdict(f) for f in adoption.review_candidate(self.problem, parent.source, proposal.source)]
        events = [("candidate.proposed", {"parent": parent.id, "proposer": step.proposer, "operator": proposal.operator,
                                          "rationale": proposal.rationale, "diff": base["diff"][:20_000]})]
        if flags:
            events.append(("candidate.flagged", {"flags": flags}))
        self._insert({**base, "status": "pending", "eval_seed": seed, "flags": flags or None}, events=events)
        self.in_flight[cid] = (step, parent.score)
        pool.submit(EvalTask(cid, proposal.source, seed))

    def _settle(self, step: Step, parent: Candidate, fields: dict[str, Any]) -> None:
        """Record a child that is never evaluated (invalid, rejected, duplicate), and tell the improver."""
        cid = self.next_id
        best = self.archive.best()
        self.improver.observe(self.ctx, step, Outcome(cid, fields["status"], None, parent.score,
                                                      best.score if best else None))
        self._insert(fields, events=[("candidate.proposed", {"parent": parent.id, "status": fields["status"],
                                                             "reason": fields.get("error")})])

    def _resubmit(self, pool: EvaluatorPool, cand: Candidate) -> None:
        """A child proposed before a crash but never evaluated: evaluate it now."""
        if pool.in_flight >= pool.workers:
            for result in pool.collect(timeout=self.settings.evaluator.timeout + 5):
                self._tell(result)
        parent_score = self.store.get(cand.parent_id).score if cand.parent_id else None
        step = Step(parent=cand.parent_id or cand.id, inspirations=cand.inspiration_ids, island=cand.island,
                    proposer=cand.proposer, operator=cand.operator)
        self.in_flight[cand.id] = (step, parent_score)
        pool.submit(EvalTask(cand.id, cand.source or "", cand.eval_seed or eval_seed(self.settings.run.seed, cand.id)))

    def _tell(self, result: EvalResult) -> None:
        if result.kind == "holdout":
            return self._tell_holdout(result)
        step, parent_score = self.in_flight.pop(result.candidate_id)
        cid = result.candidate_id
        source = self._source(cid)
        best = self.archive.best()
        best_before = best.score if best else None
        score = result.metrics.get("combined_score") if result.status == "ok" else None
        outcome = Outcome(cid, result.status, score, parent_score, best_before)
        fields: dict[str, Any] = {
            "status": result.status, "error": result.error, "score": score, "metrics": result.metrics,
            "stdout": result.stdout, "stderr": result.stderr, "evaluated_at": time.time(),
            "wall_seconds": result.wall_seconds, "cpu_seconds": result.cpu_seconds,
        }
        events = [("candidate.evaluated", {"status": result.status, "score": score, "error": (result.error or "")[:200]})]
        self.ctx.evaluations += 1
        self.usage["cpu_seconds"] += result.cpu_seconds
        if score is not None:
            features = self._features(source, result.metrics)
            fields["features"] = dict(zip(self.archive.features, features))
            islands = range(self.archive.n_islands) if cid == SEED_ID else [step.island]
            placed = [self.archive.add(cid, island, score, features, code_size(source)) for island in islands]
            self.ctx.population.append((cid, score))
            if any(placed):
                events.append(("candidate.archived", {"island": step.island, "cell": list(self.archive.cell_of(features))}))
            if outcome.new_best and cid != SEED_ID and self.settings.evaluator.holdout_every_best and self.problem.has_holdout:
                self.holdout_queue.append(cid)
        else:
            self.sources.pop(cid, None)
        self.since_migration += 1
        if self.since_migration >= self.settings.archive.migration_interval:
            self.since_migration = 0
            moves = self.archive.migrate()
            if moves:
                events.append(("archive.migrated", {"moves": moves}))
        if cid != SEED_ID:
            self.improver.observe(self.ctx, step, outcome)
        self.store.update_candidate(cid, fields, state=self._state(), events=events)

    def _tell_holdout(self, result: EvalResult) -> None:
        metrics = result.metrics if result.status == "ok" else {"error": float("nan")}
        self.store.update_candidate(
            result.candidate_id, {"holdout": metrics},
            events=[("candidate.holdout", {"status": result.status, "metrics": metrics if result.status == "ok" else None,
                                           "error": (result.error or "")[:500]})],
        )
        if result.status != "ok":
            self.holdout_errors[result.candidate_id] = result.error or result.status

    def _final_holdout(self, pool: EvaluatorPool) -> None:
        """Held-out results for the seed and the best candidate (reporting only, never selection)."""
        if not self.problem.has_holdout:
            return
        best = self.store.best()
        wanted = [c for c in {SEED_ID: None, **({best.id: None} if best else {})}
                  if self.store.get(c).holdout is None]
        for cid in wanted:
            pool.submit(EvalTask(cid, self._source(cid), eval_seed(self.settings.run.seed, cid, "holdout"), "holdout"))
            result = self._wait_holdout(pool)
            if result is None:
                return
            self._tell_holdout(result)

    def _wait_holdout(self, pool: EvaluatorPool) -> EvalResult | None:
        while self.stop_reason != "interrupted":
            results = pool.collect(timeout=0.2)
            if results:
                return results[0]
        pool.cancel_all()
        return None

    # --- the adoption gate (oversight.promotion; imported here because it imports this module) ---
    def _try_promotion(self, pool: EvaluatorPool) -> None:
        """Put the current best through the gate against the promoted program (or the seed)."""
        from .oversight import promotion

        promotion.try_promotion(self, pool)

    def _recheck_best(self) -> None:
        """Re-evaluate the best in a fresh worker no other candidate touched, before it is reported."""
        from .oversight import promotion

        promotion.recheck_best(self)

    # --- reporting ---------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        counts = self.store.counts()
        elapsed = time.monotonic() - self._started
        done_here = self.ctx.evaluations - self._evals_at_start
        rate = done_here / elapsed if elapsed > 0 else 0.0
        evaluated = sum(counts.get(s, 0) for s in EVALUATED_STATUSES)
        failed = counts.get("error", 0) + counts.get("timeout", 0)
        run = self.settings.run
        left = [(run.budget - self.ctx.evaluations) / rate] if rate > 0 else []
        if run.time is not None:
            left.append(max(0.0, run.time - elapsed))
        best = self.archive.best()
        return Snapshot(
            evaluations=self.ctx.evaluations, budget=run.budget,
            best_score=best.score if best else None, best_id=best.id if best else None,
            evals_per_second=rate, failed_share=failed / evaluated if evaluated else 0.0,
            elapsed=elapsed, time_left=min(left) if left else None, counts=counts,
            waiting=", ".join(f"approval of #{r['candidate_id']}" for r in self.store.promotions("pending")) or None,
        )

    def _finish(self) -> RunSummary:
        reason = self.stop_reason or "budget reached"
        best = self.store.best()
        if best is not None and best.source:
            (self.run_dir / "best.py").write_text(best.source)
        self.store.log("run.stopped", {"reason": reason, "evaluations": self.ctx.evaluations,
                                       "best_id": best.id if best else None,
                                       "best_score": best.score if best else None})
        return RunSummary(self.run_dir, reason, self.ctx.evaluations, best, self.store.get(SEED_ID),
                          self.store.counts())


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _rng_state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_state_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)
