"""A run's side of the adoption gate: re-evaluate the best against the promoted program, re-check it.

``try_promotion`` puts the run's current best through ``adoption.decide`` against the promoted
program (or the seed), on fresh-process re-evaluations (held-out when the problem has a split)
collected by ``repeat_scores`` while the search's own results keep flowing. ``recheck_best``
re-evaluates the best in a fresh worker before it is reported, and flags it if the score differs.

These functions work on a ``Run`` (its store, problem, settings and evaluation bookkeeping);
``Run._try_promotion`` and ``Run._recheck_best`` call them.
"""

from __future__ import annotations

from ..run import SEED_ID, Run, eval_seed
from ..sandbox.pool import EvaluatorPool, evaluate_fresh
from ..sandbox.types import EvalTask
from . import adoption


def try_promotion(run: Run, pool: EvaluatorPool) -> None:
    """Put the current best through the gate against the promoted program (or the seed)."""
    run.last_promotion_try = run.ctx.evaluations
    challenger = run.store.best()
    incumbent = run.store.promoted() or run.store.get(SEED_ID)
    tried = {r["candidate_id"] for r in run.store.promotions()}
    if challenger is None or challenger.id == incumbent.id or challenger.id in tried or run.stop_reason == "interrupted":
        return
    kind = "holdout" if run.problem.has_holdout else "train"
    n = run.settings.oversight.holdout_repeats
    scores = repeat_scores(run, pool, [challenger.id, incumbent.id], kind, n)
    if scores is None:
        return
    failed = [cid for cid, values in scores.items() if isinstance(values, str)]
    if failed:
        run.store.add_promotion(challenger.id, "refused", {"reason": "re-evaluation failed",
                                "errors": {str(c): scores[c] for c in failed}}, "candidate.promotion_refused")
        return
    evidence = "held-out re-evaluation" if kind == "holdout" else "training re-evaluation (no held-out split)"
    adoption.decide(run.store, run.problem, run.settings.oversight, challenger, incumbent,
                    scores[challenger.id], scores[incumbent.id], evidence)


def repeat_scores(run: Run, pool: EvaluatorPool, cids: list[int], kind: str, n: int) -> dict[int, list[float] | str] | None:
    """n fresh-process evaluations of each candidate (different seeds); search results keep flowing."""
    queue = [(cid, r) for cid in cids for r in range(n)]
    scores: dict[int, list[float] | str] = {cid: [] for cid in cids}
    received = {cid: 0 for cid in cids}
    while any(received[c] < n for c in cids):
        while queue and pool.in_flight < pool.workers:
            cid, r = queue.pop(0)
            seed = eval_seed(run.settings.run.seed, cid, "holdout") + 1 + r
            pool.submit(EvalTask(cid, run._source(cid), seed, kind))
        for result in pool.collect(timeout=0.2):
            if result.kind == "train" and result.candidate_id in run.in_flight:
                run._tell(result)
                continue
            if result.candidate_id not in scores or received[result.candidate_id] >= n:
                if result.kind == "holdout":
                    run._tell_holdout(result)
                continue
            received[result.candidate_id] += 1
            values = scores[result.candidate_id]
            if result.status != "ok":
                scores[result.candidate_id] = f"{result.status}: {(result.error or '')[:300]}"
            elif isinstance(values, list):
                values.append(result.metrics["combined_score"])
                if kind == "holdout" and len(values) == 1 and run.store.get(result.candidate_id).holdout is None:
                    run._tell_holdout(result)
        if run.stop_reason == "interrupted":
            pool.cancel_all()
            return None
    return scores


def recheck_best(run: Run) -> None:
    """Re-evaluate the best in a fresh worker no other candidate touched, before it is reported."""
    best = run.store.best()
    if best is None or best.id == SEED_ID or best.source is None:
        return
    fresh = evaluate_fresh(run.problem.evaluator_path, best.source, seed=best.eval_seed or 0, limits=run._limits())
    score = fresh.metrics.get("combined_score") if fresh.status == "ok" else None
    agrees = score is not None and abs(score - best.score) <= 1e-9 * max(1.0, abs(best.score))
    run.store.log("candidate.rechecked", {"id": best.id, "fresh_status": fresh.status, "fresh_score": score,
                                          "stored_score": best.score, "agrees": agrees})
    if not agrees:
        flags = (best.flags or []) + [{"code": "recheck-mismatch", "line": 0,
                                       "message": f"fresh re-evaluation gave {score} ({fresh.status}), stored {best.score}"}]
        run.store.update_candidate(best.id, {"flags": flags},
                                   events=[("candidate.flagged", {"flags": flags[-1:]})])
