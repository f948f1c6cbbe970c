"""Self-improvement: an rsi run whose program is the improver, driven by the best improver so far.

    rsi self-improve --generations 4 --budget 100 --meta-budget 8 --out runs/si

The problem is "the current improver": ``<out>/problem/initial.py`` is the starting improver
(rsi's seed improver unless ``--improver``), its EVOLVE-BLOCK everything after the imports, and
its score is the training meta-utility (``metautil``), measured by trusted code: inner searches
in the sandbox, their best programs re-scored outside it. The run is an ordinary ``Run`` (store,
audit trail, archive, mutate proposer, resume) whose evaluations go to a ``MetaEvaluator``
instead of a pool of problem workers, and whose improver, the one choosing which improver to
mutate next, is the incumbent: the starting one, then each adopted one.

Every generation proposes and measures ``meta_budget`` candidate improvers, then the gate:

1. screen: the best not-yet-tried candidates on training that beat the incumbent's training
   meta-utility;
2. confirm: each screened candidate, best first, is measured with the incumbent on fresh training
   seeds (``confirm_seeds`` per problem): picking the best of many noisy measurements favours
   the lucky, and the fresh seeds do not. Only a candidate ahead there too goes on, up to
   ``challengers`` per generation (after at most ``3 * challengers`` tries); the others are
   recorded as refused (``improver.unconfirmed``) without spending any of the gate's level;
3. validate: measure challenger and incumbent on the validation problems x validation seeds, the
   same units for both, and compare them paired (``oversight.gate.compare_paired``: one-sided
   exact sign test *and* the bootstrap interval of the mean difference above 0). The run's
   k-th such test is made at ``level / (k (k + 1))`` (``test_level``): these sum to ``level``
   (0.05 by default) over any number of tests, so the chance that a run *ever* adopts an
   improver that is no better than its incumbent stays below ``level``, however many
   generations it runs or is extended to;
4. review: ``oversight.review`` of the challenger against the incumbent must raise no flag;
5. approve: with ``approval="manual"`` (or any flag) the request waits for a person
   (``rsi pending / approve / reject OUT``, the run's promotion table); otherwise it is adopted.

Each decision is a row of the run's promotion table and an audit event (``improver.refused``,
``approval.requested``, ``improver.adopted``) carrying its evidence. Adopted improvers are written
to ``<out>/improvers/`` and ``<out>/best_improver.py`` (usable at once with ``rsi run
--improver``), and drive the rest of the run: the only way untrusted code leaves the sandbox is
through this gate.

Memory (``memory``: a file, ``"learn"`` or ``"offer"``): with a file or ``"learn"``, every inner
search, of every split, hands its improver the same memory (``ctx.memory``, what paid in earlier
searches: ``rsi.memory``), fixed for the whole run so that the incumbent and its challengers are
measured alike. ``"learn"`` learns it before generation 0 from searches of the training problems
(training seeds and budget) by rsi's own seed improver (never by a candidate: its counts could be
forged), so the test problems stay unseen. The run keeps it as ``<out>/memory.json``; the adopted
improver is used with it (``rsi run --improver <out>/best_improver.py --memory <out>/memory.json``).
``"offer"`` learns it the same way but hands it to no search: it becomes a candidate part of the
improver. The ``remember`` move (``rsi.proposers.remember``) writes it into a candidate improver
(its ``MEMORY``, which a search uses when it is given none), and the gate measures that candidate
against the incumbent, which carries none, like any other edit; an adopted improver carries its
memory wherever it is used. Each generation's first candidate is the incumbent carrying the memory
(unless it carries it already, or that candidate was made before); later ones are the driving
improver's choices, which may take the move again on other parents.

Test problems never reach a decision: the decisions' meta-evaluator is built from the training and
validation splits only (it refuses test problems), and the test meta-utility of each incumbent is
measured afterwards, by a separate evaluator, for the report (``generations.md``, ``curves.svg``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import RsiError, RunError
from ..improvers import SEED_IMPROVER, ImproverFailed
from ..memory import load_memory, save_memory
from ..oversight import audit
from ..oversight.gate import compare_paired
from ..oversight.review import review
from ..proposers.base import Proposer
from ..run import STOP_FILE, drive
from ..sandbox.improver_host import open_improver
from ..search import SEED_ID, Overrides, Search, Summary
from ..status import StopReason
from ..storage import Candidate, Store
from . import report
from .config import SelfImproveConfig, improver_problem, with_block  # noqa: F401 - with_block: part of this API
from .improver_executor import ImproverExecutor
from .metautil import MetaEvaluator, MetaResult

CONFIG_FILE = "selfimprove.json"
PROBLEM_DIR = "problem"
BEST_FILE = "best_improver.py"
MEMORY_FILE = "memory.json"
DECISION_SPLITS = ("train", "validation")
# What an improver has no business naming: its own evaluator (the meta-utility's two sides and their
# hooks) and the suite's answers. (rsi's program-level list also protects "score", which every
# improver uses for candidates' scores.)
IMPROVER_PROTECTED = ("evaluate", "evaluate_holdout", "evaluate.py", "produce.py", "rescore.py", "rsi_evaluator",
                      "metautil", "unit_context", "parse_result", "RSI_META_PROBLEMS", "normalised_gain")
IMPROVER_SECRETS = ("reference.py", "suite", "SUITE_DIR")

def test_level(run_level: float, test_number: int) -> float:
    """The level of a run's ``test_number``-th adoption test (1-based): ``run_level / (k (k+1))``.

    1/(k(k+1)) = 1/k - 1/(k+1) sums to 1 over k = 1, 2, ...: spending the run's level this way
    bounds the chance of any false adoption by ``run_level`` (a union bound), with no need to
    know in advance how many tests the run will make.
    """
    if test_number < 1:
        raise RsiError("tests are numbered from 1")
    return run_level / (test_number * (test_number + 1))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class SelfImproveRun:
    """The outer run: a ``Search`` over improvers. Build it with ``start`` or ``reopen``;
    ``execute`` runs the generations. ``log`` receives one line per step (silent by default)."""

    def __init__(self, search: Search, config: SelfImproveConfig):
        self.search = search
        self.config = config
        self.out = search.run_dir
        self.log: Callable[[str], None] = lambda line: None
        # where the inner searches run: "local" (this machine's sandboxed pool) or "ray" (a cluster,
        # at ``address``); not part of the recorded config, so a resumed run may use another cluster
        self.executor = "local"
        self.address: str | None = None
        self._generation_driver: int | None = None
        self.memory = None  # the inner searches' memory (execute loads it)
        (self.out / "improvers").mkdir(exist_ok=True)
        (self.out / "measurements").mkdir(exist_ok=True)
        self.measurements: dict[tuple[int, str], MetaResult] = {}
        for path in (self.out / "measurements").glob("*.json"):
            cid, split = path.stem.split("-", 1)
            data = json.loads(path.read_text())
            self.measurements[(int(cid), split)] = MetaResult.from_json((int(cid), split), data)
        self.rows: list[dict[str, Any]] = [e.payload for e in self._events(["selfimprove.generation"])]
        adopted = self._events(["improver.adopted"])
        self.incumbent_id = adopted[-1].payload["id"] if adopted else SEED_ID
        self.driver_id = self.incumbent_id
        if adopted:  # a resumed run continues with the adopted improver (and its saved state)
            search.use_improver(open_improver(self._improver_file(self.incumbent_id)), reset=False)
        stored = search.store.next_id() > SEED_ID
        (self.out / BEST_FILE).write_text(search.source(self.incumbent_id) if stored else search.problem.initial_source)

    # --- creating and resuming ------------------------------------------------------------
    @classmethod
    def start(cls, out: str | Path, config: SelfImproveConfig, improver_path: str | Path | None = None
              ) -> SelfImproveRun:
        out = Path(out)
        if (out / "rsi.db").exists():
            raise RunError(f"{out}: already holds a self-improvement run; continue it with "
                           f"`rsi self-improve --resume {out}` or pass another --out")
        given = load_memory(config.memory) if config.memory not in (None, "learn", "offer") else None
        starting = open_improver(improver_path)  # in its sandboxed host, unless it is the seed
        source = starting.source
        problem = improver_problem(out / PROBLEM_DIR, source, config)
        # the starting improver drives the run until an improver is adopted (the memory it may carry is
        # about inner searches, not this one's)
        search = Search.create(problem, out, Overrides(seed=config.seed, budget=1), improver=starting,
                               improver_memory=False)
        (out / CONFIG_FILE).write_text(json.dumps(config.to_json(), indent=2) + "\n")
        search.store.log("selfimprove.started", {"config": config.to_json(),
                                                 "improver": str(improver_path or SEED_IMPROVER),
                                                 "improver_sha256": _sha(source)})
        run = cls(search, config)
        if given is not None:
            run._keep_memory(given, f"file {config.memory}")
        return run

    @classmethod
    def reopen(cls, out: str | Path, generations: int | None = None) -> SelfImproveRun:
        """Continue a run; ``generations`` (more than it had) extends it."""
        out = Path(out)
        config_file = out / CONFIG_FILE
        if not config_file.is_file():
            raise RunError(f"{out}: not a self-improvement run (no {CONFIG_FILE})")
        config = SelfImproveConfig(**json.loads(config_file.read_text()))
        problem = improver_problem(out / PROBLEM_DIR, "", config)
        search = Search.resume(out, problem=problem)
        recorded = audit.events(search.store.conn, ["selfimprove.started", "selfimprove.extended"])
        if recorded:
            # settings added to rsi after the run was recorded take their defaults
            now = json.loads(json.dumps(config.to_json()))
            then = recorded[-1].payload["config"]
            if any(now.get(key) != value for key, value in then.items()):
                search.close()
                raise RunError(f"{config_file} differs from the settings this run recorded (see `rsi audit {out}`)")
        if generations is not None and generations != config.generations:
            if generations < config.generations:
                search.close()
                raise RunError(f"this run has {config.generations} generations; --generations can only extend it")
            config.generations = generations
            config_file.write_text(json.dumps(config.to_json(), indent=2) + "\n")
            search.store.log("selfimprove.extended", {"config": config.to_json()})
        return cls(search, config)

    @property
    def store(self) -> Store:
        return self.search.store

    @property
    def improver(self):
        """The improver driving the run now."""
        return self.search.improver

    @property
    def proposers(self) -> dict[str, Proposer]:
        return self.search.proposers

    @proposers.setter
    def proposers(self, value: dict[str, Proposer]) -> None:
        self.search.proposers = dict(value)

    def _events(self, kinds: list[str]):
        return audit.events(self.store.conn, kinds)

    def _improver_file(self, cid: int) -> Path:
        path = self.out / "improvers" / f"improver-{cid}.py"
        source = self.search.source(cid)
        if not path.is_file() or path.read_text() != source:
            path.write_text(source)
        return path

    # --- the memory -----------------------------------------------------------------------
    def _keep_memory(self, mem, source: str) -> None:
        path = save_memory(mem, self.out / MEMORY_FILE)
        self.store.log("selfimprove.memory", {"source": source, "sha256": _sha(path.read_text()),
                                              "searches": mem.get("searches", 0), "arms": len(mem.get("arms", {}))})

    def _load_memory(self):
        """The inner searches' memory (None without one, or when it is offered as a part of candidate
        improvers), learned first if the run was started with "learn" or "offer"."""
        if self.config.memory is None:
            return None
        path = self.out / MEMORY_FILE
        if not path.is_file():
            if self.config.memory not in ("learn", "offer"):
                raise RunError(f"{path}: this run's copy of its memory is missing; restore it, or start a new run")
            from .memory import learn_from_suite

            seeds = self.config.seeds_of("train")
            self.log(f"learning the memory: rsi's seed improver on the training problems x {len(seeds)} seeds")
            learned = learn_from_suite("train", seeds, self.config.budget, self.config.workers,
                                       names=self.config.problems,
                                       limits=self.config.limits, scratch=self.out / "scratch-memory",
                                       isolation=self.config.isolation, executor=self.executor, address=self.address)
            shutil.rmtree(self.out / "scratch-memory", ignore_errors=True)
            self._keep_memory(learned, "learned from the training problems by the seed improver")
        found = load_memory(path)
        return None if self.config.memory == "offer" else found

    def _offer_memory(self) -> None:
        """With ``memory="offer"``: the incumbent carrying the run's memory is the next candidate,
        unless it carries it already or that candidate exists (``rsi.proposers.remember``)."""
        if self.config.memory != "offer":
            return
        from ..improvers import Step
        from ..memory import carries

        incumbent = self.store.get(self.incumbent_id)
        if any(c.proposer == "remember" and c.parent_id == incumbent.id for c in self.store.candidates()):
            return
        try:
            if carries(incumbent.source or "", load_memory(self.out / MEMORY_FILE), f"improver #{incumbent.id}"):
                return
        except RsiError:
            pass  # an adopted improver whose own memory is broken: the move replaces it
        self.log(f"  the next candidate: improver #{incumbent.id} carrying the memory ({MEMORY_FILE})")
        self.search.enqueue(Step(parent=incumbent.id, proposer="remember", operator="learned"))

    # --- the generations ------------------------------------------------------------------
    def execute(self) -> Summary:
        """Run the remaining generations (stop early with ``search.stop``; resumable)."""
        config = self.config
        problems = [p for split in DECISION_SPLITS for p in config.suite(split)]
        self.memory = self._load_memory()
        try:
            with MetaEvaluator(problems, config.budget, config.workers, config.limits, self.out / "scratch",
                               isolation=config.isolation, executor=self.executor, address=self.address,
                               memory=self.memory) as meta:
                self.meta = meta
                executor = ImproverExecutor(meta, meta.units("train", config.seeds_of("train")), config.parallel,
                                            self._on_measured, self._parent_measurement, config.neutral_after)
                if self.search.store.next_id() == SEED_ID:
                    self.log(f"generation 0: measuring the starting improver on {len(executor.units_)} training units")
                self._drive(executor, 1)
                self._apply_approvals()
                if not self.rows and not self._stopping():
                    self._validation(self.incumbent_id)
                    self._record(0, None)
                while 0 < len(self.rows) <= config.generations and not self._stopping():
                    generation = len(self.rows)
                    self.log(f"generation {generation}: {config.meta_budget} candidate improvers, "
                             f"driven by {self._label(self.driver_id)}")
                    self._generation_driver = self.driver_id
                    self._offer_memory()
                    self._generation(executor, 1 + generation * config.meta_budget)
                    if self._stopping():
                        break
                    decision = self._decide(generation)
                    if self._stopping():
                        break  # interrupted during the gate: it runs again on --resume
                    self._record(generation, decision)
                if len(self.rows) > config.generations and not self._stopping():
                    self.search.stop(StopReason.GENERATIONS_DONE)
        finally:
            shutil.rmtree(self.out / "scratch", ignore_errors=True)
        report.write(self.out, self.rows, self._candidate_points())
        return self.search.finish()

    def _halt(self) -> bool:
        """Whether measurements should stop now: Ctrl-C, or `rsi stop OUT` (its STOP file)."""
        stop_file = self.out / STOP_FILE
        if stop_file.exists():
            stop_file.unlink(missing_ok=True)
            self.search.stop(StopReason.STOP_REQUESTED)
        return self.search.stop_reason in (StopReason.INTERRUPTED, StopReason.STOP_REQUESTED)

    def _stopping(self) -> bool:
        return self.search.stop_reason not in (None, StopReason.BUDGET)

    def _drive(self, executor: ImproverExecutor, budget: int) -> None:
        """Let the search run up to ``budget`` candidate improvers (the seed counts as one)."""
        self.search.extend(budget)
        drive(self.search, executor, finish=False, stop_file=self.out / STOP_FILE)

    def _generation(self, executor: ImproverExecutor, budget: int) -> None:
        try:
            self._drive(executor, budget)
        except ImproverFailed as exc:
            if self.driver_id == SEED_ID:
                raise
            # an adopted improver that cannot drive this run: fall back on the starting one
            self.store.log("improver.driver_failed", {"id": self.driver_id, "error": str(exc)[:2000]})
            self.log(f"the adopted improver #{self.driver_id} failed to drive the run ({exc}); "
                     "continuing with the starting improver")
            self._use(SEED_ID)
            self._drive(executor, budget)

    def _on_measured(self, cid: int, result: MetaResult) -> None:
        self._save(cid, "train", result)
        if result.neutral_of is not None:
            ran = sum(1 for u in result.units if u.cpu_seconds > 0)
            parent = result.neutral_of
            assert isinstance(parent, tuple)  # (candidate id, split)
            self.log(f"  improver #{cid}: behaves as its parent #{parent[0]} (the same {ran} searches "
                     f"of {len(result.units)}): {result.utility:.4f}, the rest not run")
            self.store.log("improver.neutral", {"id": cid, "parent": parent[0], "units_run": ran})
            return
        self.log(f"  improver #{cid}: {result.summary()}")

    def _parent_measurement(self, cid: int) -> MetaResult | None:
        """The training measurement of ``cid``'s parent, if it ran every unit itself."""
        parent = self.store.get(cid).parent_id
        found = self.measurements.get((parent, "train")) if parent is not None else None
        return found if found is not None and found.ok and found.neutral_of is None else None

    def _save(self, cid: int, split: str, result: MetaResult) -> None:
        self.measurements[(cid, split)] = result
        path = self.out / "measurements" / f"{cid}-{split}.json"
        path.write_text(json.dumps(result.to_json(sources=True)) + "\n")

    # --- the gate --------------------------------------------------------------------------
    def _validation(self, cid: int) -> MetaResult | None:
        """The validation measurement of ``cid`` (measured once, then kept)."""
        return self._measured(cid, "validation")

    def _apply_approvals(self) -> None:
        """Adopt an improver a person approved since the last generation (``rsi approve``)."""
        promoted = self.store.promoted()
        adopted = {e.payload["id"] for e in self._events(["improver.adopted"])}
        if promoted is not None and promoted.id not in adopted and promoted.id != self.incumbent_id:
            request = [r for r in self.store.promotions() if r["candidate_id"] == promoted.id][-1]
            self._adopt(promoted, {"approved_by": request["actor"], "note": request["note"],
                                   "evidence": request["evidence"].get("summary")})

    def _decide(self, generation: int) -> dict[str, Any]:
        """Screen, validate, review and adopt or not; the decision as a table row needs it."""
        self._apply_approvals()
        incumbent = self.store.get(self.incumbent_id)
        tried = {r["candidate_id"] for r in self.store.promotions()}
        pool = [c for c in self.store.candidates(("ok",))
                if c.id not in tried and c.id != incumbent.id and c.score is not None]
        pool.sort(key=lambda c: (-(c.score or 0.0), c.id))
        # searches are deterministic given their seeds: a candidate with exactly the training
        # results of one already judged (or of the incumbent) behaves as it does; judge it once
        judged = {self._behaviour(cid) for cid in tried | {incumbent.id}} - {None}
        distinct: list[Candidate] = []
        for cand in pool:
            behaviour = self._behaviour(cand.id)
            if behaviour not in judged:
                distinct.append(cand)
                judged.add(behaviour)
        screened = [c for c in distinct if (c.score or 0.0) > (incumbent.score or 0.0)]
        decision: dict[str, Any] = {"challenger": None, "outcome": "no challenger",
                                    "best_train": pool[0].score if pool else None}
        if not screened:
            self.log(f"  no candidate beats the incumbent #{incumbent.id} on training "
                     f"({incumbent.score:.4f}); nothing to validate")
            return decision
        validated = 0
        for challenger in screened[: 3 * self.config.challengers]:
            confirmed = self._confirm(generation, incumbent, challenger)
            if confirmed is None:
                return {"outcome": "interrupted"}
            if not confirmed:
                decision = {"challenger": challenger.id, "train": challenger.score, "best_train": pool[0].score,
                            "outcome": "unconfirmed"}
                continue
            outcome = self._judge(generation, incumbent, challenger, self.config.level)
            decision = {"challenger": challenger.id, "train": challenger.score, "best_train": pool[0].score,
                        **outcome}
            validated += 1
            if outcome["outcome"] == "adopted" or validated >= self.config.challengers:
                break
        return decision

    def _measured(self, cid: int, split: str) -> MetaResult | None:
        """The measurement of ``cid`` on the units of ``split`` (train seeds or fresh "confirm"
        seeds of the training problems, or validation), made once and then kept."""
        if (cid, split) not in self.measurements:
            problems = "validation" if split == "validation" else "train"
            units = self.meta.units(problems, self.config.seeds_of(split))
            self.log(f"  measuring improver #{cid} on {len(units)} {split} units")
            found = self.meta.measure({(cid, split): self.search.source(cid)}, units,
                                      stop=self._halt)
            if (cid, split) not in found:
                return None
            self._save(cid, split, found[(cid, split)])
            self.store.log(f"improver.{'validated' if split == 'validation' else 'measured'}",
                           {"id": cid, "split": split, "utility": found[(cid, split)].utility,
                            "status": found[(cid, split)].status})
        return self.measurements[(cid, split)]

    def _confirm(self, generation: int, incumbent: Candidate, challenger: Candidate) -> bool | None:
        """Is ``challenger`` ahead of the incumbent on fresh training seeds too? (None: interrupted.)
        A refusal here is recorded, but spends none of the gate's level."""
        if self.config.confirm_seeds < 1:
            return True
        base = self._measured(incumbent.id, "confirm")
        found = self._measured(challenger.id, "confirm")
        if base is None or found is None:
            return None
        ahead, behind = found.utility, base.utility
        if ahead is not None and behind is not None and ahead > behind:
            self.log(f"  #{challenger.id} confirmed on fresh training seeds: {ahead:.4f} vs {behind:.4f}")
            return True
        shown = [f"{u:.4f}" if u is not None else "failed" for u in (ahead, behind)]
        summary = (f"not ahead on fresh training seeds: {shown[0]} vs {shown[1]}" if found.ok
                   else f"confirmation failed: {found.error}")
        evidence = {"incumbent": incumbent.id, "generation": generation, "driver": self.driver_id,
                    "stage": "confirmation", "summary": summary,
                    "train": {"challenger": challenger.score, "incumbent": incumbent.score},
                    "confirm": {"challenger": found.utility, "incumbent": base.utility,
                                "units": [[u.problem, u.seed] for u in found.units]}}
        self.store.add_promotion(challenger.id, "refused", evidence, "improver.unconfirmed")
        self.log(f"  #{challenger.id} unconfirmed: {summary}")
        return False

    def _behaviour(self, cid: int) -> tuple | None:
        """The exact training results of ``cid`` (unit by unit), or None if unknown."""
        found = self.measurements.get((cid, "train"))
        return tuple((u.problem, u.seed, u.score) for u in found.units) if found is not None and found.ok else None

    def _judge(self, generation: int, incumbent: Candidate, challenger: Candidate, run_level: float
               ) -> dict[str, Any]:
        test_number = 1 + sum(1 for r in self.store.promotions() if "test_number" in r["evidence"])
        level = test_level(run_level, test_number)
        base = self._validation(incumbent.id)
        found = self._validation(challenger.id)
        if base is None or found is None:
            return {"outcome": "interrupted"}
        flags = review(incumbent.source or "", challenger.source or "", IMPROVER_PROTECTED, IMPROVER_SECRETS)
        evidence: dict[str, Any] = {
            "incumbent": incumbent.id, "generation": generation, "driver": self.driver_id,
            "train": {"challenger": challenger.score, "incumbent": incumbent.score},
            "flags": [dataclasses.asdict(f) for f in flags], "policy": self.config.approval,
            "improver_sha256": _sha(challenger.source or ""),
            "units": [[u.problem, u.seed] for u in found.units],
            "test_number": test_number, "run_level": run_level,
        }
        if not found.ok:
            evidence.update(summary=f"validation failed: {found.error}", test="sign+bootstrap", level=level)
            self.store.add_promotion(challenger.id, "refused", evidence, "improver.refused")
            self.log(f"  #{challenger.id} refused: {evidence['summary']}")
            return {"outcome": "refused", "summary": evidence["summary"], "effect": None, "p_value": None}
        comparison = compare_paired(base.gains, found.gains, level=level, seed=challenger.id)
        evidence.update(summary=comparison.summary, test=comparison.test, level=level, p_value=comparison.p_value,
                        effect=comparison.effect,
                        validation={"challenger": found.utility, "incumbent": base.utility,
                                    "challenger_gains": found.gains, "incumbent_gains": base.gains})
        row = {"summary": comparison.summary, "effect": comparison.effect, "p_value": comparison.p_value,
               "validation": found.utility, "flags": len(flags)}
        if not comparison.better:
            self.store.add_promotion(challenger.id, "refused", evidence, "improver.refused")
            self.log(f"  #{challenger.id} refused on validation: {comparison.summary}")
            return {"outcome": "refused", **row}
        if flags or self.config.approval == "manual":
            why = f"{len(flags)} review flag(s)" if flags else "manual approval policy"
            self.store.add_promotion(challenger.id, "pending", evidence, "approval.requested")
            self.log(f"  #{challenger.id} passes validation ({comparison.summary}) but waits for a person "
                     f"({why}): rsi approve {self.out} {challenger.id}")
            return {"outcome": "pending", **row}
        self.store.add_promotion(challenger.id, "promoted", evidence, "improver.gate_passed")
        self._adopt(challenger, {"evidence": comparison.summary})
        return {"outcome": "adopted", **row}

    def _adopt(self, candidate: Candidate, why: dict[str, Any]) -> None:
        source = candidate.source or ""
        path = self._improver_file(candidate.id)
        self.store.log("improver.adopted", {"id": candidate.id, "previous": self.incumbent_id,
                                            "improver_sha256": _sha(source), "file": str(path), **why})
        self.incumbent_id = candidate.id
        (self.out / BEST_FILE).write_text(source)
        self._use(candidate.id)
        self.log(f"  adopted improver #{candidate.id}: it drives the next generations; {self.out / BEST_FILE}")

    def _use(self, cid: int) -> None:
        """Let improver ``cid`` choose the next candidates (a fresh state: its own start())."""
        self.search.use_improver(open_improver(self._improver_file(cid)), reset=True)
        self.driver_id = cid

    # --- the report ------------------------------------------------------------------------
    def _label(self, cid: int) -> str:
        return "the starting improver (#1)" if cid == SEED_ID else f"improver #{cid}"

    def _test(self, cid: int) -> MetaResult | None:
        """The test measurement of an incumbent: reporting only, after its decisions, by its own
        evaluator (the decisions' evaluator cannot load test problems)."""
        if not self.config.report_test or self.config.test_seeds < 1:
            return None
        cached = self.measurements.get((cid, "test"))
        if cached is None or not cached.ok:  # a failed report is measured again
            found = report.measure_test({(cid, "test"): self.search.source(cid)}, self.config,
                                        self.out / "scratch-test", stop=self._halt,
                                        executor=self.executor, address=self.address, memory=self.memory)
            if (cid, "test") not in found:
                return None
            self._save(cid, "test", found[(cid, "test")])
        return self.measurements[(cid, "test")]

    def _record(self, generation: int, decision: dict[str, Any] | None) -> None:
        incumbent = self.store.get(self.incumbent_id)
        validation = self._validation(incumbent.id)
        test = self._test(incumbent.id)
        if self._stopping():
            return  # interrupted while measuring: the row is written on --resume
        first = self.rows[-1]["next_id"] if self.rows else SEED_ID
        next_id = self.store.next_id()
        these = [c for c in self.store.candidates(("ok", "error", "timeout")) if first <= c.id < next_id]
        scores = [c.score for c in these if c.status == "ok" and c.score is not None]
        row = {
            "generation": generation, "incumbent": incumbent.id,
            "driver": self._generation_driver if generation else None,
            "train": incumbent.score, "validation": validation.utility if validation else None,
            "test": test.utility if test else None,
            "candidates": len(these), "failed": sum(1 for c in these if c.status != "ok"),
            "best_train_this_generation": max(scores) if scores else None,
            "best_train_so_far": max((c.score for c in self.store.candidates(("ok",)) if c.score is not None),
                                     default=None),
            "decision": decision, "next_id": next_id,
        }
        self.rows.append(row)
        self.store.log("selfimprove.generation", row)
        report.write(self.out, self.rows, self._candidate_points())
        self.log(report.row_line(row))

    def _candidate_points(self) -> list[tuple[int, float]]:
        """(generation, training meta-utility) of every measured candidate, for the plot."""
        bounds = [(row["generation"], row["next_id"]) for row in self.rows]
        points = []
        for cand in self.store.candidates(("ok",)):
            if cand.score is None:
                continue
            generation = next((g for g, end in bounds if cand.id < end), len(self.rows))
            points.append((generation, cand.score))
        return points


def run_self_improve(out: str | Path, config: SelfImproveConfig | None = None, improver: str | Path | None = None,
                     resume: bool = False, log: Callable[[str], None] | None = None) -> SelfImproveRun:
    """Start (or continue) a self-improvement run in ``out`` and run it to the end."""
    run = SelfImproveRun.reopen(out) if resume else SelfImproveRun.start(out, config or SelfImproveConfig(), improver)
    if log is not None:
        run.log = log
    run.execute()
    return run
