"""OpenEvolve and ShinkaEvolve problem folders, unchanged, through the real sandbox (rsi.compat).

The fixtures in tests/fixtures/ are written for these tests in each tool's format (no file of
either tool is copied); neither tool is installed: the evaluators import rsi's stand-ins.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import textwrap
import types
from pathlib import Path

import pytest

import rsi
from rsi import compat
from rsi.errors import ProblemError, RunError
from rsi.executors import evaluation_limits
from rsi.sandbox.pool import evaluate_fresh

FIXTURES = Path(__file__).parent / "fixtures"


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def fresh(problem: rsi.Problem, source: str | None = None):
    assert problem.evaluator_path is not None
    return evaluate_fresh(problem.evaluator_path, source or problem.initial_source,
                          limits=evaluation_limits(problem.settings))


# ---------------------------------------------------------------- OpenEvolve


def test_openevolve_folder_loads_with_config_mapped_and_every_other_key_named(tmp_path, caplog):
    folder = copy("openevolve_line", tmp_path)
    with caplog.at_level(logging.WARNING, logger="rsi.problem"):
        problem = rsi.load_problem(folder)
    assert problem.layout == "openevolve"
    assert problem.evaluator_path == folder / "evaluator.py"
    assert problem.initial_source == (folder / "initial_program.py").read_text()  # markers as they are
    s = problem.settings
    assert (s.run.budget, s.run.seed, s.run.workers) == (25, 7, 1)
    assert (s.evaluator.timeout, s.evaluator.format, s.evaluator.cascade_thresholds) == (20.0, "openevolve", None)
    assert s.archive.islands == 2
    text = "\n".join(problem.notices)
    assert "OpenEvolve folder" in text
    for key in ("checkpoint_interval", "diff_based_evolution", "max_code_length", "database.population_size"):
        assert f"{key}: no rsi setting corresponds" in text
    assert "--llm-url http://localhost:8000/v1 --llm-model some-local-model" in text  # llm.* named, with the flags
    assert "max_iterations -> [run] budget = 25" in text
    assert problem.description == "Improve the line fit."  # prompt.system_message, for proposers that read
    assert "OpenEvolve folder" in caplog.text and "ignored by rsi" in caplog.text  # said, not only stored


def test_openevolve_evaluation_result_with_artifacts_runs_in_the_sandbox(tmp_path):
    problem = rsi.load_problem(copy("openevolve_line", tmp_path))
    result = fresh(problem)
    assert result.status == "ok", result.error
    assert result.metrics["combined_score"] == pytest.approx(1 / (1 + result.metrics["mse"]))
    assert "verdict" not in result.metrics  # not a number: never counted into the score
    assert result.data["worst_x"] == "x=-5"
    assert result.data["raw"] == "bytes are kept as text"
    assert result.data["metrics"] == {"verdict": "off"}  # recorded with the artifacts


def test_openevolve_folder_improves_end_to_end(tmp_path):
    folder = copy("openevolve_line", tmp_path)
    summary = rsi.improve(folder, out=tmp_path / "run", budget=25, seed=1)
    assert summary.evaluations == 25
    assert summary.best is not None and summary.best.score > summary.seed.score
    assert summary.seed.metrics["mse"] > 0
    assert (tmp_path / "run" / "best.py").read_text() == summary.best.source
    assert not (folder / "initial.py").exists()  # the folder is left as it was
    resumed = rsi.Run.resume(tmp_path / "run", rsi.Overrides(budget=30)).execute()  # reloaded from the folder
    assert resumed.evaluations == 30 and resumed.best.score >= summary.best.score


def test_cascade_runs_later_stages_only_past_the_thresholds(tmp_path):
    folder = copy("openevolve_cascade", tmp_path)
    problem = rsi.load_problem(folder)
    assert problem.settings.evaluator.cascade_thresholds == [0.3, 0.31]
    seed = fresh(problem)
    assert seed.status == "ok", seed.error
    assert seed.metrics["cascade_stage"] == 3
    assert {"stage1.combined_score", "stage2.combined_score", "stage3.combined_score", "quick_error",
            "max_error", "fine_error"} <= set(seed.metrics)
    assert seed.metrics["combined_score"] == seed.metrics["stage3.combined_score"]  # the last stage's wins
    assert seed.data["stage2"].startswith("max error") and seed.data["metrics"]["checked"] == "101 points"
    poor = fresh(problem, problem.initial_source.replace("0.5 * x * x", "0.0 * x * x"))
    assert poor.status == "ok", poor.error
    assert poor.metrics["cascade_stage"] == 1  # failed stage 1: stages 2 and 3 never ran
    assert not any(k.startswith(("stage2.", "stage3.")) for k in poor.metrics)
    assert poor.metrics["combined_score"] == poor.metrics["stage1.combined_score"] < 0.3

    summary = rsi.improve(folder, out=tmp_path / "run", budget=30, seed=2)
    ok = rsi.open_run(tmp_path / "run").candidates("ok")
    assert summary.best is not None and len(ok) > 5
    for cand in ok:  # every candidate followed the thresholds
        s1 = cand.metrics["stage1.combined_score"]
        assert cand.metrics["cascade_stage"] == (1 if s1 < 0.3 else 2 if cand.metrics["stage2.combined_score"] < 0.31
                                                 else 3)


def test_cascade_stage_rules_in_process():
    calls: list[int] = []

    def stage(k, score, **extra):
        def fn(path):
            calls.append(k)
            return {"combined_score": score, **extra}
        return fn

    module = types.SimpleNamespace(evaluate_stage1=stage(1, 0.6, a=1), evaluate_stage2=stage(2, 0.4, error="x"),
                                   evaluate_stage3=stage(3, 0.9))
    result = compat.openevolve_function(module, [0.5, 0.5])("p.py")
    assert calls == [1, 2] and result.metrics["combined_score"] == 0.4 and result.metrics["cascade_stage"] == 2
    calls.clear()
    result = compat.openevolve_function(module, [0.7])("p.py")
    assert calls == [1] and result.metrics["cascade_stage"] == 1
    calls.clear()
    result = compat.openevolve_function(module, [0.5])("p.py")  # no second threshold: stage 3 never runs
    assert calls == [1, 2]
    no_score = types.SimpleNamespace(evaluate=lambda path: {"a": 1.0, "b": 3.0, "error": "oops"})
    result = compat.openevolve_function(no_score, None)("p.py")  # OpenEvolve's rule: the mean of the numbers
    assert result.metrics["combined_score"] == 2.0 and result.artifacts["metrics"]["error"] == "oops"

    def broken(path):
        raise ValueError("bad program")

    failing = types.SimpleNamespace(evaluate_stage1=stage(1, 0.9), evaluate_stage2=broken)
    with pytest.raises(RuntimeError, match="stage 2 of the cascade"):
        compat.openevolve_function(failing, [0.5])("p.py")


def test_cascade_thresholds_apply_to_rsi_folders_too(tmp_path):
    folder = tmp_path / "p"
    shutil.copytree(FIXTURES / "openevolve_cascade", folder)
    (folder / "initial_program.py").rename(folder / "initial.py")
    (folder / "evaluator.py").rename(folder / "evaluate.py")
    (folder / "config.yaml").unlink()
    (folder / "problem.toml").write_text("[evaluator]\ncascade_thresholds = [0.99]\n")
    problem = rsi.load_problem(folder)
    assert problem.layout == "rsi"
    result = fresh(problem)
    assert result.status == "ok" and result.metrics["cascade_stage"] == 1


# ---------------------------------------------------------------- ShinkaEvolve


def test_shinka_folder_runs_its_script_and_reads_the_files_back(tmp_path):
    folder = copy("shinka_curve", tmp_path)
    problem = rsi.load_problem(folder)
    assert problem.layout == "shinka" and problem.settings.evaluator.format == "shinka"
    result = fresh(problem)
    assert result.status == "ok", result.error
    m = result.metrics
    assert m["combined_score"] == pytest.approx(1 / (1 + m["public.mse"]))
    assert m["public.points"] == 17 and "private.worst" in m and m["num_valid_runs"] == 1
    assert result.data["metrics"]["text_feedback"].startswith("mean squared error")
    bad = fresh(problem, problem.initial_source.replace("1.0 * x + 1.0", "float('nan')"))
    assert bad.status == "error"
    assert "marked the program incorrect" in bad.error and "is not a finite number" in bad.error


def test_shinka_folder_improves_end_to_end(tmp_path):
    folder = copy("shinka_curve", tmp_path)
    summary = rsi.improve(folder, out=tmp_path / "run", budget=25, seed=4)
    assert summary.evaluations == 25
    assert summary.best is not None and summary.best.score > summary.seed.score
    assert not (folder / "results").exists()  # results went to the sandbox's task folder
    # the script runs in the trusted evaluation process, the candidate behind the guard's proxies
    assert rsi.open_run(tmp_path / "run").store.meta()["score_mode"] == "guarded"


SHINKA_MAIN = '''\
import argparse, json, os


def main(program_path, results_dir):
    os.makedirs(results_dir, exist_ok=True)
    {body}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--program_path")
    parser.add_argument("--results_dir")
    args = parser.parse_args()
    main(args.program_path, args.results_dir)
'''


def shinka_folder(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "shinka"
    folder.mkdir()
    (folder / "initial.py").write_text("# EVOLVE-BLOCK-START\nX = 1.0\n# EVOLVE-BLOCK-END\n")
    body = textwrap.indent(textwrap.dedent(body).strip(), "    ").lstrip()
    (folder / "evaluate.py").write_text(SHINKA_MAIN.replace("{body}", body))
    return folder


@pytest.mark.parametrize(("body", "expected"), [
    ("pass", "wrote no usable metrics.json"),
    ("json.dump({'combined_score': 1.0}, open(os.path.join(results_dir, 'metrics.json'), 'w'))",
     "wrote no usable correct.json"),
    ("json.dump({'combined_score': 1.0}, open(os.path.join(results_dir, 'metrics.json'), 'w'))\n"
     "json.dump({'correct': False, 'error': 'X too small'}, open(os.path.join(results_dir, 'correct.json'), 'w'))",
     "marked the program incorrect (correct.json): X too small"),
    ("raise RuntimeError('evaluator broke')", "RuntimeError: evaluator broke"),
])
def test_broken_shinka_evaluators_are_named(tmp_path, body, expected):
    folder = shinka_folder(tmp_path, body)
    with pytest.raises(RunError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        rsi.improve(folder, out=tmp_path / "run", budget=3)


def test_shinka_missing_combined_score_is_zero_as_in_shinka(tmp_path):
    folder = shinka_folder(tmp_path, """\
        json.dump({'public': {'n': 3}}, open(os.path.join(results_dir, 'metrics.json'), 'w'))
        json.dump({'correct': True, 'error': None}, open(os.path.join(results_dir, 'correct.json'), 'w'))""")
    result = fresh(rsi.load_problem(folder))
    assert result.status == "ok" and result.metrics == {"combined_score": 0.0, "public.n": 3.0}
    assert "ShinkaEvolve" in result.data["combined_score_rule"]


def test_shinka_result_files_are_not_followed_through_symlinks(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "metrics.json").symlink_to("/etc/passwd")
    (results / "correct.json").write_text('{"correct": true}')
    assert "cannot be opened" in compat.read_shinka_results(str(results))["error"]


# ---------------------------------------------------------------- broken folders


def test_openevolve_folder_without_evaluator_is_named(tmp_path):
    folder = copy("openevolve_line", tmp_path)
    (folder / "evaluator.py").unlink()
    with pytest.raises(ProblemError, match=r"evaluator\.py: missing .*OpenEvolve problem folder needs"):
        rsi.load_problem(folder)


def test_bad_yaml_is_named_with_its_line(tmp_path):
    folder = copy("openevolve_line", tmp_path)
    (folder / "config.yaml").write_text("max_iterations: 5\nevaluator:\n  timeout: [1,\n")
    with pytest.raises(ProblemError, match=r"config\.yaml: not valid YAML \(line \d+"):
        rsi.load_problem(folder)


def test_bad_value_for_a_mapped_key_names_the_key_and_the_file(tmp_path):
    folder = copy("openevolve_line", tmp_path)
    (folder / "config.yaml").write_text("max_iterations: many\n")
    with pytest.raises(ProblemError, match=r"config\.yaml: max_iterations: 'many' is not a valid value"):
        rsi.load_problem(folder)
    (folder / "config.yaml").write_text("evaluator:\n  cascade_thresholds: high\n")
    with pytest.raises(ProblemError, match=r"cascade_thresholds: 'high' must be a list of numbers"):
        rsi.load_problem(folder)
    (folder / "config.yaml").write_text("evaluator:\n  parallel_evaluations: 0\n")  # valid YAML, invalid for rsi
    with pytest.raises(ProblemError, match=r"(?s)workers.*evaluator\.parallel_evaluations -> \[run\] workers = 0"):
        rsi.load_problem(folder)
    (folder / "config.yaml").write_text("- a list\n")
    with pytest.raises(ProblemError, match="expected a mapping"):
        rsi.load_problem(folder)


def test_openevolve_evaluator_without_evaluate_is_named(tmp_path):
    folder = copy("openevolve_line", tmp_path)
    (folder / "evaluator.py").write_text("def score(path):\n    return {}\n")
    with pytest.raises(ProblemError, match="OpenEvolve evaluator needs"):
        rsi.load_problem(folder)


def test_problem_toml_beside_config_yaml_wins(tmp_path):
    folder = copy("openevolve_line", tmp_path)
    (folder / "problem.toml").write_text("[run]\nbudget = 4\n")
    assert rsi.load_problem(folder).settings.run.budget == 4


def test_non_python_shinka_example_is_refused_with_the_reason(tmp_path):
    folder = tmp_path / "go"
    folder.mkdir()
    (folder / "initial.go").write_text("package main\n")
    (folder / "evaluate.py").write_text("")
    with pytest.raises(ProblemError, match="missing"):
        rsi.load_problem(folder)
    (folder / "evaluate.py").unlink()
    with pytest.raises(ProblemError, match="Python programs only"):
        rsi.load_problem(folder)


def test_fork_executor_runs_both_formats(tmp_path):
    for name in ("openevolve_cascade", "shinka_curve"):
        problem = rsi.load_problem(copy(name, tmp_path))
        evaluate = rsi.executors.load_evaluate(problem)
        work = tmp_path / f"work-{name}"
        work.mkdir()
        (work / "program.py").write_text(problem.initial_source)
        result = evaluate(str(work / "program.py"))
        assert result.metrics["combined_score"] > 0


def test_load_files_takes_openevolve_command_line_arguments(tmp_path):
    folder = copy("openevolve_cascade", tmp_path)
    config = tmp_path / "elsewhere.yaml"
    config.write_text("max_iterations: 9\nevaluator:\n  cascade_thresholds: [0.99]\n")
    problem = rsi.load_files(folder / "initial_program.py", folder / "evaluator.py", config)
    assert problem.layout == "openevolve" and problem.settings.run.budget == 9
    assert problem.settings.evaluator.cascade_thresholds == [0.99]
    assert fresh(problem).metrics["cascade_stage"] == 1
    shinka = copy("shinka_curve", tmp_path)
    assert rsi.load_files(shinka / "initial.py", shinka / "evaluate.py").layout == "shinka"
    with pytest.raises(ProblemError, match="no such file"):
        rsi.load_files(folder / "nope.py", folder / "evaluator.py")


def test_non_python_openevolve_example_is_refused_with_the_reason(tmp_path):
    folder = copy("openevolve_line", tmp_path)
    (folder / "initial_program.py").rename(folder / "initial_program.rs")
    with pytest.raises(ProblemError, match=r"initial_program\.rs: rsi improves Python programs only"):
        rsi.load_problem(folder)
    (folder / "initial_program.rs").rename(folder / "init_program.py")
    with pytest.raises(ProblemError, match=r"initial_program\.py: missing .*rsi\.load_files"):
        rsi.load_problem(folder)


def test_command_line_takes_a_folder_or_program_and_evaluator(tmp_path):
    import subprocess
    import sys

    folder = copy("openevolve_cascade", tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text("max_iterations: 6\n")
    out = subprocess.run([sys.executable, "-m", "rsi.cli", "run", str(folder / "initial_program.py"),
                          str(folder / "evaluator.py"), "--config", str(config), "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "OpenEvolve folder" in out.stderr and "max_iterations -> [run] budget = 6" in out.stderr
    assert "after 6 evaluations" in out.stdout
    shinka = copy("shinka_curve", tmp_path)
    out = subprocess.run([sys.executable, "-m", "rsi.cli", "run", str(shinka), "--budget", "4", "--out",
                          str(tmp_path / "s")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ShinkaEvolve folder" in out.stderr, out.stderr


class _Recorder:
    """mutate, remembering the artifacts of every parent it was shown (the feedback a proposer gets)."""

    name = "feedback-test"
    operators = ["mutate"]
    seen: list = []

    def __init__(self):
        from rsi.proposers.mutate import MutateProposer

        self.inner = MutateProposer()

    def propose(self, request):
        _Recorder.seen.append(request.parent.artifacts)
        return self.inner.propose(request)


def test_cascade_run_stores_artifacts_shows_them_and_counts_the_saved_stages(tmp_path, capsys):
    import dataclasses

    from rsi.cli import main

    rsi.proposers.register("feedback-test", _Recorder, replace=True)
    problem = rsi.load_problem(copy("openevolve_cascade", tmp_path))
    run = problem.settings.run.model_copy(update={"proposers": ["feedback-test"], "budget": 24, "seed": 5})
    problem = dataclasses.replace(problem, settings=problem.settings.model_copy(update={"run": run}))
    _Recorder.seen.clear()
    rsi.Run.create(problem, tmp_path / "run").execute()
    with rsi.open_run(tmp_path / "run") as results:
        ok = results.candidates("ok")
    reached = [c for c in ok if c.metrics["cascade_stage"] >= 2]
    stopped = [c for c in ok if c.metrics["cascade_stage"] < c.metrics["cascade_stages"]]
    assert reached and all(c.artifacts["stage2"].startswith("max error") for c in reached)  # stored per candidate
    assert all(c.artifacts is None or "stage2" not in c.artifacts for c in ok if c.metrics["cascade_stage"] == 1)
    saved = sum(int(c.metrics["cascade_stages"] - c.metrics["cascade_stage"]) for c in stopped)
    # handed to the proposer with the parent (the seed reached stage 3: its artifacts are the first seen)
    assert _Recorder.seen and _Recorder.seen[0]["stage2"].startswith("max error")

    assert main(["show", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert f"cascade    {len(stopped)} of {len(ok)} candidates stopped before the last stage: {saved} stage " \
           "evaluations saved" in out
    assert "plain evaluate() in a trusted process" in out
    cand = reached[-1]
    assert main(["show", str(tmp_path / "run"), str(cand.id)]) == 0
    out = capsys.readouterr().out
    assert f"cascade    reached stage {cand.metrics['cascade_stage']:g} of 3" in out
    assert "artifacts\n  stage2: max error" in out
    if cand.parent_id:
        assert main(["diff", str(tmp_path / "run"), str(cand.id)]) == 0
        assert "#   stage2: max error" in capsys.readouterr().out
    if stopped:
        assert main(["show", str(tmp_path / "run"), str(stopped[0].id)]) == 0
        assert "(stopped: below the next stage's threshold)" in capsys.readouterr().out

    assert main(["report", str(tmp_path / "run"), "-o", str(tmp_path / "r.html")]) == 0
    assert f"{len(stopped)} of {len(ok)} candidates stopped before the last stage: {saved} stage evaluations " \
           "saved" in (tmp_path / "r.html").read_text()

    import sqlite3  # a run made before artifacts were stored still opens (the column is added)

    with sqlite3.connect(tmp_path / "run" / "rsi.db") as db:
        db.execute("ALTER TABLE candidates DROP COLUMN artifacts")
    assert main(["show", str(tmp_path / "run"), str(cand.id), "--inspect"]) == 0
    assert "artifacts" not in capsys.readouterr().out


def test_llm_prompt_carries_the_parents_artifacts():
    from rsi.proposers.base import Program
    from rsi.proposers.llm.proposer import _errors

    text = _errors(Program(3, "x = 1\n", 0.5, {}, None, "", {"stage2": "max error 0.3", "metrics": {"ok": False}}))
    assert "Its evaluator's feedback (artifacts):" in text and "- stage2: max error 0.3" in text
    assert '- metrics: {"ok": false}' in text


def test_non_numeric_openevolve_metrics_are_recorded_not_averaged():
    module = types.SimpleNamespace(evaluate=lambda p: {"accuracy": 0.5, "valid": True, "name": "x",
                                                       "detail": {"a": 1}})
    result = compat.openevolve_function(module, None)("p.py")
    assert result.metrics == {"accuracy": 0.5, "combined_score": 0.5}  # the flag is not averaged in
    assert result.artifacts["metrics"]["valid"] is True and result.artifacts["metrics"]["detail"] == {"a": 1}
    assert "mean of the numeric metrics" in result.artifacts["metrics"]["combined_score_rule"]


def test_non_numeric_rsi_metrics_are_recorded_with_the_artifacts(tmp_path):
    (tmp_path / "evaluate.py").write_text("def evaluate(p):\n    return {'combined_score': 1.0, 'note': 'fine', "
                                          "'parts': [1, 2], 'nested': {'a': 'b'}}\n")
    r = evaluate_fresh(tmp_path / "evaluate.py", "x = 1\n")
    assert r.status == "ok" and r.metrics == {"combined_score": 1.0}
    assert r.data == {"metrics": {"note": "fine", "parts": [1, 2], "nested": {"a": "b"}}}


SHINKA_FORGERS = {  # each returns a poor curve while trying to pass for a perfect one
    "fake_result_files": '''
import json, os
def run_experiment(seed=1):
    os.makedirs("results", exist_ok=True)
    json.dump({"combined_score": 1e9}, open("results/metrics.json", "w"))
    json.dump({"correct": True, "error": None}, open("results/correct.json", "w"))
    return [(-2.0 + 0.25 * i, 0.0) for i in range(17)]
''',
    "patch_the_script": '''
import json, sys
def run_experiment(seed=1):
    json.dump = lambda obj, f, *a, **k: f.write('{"combined_score": 1e9, "correct": true}')
    for name, module in list(sys.modules.items()):
        if hasattr(module, "aggregate"):
            module.aggregate = lambda results: {"combined_score": 1e9}
    return [(-2.0 + 0.25 * i, 0.0) for i in range(17)]
''',
    "fake_files_then_kill_the_evaluator": '''
import json, os, signal
def run_experiment(seed=1):
    os.makedirs("results", exist_ok=True)
    json.dump({"combined_score": 1e9}, open("results/metrics.json", "w"))
    json.dump({"correct": True, "error": None}, open("results/correct.json", "w"))
    os.kill(os.getppid(), signal.SIGKILL)  # the evaluation process, before the script writes its files
    os._exit(0)
''',
}


@pytest.mark.parametrize("name", sorted(SHINKA_FORGERS))
def test_a_shinka_candidate_cannot_forge_its_result_files(tmp_path, name):
    problem = rsi.load_problem(copy("shinka_curve", tmp_path))
    r = fresh(problem, SHINKA_FORGERS[name])
    assert r.status == "error" or r.metrics["combined_score"] < 0.5, (r.status, r.metrics, r.error)


def test_without_the_guard_a_shinka_candidate_forges_its_result_files(tmp_path):
    """The control: the same trick, run in the script's own process, passes."""
    problem = rsi.load_problem(copy("shinka_curve", tmp_path))
    source = SHINKA_FORGERS["fake_files_then_kill_the_evaluator"].replace(
        "os.kill(os.getppid(), signal.SIGKILL)", "pass")
    limits = dataclasses.replace(evaluation_limits(problem.settings), guard=False)
    assert problem.evaluator_path is not None
    r = evaluate_fresh(problem.evaluator_path, source, limits=limits)
    assert r.status == "ok" and r.metrics["combined_score"] == 1e9
