"""Load a problem folder: ``initial.py`` + ``evaluate.py`` (+ optional ``problem.toml``).

OpenEvolve's layout and contract work unchanged. The evaluator is not imported here (that
happens once per evaluation worker); its functions are found by reading its syntax tree.
"""

from __future__ import annotations

import ast
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from .errors import ProblemError, ProgramError
from .program import editable_regions, syntax_error
from .settings import ProblemSettings

INITIAL = "initial.py"
EVALUATOR = "evaluate.py"
SETTINGS = "problem.toml"


@dataclass(frozen=True)
class Problem:
    root: Path
    initial_source: str
    evaluator_path: Path
    has_holdout: bool
    settings: ProblemSettings

    @property
    def name(self) -> str:
        return self.root.name

    def evaluator_hash(self) -> str:
        """sha256 over the evaluator folder's trusted files (everything but initial.py)."""
        return hash_evaluator_files(self.root)


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def hash_evaluator_files(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name == INITIAL or "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_settings(path: Path) -> ProblemSettings:
    if not path.exists():
        return ProblemSettings()
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ProblemError(f"{path}: not valid TOML ({exc}); fix the syntax or delete the file") from None
    try:
        return ProblemSettings.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            lines.append(f"  [{key}] {err['msg']}")
        raise ProblemError(
            f"{path}: invalid settings:\n" + "\n".join(lines) + "\nSee `rsi run --help` for the keys rsi reads."
        ) from None


def load_problem(folder: str | Path) -> Problem:
    root = Path(folder).resolve()
    if not root.is_dir():
        raise ProblemError(f"{folder}: no such problem folder; pass a folder holding {INITIAL} and {EVALUATOR}")
    initial, evaluator = root / INITIAL, root / EVALUATOR
    for path, role in ((initial, "the program to improve"), (evaluator, "the trusted scoring code")):
        if not path.is_file():
            raise ProblemError(f"{path}: missing ({role}); every problem folder needs {INITIAL} and {EVALUATOR}")
    source = initial.read_text()
    problem_msg = syntax_error(source)
    if problem_msg:
        raise ProblemError(f"{initial}: {problem_msg}; the initial program must be valid Python")
    try:
        editable_regions(source)
    except ProgramError as exc:
        raise ProblemError(f"{initial}: {exc}") from None
    try:
        tree = ast.parse(evaluator.read_text(), filename=str(evaluator))
    except SyntaxError as exc:
        raise ProblemError(f"{evaluator}: syntax error on line {exc.lineno}: {exc.msg}") from None
    names = _top_level_names(tree)
    split = {"produce", "score"} <= names
    if "evaluate" not in names and not split:
        raise ProblemError(
            f"{evaluator}: defines no function `evaluate`; add "
            "`def evaluate(program_path) -> dict` returning at least {'combined_score': float}, "
            "or the split pair `produce(program_path) -> data` and `score(data) -> dict`"
        )
    has_holdout = "evaluate_holdout" in names or {"produce_holdout", "score_holdout"} <= names
    settings = load_settings(root / SETTINGS)
    return Problem(root, source, evaluator, has_holdout, settings)
