"""The hostile corpus (tests/hostile/*.py) through the real sandbox: as the user running the tests
(root on CI) and as an ordinary user, made here with useradd when the tests run as root.

Each program's header states the verdict rsi must give; after the corpus nothing may be left
running, nothing written outside scratch folders, the evaluator and the run database unchanged,
no secret in any output. tests/hostile/harness.py does the running; this file judges.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")

HOSTILE = Path(__file__).resolve().parent / "hostile"
SRC = Path(__file__).resolve().parents[1] / "src"
CORPUS = sorted(p.stem for p in HOSTILE.glob("*.py") if p.name != "harness.py")
USER = "rsi-sandbox-test"
RUNS = ("self", "user")
_reports: dict[str, dict] = {}


def _harness(argv: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run(argv + ["--out", "-"], capture_output=True, text=True, env=env,
                          timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"the corpus harness failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RSI_SANDBOX_DISABLE"}
    env["PYTHONPATH"] = str(SRC)
    return env


def _ensure_user() -> str | None:
    """The ordinary user to run as; None (with a reason to skip) if none can be had."""
    try:
        pwd.getpwnam(USER)
        return None if os.geteuid() == 0 else "not root: cannot switch to another user"
    except KeyError:
        pass
    if os.geteuid() != 0:
        return f"not root, and no user {USER!r} to run the corpus as"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    USER], check=True, capture_output=True)
    return None


def _as_user(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", USER, "--", "env", *[f"{k}={v}" for k, v in env.items()],
                           *argv], capture_output=True, text=True, timeout=300)


def _user_runtime(root: Path) -> tuple[str, dict[str, str]]:
    """A Python the ordinary user can run, with rsi, numpy and the corpus it can read.

    The test's own interpreter and checkout may sit in a folder the user cannot enter (a venv
    under /root): then the corpus, rsi and numpy are copied into ``root`` (readable by all) and
    run by an interpreter of the same version that the user can execute.
    """
    import numpy

    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    shutil.copytree(HOSTILE, root / "hostile", ignore=shutil.ignore_patterns("__pycache__"))
    harness = str(root / "hostile" / "harness.py")
    probe = ["-c", "import numpy, rsi.sandbox.pool"]
    if _as_user([sys.executable, *probe], dict(env, PYTHONPATH=str(SRC))).returncode == 0:
        return sys.executable, dict(env, PYTHONPATH=str(SRC))
    site = root / "site"
    shutil.copytree(SRC / "rsi", site / "rsi", ignore=shutil.ignore_patterns("__pycache__"))
    numpy_dir = Path(numpy.__file__).parent
    for folder in numpy_dir.parent.glob("numpy*"):
        if folder.is_dir() and not folder.name.endswith("-info"):
            shutil.copytree(folder, site / folder.name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for python in (os.path.realpath(sys.executable), f"/usr/bin/python{version}",
                   shutil.which(f"python{version}") or "", f"/usr/local/bin/python{version}"):
        if python and os.path.exists(python) and \
                _as_user([python, *probe], dict(env, PYTHONPATH=str(site))).returncode == 0:
            return python, dict(env, PYTHONPATH=str(site), RSI_HARNESS=harness)
    pytest.fail(f"no Python {version} that {USER} can run: install python{version} "
                "(apt-get install python3) or make the test's interpreter world-readable")


def report(run: str) -> dict:
    if run in _reports:
        return _reports[run]
    if run == "self":
        _reports[run] = _harness([sys.executable, str(HOSTILE / "harness.py")], _base_env())
        return _reports[run]
    reason = _ensure_user()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="rsi-user-runtime-"))
    try:
        os.chmod(root, 0o755)
        python, env = _user_runtime(root)
        harness = env.pop("RSI_HARNESS", str(root / "hostile" / "harness.py"))
        proc = _as_user([python, harness, "--out", "-"], env)
        if proc.returncode != 0:
            raise AssertionError(f"the corpus failed as {USER}:\n{proc.stderr[-4000:]}")
        _reports[run] = json.loads(proc.stdout)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return _reports[run]


@pytest.mark.parametrize("run", RUNS)
def test_the_sandbox_is_full(run):
    r = report(run)
    assert r["sandbox"]["level"] == "full", r["sandbox"]
    assert r["score_modes"] == {"split": "split", "beside": "guarded"}
    assert (r["user"] == 0) == (run == "self" and os.geteuid() == 0)
    assert set(r["results"]) == set(CORPUS), "every program of the corpus ran"


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("name", CORPUS)
def test_verdict(run, name):
    r = report(run)
    spec, result = r["specs"][name], r["results"][name]
    where = f"{name} as {'uid ' + str(r['user'])}: {result['status']} {result['metrics']} {result['error'][-600:]}"
    assert result["status"] in spec["verdict"].split("|"), where
    if spec["expect"] and result["status"] == "error":
        assert any(e in result["error"] for e in spec["expect"]), where
    score = result["metrics"].get("combined_score")
    if "score-max" in spec:
        assert score is not None and score <= spec["score-max"], where
    if "score-min" in spec:
        assert score is not None and score >= spec["score-min"], where
    if spec["verdict"] == "timeout":
        assert result["wall"] < 6.0, where  # killed at the wall limit (2 s), not much later


@pytest.mark.parametrize("run", RUNS)
def test_nothing_is_left_after_the_corpus(run):
    checks = report(run)["checks"]
    assert checks["connections"] == 0, "the loopback listener saw a connection"
    assert checks["hostile_processes"] == [], "processes of the corpus still run"
    assert checks["outside_files"] == [] and checks["tmp_leftovers"] == []
    assert checks["changed_files"] == [], "the evaluator, held-out data or run database changed"
    assert checks["integrity"] == {"split": None, "beside": None}
    assert checks["token_leaks"] == [], "a secret reached a candidate's output"


def test_corpus_is_big_enough_and_every_program_states_a_verdict():
    assert len(CORPUS) >= 30
    for name in CORPUS:
        head = (HOSTILE / f"{name}.py").read_text().splitlines()[0]
        assert head.startswith("# verdict: ")
        assert set(head.split(": ")[1].split("|")) <= {"ok", "error", "timeout"}
