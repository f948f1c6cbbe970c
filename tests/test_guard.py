"""The guard (rsi.sandbox.guard) through the real sandbox: a plain evaluator runs in the trusted
evaluation process, the candidate in a process of its own behind proxies. Candidates that try to
forge their score from inside the module (patching the evaluator, its helpers, numpy, builtins,
writing result files, returning objects that lie) are scored on what they really computed; with
the guard off the same candidates do forge (the control: the tests would see a forgery).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from rsi.sandbox.pool import evaluate_fresh
from rsi.sandbox.types import Limits

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")

# An OpenEvolve-style evaluator: loads the program with importlib, calls it under a thread
# timeout (the run_with_timeout pattern), scores with numpy and a helper module of its folder,
# writes its result to a file and reads it back.
EVALUATOR = '''
import concurrent.futures
import importlib.util
import json

import numpy as np

import helpers
from openevolve.evaluation_result import EvaluationResult

EXPECTED = [i * i for i in range(10)]


def load_program(path):
    spec = importlib.util.spec_from_file_location("program", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_with_timeout(fn, *args, timeout=5.0):
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result(timeout=timeout)


def score(values):
    errors = np.abs(np.asarray(values, dtype=float) - np.asarray(EXPECTED, dtype=float))
    return float(np.mean(errors == 0)), helpers.fraction_close(errors)


def evaluate(program_path):
    module = load_program(program_path)
    values = run_with_timeout(module.solve, list(range(10)))
    exact, close = score(values)
    with open("score.json", "w") as f:
        json.dump({"exact": exact}, f)
    with open("score.json") as f:
        exact = json.load(f)["exact"]
    return EvaluationResult(metrics={"combined_score": exact, "close": close, "valid": exact == 1.0,
                                     "label": "squares"},
                            artifacts={"values": repr(values)[:200], "name": getattr(module, "NAME", None)})
'''

HELPERS = '''
def fraction_close(errors):
    return float(sum(1 for e in errors if e < 0.5)) / len(errors)
'''

HONEST = "NAME = 'squares'\n\ndef solve(xs):\n    return [x * x for x in xs]\n"

# Each returns zeros (a score of 0.1: one square, 0, is right) while trying to pass for 1.0.
FORGERS = {
    "patch_the_evaluator": '''
import gc, sys, types
def solve(xs):
    ev = sys.modules.get("rsi_evaluator")
    if ev is not None:
        ev.score = lambda values: (1.0, 1.0)
        ev.EXPECTED[:] = [0] * 10
    for obj in gc.get_objects():  # every function called score or evaluate, wherever it is
        if isinstance(obj, types.FunctionType) and obj.__name__ in ("score", "evaluate", "fraction_close"):
            obj.__code__ = (lambda *a, **k: (1.0, 1.0)).__code__
    return [0] * 10
''',
    "patch_the_helpers": '''
import sys
def solve(xs):
    sys.modules["helpers"].fraction_close = lambda errors: 1.0
    import helpers
    helpers.fraction_close = lambda errors: 1.0
    return [0] * 10
''',
    "patch_numpy": '''
import numpy as np
def solve(xs):
    np.mean = lambda *a, **k: 1.0
    np.abs = lambda x: np.zeros(10)
    np.asarray = lambda *a, **k: np.zeros(10)
    return [0] * 10
''',
    "patch_builtins_and_json": '''
import builtins, json
def solve(xs):
    builtins.sum = lambda *a, **k: 10
    json.load = lambda f, *a, **k: {"exact": 1.0}
    return [0] * 10
''',
    "write_fake_result_files": '''
import json, os
def solve(xs):
    for folder in (".", "..", "results"):
        try:
            os.makedirs(folder, exist_ok=True)
            for name in ("score.json", "metrics.json"):
                with open(os.path.join(folder, name), "w") as f:
                    json.dump({"exact": 1.0, "combined_score": 1.0}, f)
        except OSError:
            pass
    return [0] * 10
''',
}

LIARS = {
    "lying_eq_and_float": '''
class Liar:
    def __eq__(self, other):
        return True
    def __float__(self):
        return 1e9
    def __array__(self, *a, **k):
        import numpy as np
        return np.array([i * i for i in range(10)], dtype=float)
def solve(xs):
    return Liar()
''',
    "float_subclass": '''
class Liar(float):
    def __eq__(self, other):
        return True
    __hash__ = float.__hash__
def solve(xs):
    return [Liar(0.0) for _ in xs]
''',
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("guarded")
    (root / "evaluator.py").write_text(EVALUATOR)
    (root / "helpers.py").write_text(HELPERS)
    return root


def run(folder: Path, source: str, guard: bool = True):
    limits = Limits(wall_seconds=20, cpu_seconds=20, memory_mb=1024, evaluator_format="openevolve", guard=guard)
    return evaluate_fresh(folder / "evaluator.py", textwrap.dedent(source), limits=limits)


def test_an_honest_program_scores_through_the_proxy_with_artifacts(folder):
    r = run(folder, HONEST)
    assert r.status == "ok", r.error
    assert r.metrics["combined_score"] == 1.0 and r.metrics["close"] == 1.0
    assert r.data["values"] == repr([i * i for i in range(10)])
    assert r.data["name"] == "squares"  # a module constant comes back as plain data
    assert r.data["metrics"] == {"valid": True, "label": "squares"}  # recorded, not scored


@pytest.mark.parametrize("name", sorted(FORGERS))
def test_a_forging_candidate_is_scored_on_what_it_computed(folder, name):
    r = run(folder, FORGERS[name])
    assert r.status == "ok", r.error
    assert r.metrics["combined_score"] == pytest.approx(0.1)  # only 0 * 0 == 0 is right
    assert r.metrics["close"] == pytest.approx(0.1)


@pytest.mark.parametrize("name", ["patch_the_helpers", "patch_numpy", "patch_builtins_and_json"])
def test_without_the_guard_the_same_candidates_forge_their_score(folder, name):
    r = run(folder, FORGERS[name], guard=False)
    assert r.status == "ok", r.error
    assert r.metrics["close"] == 1.0 or r.metrics["combined_score"] == 1.0


@pytest.mark.parametrize("name", sorted(LIARS))
def test_objects_that_lie_about_equality_never_reach_the_evaluator(folder, name):
    r = run(folder, LIARS[name])
    assert r.status == "error"  # an opaque handle, not numbers: the evaluator rejects it
    assert "RemoteObject" in r.error or "handle" in r.error or "float()" in r.error, r.error


def test_every_way_of_loading_the_program_goes_through_the_proxy(tmp_path):
    (tmp_path / "evaluate.py").write_text(textwrap.dedent('''
        import importlib.util, os, runpy, sys

        def evaluate(program_path):
            spec = importlib.util.spec_from_file_location("candidate", program_path)
            a = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(a)
            b = {}
            exec(open(program_path).read(), b)
            c = runpy.run_path(program_path)
            d = {}
            exec(compile(open(program_path).read(), program_path, "exec"), d)
            sys.path.insert(0, os.path.dirname(program_path))
            import program as e
            pids = {a.pid(), b["pid"](), c["pid"](), d["pid"](), e.pid()}
            assert os.getpid() not in pids and len(pids) == 5, pids
            assert a.pair() == (1, 2) and a.colors() == {1: "red", (2, 3): "blue"} and a.tags() == {"x"}
            assert list(a.count(3)) == [0, 1, 2] and a.Box(4).size() == 4 and len(a.Box(4)) == 4
            assert a.Box(4).half().size() == 2  # a handle handed back to the candidate's own method
            try:
                a.fail()
            except KeyError as exc:
                assert "missing" in str(exc)
            return {"combined_score": 1.0}
    '''))
    source = textwrap.dedent('''
        import os
        def pid(): return os.getpid()
        def pair(): return (1, 2)
        def colors(): return {1: "red", (2, 3): "blue"}
        def tags(): return {"x"}
        def count(n):
            yield from range(n)
        def fail(): raise KeyError("missing")
        class Box:
            def __init__(self, n): self.n = n
            def size(self): return self.n
            def __len__(self): return self.n
            def half(self): return Box(self.n // 2)
    ''')
    r = evaluate_fresh(tmp_path / "evaluate.py", source, limits=Limits(wall_seconds=20, cpu_seconds=20))
    assert (r.status, r.error) == ("ok", None)


def test_exec_of_the_program_inside_other_code_is_refused(tmp_path):
    (tmp_path / "evaluate.py").write_text(textwrap.dedent('''
        def evaluate(program_path):
            ns = {}
            exec(open(program_path).read() + "\\nRESULT = solve()", ns)
            return {"combined_score": ns["RESULT"]}
    '''))
    r = evaluate_fresh(tmp_path / "evaluate.py", "def solve():\n    return 1.0\n",
                       limits=Limits(wall_seconds=20, cpu_seconds=20))
    assert r.status == "error" and "inside other code" in r.error and "guard = false" in r.error


def test_a_candidate_that_kills_its_process_is_an_error_the_evaluator_sees(tmp_path):
    (tmp_path / "evaluate.py").write_text(textwrap.dedent('''
        import importlib.util
        def evaluate(program_path):
            spec = importlib.util.spec_from_file_location("candidate", program_path)
            m = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(m)
            try:
                return {"combined_score": m.run()}
            except RuntimeError as exc:
                return {"combined_score": 0.0, "crashed": 1.0}
    '''))
    r = evaluate_fresh(tmp_path / "evaluate.py", "import os\ndef run():\n    os._exit(3)\n",
                       limits=Limits(wall_seconds=20, cpu_seconds=20))
    assert r.status == "ok" and r.metrics == {"combined_score": 0.0, "crashed": 1.0}


def test_an_evaluator_that_runs_the_program_as_a_subprocess_works_and_trusts_its_output(tmp_path):
    """The limit of the guard, stated: what a program run as its own process prints is its word."""
    (tmp_path / "evaluate.py").write_text(textwrap.dedent('''
        import subprocess, sys

        def evaluate(program_path):
            out = subprocess.run([sys.executable, program_path], capture_output=True, text=True, timeout=20)
            return {"combined_score": float(out.stdout.strip().splitlines()[-1])}
    '''))
    limits = Limits(wall_seconds=30, cpu_seconds=30)
    honest = evaluate_fresh(tmp_path / "evaluate.py", "print(sum(range(4)) / 10)\n", limits=limits)
    assert (honest.status, honest.metrics) == ("ok", {"combined_score": 0.6})
    claimed = evaluate_fresh(tmp_path / "evaluate.py", "print(1e9)\n", limits=limits)
    assert (claimed.status, claimed.metrics) == ("ok", {"combined_score": 1e9})  # trusted by design


def test_the_guard_setting_reaches_the_workers_and_a_bad_value_names_key_and_file(tmp_path):
    import rsi
    from rsi.errors import ProblemError
    from rsi.executors import evaluation_limits

    (tmp_path / "initial.py").write_text("def solve():\n    return 1\n")
    (tmp_path / "evaluate.py").write_text("def evaluate(p):\n    return {'combined_score': 1.0}\n")
    assert evaluation_limits(rsi.load_problem(tmp_path).settings).guard is True  # on unless asked
    (tmp_path / "problem.toml").write_text("[evaluator]\nguard = false\n")
    assert evaluation_limits(rsi.load_problem(tmp_path).settings).guard is False
    (tmp_path / "problem.toml").write_text('[evaluator]\nguard = "maybe"\n')
    with pytest.raises(ProblemError, match=r"(?s)problem\.toml: invalid settings.*\[evaluator\.guard\]"):
        rsi.load_problem(tmp_path)
