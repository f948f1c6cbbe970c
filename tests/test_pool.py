"""EvaluatorPool end to end: real worker processes, real forks, real limits (no mocks).

Most tests share one pool whose evaluator runs the candidate's ``run()`` in its own process (the guard
off: these test the evaluation child itself; tests/test_guard.py the guard), so each test states
the candidate's behaviour as program source.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rsi.errors import ProblemError
from rsi.sandbox.pool import EvaluatorPool
from rsi.sandbox.types import EvalResult, EvalTask, Limits

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker pool is Linux-only")

RUNNER = """
import importlib.util

def _load(path):
    spec = importlib.util.spec_from_file_location("candidate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def evaluate(program_path):
    return _load(program_path).run()

def evaluate_holdout(program_path):
    return _load(program_path).holdout()
"""

LIMITS = Limits(guard=False, wall_seconds=1.5, cpu_seconds=1.0, memory_mb=300, output_bytes=4000,
                file_bytes=2 * 1024 * 1024)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def program(body: str, *, head: str = "") -> str:
    """A candidate whose ``run()`` has ``body``."""
    return (
        "import os, sys, time, random\n" + textwrap.dedent(head)
        + "def run():\n" + textwrap.indent(textwrap.dedent(body), "    ")
    )


def evaluate(pool: EvaluatorPool, source: str, *, seed: int = 0, kind: str = "train",
             cid: int = 1, timeout: float = 15.0) -> EvalResult:
    pool.submit(EvalTask(candidate_id=cid, source=source, seed=seed, kind=kind))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results = pool.collect(timeout=0.5)
        if results:
            assert len(results) == 1
            return results[0]
    raise AssertionError("no result")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = (Path("/proc") / entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} was not written")


# The pool's mechanics, without the sandbox: several probes below write into tmp_path, outside
# a candidate's scratch folder, which isolation forbids (tests/test_sandbox.py, test_hostile.py).
NO_SANDBOX = {"isolation": "none"}


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    with EvaluatorPool(write(root, "evaluate.py", RUNNER), 1, LIMITS, root / "scratch", **NO_SANDBOX) as p:
        yield p


@pytest.fixture(scope="module")
def pool2(tmp_path_factory):
    """Two workers; this evaluator has no evaluate_holdout."""
    root = tmp_path_factory.mktemp("pool2")
    evaluator = write(root, "evaluate.py", RUNNER.split("def evaluate_holdout")[0])
    with EvaluatorPool(evaluator, 2, LIMITS, root / "scratch", **NO_SANDBOX) as p:
        yield p


# ------------------------------------------------------------------ results


def test_ok_result_keeps_numeric_metrics(pool):
    import numpy  # noqa: F401 - np scalars below come from the candidate

    r = evaluate(pool, program("""
        import numpy as np
        print("hello from the candidate")
        print("to stderr", file=sys.stderr)
        return {"combined_score": np.float32(2.5), "n": 3, "ok": True, "name": "x",
                "arr": [1, 2], "big": np.int64(7), "nan_side": float("nan")}
    """), cid=7)
    assert (r.candidate_id, r.kind, r.status, r.error) == (7, "train", "ok", None)
    assert r.metrics == {"combined_score": 2.5, "n": 3.0, "ok": 1.0, "big": 7.0}
    assert all(type(v) is float for v in r.metrics.values())
    assert r.stdout == "hello from the candidate\n"
    assert r.stderr == "to stderr\n"
    assert 0 < r.wall_seconds < 1.5 and r.cpu_seconds >= 0


def test_task_folder_is_removed_and_pool_pipes_are_not_inherited(pool):
    r = evaluate(pool, program("""
        print(os.getcwd())
        targets = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
            except FileNotFoundError:  # the fd listdir used
                pass
        print(targets, file=sys.stderr)
        return {"combined_score": sum(t.startswith("pipe:") for t in targets)}
    """), cid=8)
    assert r.metrics.get("combined_score") == 1, (r.error, r.stderr)  # only its own result pipe
    folder = Path(r.stdout.strip())
    assert folder.name == "8-train" and folder.parent.name == "w0"
    deadline = time.monotonic() + 2
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not folder.exists()


def test_output_of_one_task_does_not_leak_into_the_next(pool):
    outputs = [evaluate(pool, program(f"print({text!r})\nreturn {{'combined_score': 0}}")).stdout
               for text in ("a long first line", "b", "c")]
    assert outputs == ["a long first line\n", "b\n", "c\n"]


def test_exception_gives_error_with_traceback(pool):
    r = evaluate(pool, program("""
        def deep():
            raise ValueError("boom in the candidate")
        deep()
    """))
    assert r.status == "error"
    assert "Traceback" in r.error and "ValueError: boom in the candidate" in r.error
    assert "deep" in r.error and len(r.error) <= 2300


@pytest.mark.parametrize("value, message", [
    ("[1.0]", "evaluate returned list, expected dict with 'combined_score'"),
    ("{'score': 1.0}", "evaluate returned a dict without 'combined_score'"),
    ("{'combined_score': float('nan')}", "evaluate returned combined_score=nan"),
    ("{'combined_score': float('inf')}", "evaluate returned combined_score=inf"),
    ("{'combined_score': -10**400}", "evaluate returned combined_score=-inf"),
    ("{'combined_score': 'high'}", "evaluate returned combined_score='high' (str)"),
])
def test_invalid_results_are_errors(pool, value, message):
    r = evaluate(pool, program(f"return {value}"))
    assert r.status == "error" and r.metrics == {}
    assert message in r.error


def test_system_exit_is_an_error(pool):
    r = evaluate(pool, program("sys.exit(3)"))
    assert r.status == "error" and "SystemExit" in r.error


def test_exit_mid_evaluation_died_without_result(pool):
    r = evaluate(pool, program("print('bye'); sys.stdout.flush(); os._exit(0)"))
    assert r.status == "error"
    assert r.error == "evaluation process died (exit code 0) without a result"
    assert r.stdout == "bye\n"


def test_segfault_names_the_signal(pool):
    r = evaluate(pool, program("os.kill(os.getpid(), signal.SIGSEGV)", head="import signal\n"))
    assert r.status == "error"
    assert r.error == "evaluation process died (SIGSEGV) without a result"


def test_holdout_kind_calls_evaluate_holdout(pool):
    source = program("return {'combined_score': 1.0}") + (
        "\ndef holdout():\n    return {'combined_score': 0.25, 'held': 1}\n"
    )
    assert pool.has_holdout
    r = evaluate(pool, source, kind="holdout", cid=3)
    assert (r.kind, r.status, r.metrics) == ("holdout", "ok", {"combined_score": 0.25, "held": 1.0})


def test_holdout_without_evaluate_holdout_is_an_error(pool2):
    assert not pool2.has_holdout
    r = evaluate(pool2, program("return {'combined_score': 1.0}"), kind="holdout")
    assert r.status == "error" and "evaluate_holdout" in r.error


def test_seeding_is_per_task(pool):
    source = program("""
        import numpy as np
        return {"combined_score": random.random(), "np": float(np.random.rand())}
    """)
    a, b, c = (evaluate(pool, source, seed=s).metrics for s in (11, 11, 12))
    assert a == b
    assert a["combined_score"] != c["combined_score"] and a["np"] != c["np"]


# ------------------------------------------------------------------ limits


def test_wall_timeout_kills_the_whole_group(pool, tmp_path):
    pid_file = tmp_path / "pid"
    t0 = time.monotonic()
    r = evaluate(pool, program(f"""
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        if os.fork() == 0:  # a helper in the same process group
            time.sleep(1000)
        time.sleep(1000)
    """))
    elapsed = time.monotonic() - t0
    assert r.status == "timeout"
    assert r.error == "wall time limit of 1.5s exceeded"
    assert 1.5 <= elapsed < 2.5 and 1.5 <= r.wall_seconds < 2.5
    assert group_members(int(pid_file.read_text())) == []


def test_cpu_limit_is_a_timeout(tmp_path):
    limits = Limits(wall_seconds=20, cpu_seconds=1)  # a generous wall time: CPU must stop it
    with EvaluatorPool(write(tmp_path, "evaluate.py", RUNNER), 1, limits, tmp_path / "s") as pool:
        r = evaluate(pool, program("while True:\n    pass"), timeout=25)
    assert r.status == "timeout"
    assert r.error == "CPU time limit of 1s exceeded"
    # the kernel checks RLIMIT_CPU on its own clock; the rusage split (utime + stime) it reports can read
    # ~10% lower on a loaded machine (0.888 s seen at load 11): a tolerance fit to that, not to the limit
    assert 0.75 <= r.cpu_seconds < 2.5


def test_memory_bomb_is_stopped(pool):
    r = evaluate(pool, program("""
        hoard = []
        while True:
            hoard.append(bytearray(10**7))
    """))
    assert r.status == "error"
    assert "MemoryError" in r.error and "memory limit of 300 MB" in r.error
    assert evaluate(pool, program("return {'combined_score': 1}")).status == "ok"


def test_stdout_flood_is_cut_and_worker_survives(pool):
    r = evaluate(pool, program("""
        while True:
            print("x" * 1000)
    """))
    assert r.status == "error" and "File too large" in r.error  # RLIMIT_FSIZE stopped it
    assert len(r.stdout) <= LIMITS.output_bytes and "output cut" in r.stdout
    r = evaluate(pool, program("""
        chunk = b"y" * 2**20
        try:
            for _ in range(1024):  # 1 GB
                os.write(1, chunk)
        except OSError as exc:
            print("stopped:", exc.strerror, file=sys.stderr)
        return {"combined_score": 1}
    """))
    assert r.status == "ok" and r.stderr == "stopped: File too large\n"
    assert len(r.stdout) <= LIMITS.output_bytes
    assert f"output cut, {LIMITS.file_bytes} bytes in all" in r.stdout
    assert r.stdout.startswith("yyy") and r.stdout.endswith("yyy")
    assert evaluate(pool, program("return {'combined_score': 2}")).metrics["combined_score"] == 2


def test_grandchildren_are_killed_after_the_task(pool, tmp_path):
    pids = tmp_path / "pids"
    r = evaluate(pool, program(f"""
        kids = []
        for escape in (False, True):
            pid = os.fork()
            if pid == 0:
                if escape:
                    os.setsid()  # leaves the process group: only the subreaper sweep finds it
                    if os.fork():
                        os._exit(0)  # daemonize: the grandchild is orphaned
                time.sleep(1000)
                os._exit(0)
            kids.append(pid)
        time.sleep(0.2)
        with open({str(pids)!r}, "w") as f:
            f.write(" ".join(map(str, kids + [os.getpid()])))
        return {{"combined_score": 1.0}}
    """))
    assert r.status == "ok"
    *kids, child = map(int, pids.read_text().split())
    assert group_members(child) == []
    escaped = [int(p) for p in os.listdir("/proc") if p.isdigit() and _session(int(p)) in kids]
    assert escaped == [] and not any(alive(k) for k in kids)


def _session(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


# ------------------------------------------------------------------ the pool


def test_evaluator_import_failure_is_a_problem_error(tmp_path):
    evaluator = write(tmp_path, "evaluate.py", """
        import json
        SETTING = 1 / 0
        def evaluate(path):
            return {"combined_score": 1.0}
    """)
    with pytest.raises(ProblemError) as info:
        EvaluatorPool(evaluator, 2, LIMITS, tmp_path / "scratch")
    assert "ZeroDivisionError" in str(info.value) and "evaluate.py" in str(info.value)
    assert "SETTING = 1 / 0" in str(info.value)


def test_evaluator_without_evaluate_is_a_problem_error(tmp_path):
    evaluator = write(tmp_path, "evaluate.py", "def score(path):\n    return 1\n")
    with pytest.raises(ProblemError, match="evaluate"):
        EvaluatorPool(evaluator, 1, LIMITS, tmp_path / "scratch")
    with pytest.raises(ProblemError, match="not found"):
        EvaluatorPool(tmp_path / "missing.py", 1, LIMITS, tmp_path / "scratch")


def test_two_workers_run_concurrently(pool2):
    source = program("time.sleep(0.6)\nreturn {'combined_score': 1.0}")
    t0 = time.monotonic()
    pool2.submit(EvalTask(candidate_id=1, source=source, seed=0))
    pool2.submit(EvalTask(candidate_id=2, source=source, seed=0))
    assert pool2.in_flight == 2
    with pytest.raises(RuntimeError, match="no idle worker"):
        pool2.submit(EvalTask(candidate_id=3, source=source, seed=0))
    results = []
    while len(results) < 2:
        results += pool2.collect(timeout=5)
    assert sorted(r.candidate_id for r in results) == [1, 2]
    assert all(r.status == "ok" for r in results)
    assert time.monotonic() - t0 < 1.1
    assert pool2.in_flight == 0


def test_cancel_all_kills_running_tasks_promptly(pool2, tmp_path):
    for cid in (1, 2):
        pool2.submit(EvalTask(candidate_id=cid, seed=0, source=program(f"""
            open({str(tmp_path / str(cid))!r}, "w").write(str(os.getpid()))
            time.sleep(1000)
        """)))
    pids = [int(wait_for_file(tmp_path / str(cid))) for cid in (1, 2)]
    t0 = time.monotonic()
    pool2.cancel_all()
    assert time.monotonic() - t0 < 0.5
    assert pool2.in_flight == 0
    assert not any(alive(p) for p in pids)
    assert pool2.collect(timeout=0.2) == []  # cancelled results are dropped
    r = evaluate(pool2, program("return {'combined_score': 5}"), cid=9)
    assert (r.candidate_id, r.status) == (9, "ok")


def test_dead_worker_is_replaced(tmp_path):
    with EvaluatorPool(write(tmp_path, "evaluate.py", RUNNER), 1, LIMITS, tmp_path / "s", **NO_SANDBOX) as pool:
        info = tmp_path / "info"
        pool.submit(EvalTask(candidate_id=4, seed=0, source=program(f"""
            open({str(info)!r}, "w").write(f"{{os.getppid()}} {{os.getpid()}}")
            time.sleep(1000)
        """)))
        worker, child = map(int, wait_for_file(info).split())
        os.kill(worker, signal.SIGKILL)
        results = pool.collect(timeout=10)
        assert [(r.candidate_id, r.status) for r in results] == [(4, "error")]
        assert "worker died (SIGKILL)" in results[0].error
        deadline = time.monotonic() + 2
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not alive(child)
        assert pool.in_flight == 0 and pool.workers == 1
        r = evaluate(pool, program(f"""
            open({str(info)!r}, "w").write(str(os.getppid()))
            return {{'combined_score': 1}}
        """))
        assert r.status == "ok"
        new_worker = int(info.read_text())
        assert new_worker != worker
    assert not alive(new_worker)  # close() stopped it
    pool.close()  # idempotent
