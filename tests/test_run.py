"""The loop end to end on a small real problem: determinism, resume, bad input, failures."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import TARGET_EVALUATE, write_problem

from rsi.errors import ProblemError, RunError
from rsi.problem import load_problem
from rsi.run import Overrides, Run
from rsi.sandbox.scratch import new_scratch, sweep_stale
from rsi.storage import Store

RSI = [sys.executable, "-m", "rsi.cli"]


def run_once(problem: Path, out: Path, **overrides) -> Run:
    run = Run.create(problem, out, Overrides(**overrides))
    run.execute()
    return run


def test_run_improves_and_records_everything(target_problem, tmp_path):
    run_once(target_problem, tmp_path / "r", budget=40, seed=3)
    store = Store.open(tmp_path / "r")
    counts = store.counts()
    assert sum(counts.get(s, 0) for s in ("ok", "error", "timeout")) == 40
    best, seed = store.best(), store.get(1)
    assert best.score > seed.score
    assert best.holdout and "extrapolation_mse" in best.holdout  # held-out of the best, for reporting
    assert (tmp_path / "r" / "best.py").read_text() == best.source
    child = store.candidates(("ok",))[-1]
    assert child.parent_id is not None and child.diff and child.operator and child.rationale
    assert child.features is not None and child.eval_seed is not None and child.wall_seconds is not None


def test_same_seed_one_worker_is_bit_for_bit_reproducible(target_problem, tmp_path):
    def fingerprint_of(out):
        store = Store.open(out)
        return [(c.id, c.parent_id, c.operator, c.source, c.status, c.score, c.metrics)
                for c in store.candidates()]

    run_once(target_problem, tmp_path / "a", budget=30, seed=11, workers=1)
    run_once(target_problem, tmp_path / "b", budget=30, seed=11, workers=1)
    run_once(target_problem, tmp_path / "c", budget=30, seed=12, workers=1)
    assert fingerprint_of(tmp_path / "a") == fingerprint_of(tmp_path / "b")
    assert fingerprint_of(tmp_path / "a") != fingerprint_of(tmp_path / "c")


def test_two_workers_complete_the_budget(target_problem, tmp_path):
    run_once(target_problem, tmp_path / "w2", budget=30, seed=1, workers=2)
    counts = Store.open(tmp_path / "w2").counts()
    assert sum(counts.get(s, 0) for s in ("ok", "error", "timeout")) == 30
    assert counts.get("pending", 0) == 0


@pytest.mark.parametrize("missing", ["initial.py", "evaluate.py"])
def test_missing_file_is_named(tmp_path, missing):
    folder = write_problem(tmp_path / "p")
    (folder / missing).unlink()
    with pytest.raises(ProblemError, match=missing):
        load_problem(folder)


def test_evaluator_without_evaluate_function(tmp_path):
    folder = write_problem(tmp_path / "p", evaluate="def score(path):\n    return {}\n")
    with pytest.raises(ProblemError, match="no function `evaluate`"):
        load_problem(folder)


def test_unknown_setting_is_an_error(tmp_path):
    folder = write_problem(tmp_path / "p", toml="[run]\nbudgett = 3\n")
    with pytest.raises(ProblemError, match="budgett"):
        load_problem(folder)


def test_initial_program_that_fails_refuses_to_start(tmp_path):
    folder = write_problem(tmp_path / "p", initial="def f(x):\n    return 1 / 0\n")
    with pytest.raises(RunError, match="ZeroDivisionError"):
        run_once(folder, tmp_path / "r", budget=5)


FLAKY_EVALUATE = TARGET_EVALUATE + '''

import hashlib, math
_plain = evaluate


def evaluate(program_path):
    """Misbehaves on some candidates, by a hash of their source: raise, non-dict, no score, NaN, inf."""
    text = open(program_path).read()
    seed = open(__file__.replace("evaluate.py", "initial.py")).read()
    if text == seed:  # the seed itself is well behaved
        return _plain(program_path)
    kind = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 6
    if kind == 0:
        raise RuntimeError("evaluator exploded")
    if kind == 1:
        return [1, 2, 3]
    if kind == 2:
        return {"accuracy": 1.0}
    if kind == 3:
        return {"combined_score": math.nan}
    if kind == 4:
        return {"combined_score": math.inf}
    result = _plain(program_path)
    result["combined_score"] -= 1000.0  # all valid scores are very negative
    return result
'''


def test_misbehaving_evaluator_marks_candidates_and_the_run_goes_on(tmp_path):
    folder = write_problem(tmp_path / "p", evaluate=FLAKY_EVALUATE)
    run_once(folder, tmp_path / "r", budget=40, seed=2)
    store = Store.open(tmp_path / "r")
    errors = [c.error for c in store.candidates(("error",))]
    text = "\n".join(errors)
    for reason in ("evaluator exploded", "combined_score", "nan", "inf", "list"):
        assert reason in text, reason
    best = store.best()
    assert best.status == "ok" and best.score is not None
    # failures never rank: every ok candidate outranks every failed one in `top`
    assert all(c.status == "ok" for c in store.top(100))


def test_a_run_stored_before_a_column_was_added_opens_and_keeps_its_data(tmp_path):
    store = Store.create(tmp_path / "old", {"note": "made by an earlier rsi"})
    store.conn.execute("INSERT INTO candidates(id, proposer, status, score, proposed_at) "
                       "VALUES (1, 'seed', 'ok', 2.5, 0)")
    store.conn.execute("ALTER TABLE candidates DROP COLUMN flags")  # as runs made before flags existed
    store.conn.execute("DROP TABLE promotions")
    store.close()
    reopened = Store.open(tmp_path / "old")
    columns = {row[1] for row in reopened.conn.execute("PRAGMA table_info(candidates)")}
    assert "flags" in columns
    assert reopened.get(1).score == 2.5 and reopened.get(1).flags in (None, [])
    assert reopened.promotions() == []
    assert reopened._upgrade() == []  # once is enough
    assert reopened.meta()["note"] == "made by an earlier rsi"


def test_foreign_or_unreadable_resume_folder(tmp_path):
    with pytest.raises(RunError, match="no such run folder"):
        Run.resume(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not an rsi run folder"):
        Run.resume(tmp_path / "empty")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "rsi.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RunError, match="unreadable|not an rsi run"):
        Run.resume(garbage)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    conn = sqlite3.connect(foreign / "rsi.db")
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(RunError, match="not an rsi run"):
        Run.resume(foreign)


def test_existing_run_folder_is_not_overwritten(target_problem, tmp_path):
    run_once(target_problem, tmp_path / "r", budget=5)
    with pytest.raises(RunError, match="already holds a run"):
        Run.create(target_problem, tmp_path / "r")


def test_resume_extends_the_budget(target_problem, tmp_path):
    run_once(target_problem, tmp_path / "r", budget=10, seed=4)
    run = Run.resume(tmp_path / "r", Overrides(budget=25))
    run.execute()
    counts = Store.open(tmp_path / "r").counts()
    assert sum(counts.get(s, 0) for s in ("ok", "error", "timeout")) == 25


def _evaluated(out: Path) -> int:
    conn = sqlite3.connect(out / "rsi.db")
    try:
        return conn.execute("SELECT COUNT(*) FROM candidates WHERE status IN ('ok','error','timeout')").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _wait_for_evaluations(out: Path, n: int, proc: subprocess.Popen, limit: float = 60) -> None:
    deadline = time.time() + limit
    while time.time() < deadline:
        if (out / "rsi.db").exists() and _evaluated(out) >= n:
            return
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)
    raise AssertionError("the run made no progress")


SLOW_TOML = """\
[run]
budget = 400
[evaluator]
timeout = 10
"""

SLOW_EVALUATE = TARGET_EVALUATE.replace("def evaluate(program_path):\n",
                                        "def evaluate(program_path):\n    import time; time.sleep(0.05)\n")


@pytest.mark.slow
def test_kill_9_loses_no_evaluated_candidate_and_resumes(tmp_path):
    folder = write_problem(tmp_path / "p", evaluate=SLOW_EVALUATE, toml=SLOW_TOML)
    out = tmp_path / "r"
    proc = subprocess.Popen([*RSI, "run", str(folder), "--out", str(out), "--seed", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_evaluations(out, 15, proc)
    left = list(Path(tempfile.gettempdir()).glob(f"rsi-scratch-{proc.pid}-*"))
    assert len(left) == 1  # the run's scratch folder, named after it
    proc.kill()
    proc.wait()
    assert left[0].is_dir()  # SIGKILL: nobody removed it
    before = {c.id: (c.status, c.score) for c in Store.open(out).candidates(("ok", "error", "timeout"))}
    assert len(before) >= 15
    done = subprocess.run([*RSI, "run", "--resume", str(out), "--budget", str(len(before) + 10)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = {c.id: (c.status, c.score) for c in Store.open(out).candidates(("ok", "error", "timeout"))}
    assert all(after[cid] == value for cid, value in before.items())
    assert len(after) == len(before) + 10
    assert Store.open(out).counts().get("pending", 0) == 0
    assert not left[0].exists()  # the next run swept it


def test_scratch_folders_of_dead_processes_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"rsi-scratch-{dead_pid}-abc"
    (stale / "w0").mkdir(parents=True)
    mine = tmp_path / f"rsi-scratch-{os.getpid()}-def"
    mine.mkdir()
    other = tmp_path / f"rsi-scratchy-{dead_pid}-x"  # not the naming scheme: left alone
    other.mkdir()
    fresh = new_scratch(tmp_path)
    assert not stale.exists() and mine.is_dir() and other.is_dir()
    assert fresh.is_dir() and fresh.name.startswith(f"rsi-scratch-{os.getpid()}-")
    assert sweep_stale(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint", "stop-command"])
def test_stop_is_clean_within_two_seconds_and_resumable(tmp_path, how):
    folder = write_problem(tmp_path / "p", evaluate=SLOW_EVALUATE, toml=SLOW_TOML)
    out = tmp_path / "r"
    proc = subprocess.Popen([*RSI, "run", str(folder), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_evaluations(out, 5, proc)
    if how == "sigint":
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
    else:
        subprocess.run([*RSI, "stop", str(out)], check=True, capture_output=True)
        start = time.monotonic()  # from the moment the STOP request exists
    stdout, stderr = proc.communicate(timeout=10)
    assert time.monotonic() - start < 2.5
    assert proc.returncode == 0, stderr
    assert "stopped:" in stdout
    n = _evaluated(out)
    done = subprocess.run([*RSI, "run", "--resume", str(out), "--budget", str(n + 3)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _evaluated(out) == n + 3
    assert not (out / "STOP").exists()


SPLIT_ONLY_EVALUATE = '''
import importlib.util


def produce(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [module.f(x / 10.0) for x in range(-20, 21)]


def score(data):
    xs = [x / 10.0 for x in range(-20, 21)]
    if len(data) != len(xs):
        raise ValueError("one value per point expected")
    return {"combined_score": -sum((y - (2.5 * x * x - x + 3.0)) ** 2 for x, y in zip(xs, data)) / len(xs)}
'''


def test_split_only_evaluator_runs_with_the_score_in_a_trusted_process(tmp_path):
    folder = write_problem(tmp_path / "p", evaluate=SPLIT_ONLY_EVALUATE)
    run_once(folder, tmp_path / "r", budget=12, seed=1)
    store = Store.open(tmp_path / "r")
    assert store.meta()["score_mode"] == "split"
    assert store.best().score > store.get(1).score or store.best().id == 1
    assert not load_problem(folder).has_holdout
