"""A run's side of the adoption gate, as a hook on the search; and the fresh re-check of the best.

``PromotionGate`` puts the run's best through ``adoption.decide`` against the promoted program (or
the seed) every ``promote_every`` evaluations and once at the end: it asks the search for
``holdout_repeats`` fresh-process re-evaluations of both (held-out when the problem has a split,
training otherwise), which run while the search goes on, and decides when the last one is in.

``recheck_best`` re-evaluates the best in a fresh worker no other candidate touched, before it is
reported, and flags it if the score differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..executors import evaluation_limits
from ..improvers import Outcome
from ..sandbox.pool import evaluate_fresh
from ..sandbox.types import EvalResult, Kind
from ..search import SEED_ID, BaseHook, Search, eval_seed
from ..status import Status, StopReason
from . import adoption
from .state import verify_state


class PromotionGate(BaseHook):
    """Every ``[oversight] promote_every`` evaluations, and at the end: promote the best or not."""

    name = "promotion"

    def __init__(self) -> None:
        self.last_try = 0
        self.trial: dict[str, Any] | None = None  # the gate decision in progress

    def attach(self, search: Search, state: dict[str, Any] | None) -> None:
        self.last_try = (state or {}).get("last_try", 0)

    def state(self) -> dict[str, Any]:
        return {"last_try": self.last_try}

    def after(self, search: Search, outcome: Outcome) -> None:
        every = search.settings.oversight.promote_every
        if every is not None and self.trial is None and search.evaluations - self.last_try >= every:
            self.start(search)

    def at_end(self, search: Search) -> None:
        if search.settings.oversight.promote_every is not None and self.trial is None:
            self.start(search)

    def start(self, search: Search) -> None:
        """Ask for the re-evaluations of the best and the incumbent (if the best is untried)."""
        self.last_try = search.evaluations
        challenger = search.store.best()
        incumbent = search.store.promoted() or search.store.get(SEED_ID)
        tried = {r["candidate_id"] for r in search.store.promotions()}
        if challenger is None or challenger.id == incumbent.id or challenger.id in tried:
            return
        state = verify_state(search.store.conn)
        if not state.ok:  # the tables were edited behind the trail: nothing is promoted from them
            search.store.log("promotion.refused", {"id": challenger.id, "reason": state.summary()[:2000]})
            return
        kind: Kind = "holdout" if search.problem.has_holdout else "train"
        n = search.settings.oversight.holdout_repeats
        self.trial = {"challenger": challenger.id, "incumbent": incumbent.id, "kind": kind, "n": n,
                      "scores": {challenger.id: [], incumbent.id: []}, "errors": {}}
        for cid in (challenger.id, incumbent.id):
            for r in range(n):
                search.request(self, cid, kind, eval_seed(search.settings.run.seed, cid, "holdout") + 1 + r)

    def on_result(self, search: Search, result: EvalResult) -> None:
        trial = self.trial
        if trial is None:
            return
        cid = result.candidate_id
        trial["received"] = trial.get("received", 0) + 1
        if Status(result.status) is not Status.OK:
            trial["errors"][str(cid)] = f"{result.status}: {(result.error or '')[:300]}"
        else:
            trial["scores"][cid].append(result.metrics["combined_score"])
            if trial["kind"] == "holdout" and search.store.get(cid).holdout is None:
                search.store.update_candidate(cid, {"holdout": result.metrics}, events=[
                    ("candidate.holdout", {"status": result.status, "metrics": result.metrics, "error": ""})])
        if trial["received"] < 2 * trial["n"]:
            return
        self.trial = None
        challenger, incumbent = search.store.get(trial["challenger"]), search.store.get(trial["incumbent"])
        if trial["errors"]:
            search.store.add_promotion(challenger.id, "refused", {"reason": "re-evaluation failed",
                                       "errors": trial["errors"]}, "candidate.promotion_refused")
            return
        evidence = ("held-out re-evaluation" if trial["kind"] == "holdout"
                    else "training re-evaluation (no held-out split)")
        adoption.decide(search.store, search.problem, search.settings.oversight, challenger, incumbent,
                        trial["scores"][challenger.id], trial["scores"][incumbent.id], evidence)


def recheck_best(search: Search, fresh_worker: Callable[[str, int], EvalResult] | None = None) -> None:
    """Re-evaluate the best in a fresh worker no other candidate touched, before it is reported:
    ``fresh_worker(source, seed)`` (an executor's own, e.g. a new actor on a Ray cluster), else a
    fresh local worker."""
    best = search.store.best()
    if (best is None or best.id == SEED_ID or best.source is None or search.problem.evaluator_path is None
            or search.stop_reason is None or not StopReason(search.stop_reason).checks_at_end):
        return
    if fresh_worker is not None:
        fresh = fresh_worker(best.source, best.eval_seed or 0)
    else:
        fresh = evaluate_fresh(search.problem.evaluator_path, best.source, seed=best.eval_seed or 0,
                               limits=evaluation_limits(search.settings))
    score = fresh.metrics.get("combined_score") if Status(fresh.status) is Status.OK else None
    agrees = (score is not None and best.score is not None
              and abs(score - best.score) <= 1e-9 * max(1.0, abs(best.score)))
    search.store.log("candidate.rechecked", {"id": best.id, "fresh_status": fresh.status, "fresh_score": score,
                                             "stored_score": best.score, "agrees": agrees})
    if not agrees:
        message = f"fresh re-evaluation gave {score} ({fresh.status}), stored {best.score}"
        flags = (best.flags or []) + [{"code": "recheck-mismatch", "line": 0, "message": message}]
        search.store.update_candidate(best.id, {"flags": flags}, events=[("candidate.flagged", {"flags": flags[-1:]})])
