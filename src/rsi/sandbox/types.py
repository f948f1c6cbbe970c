"""Plain data crossing the boundary between the trusted loop and evaluation workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["train", "holdout"]
Status = Literal["ok", "error", "timeout"]


@dataclass(frozen=True)
class Limits:
    """Per-candidate caps, enforced by the operating system in the evaluation child."""

    wall_seconds: float = 30.0
    cpu_seconds: float = 60.0
    memory_mb: int = 2048  # address space (RLIMIT_AS)
    output_bytes: int = 64_000  # captured stdout / stderr kept per stream
    file_bytes: int = 64 * 1024 * 1024  # RLIMIT_FSIZE for files written in scratch
    processes: int = 64  # RLIMIT_NPROC: per worker when isolated (see rsi.sandbox.isolation)
    open_files: int = 256
    scratch_bytes: int = 256 * 1024 * 1024  # tmpfs quota of a worker's scratch (task + output)
    data_bytes: int = 16 * 1024 * 1024  # split contract: the most that produce() may return
    score_seconds: float = 60.0  # split contract: wall time of one score() call
    # how the evaluator is called (rsi.compat): "rsi", "openevolve" or "shinka"; and OpenEvolve's
    # cascade thresholds (None: no cascade). Not limits, but they travel with them to every worker.
    evaluator_format: str = "rsi"
    cascade: tuple[float, ...] | None = None
    # split contract: whether produce_holdout may read the evaluator's folders (its held-out inputs)
    holdout_reads_folder: bool = True
    # a plain evaluate() runs in the trusted evaluation process and the candidate in a process of its
    # own behind proxies (rsi.sandbox.guard); False: the candidate is loaded beside the evaluator
    guard: bool = True


@dataclass(frozen=True)
class Evaluation:
    """What an evaluator may return instead of a plain dict of metrics: the metrics, and
    ``artifacts`` (plain JSON data: str, numbers, lists, dicts) handed back to the trusted side as
    ``EvalResult.data``. OpenEvolve's ``EvaluationResult`` works the same way."""

    metrics: dict
    artifacts: object = None


@dataclass(frozen=True)
class EvalTask:
    """One evaluation to run: a program, the seed its evaluation gets, and which split.

    ``ticket`` is the search's own number for this task (unique within a search session); an
    executor copies it into the result, so that results can come back in any order, and the same
    candidate can be evaluated several times at once (re-evaluations for the adoption gate).
    ``context`` is plain JSON data that the trusted side hands to the evaluator with the program
    (for evaluators that accept it; see ``rsi.sandbox.worker``).
    """

    candidate_id: int
    source: str
    seed: int
    kind: Kind = "train"
    ticket: int = 0
    context: dict | None = None


@dataclass
class EvalResult:
    """What an executor reports for one task (``ticket`` copied from it). ``data`` is what a
    ``produce`` step returned, when the trusted side asked for it back (plain JSON types)."""

    candidate_id: int
    kind: Kind
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    stdout: str = ""
    stderr: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    ticket: int = 0
    data: object = None
