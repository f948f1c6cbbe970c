"""Limits per process tree (cgroups) and a PID namespace per worker, on the real kernel.

Where the machine cannot give a cgroup (no controller, not writable, not delegated), the tree tests
skip with the reason and the report is what is tested: the pool and ``rsi doctor`` must say so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rsi.sandbox import cgroups
from rsi.sandbox.pool import EvaluatorPool
from rsi.sandbox.types import EvalTask, Limits

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="cgroups and namespaces are Linux's")

SUPPORT = cgroups.support()
needs_cgroups = pytest.mark.skipif(not SUPPORT.available, reason=f"no cgroup here: {SUPPORT.why}")

RUNNER = """
def evaluate(program_path):
    namespace = {}
    exec(open(program_path).read(), namespace)
    return namespace["run"]()
"""

SPREAD_HOG = """
import os, time

def run():
    children = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            block = bytearray(150 << 20)  # zero-filled: resident, under each process's own cap
            time.sleep(1.0)
            os._exit(0 if block[-1] == 0 else 1)
        children.append(pid)
    survived = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        survived += os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return {"combined_score": float(survived)}
"""

IDENTITY = """
import os

def run():
    return {"combined_score": float(os.getpid()), "ppid": float(os.getppid())}
"""


def _evaluate(tmp_path: Path, source: str, limits: Limits):
    (tmp_path / "problem").mkdir(exist_ok=True)
    (tmp_path / "problem" / "evaluate.py").write_text(RUNNER)
    with EvaluatorPool(tmp_path / "problem" / "evaluate.py", 1, limits, tmp_path / "scratch") as pool:
        pool.submit(EvalTask(1, source, 0))
        results = []
        while not results:
            results = pool.collect(timeout=5.0)
        return pool.sandbox, results[0]


def _protection(sandbox: dict, name: str) -> dict:
    return next(p for p in sandbox["protections"] if p["name"] == name)


def test_the_pool_reports_tree_limits_and_the_pid_namespace(tmp_path):
    sandbox, result = _evaluate(tmp_path, IDENTITY, Limits(wall_seconds=20))
    tree, pid = _protection(sandbox, "process tree"), _protection(sandbox, "pid namespace")
    assert tree["on"] is SUPPORT.available
    assert tree["detail"] == SUPPORT.describe()  # where, or why not (e.g. "not writable", "no pids controller")
    assert result.status == "ok"
    if pid["on"]:  # the candidate sees its worker as init (and, guarded, the evaluation process as its
        # parent), and no process of the host
        assert result.metrics["ppid"] <= 2.0 and result.metrics["combined_score"] < 100
    else:
        assert pid["detail"]  # why not, said


@needs_cgroups
def test_memory_spread_over_child_processes_is_stopped_by_the_tree_limit(tmp_path):
    """Eight children of 150 MiB each: every one is under its own 300 MiB address-space cap (so
    without a tree limit all eight survive), together far above the tree's 300 + 256 MiB."""
    sandbox, result = _evaluate(tmp_path, SPREAD_HOG, Limits(wall_seconds=60, cpu_seconds=30, memory_mb=300,
                                                             processes=64))
    assert _protection(sandbox, "process tree")["on"]
    assert result.status != "ok" or result.metrics["combined_score"] < 8, result


@needs_cgroups
def test_a_fork_bomb_is_stopped_at_the_trees_process_limit(tmp_path):
    """A plain process (no rlimit at all: as root RLIMIT_NPROC is not even enforced) put in a tree
    of 20 processes: its fork bomb gets no further."""
    tree = cgroups.tree_for("test-bomb", memory_mb=512, processes=20, cpus=1.0)
    assert tree is not None
    bomb = textwrap.dedent("""
        import os, sys, time
        sys.stdin.read(1)  # wait until put in the tree
        made = 0
        for _ in range(200):
            try:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                made += 1
            except OSError:
                break
        print(made, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", bomb], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        tree.add(proc.pid)
        out, _ = proc.communicate("x", timeout=120)
        assert int(out) < 20
        assert tree.events()["pids_max"] > 0
    finally:
        tree.kill()
        proc.wait()
        tree.remove()
    assert not any(os.path.exists(f) for f in tree.folders.values())


def test_doctor_shows_the_tree_limits():
    done = subprocess.run([sys.executable, "-m", "rsi.cli", "doctor"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    text = done.stdout
    line = next(line for line in text.splitlines() if "process tree" in line)
    assert line.lstrip().startswith("[x]" if SUPPORT.available else "[ ]"), text
    assert SUPPORT.describe() in line
    assert "pid namespace" in text
    json.dumps(text)  # printable as it stands


@needs_cgroups
def test_groups_left_by_a_killed_engine_are_swept():
    """An engine killed with -9 cannot remove its groups; the next rsi process that makes a tree does."""
    engine = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    stale = [os.path.join(parent, f"rsi-{engine.pid}-w0-1") for parent in dict.fromkeys(SUPPORT.parents.values())]
    for folder in stale:
        os.mkdir(folder)
    engine.kill()
    engine.wait()
    removed = cgroups.sweep_stale(SUPPORT)
    assert set(stale) <= set(removed) and not any(os.path.exists(f) for f in stale)
