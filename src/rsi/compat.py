"""OpenEvolve and ShinkaEvolve problem folders, run unchanged.

``load_problem`` recognises three layouts (``detect``):

- rsi's own: ``initial.py`` + ``evaluate.py`` defining ``evaluate`` (or ``produce`` and ``score``),
  optional ``problem.toml``;
- OpenEvolve's: ``initial_program.py`` + ``evaluator.py`` (``evaluate(program_path)`` returning a
  dict or an ``EvaluationResult(metrics, artifacts)``, optional cascade stages
  ``evaluate_stage1/2/3``) + optional ``config.yaml``, mapped onto rsi's settings where a setting
  corresponds (``openevolve_settings``; every other key is named in a notice);
- ShinkaEvolve's: ``initial.py`` + ``evaluate.py`` that is a script (``if __name__ ==
  "__main__":``) taking ``--program_path`` and ``--results_dir`` and writing ``metrics.json`` and
  ``correct.json`` there.

How each evaluator is called, in the sandboxed evaluation child (``rsi.sandbox.worker``) or a
forked child (the 'fork' executor): ``openevolve_function`` wraps ``evaluate`` (or the cascade);
``run_script`` runs a ShinkaEvolve ``evaluate.py`` as ``__main__`` with its two arguments, and
``read_shinka_results`` (trusted code, after the child has ended) reads what it wrote.

Neither tool needs to be installed: ``install_shims`` puts ``rsi/shims`` at the *end* of
``sys.path``, where ``openevolve.evaluation_result.EvaluationResult`` and
``shinka.core.run_shinka_eval`` are small stand-ins written for rsi (an installed OpenEvolve or
ShinkaEvolve comes first on the path and is used instead).
"""

from __future__ import annotations

import ast
import json
import math
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ProblemError

RSI_INITIAL, RSI_EVALUATOR = "initial.py", "evaluate.py"
OE_INITIAL, OE_EVALUATOR, OE_CONFIG = "initial_program.py", "evaluator.py", "config.yaml"
SHINKA_RESULTS = "results"  # the --results_dir handed to a ShinkaEvolve evaluate.py (in the task folder)
OE_CASCADE_DEFAULT = [0.5, 0.75, 0.9]  # OpenEvolve's default cascade_thresholds (cascade_evaluation: true)
SHIMS = Path(__file__).resolve().parent / "shims"
RESULT_FILE_BYTES = 1024 * 1024  # the most read back from metrics.json or correct.json


@dataclass(frozen=True)
class Layout:
    """What a problem folder holds: ``kind`` is "rsi", "openevolve" or "shinka"."""

    kind: str
    initial: Path
    evaluator: Path
    config: Path | None = None

    @property
    def label(self) -> str:
        return {"rsi": "rsi", "openevolve": "OpenEvolve", "shinka": "ShinkaEvolve"}[self.kind]


# ---------------------------------------------------------------- detecting the layout


def detect(root: Path, forced: str | None = None) -> Layout:
    """The layout of the problem folder ``root``; ``ProblemError`` naming what is missing and how
    to fix it. ``forced`` ("rsi", "openevolve", "shinka", from problem.toml's ``[evaluator]
    format``) skips the guess between rsi's and ShinkaEvolve's ``evaluate.py``."""
    has = {name: (root / name).is_file() for name in (RSI_INITIAL, RSI_EVALUATOR, OE_INITIAL, OE_EVALUATOR)}
    config = root / OE_CONFIG
    if forced == "openevolve" or (not (has[RSI_INITIAL] or has[RSI_EVALUATOR])
                                  and (has[OE_INITIAL] or has[OE_EVALUATOR])):
        if not has[OE_INITIAL]:
            others = sorted(p.name for p in root.glob("initial_*") if p.is_file())
            if any(not name.endswith(".py") for name in others) and not any(n.endswith(".py") for n in others):
                raise ProblemError(f"{root / others[0]}: rsi improves Python programs only; this OpenEvolve folder "
                                   f"has no {OE_INITIAL}")
            hint = "; for a program of another name: rsi.load_files(PROGRAM, evaluator.py, config.yaml)"
            raise ProblemError(f"{root / OE_INITIAL}: missing (the program to improve); an OpenEvolve problem folder "
                               f"needs {OE_INITIAL} and {OE_EVALUATOR} (and optionally {OE_CONFIG}){hint}")
        if not has[OE_EVALUATOR]:
            raise ProblemError(f"{root / OE_EVALUATOR}: missing (the evaluator); an OpenEvolve problem folder needs "
                               f"{OE_INITIAL} and {OE_EVALUATOR} (and optionally {OE_CONFIG})")
        return Layout("openevolve", root / OE_INITIAL, root / OE_EVALUATOR, config if config.is_file() else None)
    if not has[RSI_INITIAL] and not has[RSI_EVALUATOR]:
        others = sorted(p.name for p in root.glob("initial.*") if p.suffix != ".py")
        if others:
            raise ProblemError(f"{root / others[0]}: rsi improves Python programs only; this folder has no "
                               f"{RSI_INITIAL} (ShinkaEvolve's non-Python examples do not run in rsi)")
    for name, role in ((RSI_INITIAL, "the program to improve"), (RSI_EVALUATOR, "the trusted scoring code")):
        if not has[name]:
            raise ProblemError(f"{root / name}: missing ({role}); every problem folder needs {RSI_INITIAL} and "
                               f"{RSI_EVALUATOR} (OpenEvolve's layout: {OE_INITIAL} and {OE_EVALUATOR})")
    evaluator = root / RSI_EVALUATOR
    kind = forced or ("shinka" if is_shinka_script(evaluator) else "rsi")
    return Layout(kind, root / RSI_INITIAL, evaluator)


def _tree(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        raise ProblemError(f"{path}: syntax error on line {exc.lineno}: {exc.msg}") from None


def _defines(tree: ast.Module) -> set[str]:
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _has_main_guard(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            parts = [node.test.left, *node.test.comparators]
            if any(isinstance(p, ast.Name) and p.id == "__name__" for p in parts) and \
                    any(isinstance(p, ast.Constant) and p.value == "__main__" for p in parts):
                return True
    return False


def is_shinka_script(evaluator: Path) -> bool:
    """Whether ``evaluate.py`` is a ShinkaEvolve evaluator: a script (``__main__`` block) that
    mentions ``--results_dir``, with no top-level ``evaluate`` (nor ``produce`` and ``score``)."""
    tree = _tree(evaluator)
    names = _defines(tree)
    if "evaluate" in names or {"produce", "score"} <= names:
        return False
    return _has_main_guard(tree) and "results_dir" in evaluator.read_text()


def check_shinka_script(evaluator: Path) -> None:
    """A ShinkaEvolve evaluate.py must be runnable as a script with the two arguments."""
    tree = _tree(evaluator)
    if not _has_main_guard(tree):
        raise ProblemError(f"{evaluator}: a ShinkaEvolve evaluator is run as a script, but it has no "
                           "`if __name__ == \"__main__\":` block; add one that parses --program_path and "
                           "--results_dir and writes metrics.json and correct.json into the results folder")
    text = evaluator.read_text()
    for arg in ("program_path", "results_dir"):
        if arg not in text:
            raise ProblemError(f"{evaluator}: a ShinkaEvolve evaluator takes --program_path and --results_dir, "
                               f"but {arg} appears nowhere in it; parse both arguments in its __main__ block")


# ---------------------------------------------------------------- OpenEvolve's config.yaml

_OE_FEATURES = {"complexity": "code_size", "score": "combined_score"}


def _flat(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def read_yaml(path: Path) -> dict:
    import yaml  # type: ignore[import-untyped]

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProblemError(f"{path}: not valid YAML{where}: {problem}; fix the syntax, or delete the file "
                           "to run with rsi's defaults") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProblemError(f"{path}: expected a mapping of settings (key: value lines), found a "
                           f"{type(data).__name__}; fix the file or delete it")
    return data


def openevolve_settings(path: Path) -> tuple[dict, list[str], list[str], str]:
    """OpenEvolve's ``config.yaml`` as (settings in problem.toml's shape, what was mapped, what
    rsi ignores: one line per key with the reason, the problem's description for proposers that
    read one: ``prompt.system_message``). Never fails on a key; a value of the wrong type for a
    setting it maps is a ``ProblemError`` naming the key and the file."""
    raw = read_yaml(path)
    flat = _flat(raw)
    settings: dict[str, dict] = {"evaluator": {"format": "openevolve"}}
    mapped: list[str] = []
    ignored: list[str] = []
    used: set[str] = set()

    def take(key: str, section: str, field: str, convert: Callable[[Any], Any], note: str = "") -> None:
        if key not in flat:
            return
        used.add(key)
        if flat[key] is None:
            mapped.append(f"{key}: null -> rsi's default for [{section}] {field}")
            return
        try:
            value = convert(flat[key])
        except (TypeError, ValueError):
            raise ProblemError(f"{path}: {key}: {flat[key]!r} is not a valid value for it (rsi maps it to "
                               f"[{section}] {field}); fix the value or remove the key") from None
        settings.setdefault(section, {})[field] = value
        mapped.append(f"{key} -> [{section}] {field} = {value!r}{note}")

    def number(value: Any) -> float:
        if isinstance(value, bool):
            raise TypeError
        return float(value)

    def integer(value: Any) -> int:
        if isinstance(value, bool) or float(value) != int(value):
            raise TypeError
        return int(value)

    take("max_iterations", "run", "budget", integer, " (one evaluation per iteration)")
    take("random_seed", "run", "seed", integer)
    if flat.get("random_seed") is None:
        take("database.random_seed", "run", "seed", integer)
    elif "database.random_seed" in flat:
        used.add("database.random_seed")  # OpenEvolve takes the top-level seed for its database too
    take("evaluator.timeout", "evaluator", "timeout", number, " (wall seconds for all cascade stages together)")
    take("evaluator.parallel_evaluations", "run", "workers", integer)
    take("evaluator.memory_limit_mb", "evaluator", "memory_mb", integer)
    take("evaluator.cpu_limit", "evaluator", "cpu_seconds", number)
    take("database.num_islands", "archive", "islands", integer)
    take("database.migration_interval", "archive", "migration_interval", integer,
         " (generations in OpenEvolve, evaluations in rsi)")
    if isinstance(flat.get("database.feature_bins"), int):
        take("database.feature_bins", "archive", "bins", integer)
    cascade_on = flat.get("evaluator.cascade_evaluation", True)
    used.add("evaluator.cascade_evaluation")
    used.add("evaluator.cascade_thresholds")
    if cascade_on is False:
        settings["evaluator"]["cascade_thresholds"] = None
        mapped.append("evaluator.cascade_evaluation = false -> no cascade")
    else:
        thresholds = flat.get("evaluator.cascade_thresholds", OE_CASCADE_DEFAULT)
        try:
            thresholds = [number(t) for t in thresholds]
        except (TypeError, ValueError):
            raise ProblemError(f"{path}: evaluator.cascade_thresholds: {thresholds!r} must be a list of numbers "
                               "(e.g. [0.5, 0.8]); fix it or remove the key") from None
        settings["evaluator"]["cascade_thresholds"] = thresholds
        source = "evaluator.cascade_thresholds" if "evaluator.cascade_thresholds" in flat else "OpenEvolve's default"
        mapped.append(f"{source} -> [evaluator] cascade_thresholds = {thresholds} (used if evaluator.py "
                      "defines evaluate_stage1)")
    features = flat.get("database.feature_dimensions")
    if isinstance(features, list) and features:
        used.add("database.feature_dimensions")
        kept = [_OE_FEATURES.get(str(f), str(f)) for f in features if f != "diversity"]
        if kept:
            settings.setdefault("archive", {})["features"] = kept
            mapped.append(f"database.feature_dimensions -> [archive] features = {kept}")
        if "diversity" in features:
            ignored.append("database.feature_dimensions: 'diversity' (no such descriptor in rsi; left out)")
    description = ""
    message = flat.get("prompt.system_message")
    if isinstance(message, str) and message.strip() and message != "system_message":  # not a template's name
        used.add("prompt.system_message")
        description = message.strip()
        mapped.append("prompt.system_message -> the problem's description (what proposers that read one see)")
    llm = [k for k in flat if k.startswith("llm.")]
    if llm:
        used.update(llm)
        base, model = flat.get("llm.api_base"), flat.get("llm.primary_model")
        models = flat.get("llm.models")
        if model is None and isinstance(models, list) and models and isinstance(models[0], dict):
            model = models[0].get("name")
        hint = f" --llm-url {base} --llm-model {model} --llm-key-env OPENAI_API_KEY" if base and model else \
            " --llm-url URL --llm-model NAME"
        ignored.append(f"llm.* ({', '.join(sorted(k[4:] for k in llm))}): rsi proposes with its offline "
                       f"mutate proposer unless asked; to use this model: rsi run DIR{hint}")
    for key in sorted(set(flat) - used):
        ignored.append(f"{key}: no rsi setting corresponds (not used)")
    return settings, mapped, ignored, description


# ---------------------------------------------------------------- shims

def install_shims() -> None:
    """Make ``openevolve.evaluation_result`` and ``shinka.core`` importable without the tools: rsi's
    stand-ins go at the end of ``sys.path`` (an installed OpenEvolve or ShinkaEvolve wins)."""
    path = str(SHIMS)
    if path not in sys.path:
        sys.path.append(path)


# ---------------------------------------------------------------- calling an OpenEvolve evaluator


def _number(value: object) -> float | None:
    """A finite real number as a float; None for anything else, booleans included (a flag such as
    ``valid: True`` is recorded, never averaged into a score)."""
    from .sandbox.protocol import as_number

    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return None
    number = as_number(value)
    return number if number is not None and math.isfinite(number) else None


def _plain(value: object, depth: int = 0) -> object:
    """``value`` as plain JSON data: bytes decoded, numpy scalars and arrays as numbers and lists,
    anything else as its text."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    number = _number(value)
    if number is not None:
        return int(number) if isinstance(value, int) else number
    if depth < 8 and isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if depth < 8 and isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if hasattr(value, "tolist") and depth < 8:
        try:
            return _plain(value.tolist(), depth + 1)
        except Exception:  # noqa: BLE001 - anything odd becomes text below
            pass
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        return f"<{type(value).__name__}>"


plain_data = _plain


def _split(value: object) -> tuple[object, dict]:
    from .sandbox.protocol import split_result

    metrics, artifacts = split_result(value)
    if artifacts is None:
        return metrics, {}
    if not isinstance(artifacts, dict):
        return metrics, {"artifacts": artifacts}
    return metrics, dict(artifacts)


def _passes(metrics: dict, threshold: float) -> bool:
    """OpenEvolve's rule: ``combined_score`` >= threshold when there is one, else the mean of the
    numeric metrics (but ``error``)."""
    score = _number(metrics.get("combined_score"))
    if score is not None:
        return score >= threshold
    values = [n for k, v in metrics.items() if k != "error" and (n := _number(v)) is not None]
    return bool(values) and sum(values) / len(values) >= threshold


def _stage(fn: Callable, program_path: str, k: int) -> tuple[dict, dict]:
    value = fn(program_path)
    metrics, artifacts = _split(value)
    if not isinstance(metrics, dict):
        raise TypeError(f"evaluate_stage{k} returned {type(metrics).__name__}, expected a dict of metrics "
                        "or an EvaluationResult")
    return metrics, artifacts


def openevolve_function(module: Any, cascade: list[float] | tuple[float, ...] | None,
                        features: tuple[str, ...] = ()) -> Callable[[str], Any]:
    """``evaluate(program_path)`` of an OpenEvolve evaluator module as rsi calls it: through the
    cascade (``evaluate_stage1``, then ``evaluate_stage2`` only if stage 1 reaches
    ``cascade[0]``, then ``evaluate_stage3`` if the merged metrics reach ``cascade[1]``) when
    ``cascade`` is given and the module defines ``evaluate_stage1``, else ``evaluate``. Returns an
    ``Evaluation``: the numeric metrics (merged over the stages as OpenEvolve merges them, plus
    ``stageK.NAME`` for each stage's own, ``cascade_stage``, the last stage run, and
    ``cascade_stages``, how many the evaluator defines), and artifacts
    (the evaluator's, bytes decoded, plus ``metrics``: every value that is not a number).
    A missing ``combined_score`` is OpenEvolve's: the mean of the other numeric metrics. An
    exception in any stage makes the candidate an error naming the stage."""
    from .sandbox.types import Evaluation

    stages = [getattr(module, f"evaluate_stage{k}", None) for k in (1, 2, 3)]
    use_cascade = cascade is not None and callable(stages[0])
    plain = getattr(module, "evaluate", None)
    if not use_cascade and not callable(plain):
        raise AttributeError(f"{getattr(module, '__file__', 'the evaluator')} defines no function "
                             "evaluate(program_path)")
    thresholds = list(cascade or [])
    defined = next((k for k, fn in enumerate(stages) if not callable(fn)), len(stages))

    def evaluate(program_path: str) -> Evaluation:
        merged: dict = {}
        artifacts: dict = {}
        extra: dict[str, float] = {}
        if not use_cascade:
            assert callable(plain)
            merged, artifacts = _stage(plain, program_path, 0)
        else:
            for k, fn in enumerate(stages, start=1):
                if fn is None or not callable(fn):
                    break
                if k > 1 and (len(thresholds) < k - 1 or not _passes(merged, thresholds[k - 2])):
                    break
                try:
                    metrics, found = _stage(fn, program_path, k)
                except Exception as exc:
                    raise RuntimeError(f"stage {k} of the cascade (evaluate_stage{k}) failed: "
                                       f"{type(exc).__name__}: {exc}") from exc
                for key, value in metrics.items():
                    number = _number(value)
                    if number is not None:
                        extra[f"stage{k}.{key}"] = number
                    if key != "error" and number is not None:
                        merged[key] = value  # OpenEvolve's merge: a later stage's number wins
                    else:
                        merged.setdefault(key, value)
                artifacts.update(found)
                extra["cascade_stage"] = float(k)
            extra["cascade_stages"] = float(defined)  # cascade_stages - cascade_stage: the stages saved
        numbers = {str(k): n for k, v in merged.items() if (n := _number(v)) is not None}
        others = {str(k): _plain(v) for k, v in merged.items() if _number(v) is None}
        if "combined_score" not in merged:
            pool = [n for k, n in numbers.items() if k not in features and k != "error"] or list(numbers.values())
            numbers["combined_score"] = sum(pool) / len(pool) if pool else 0.0
            others["combined_score_rule"] = "OpenEvolve: no combined_score, so the mean of the numeric metrics"
        elif "combined_score" in others:  # a score that is not a finite number: rsi's check names it
            numbers["combined_score"] = merged["combined_score"]
        numbers.update(extra)
        plain_artifacts = _plain(artifacts)
        if others:
            plain_artifacts = {**(plain_artifacts if isinstance(plain_artifacts, dict) else {}), "metrics": others}
        return Evaluation(metrics=numbers, artifacts=plain_artifacts or None)

    return evaluate


# ---------------------------------------------------------------- running a ShinkaEvolve evaluate.py


def run_script(evaluator: str, program_path: str, results_dir: str) -> dict:
    """Run ``evaluator`` as ShinkaEvolve does (``python evaluate.py --program_path P --results_dir
    D``), here as ``__main__`` in this (already sandboxed) process. A JSON-ready note of how it
    ended: ``{"exit": code}``, with ``traceback`` when it raised."""
    import runpy

    os.makedirs(results_dir, exist_ok=True)
    folder = os.path.dirname(os.path.abspath(evaluator))
    if folder not in sys.path:  # a script's own folder comes first on its path: its neighbours import
        sys.path.insert(0, folder)
    argv = sys.argv
    sys.argv = [evaluator, "--program_path", program_path, "--results_dir", results_dir]
    note: dict = {"exit": 0}
    try:
        runpy.run_path(evaluator, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        note["exit"] = code if isinstance(code, int) else (0 if code is None else 1)
        if not isinstance(code, int) and code is not None:
            note["traceback"] = str(code)[-2000:]
    except BaseException:  # noqa: BLE001 - the evaluator's or the candidate's failure, reported
        note["exit"] = 1
        note["traceback"] = traceback.format_exc()[-2000:]
    finally:
        sys.argv = argv
    return note


def _read_json(folder_fd: int, name: str) -> tuple[object, str | None]:
    """(the JSON in ``name``, None) or (None, why not); never follows a symlink, reads at most
    ``RESULT_FILE_BYTES``."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
    except FileNotFoundError:
        return None, "is missing"
    except OSError as exc:
        return None, f"cannot be opened ({exc.strerror})"
    try:
        import stat

        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "is not a regular file"
        if info.st_size > RESULT_FILE_BYTES:
            return None, f"is larger than {RESULT_FILE_BYTES} bytes"
        data = os.read(fd, RESULT_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        return json.loads(data), None
    except (ValueError, RecursionError) as exc:
        return None, f"is not valid JSON ({exc})"


def _flatten_numbers(prefix: str, value: object, numbers: dict[str, float], others: dict, depth: int = 0) -> None:
    number = _number(value)  # booleans are recorded with the other values that are not numbers
    if number is not None:
        numbers[prefix] = number
    elif isinstance(value, dict) and depth < 4:
        for key, item in value.items():
            _flatten_numbers(f"{prefix}.{key}" if prefix else str(key), item, numbers, others, depth + 1)
    else:
        others[prefix] = value


def shinka_result(metrics: object, correct: object) -> dict:
    """What ShinkaEvolve's two files mean for rsi: ``{"metrics", "data"}`` or ``{"error"}``.

    ``correct.json``'s ``correct`` false: an error with its ``error``. ``combined_score`` is the
    objective (missing: 0.0, ShinkaEvolve's rule); numbers under ``public`` and ``private`` are
    recorded as ``public.NAME`` and ``private.NAME``; ``text_feedback`` and every value that is
    not a number go to the artifacts."""
    if not isinstance(correct, dict) or "correct" not in correct:
        return {"error": f"correct.json holds {_short(correct)}, expected {{\"correct\": true|false, \"error\": ...}}"}
    if correct.get("correct") is not True:
        reason = correct.get("error") or "no reason given"
        return {"error": f"the evaluator marked the program incorrect (correct.json): {str(reason)[:2000]}"}
    if not isinstance(metrics, dict):
        return {"error": f"metrics.json holds {_short(metrics)}, expected an object with combined_score"}
    numbers: dict[str, float] = {}
    others: dict = {}
    for key, value in metrics.items():
        if key == "combined_score":
            continue
        if key == "text_feedback":
            others[key] = value
            continue
        _flatten_numbers(str(key), value, numbers, others)
    artifacts: dict = {}
    if "combined_score" not in metrics:
        numbers["combined_score"] = 0.0
        artifacts["combined_score_rule"] = "ShinkaEvolve: no combined_score in metrics.json, so 0.0"
    else:
        score = metrics["combined_score"]
        number = _number(score) if not isinstance(score, bool) else None
        if number is None:
            return {"error": f"metrics.json has combined_score={_short(score)}, expected a finite number"}
        numbers["combined_score"] = number
    if others:
        artifacts["metrics"] = _plain(others)
    return {"metrics": numbers, "data": artifacts or None}


def _short(value: object) -> str:
    text = json.dumps(value)[:80] if not isinstance(value, str) else repr(value[:80])
    return text


def read_shinka_results(results_dir: str, note: dict | None = None) -> dict:
    """Read back (trusted code, after the evaluation process has ended) what a ShinkaEvolve
    evaluate.py wrote in ``results_dir``: ``{"metrics", "data"}`` or ``{"error"}``. ``note`` is
    what the evaluation process reported of the script's end (``run_script``), used in errors."""
    ended = ""
    if note and note.get("exit"):
        ended = f"; the script ended with exit code {note.get('exit')}"
        if note.get("traceback"):
            ended += f":\n{note['traceback']}"
    try:
        folder = os.open(results_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return {"error": f"evaluate.py left no results folder (--results_dir){ended}"}
    try:
        metrics, why_m = _read_json(folder, "metrics.json")
        correct, why_c = _read_json(folder, "correct.json")
    finally:
        os.close(folder)
    if why_m:
        return {"error": f"evaluate.py wrote no usable metrics.json in --results_dir (it {why_m}); a ShinkaEvolve "
                f"evaluator writes metrics.json and correct.json there (run_shinka_eval does){ended}"}
    if why_c:
        return {"error": f"evaluate.py wrote no usable correct.json in --results_dir (it {why_c}); ShinkaEvolve "
                f"counts that as an incorrect program{ended}"}
    return shinka_result(metrics, correct)


def shinka_function(evaluator: str) -> Callable[[str], Any]:
    """``evaluate(program_path)`` for a ShinkaEvolve evaluate.py in one process (the 'fork'
    executor): run the script into a results folder beside the program, read the files back."""
    from .sandbox.types import Evaluation

    def evaluate(program_path: str) -> Evaluation:
        results = os.path.join(os.path.dirname(os.path.abspath(program_path)), SHINKA_RESULTS)
        outcome = read_shinka_results(results, run_script(evaluator, program_path, results))
        if "error" in outcome:
            raise RuntimeError(outcome["error"])
        return Evaluation(metrics=outcome["metrics"], artifacts=outcome.get("data"))

    return evaluate


def evaluator_function(module: Any, evaluator: str, fmt: str, cascade) -> Callable[[str], Any] | None:
    """The function rsi calls for a training evaluation of ``module`` (the evaluator at path
    ``evaluator``) in format ``fmt``; None: rsi's own contract applies unchanged."""
    if fmt == "shinka":
        return shinka_function(evaluator)
    if fmt == "openevolve" or (cascade is not None and callable(getattr(module, "evaluate_stage1", None))):
        return openevolve_function(module, cascade)
    return None
