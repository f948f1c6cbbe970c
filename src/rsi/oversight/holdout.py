"""Held-out results for reporting (never for selection), as a hook on the search.

With ``[evaluator] holdout_every_best = true`` every new best is also evaluated on the held-out
split as it appears; at the end the seed and the final best are, if they have no held-out result
yet. Results are stored on the candidate (``holdout``) and in the audit trail; a failure is kept
in ``errors`` for the report.
"""

from __future__ import annotations

from typing import Any

from ..improvers import Outcome
from ..sandbox.types import EvalResult
from ..search import SEED_ID, BaseHook, Search, eval_seed
from ..status import Status


class HeldOutReports(BaseHook):
    name = "holdout"

    def __init__(self) -> None:
        self.errors: dict[int, str] = {}
        self.asked: set[int] = set()

    def attach(self, search: Search, state: dict[str, Any] | None) -> None:
        self.asked = set()

    def after(self, search: Search, outcome: Outcome) -> None:
        if (outcome.new_best and outcome.candidate_id != SEED_ID and search.problem.has_holdout
                and search.settings.evaluator.holdout_every_best):
            self._ask(search, outcome.candidate_id)

    def at_end(self, search: Search) -> None:
        if not search.problem.has_holdout:
            return
        best = search.store.best()
        for cid in dict.fromkeys([SEED_ID] + ([best.id] if best else [])):
            if search.store.get(cid).holdout is None:
                self._ask(search, cid)

    def _ask(self, search: Search, cid: int) -> None:
        if cid not in self.asked:
            self.asked.add(cid)
            search.request(self, cid, "holdout", eval_seed(search.settings.run.seed, cid, "holdout"))

    def on_result(self, search: Search, result: EvalResult) -> None:
        ok = Status(result.status) is Status.OK
        metrics = result.metrics if ok else {"error": float("nan")}
        search.store.update_candidate(result.candidate_id, {"holdout": metrics}, events=[
            ("candidate.holdout", {"status": result.status, "metrics": metrics if ok else None,
                                   "error": (result.error or "")[:500]})])
        if not ok:
            self.errors[result.candidate_id] = result.error or result.status
