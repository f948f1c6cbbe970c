"""Load a problem folder: ``initial.py`` + ``evaluate.py`` (+ optional ``problem.toml``).

OpenEvolve's layout and contract work unchanged. The evaluator is not imported here (that
happens once per evaluation worker); its functions are found by reading its syntax tree.
"""

from __future__ import annotations

import ast
import hashlib
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ProblemError, ProgramError
from .program import editable_regions, syntax_error
from .settings import ProblemSettings

INITIAL = "initial.py"
EVALUATOR = "evaluate.py"
SETTINGS = "problem.toml"


@dataclass(frozen=True)
class Problem:
    """A program to improve and how it is scored. Make one with ``load_problem(folder)`` (a problem
    folder) or ``problem_from(initial_source, evaluator)`` (a string and a file or a callable).

    ``evaluator_path`` is the trusted ``evaluate.py`` (None when the evaluator is the Python
    callable ``evaluate``, which only the in-process 'fork' executor can run).
    """

    root: Path
    initial_source: str
    evaluator_path: Path | None
    has_holdout: bool
    settings: ProblemSettings
    evaluate: Callable[[str], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def description(self) -> str:
        """What the problem is about, for proposers that read (a model's prompt): the folder's
        ``README.md``, else the evaluator's docstring, else the initial program's (at most 4,000
        characters)."""
        readme = self.root / "README.md"
        if readme.is_file():
            return readme.read_text(errors="replace")[:4000]
        for text in ((self.evaluator_path.read_text(errors="replace") if self.evaluator_path else ""),
                     self.initial_source):
            try:
                doc = ast.get_docstring(ast.parse(text))
            except SyntaxError:
                doc = None
            if doc:
                return doc[:4000]
        return ""

    def evaluator_hash(self) -> str:
        """sha256 over the evaluator's trusted files (its folder, everything but initial.py); for a
        callable evaluator, over its qualified name and code."""
        if self.evaluator_path is None:
            code = getattr(self.evaluate, "__code__", None)
            ident = f"{getattr(self.evaluate, '__module__', '')}.{getattr(self.evaluate, '__qualname__', '')}"
            return hashlib.sha256(ident.encode() + (code.co_code if code is not None else b"")).hexdigest()
        return hash_evaluator_files(self.evaluator_path.parent)


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
    """The problem in ``folder`` (``initial.py``, ``evaluate.py``, optional ``problem.toml``), checked:
    a missing file, an evaluator without ``evaluate``, unbalanced EVOLVE-BLOCK markers or an unknown
    setting raise ``ProblemError`` naming the file and the fix.

        problem = rsi.load_problem("examples/binpack")
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise ProblemError(f"{folder}: no such problem folder; pass a folder holding {INITIAL} and {EVALUATOR}")
    initial, evaluator = root / INITIAL, root / EVALUATOR
    for path, role in ((initial, "the program to improve"), (evaluator, "the trusted scoring code")):
        if not path.is_file():
            raise ProblemError(f"{path}: missing ({role}); every problem folder needs {INITIAL} and {EVALUATOR}")
    source = initial.read_text()
    _check_initial(source, str(initial))
    names = _evaluator_names(evaluator)
    settings = load_settings(root / SETTINGS)
    return Problem(root, source, evaluator, _has_holdout(names), settings)


def problem_from(initial_source: str, evaluator: str | Path | Callable[[str], Any], *, name: str = "problem",
                 settings: ProblemSettings | dict | None = None, folder: str | Path | None = None) -> Problem:
    """A problem from a program text and its evaluator, without a problem folder.

    ``evaluator`` is either the path of a trusted ``evaluate.py`` (run in the sandboxed worker
    pool, as a folder's would be) or a callable ``evaluate(program_path) -> dict`` (run in
    children forked from your process, under CPU and wall limits only: use it for programs you
    trust or in a process that is itself sandboxed). ``settings`` is a ``ProblemSettings`` or a
    dict in problem.toml's shape. ``initial.py`` is written to ``folder`` (default: a new
    temporary folder), which becomes the problem's root.

        problem = rsi.problem_from("def f(x):\n    return x\n", lambda path: {"combined_score": 1.0})
    """
    _check_initial(initial_source, "the initial program")
    if isinstance(settings, dict):
        try:
            settings = ProblemSettings.model_validate(settings)
        except ValidationError as exc:
            raise ProblemError(f"invalid settings: {exc}") from None
    root = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix=f"rsi-{name}-")) / name
    root.mkdir(parents=True, exist_ok=True)
    (root / INITIAL).write_text(initial_source)
    if callable(evaluator):
        return Problem(root.resolve(), initial_source, None, False, settings or ProblemSettings(), evaluator)
    path = Path(evaluator).resolve()
    if not path.is_file():
        raise ProblemError(f"{evaluator}: no such evaluator file; pass the path of an evaluate.py or a callable")
    names = _evaluator_names(path)
    return Problem(root.resolve(), initial_source, path, _has_holdout(names), settings or ProblemSettings())


def _check_initial(source: str, where: str) -> None:
    """The initial program must parse and have balanced EVOLVE-BLOCK markers."""
    problem_msg = syntax_error(source)
    if problem_msg:
        raise ProblemError(f"{where}: {problem_msg}; the initial program must be valid Python")
    try:
        editable_regions(source)
    except ProgramError as exc:
        raise ProblemError(f"{where}: {exc}") from None


def _evaluator_names(evaluator: Path) -> set[str]:
    try:
        tree = ast.parse(evaluator.read_text(), filename=str(evaluator))
    except SyntaxError as exc:
        raise ProblemError(f"{evaluator}: syntax error on line {exc.lineno}: {exc.msg}") from None
    names = _top_level_names(tree)
    if "evaluate" not in names and not {"produce", "score"} <= names:
        raise ProblemError(
            f"{evaluator}: defines no function `evaluate`; add "
            "`def evaluate(program_path) -> dict` returning at least {'combined_score': float}, "
            "or the split pair `produce(program_path) -> data` and `score(data) -> dict`"
        )
    return names


def _has_holdout(names: set[str]) -> bool:
    return "evaluate_holdout" in names or {"produce_holdout", "score_holdout"} <= names
