"""The adoption gate for a run's programs: held-out evidence, review, and a person where asked.

A program is promoted (written to ``promoted.py`` and logged) only when
  1. its held-out re-evaluations beat the incumbent's by more than re-evaluation noise
     (``gate.compare_repeats``; without a held-out split, training re-evaluations are used and
     the evidence says so),
  2. the review of everything it changed since the seed raises no flag, and
  3. the policy does not ask for a person (``[oversight] adoption = "manual"``).
A flagged or manually-gated winner waits as a pending request: ``rsi approve`` / ``rsi reject``.
"""

from __future__ import annotations

import getpass
from dataclasses import asdict
from pathlib import Path

from ..errors import RunError
from ..problem import EVALUATOR, INITIAL, SETTINGS, Problem
from ..settings import OversightSettings
from ..storage import Candidate, Store
from .gate import compare_repeats
from .review import Flag, review

PROMOTED_FILE = "promoted.py"
EVALUATOR_NAMES = ("evaluate", "evaluate_holdout", "produce", "score", "produce_holdout", "score_holdout", EVALUATOR)


def holdout_names(problem: Problem) -> list[str]:
    """Files and folders of the problem that hold data (everything but the program and settings)."""
    skip = {INITIAL, EVALUATOR, SETTINGS, "__pycache__", "README.md"}
    return sorted(p.name for p in problem.root.iterdir() if p.name not in skip and not p.name.startswith("."))


def review_candidate(problem: Problem, parent: str, child: str) -> list[Flag]:
    return review(parent, child, EVALUATOR_NAMES, holdout_names(problem))


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return "unknown"


def decide(store: Store, problem: Problem, policy: OversightSettings, challenger: Candidate,
           incumbent: Candidate, challenger_scores: list[float], incumbent_scores: list[float],
           evidence_kind: str) -> str:
    """Run the gate for ``challenger`` against ``incumbent``; record and return the outcome."""
    comparison = compare_repeats(incumbent_scores, challenger_scores, level=policy.level, min_effect=policy.min_effect)
    seed = store.get(1)
    flags = review_candidate(problem, seed.source or "", challenger.source or "")
    evidence = {
        "incumbent": incumbent.id, "evidence": evidence_kind,
        "challenger_scores": challenger_scores, "incumbent_scores": incumbent_scores,
        "test": comparison.test, "level": comparison.level, "p_value": comparison.p_value,
        "effect": comparison.effect, "noise": comparison.noise, "summary": comparison.summary,
        "flags": [asdict(f) for f in flags], "policy": policy.adoption,
    }
    if not comparison.better:
        store.add_promotion(challenger.id, "refused", evidence, "candidate.promotion_refused")
        return "refused"
    if flags or policy.adoption == "manual":
        store.add_promotion(challenger.id, "pending", evidence, "approval.requested")
        return "pending"
    store.add_promotion(challenger.id, "promoted", evidence, "candidate.promoted")
    write_promoted(store)
    return "promoted"


def write_promoted(store: Store) -> None:
    promoted = store.promoted()
    if promoted is not None and promoted.source:
        (store.path.parent / PROMOTED_FILE).write_text(promoted.source)


def _pending_request(store: Store, cid: int) -> dict:
    for request in store.promotions("pending"):
        if request["candidate_id"] == cid:
            return request
    pending = [r["candidate_id"] for r in store.promotions("pending")]
    raise RunError(f"candidate {cid} has no pending promotion request; pending: {pending or 'none'} "
                   f"(see `rsi pending {store.path.parent}`)")


def approve(run_dir: Path, cid: int, note: str | None) -> Candidate:
    store = Store.open(run_dir)
    store.decide_promotion(_pending_request(store, cid)["id"], "promoted", user(), note)
    write_promoted(store)
    return store.get(cid)


def reject(run_dir: Path, cid: int, note: str | None) -> None:
    store = Store.open(run_dir)
    store.decide_promotion(_pending_request(store, cid)["id"], "rejected", user(), note)


def train_holdout_gap(candidate: Candidate) -> float | None:
    """(train − held-out) / |train| of combined_score: positive means held-out is worse."""
    if candidate.score is None or not candidate.holdout or "combined_score" not in candidate.holdout:
        return None
    denominator = max(abs(candidate.score), 1e-12)
    return (candidate.score - candidate.holdout["combined_score"]) / denominator
