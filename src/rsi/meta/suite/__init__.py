"""The problem suite on which an improver's meta-utility is measured.

Each sub-folder is an ordinary problem (``initial.py``, ``evaluate.py``, ``problem.toml``, plus
the ``reference.py`` that reaches its reference score). Its ``evaluate.py`` holds only the
problem's instance parameters: the trusted code (instance generators, simulation, score) is one
module per family in ``_families/``, named after the problem's ``kind``. The folder links the two
modules its evaluator runs (``_family.py``, ``_common.py``): an evaluator's integrity hash covers
the files of its folder, and so covers them. ``problem.toml`` says which split the
problem belongs to, its family (``kind``) and two anchor scores: what the seed program scores and
what a good program reaches. Progress on a problem is then measured as a normalised gain,

    gain = (score - seed_score) / (reference_score - seed_score)

0 for no progress, 1 for reaching the reference. The gain is clipped to [-1, 2]: a program much
worse than the seed (or one that diverged) costs at most one seed-to-reference distance, and a
problem on which the reference is left far behind cannot outweigh the rest of the suite. A missing
score (``None`` or NaN: nothing was evaluated) counts as 0, since the seed is always available.

Splits: ``train`` (what the self-improvement loop optimises), ``validation`` (for choosing between
improvers) and ``test`` (only for reporting; families seen in training, different instances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ...errors import ProblemError
from ...problem import load_settings

SUITE_DIR = Path(__file__).resolve().parent
SPLITS = ("train", "validation", "test")
GAIN_MIN, GAIN_MAX = -1.0, 2.0
REQUIRED_FILES = ("initial.py", "evaluate.py", "problem.toml")


@dataclass(frozen=True)
class SuiteProblem:
    name: str
    path: Path
    split: str
    kind: str
    seed_score: float
    reference_score: float
    reference_note: str = ""

    @property
    def initial(self) -> Path:
        return self.path / "initial.py"

    @property
    def evaluator(self) -> Path:
        return self.path / "evaluate.py"

    @property
    def reference(self) -> Path | None:
        """The program that reaches ``reference_score``, if the problem ships one."""
        path = self.path / "reference.py"
        return path if path.is_file() else None

    def normalised_gain(self, score: float | None) -> float:
        """(score - seed) / (reference - seed), clipped to [-1, 2]; None or NaN count as 0."""
        if score is None or math.isnan(score):
            return 0.0
        gain = (score - self.seed_score) / (self.reference_score - self.seed_score)
        return min(GAIN_MAX, max(GAIN_MIN, gain))


def _load_problem(folder: Path) -> SuiteProblem:
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ProblemError(f"suite problem {folder}: missing {', '.join(missing)}")
    where = folder / "problem.toml"
    meta = load_settings(where).meta  # validated: split, kind and the two scores are typed
    if meta is None:
        raise ProblemError(f"{where}: needs a [meta] table with split, kind, seed_score and reference_score")
    for key in ("seed_score", "reference_score"):
        if not math.isfinite(getattr(meta, key)):
            raise ProblemError(f"{where}: [meta] {key} must be a finite number, got {getattr(meta, key)!r}")
    if meta.reference_score <= meta.seed_score:
        raise ProblemError(f"{where}: reference_score ({meta.reference_score}) must be higher than seed_score "
                           f"({meta.seed_score})")
    return SuiteProblem(name=folder.name, path=folder, split=meta.split, kind=meta.kind, seed_score=meta.seed_score,
                        reference_score=meta.reference_score, reference_note=meta.reference_note)


def load_suite(split: str | None = None, root: Path = SUITE_DIR) -> list[SuiteProblem]:
    """The problems under ``root`` (one per sub-folder), sorted by name, optionally of one split.

    Folders whose name starts with ``_`` or ``.`` are skipped. A broken entry raises ValueError
    naming its folder: a suite with a silently missing problem would measure something else.
    """
    if split is not None and split not in SPLITS:
        raise ProblemError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    folders = sorted(
        path for path in Path(root).iterdir() if path.is_dir() and path.name[0] not in "_."
    )
    problems = [_load_problem(folder) for folder in folders]
    return [problem for problem in problems if split is None or problem.split == split]


__all__ = ["GAIN_MAX", "GAIN_MIN", "SPLITS", "SUITE_DIR", "SuiteProblem", "load_suite"]
