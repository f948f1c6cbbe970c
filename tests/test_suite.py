"""The meta-utility problem suite: each problem is well-formed, deterministic, cheap, improvable."""

from __future__ import annotations

import ast
import importlib.util
import io
import math
import os
import shutil
import sys
import time
import tokenize
import types
import uuid
from pathlib import Path

import numpy as np
import pytest

from rsi.errors import ProblemError
from rsi.meta.suite import GAIN_MAX, GAIN_MIN, SUITE_DIR, SuiteProblem, load_suite
from rsi.meta.suite._families import minimisation
from rsi.problem import hash_evaluator_files
from rsi.program import editable_regions
from rsi.sandbox.integrity import hash_files, loaded_files

PROBLEMS = load_suite()
BY_NAME = {problem.name: problem for problem in PROBLEMS}
MAX_SECONDS = 0.2  # CPU seconds per evaluate() call
FAMILIES = SUITE_DIR / "_families"
FAMILY_PACKAGE = "rsi.meta.suite._families"
# Scores are sums, means and logs of float computations, some iterated (100 optimisation steps):
# other hardware or another SIMD code path in numpy changes their last bits, and the recorded
# scores were measured on some machine. rel 1e-6 is far above that and far below any real change.
SCORE_REL = 1e-6
SAME_MACHINE_REL = 1e-9  # two evaluations here: bit for bit but for the alignment of buffers


def _evaluator(folder: Path):
    name = f"suite_eval_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, folder / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EVALUATORS: dict[str, object] = {}


def evaluator(problem: SuiteProblem):
    if problem.name not in EVALUATORS:
        EVALUATORS[problem.name] = _evaluator(problem.path)
    return EVALUATORS[problem.name]


def score(problem: SuiteProblem, program: Path) -> float:
    return evaluator(problem).evaluate(str(program))["combined_score"]


def entry_point(problem: SuiteProblem) -> str:
    """The name of the function the program must define (the one inside the EVOLVE block)."""
    source = problem.initial.read_text()
    region = editable_regions(source)[0]
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and region.contains(node.lineno):
            return node.name
    raise AssertionError(f"{problem.name}: no function inside the EVOLVE block")


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=SCORE_REL, abs_tol=1e-12)


ids = [problem.name for problem in PROBLEMS]


# ------------------------------------------------------------------ the suite as a whole


def test_splits_have_the_required_sizes_and_are_disjoint():
    splits = {name: load_suite(name) for name in ("train", "validation", "test")}
    assert len(splits["train"]) >= 10
    assert len(splits["validation"]) >= 4
    assert len(splits["test"]) >= 4
    names = [p.name for members in splits.values() for p in members]
    assert len(names) == len(set(names)) == len(PROBLEMS) >= 18
    assert [p.name for p in PROBLEMS] == sorted(p.name for p in PROBLEMS)


def test_every_split_mixes_families_and_test_families_are_trained_on():
    kinds = {name: {p.kind for p in load_suite(name)} for name in ("train", "validation", "test")}
    assert all(len(found) >= 3 for found in kinds.values())
    assert kinds["test"] <= kinds["train"]
    assert kinds["validation"] <= kinds["train"]


def test_normalised_gain():
    problem = PROBLEMS[0]
    seed, ref = problem.seed_score, problem.reference_score
    assert problem.normalised_gain(seed) == pytest.approx(0.0, abs=1e-12)
    assert problem.normalised_gain(ref) == pytest.approx(1.0)
    assert problem.normalised_gain((seed + ref) / 2) == pytest.approx(0.5)
    assert problem.normalised_gain(None) == 0.0
    assert problem.normalised_gain(float("nan")) == 0.0
    assert problem.normalised_gain(seed - 100 * (ref - seed)) == GAIN_MIN == -1.0
    assert problem.normalised_gain(float("-inf")) == GAIN_MIN
    assert problem.normalised_gain(ref + 100 * (ref - seed)) == GAIN_MAX == 2.0


def test_load_suite_rejects_an_unknown_split():
    with pytest.raises(ProblemError, match="unknown split"):
        load_suite("holdout")


def _copy_problem(tmp_path: Path, name: str = "binpack_or") -> Path:
    folder = tmp_path / "suite" / name
    shutil.copytree(SUITE_DIR / name, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace('split = "train"', 'split = "holdout"'), r"\[meta.split\] Input should be 'train'"),
        (lambda t: t.replace('kind = "binpack"', "kind = 3"), r"\[meta.kind\] Input should be a valid string"),
        (lambda t: t.replace("seed_score =", "seed_score = 'x' #"), r"\[meta.seed_score\] Input should be a valid"),
        (lambda t: t.replace("seed_score =", "seed_score = nan #"), "seed_score must be a finite"),
        (lambda t: t.replace("[meta]", "[meta"), "not valid TOML"),
        (lambda t: t.replace("reference_score =", "reference_score = -1e9 #"), "must be higher"),
        (lambda t: t.replace("[meta]", "[other]"), r"\[other\] Extra inputs are not permitted"),
        (lambda t: t.split("[meta]")[0], r"needs a \[meta\] table"),
    ],
)
def test_load_suite_names_the_broken_folder(tmp_path, edit, message):
    folder = _copy_problem(tmp_path)
    toml = folder / "problem.toml"
    toml.write_text(edit(toml.read_text()))
    with pytest.raises(ProblemError, match=message) as info:
        load_suite(root=tmp_path / "suite")
    assert "binpack_or" in str(info.value)


def test_load_suite_names_a_folder_with_a_missing_file(tmp_path):
    folder = _copy_problem(tmp_path)
    (folder / "evaluate.py").unlink()
    with pytest.raises(ProblemError, match="binpack_or.*missing evaluate.py"):
        load_suite(root=tmp_path / "suite")


def test_load_suite_skips_private_folders(tmp_path):
    _copy_problem(tmp_path)
    (tmp_path / "suite" / "__pycache__").mkdir()
    (tmp_path / "suite" / "_notes").mkdir()
    assert [p.name for p in load_suite(root=tmp_path / "suite")] == ["binpack_or"]


# ------------------------------------------------------------------ every problem


@pytest.mark.parametrize("problem", PROBLEMS, ids=ids)
def test_problem_folder_loads_in_the_engine(problem):
    problem_module = pytest.importorskip("rsi.problem")
    loaded = problem_module.load_problem(problem.path)
    meta = loaded.settings.meta  # a dict, or typed (settings.SuiteMeta)
    assert (meta["split"] if isinstance(meta, dict) else meta.split) == problem.split
    assert len(editable_regions(problem.initial.read_text())) == 1


@pytest.mark.parametrize("problem", PROBLEMS, ids=ids)
def test_seed_score_is_reached_and_deterministic(problem, tmp_path):
    first = evaluator(problem).evaluate(str(problem.initial))
    assert close(first["combined_score"], problem.seed_score), first
    assert all(isinstance(value, float) for value in first.values())
    # Again, from a fresh copy of the folder with a fresh evaluator: the folder is self-contained.
    copy = _copy_problem(tmp_path, problem.name)
    again = _evaluator(copy).evaluate(str(copy / "initial.py"))
    assert again == pytest.approx(first, rel=SAME_MACHINE_REL, abs=1e-12)


@pytest.mark.parametrize("problem", PROBLEMS, ids=ids)
def test_reference_reaches_reference_score(problem):
    assert problem.reference_score > problem.seed_score
    if problem.reference is None:
        pytest.skip("no reference.py (the reference is a known optimum)")
    assert close(score(problem, problem.reference), problem.reference_score)
    assert problem.normalised_gain(score(problem, problem.reference)) == pytest.approx(1.0)


@pytest.mark.parametrize("problem", PROBLEMS, ids=ids)
def test_evaluation_is_cheap(problem):
    run = evaluator(problem).evaluate
    run(str(problem.initial))  # warm up
    for program in filter(None, (problem.initial, problem.reference)):
        spent = []
        for _ in range(3):
            start = time.process_time()
            run(str(program))
            spent.append(time.process_time() - start)
        assert min(spent) < MAX_SECONDS, f"{program.name}: {min(spent):.3f} s"


BROKEN = {
    "raises": "def {name}(*args, **kwargs):\n    raise RuntimeError('boom')\n",
    "returns None": "def {name}(*args, **kwargs):\n    return None\n",
    "missing": "def something_else(*args, **kwargs):\n    return 0\n",
    "not callable": "{name} = 3\n",
    "returns NaN": "def {name}(*args, **kwargs):\n    return float('nan')\n",
    "returns complex": "def {name}(*args, **kwargs):\n    return 1j\n",
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
@pytest.mark.parametrize("problem", PROBLEMS, ids=ids)
def test_broken_program_raises(problem, kind, tmp_path):
    program = tmp_path / "candidate.py"
    program.write_text("import numpy as np\n\n" + BROKEN[kind].format(name=entry_point(problem)))
    with pytest.raises(Exception):  # noqa: B017 - any exception: how it refuses is up to the evaluator
        evaluator(problem).evaluate(str(program))


def _perturbed_variants(source: str):
    """Copies of ``source`` with one numeric literal inside the EVOLVE block changed."""
    region = editable_regions(source)[0]
    lines = source.splitlines(keepends=True)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        row, col = token.start
        if token.type != tokenize.NUMBER or not region.contains(row):
            continue
        value = ast.literal_eval(token.string)
        if isinstance(value, int):
            new = str(value + 2)
        else:
            new = repr(value * 1.3 if value else 0.1)
        line = lines[row - 1]
        changed = line[:col] + new + line[col + len(token.string):]
        yield "".join(lines[: row - 1] + [changed] + lines[row:])


@pytest.mark.parametrize("problem", PROBLEMS, ids=ids)
def test_score_is_not_flat_under_constant_edits(problem, tmp_path):
    """Changing one constant of the seed changes the score (blind edits have something to climb)."""
    changed = 0
    for index, variant in enumerate(_perturbed_variants(problem.initial.read_text())):
        program = tmp_path / f"variant_{index}.py"
        program.write_text(variant)
        try:
            value = score(problem, program)
        except Exception:
            continue
        changed += math.isfinite(value) and not close(value, problem.seed_score)
    assert changed >= 1


# ------------------------------------------------------------------ the family modules
#
# A problem's evaluate.py holds its instance parameters; the code (generators, simulation, score)
# is its family's module in _families/. The folder links that code (_family.py, _common.py) so
# that the evaluator's hash, which covers the files of its folder, covers the code it runs.

LINKS = ("_common.py", "_family.py")


def _family_code(namespace: dict, seen: set[str] | None = None) -> set[Path]:
    """The files of the family modules reachable from ``namespace`` (a module's globals)."""
    seen = set() if seen is None else seen
    for value in namespace.values():
        name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if isinstance(name, str) and name.startswith(FAMILY_PACKAGE + ".") and name not in seen:
            seen.add(name)
            _family_code(vars(sys.modules[name]), seen)
    return {Path(sys.modules[name].__file__).resolve() for name in seen}


@pytest.mark.parametrize("problem", PROBLEMS, ids=ids)
def test_the_folder_links_the_family_code_its_evaluator_runs(problem):
    used = _family_code(vars(evaluator(problem)))
    assert used == {FAMILIES / "common.py", FAMILIES / f"{problem.kind}.py"}
    links = sorted(path for path in problem.path.iterdir() if path.is_symlink())
    assert [path.name for path in links] == list(LINKS)
    assert {path.resolve() for path in links} == used
    assert not any(os.path.isabs(os.readlink(path)) for path in links)  # the suite moves as a whole


def _flip_a_byte(path: Path) -> bytes:
    original = path.read_bytes()
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 1
    path.write_bytes(bytes(changed))
    return original


def _copy_with_families(tmp_path: Path, problem: SuiteProblem) -> Path:
    """``problem``'s folder and the family modules, links kept, as they stand in the suite."""
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(FAMILIES, tmp_path / "suite" / FAMILIES.name, ignore=skip)
    return Path(shutil.copytree(problem.path, tmp_path / "suite" / problem.name, symlinks=True, ignore=skip))


@pytest.mark.parametrize("problem", PROBLEMS, ids=ids)
def test_evaluator_hashes_cover_the_family_code(problem, tmp_path):
    folder = _copy_with_families(tmp_path, problem)

    def hashes() -> tuple[str, str]:
        return (hash_evaluator_files(folder),  # the run's hash, stored with it and checked on resume
                hash_files(loaded_files(folder / "evaluate.py", [])))  # the hash of a pool running it

    before = hashes()
    for module in ("common.py", f"{problem.kind}.py"):
        path = folder.parent / FAMILIES.name / module
        original = _flip_a_byte(path)
        changed = hashes()
        path.write_bytes(original)
        assert all(a != b for a, b in zip(before, changed, strict=True)), module
        assert hashes() == before


def test_a_pool_notices_a_change_of_the_family_code(tmp_path):
    from rsi.sandbox.pool import EvaluatorPool
    from rsi.sandbox.types import Limits

    problem = BY_NAME["binpack_or"]
    folder = _copy_with_families(tmp_path, problem)
    with EvaluatorPool(folder / "evaluate.py", 1, Limits(), tmp_path / "scratch") as pool:
        assert {folder / name for name in LINKS} <= set(pool.evaluator_files())
        assert pool.verify_evaluator() is None
        _flip_a_byte(folder.parent / FAMILIES.name / "binpack.py")
        assert "changed" in pool.verify_evaluator()


GRADIENT_PROBLEMS = [p for p in PROBLEMS if isinstance(getattr(evaluator(p), "PROBLEM", None), minimisation.Smooth)]


@pytest.mark.parametrize("problem", GRADIENT_PROBLEMS, ids=[p.name for p in GRADIENT_PROBLEMS])
def test_the_gap_to_the_minimum_is_not_rounding(problem):
    """f(x) - min f near the minimum is computed from x - argmin, not as a difference of two values
    of f: it scales as the square of the distance down to distances of 1e-7 (gaps of ~1e-14, where
    a difference of two values of f would be mostly rounding), so the score does not depend on the
    last bits of the machine's arithmetic."""
    smooth = evaluator(problem).PROBLEM
    direction = np.random.default_rng(0).normal(size=len(smooth.minimum))
    curvature = [smooth.gap(smooth.minimum + h * direction) / h**2 for h in (1e-3, 1e-5, 1e-7)]
    assert curvature[0] > 0
    assert curvature[1] == pytest.approx(curvature[0], rel=1e-2)
    assert curvature[2] == pytest.approx(curvature[1], rel=1e-4)
    assert smooth.gap(smooth.minimum) == pytest.approx(0.0, abs=1e-300)
    for start in smooth.starts:  # far from the minimum it is the plain difference
        plain = smooth.objective(start) - smooth.objective(smooth.minimum)
        assert smooth.gap(start) == pytest.approx(plain, rel=1e-12)
