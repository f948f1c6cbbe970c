"""The Executor of a self-improvement run: its tasks are candidate improvers, measured on the
training units by a ``MetaEvaluator`` (``rsi.meta.metautil``); a result is the training
meta-utility. ``rsi.meta.selfimprove`` drives the outer search on it with ``rsi.run.drive``."""

from __future__ import annotations

from collections.abc import Callable

from ..sandbox.types import EvalResult, EvalTask
from ..sandbox.types import Status as EvalStatus
from .metautil import MetaEvaluator, MetaResult


class ImproverExecutor:
    """An ``Executor`` over a MetaEvaluator: a task is a candidate improver, its result the
    training meta-utility (status error/timeout when one of its searches failed)."""

    score_mode = "split"  # the inner searches' programs are re-scored by trusted code
    sandbox_level = "full"

    def __init__(self, meta: MetaEvaluator, units, workers: int, on_measured: Callable[[int, MetaResult], None],
                 reference: Callable[[int], MetaResult | None] = lambda cid: None, neutral_after: int = 0):
        self.meta = meta
        self.units_ = units
        self._workers = workers
        self.on_measured = on_measured
        self.reference = reference
        self.neutral_after = neutral_after
        self._in_flight: dict[int, int] = {}  # candidate id -> ticket

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def submit(self, task: EvalTask) -> None:
        self.meta.submit((task.candidate_id, "train"), task.source, self.units_,
                         reference=self.reference(task.candidate_id), neutral_after=self.neutral_after)
        self._in_flight[task.candidate_id] = task.ticket

    def collect(self, timeout: float) -> list[EvalResult]:
        out = []
        for result in self.meta.collect(timeout):
            key = result.key
            assert isinstance(key, tuple)  # (candidate id, split), as submitted
            cid = key[0]
            ticket = self._in_flight.pop(cid, None)
            if ticket is None:
                continue  # cancelled
            self.on_measured(cid, result)
            status: EvalStatus = "ok" if result.ok else ("timeout" if result.status == "timeout" else "error")
            out.append(EvalResult(cid, "train", status, metrics=result.metrics() if result.ok else {},
                                  error=result.error, wall_seconds=result.wall_seconds,
                                  cpu_seconds=result.cpu_seconds, ticket=ticket))
        return out

    def verify_evaluator(self) -> str | None:
        return self.meta.verify_evaluator()

    def cancel(self) -> None:
        for cid in list(self._in_flight):
            self.meta.cancel((cid, "train"))
        self._in_flight.clear()

    def close(self) -> None:
        self.cancel()
