"""The words a search uses for what happened: candidate statuses and stop reasons.

Both are ``StrEnum``s: they compare equal to their text (``Status.OK == "ok"``), which is what the
run database stores, so a value read back from SQLite and an enum member are interchangeable.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a candidate stands. Only ``OK`` candidates have a score."""

    PENDING = "pending"  # proposed and stored, not yet evaluated (evaluated on resume if the run died)
    OK = "ok"  # evaluated, with a finite combined_score
    ERROR = "error"  # the evaluation raised, returned garbage, or its process died
    TIMEOUT = "timeout"  # the evaluation hit its wall or CPU limit
    INVALID = "invalid"  # the proposer made no usable child (no site, syntax error, ...)
    REJECTED = "rejected"  # the child edits code outside the EVOLVE-BLOCKs
    DUPLICATE = "duplicate"  # the same program (normalised syntax tree) as an earlier candidate

    @property
    def evaluated(self) -> bool:
        return self in (Status.OK, Status.ERROR, Status.TIMEOUT)


class StopReason(StrEnum):
    """Why a search stopped proposing."""

    BUDGET = "budget reached"
    TIME = "time limit reached"
    CPU = "CPU budget reached"
    TOKENS = "token budget reached"
    COST = "money budget reached"
    STUCK = "too many proposals without evaluations (every child invalid or duplicate)"
    STOP_REQUESTED = "stop requested"
    INTERRUPTED = "interrupted"
    EVALUATOR_CHANGED = "evaluator changed"
    GENERATIONS_DONE = "all generations done"  # self-improvement: every generation ran
    IMPROVER_FAILED = "the improver failed"  # raised, hung, crashed or answered garbage (event improver.failed)

    @property
    def checks_at_end(self) -> bool:
        """Whether the end-of-search checks (final gate, held-out reports) still run."""
        return self not in (StopReason.STOP_REQUESTED, StopReason.INTERRUPTED, StopReason.EVALUATOR_CHANGED,
                            StopReason.IMPROVER_FAILED)


EVALUATED = (Status.OK, Status.ERROR, Status.TIMEOUT)
FINAL = (Status.OK, Status.ERROR, Status.TIMEOUT, Status.INVALID, Status.DUPLICATE, Status.REJECTED)
