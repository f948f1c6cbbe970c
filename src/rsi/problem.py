"""Load a problem folder: ``initial.py`` + ``evaluate.py`` (+ optional ``problem.toml``).

OpenEvolve's folders (``initial_program.py``, ``evaluator.py``, ``config.yaml``) and ShinkaEvolve's
(``initial.py``, ``evaluate.py`` run as a script) load unchanged too: ``rsi.compat`` tells the
layouts apart and maps OpenEvolve's config.yaml onto the settings. The evaluator is not imported
here (that happens once per evaluation worker); its functions are found by reading its syntax tree.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import compat
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
    callable ``evaluate``, which only the in-process 'fork' executor can run). ``layout`` is the
    folder's: "rsi", "openevolve" or "shinka" (``settings.evaluator.format`` says how the evaluator
    is called); ``notices`` what loading it has to tell (which layout, what config.yaml mapped and
    what rsi ignores), also logged as warnings of the ``rsi.problem`` logger.
    """

    root: Path
    initial_source: str
    evaluator_path: Path | None
    has_holdout: bool
    settings: ProblemSettings
    evaluate: Callable[[str], Any] | None = field(default=None, compare=False, repr=False)
    layout: str = "rsi"
    notices: tuple[str, ...] = field(default=(), compare=False, repr=False)
    prompt: str = field(default="", compare=False, repr=False)  # OpenEvolve's prompt.system_message

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def description(self) -> str:
        """What the problem is about, for proposers that read (a model's prompt): OpenEvolve's
        ``prompt.system_message`` from config.yaml, else the folder's ``README.md``, else the
        evaluator's docstring, else the initial program's (at most 4,000 characters)."""
        if self.prompt:
            return self.prompt[:4000]
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
    return _validate(_read_toml(path), path)


def _read_toml(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ProblemError(f"{path}: not valid TOML ({exc}); fix the syntax or delete the file") from None


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _validate(raw: dict, path: Path) -> ProblemSettings:
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
    """The problem in ``folder``, checked: rsi's layout (``initial.py``, ``evaluate.py``, optional
    ``problem.toml``), OpenEvolve's (``initial_program.py``, ``evaluator.py``, optional
    ``config.yaml``, mapped onto the settings; a ``problem.toml`` beside it wins) or
    ShinkaEvolve's (``initial.py``, ``evaluate.py`` run as a script). A missing file, an evaluator
    without ``evaluate``, bad YAML, unbalanced EVOLVE-BLOCK markers or an unknown setting raise
    ``ProblemError`` naming the file and the fix.

        problem = rsi.load_problem("examples/binpack")
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise ProblemError(f"{folder}: no such problem folder; pass a folder holding {INITIAL} and {EVALUATOR} "
                           f"(or OpenEvolve's {compat.OE_INITIAL} and {compat.OE_EVALUATOR})")
    toml = _read_toml(root / SETTINGS)
    forced = toml.get("evaluator", {}).get("format") if isinstance(toml.get("evaluator"), dict) else None
    layout = compat.detect(root, forced if forced in ("rsi", "openevolve", "shinka") else None)
    return _load_layout(root, layout, toml)


def load_files(initial: str | Path, evaluator: str | Path, config: str | Path | None = None) -> Problem:
    """The problem of a program file and an evaluator file, as OpenEvolve's command line takes them
    (``initial_program.py evaluator.py --config config.yaml``): an OpenEvolve evaluator with
    ``config`` mapped as a folder's ``config.yaml`` would be, or a ShinkaEvolve ``evaluate.py``
    script. The problem's root is the program's folder (a ``problem.toml`` there is read too).
    Resume such a run with ``Run.resume(out, problem=load_files(...))``.

        problem = rsi.load_files("initial_program.py", "evaluator.py", "config.yaml")
    """
    paths = [Path(initial).resolve(), Path(evaluator).resolve()]
    if config is not None:
        paths.append(Path(config).resolve())
    for path, role in zip(paths, ("the program to improve", "the evaluator", "OpenEvolve's settings"), strict=False):
        if not path.is_file():
            raise ProblemError(f"{path}: no such file ({role})")
    kind = "shinka" if compat.is_shinka_script(paths[1]) else "openevolve"
    layout = compat.Layout(kind, paths[0], paths[1], paths[2] if config is not None else None)
    return _load_layout(paths[0].parent, layout, _read_toml(paths[0].parent / SETTINGS))


def _load_layout(root: Path, layout: compat.Layout, toml: dict) -> Problem:
    source = layout.initial.read_text()
    _check_initial(source, str(layout.initial))
    notices: list[str] = []
    raw: dict = {}
    mapped: list[str] = []
    prompt = ""
    if layout.kind == "shinka":
        compat.check_shinka_script(layout.evaluator)
        names: set[str] = set()
        raw = {"evaluator": {"format": "shinka"}}
        notices.append(f"{root}: ShinkaEvolve folder: {layout.initial.name} is the program; {layout.evaluator.name} "
                       "runs as a script "
                       "(--program_path, --results_dir) in the sandbox, correct.json decides validity, "
                       "metrics.json's combined_score is the score")
        extra = sorted(p.name for p in root.iterdir() if p.suffix in (".yaml", ".yml") or p.name == "run_evo.py")
        if extra:
            notices.append(f"{root}: not read by rsi: {', '.join(extra)} (ShinkaEvolve's run settings; give rsi's "
                           f"as flags or in {SETTINGS})")
    else:
        names = _evaluator_names(layout.evaluator, openevolve=layout.kind == "openevolve")
        if layout.kind == "openevolve":
            raw = {"evaluator": {"format": "openevolve", "cascade_thresholds": list(compat.OE_CASCADE_DEFAULT)}}
            ignored: list[str] = []
            if layout.config is not None:
                raw, mapped, ignored, prompt = compat.openevolve_settings(layout.config)
            cascade = raw["evaluator"].get("cascade_thresholds")
            stages = "evaluate_stage1" in names
            with_cascade = f", cascade with thresholds {cascade}" if stages and cascade else ""
            notices.append(f"{root}: OpenEvolve folder: {layout.initial.name} is the program, "
                           f"{layout.evaluator.name} the evaluator{with_cascade}")
            if mapped:
                notices.append(f"{layout.config}: mapped onto rsi's settings:\n  " + "\n  ".join(mapped))
            if ignored:
                notices.append(f"{layout.config}: ignored by rsi:\n  " + "\n  ".join(ignored))
    try:
        settings = _validate(_merge(raw, toml), root / SETTINGS if toml else layout.config or root / SETTINGS)
    except ProblemError as exc:
        if layout.kind != "openevolve" or layout.config is None or not mapped:
            raise
        raise ProblemError(f"{exc}\n{layout.config} sets these through its keys:\n  " + "\n  ".join(mapped)
                           + "\nfix the value of the key named there") from None
    for notice in notices:
        logging.getLogger("rsi.problem").warning("rsi: %s", notice)
    return Problem(root, source, layout.evaluator, _has_holdout(names), settings, layout=layout.kind,
                   notices=tuple(notices), prompt=prompt)


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


def _evaluator_names(evaluator: Path, openevolve: bool = False) -> set[str]:
    try:
        tree = ast.parse(evaluator.read_text(), filename=str(evaluator))
    except SyntaxError as exc:
        raise ProblemError(f"{evaluator}: syntax error on line {exc.lineno}: {exc.msg}") from None
    names = _top_level_names(tree)
    if openevolve and "evaluate" not in names and "evaluate_stage1" not in names:
        raise ProblemError(
            f"{evaluator}: defines no function `evaluate`; an OpenEvolve evaluator needs "
            "`def evaluate(program_path)` returning a dict with 'combined_score' or an EvaluationResult "
            "(or the cascade's `evaluate_stage1(program_path)`)"
        )
    if not openevolve and "evaluate" not in names and not {"produce", "score"} <= names:
        raise ProblemError(
            f"{evaluator}: defines no function `evaluate`; add "
            "`def evaluate(program_path) -> dict` returning at least {'combined_score': float}, "
            "or the split pair `produce(program_path) -> data` and `score(data) -> dict` (a ShinkaEvolve "
            "evaluate.py instead needs an `if __name__ == \"__main__\":` block taking --program_path and --results_dir)"
        )
    return names


def _has_holdout(names: set[str]) -> bool:
    return "evaluate_holdout" in names or {"produce_holdout", "score_holdout"} <= names
