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


@dataclass(frozen=True)
class EvalTask:
    candidate_id: int
    source: str
    seed: int
    kind: Kind = "train"


@dataclass
class EvalResult:
    candidate_id: int
    kind: Kind
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    stdout: str = ""
    stderr: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
