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
import tomllib
from dataclasses import dataclass
from pathlib import Path

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
    timeout: float = 10.0

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


def _number(meta: dict, key: str, where: Path) -> float:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: [meta] {key} must be a finite number, got {value!r}")
    return float(value)


def _load_problem(folder: Path) -> SuiteProblem:
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"suite problem {folder}: missing {', '.join(missing)}")
    where = folder / "problem.toml"
    try:
        config = tomllib.loads(where.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: not valid TOML ({exc})") from exc
    meta = config.get("meta")
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: needs a [meta] table with split, kind and the two scores")
    split = meta.get("split")
    if split not in SPLITS:
        raise ValueError(f"{where}: [meta] split must be one of {', '.join(SPLITS)}, got {split!r}")
    kind = meta.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"{where}: [meta] kind must be a non-empty string (the problem family)")
    seed = _number(meta, "seed_score", where)
    reference = _number(meta, "reference_score", where)
    if reference <= seed:
        raise ValueError(
            f"{where}: reference_score ({reference}) must be higher than seed_score ({seed})"
        )
    note = meta.get("reference_note", "")
    if not isinstance(note, str):
        raise ValueError(f"{where}: [meta] reference_note must be a string")
    evaluator = config.get("evaluator", {})
    timeout = evaluator.get("timeout", 10.0) if isinstance(evaluator, dict) else None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"{where}: [evaluator] timeout must be a positive number of seconds")
    return SuiteProblem(
        name=folder.name,
        path=folder,
        split=split,
        kind=kind,
        seed_score=seed,
        reference_score=reference,
        reference_note=note,
        timeout=float(timeout),
    )


def load_suite(split: str | None = None, root: Path = SUITE_DIR) -> list[SuiteProblem]:
    """The problems under ``root`` (one per sub-folder), sorted by name, optionally of one split.

    Folders whose name starts with ``_`` or ``.`` are skipped. A broken entry raises ValueError
    naming its folder: a suite with a silently missing problem would measure something else.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    folders = sorted(
        path for path in Path(root).iterdir() if path.is_dir() and path.name[0] not in "_."
    )
    problems = [_load_problem(folder) for folder in folders]
    return [problem for problem in problems if split is None or problem.split == split]


__all__ = ["GAIN_MAX", "GAIN_MIN", "SPLITS", "SUITE_DIR", "SuiteProblem", "load_suite"]
