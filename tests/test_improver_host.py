"""Machine-written improvers run in a sandboxed host: the protocol, the opt-out, and the hostile corpus.

Everything here is real: the host process (``rsi.sandbox.improver_host``) with the machine's isolation,
a search on the evaluation pool, the run database and its trail.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import rsi
from rsi.errors import RsiError
from rsi.improvers import SEED_IMPROVER
from rsi.sandbox.improver_host import HostedImprover, open_improver

ROOT = Path(__file__).resolve().parents[1]
CORPUS = sorted((ROOT / "tests" / "hostile" / "improvers" / "sandbox").glob("*.py"))
BUDGET = 6


def _header(path: Path, key: str) -> str | None:
    found = re.search(rf"^# {key}: (.+)$", path.read_text(), re.M)
    return found.group(1).strip() if found else None


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


class Listener:
    """A TCP listener on the loopback that notes any connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.connected = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
            self.connected = True
            conn.close()
        except OSError:
            pass


@pytest.fixture
def world(tmp_path, target_problem, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    outside.chmod(0o777)
    secret = tmp_path / "home" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("RSI-SECRET")
    monkeypatch.setenv("RSI_TEST_SECRET_TOKEN", "RSI-SECRET")
    listener = Listener()
    yield {"problem": target_problem, "outside": outside, "secret": secret, "listener": listener,
           "run": tmp_path / "run"}
    listener.sock.close()


def _fill(text: str, world: dict) -> str:
    return (text.replace("@@EVALUATOR@@", str(world["problem"] / "evaluate.py"))
            .replace("@@RUN@@", str(world["run"])).replace("@@SECRET_FILE@@", str(world["secret"]))
            .replace("@@OUTSIDE@@", str(world["outside"])).replace("@@PORT@@", str(world["listener"].port)))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("hostile", CORPUS, ids=lambda p: p.stem)
def test_a_hostile_improver_leaves_host_database_and_trail_untouched(world, tmp_path, hostile):
    verdict, expect = _header(hostile, "verdict"), _header(hostile, "expect")
    path = tmp_path / "improvers" / hostile.name
    path.parent.mkdir()
    path.write_text(_fill(hostile.read_text(), world))
    problem_files = _hashes(world["problem"])
    if verdict == "refused":
        with pytest.raises(RsiError, match=re.escape(expect or "")):
            HostedImprover(path, call_seconds=3, start_seconds=5)
        return
    improver = HostedImprover(path, call_seconds=3)
    host = improver._proc.pid
    assert "filesystem" in improver.protections or os.environ.get("RSI_SANDBOX_DISABLE")
    run = rsi.Run.create(world["problem"], world["run"], rsi.Overrides(budget=BUDGET, seed=1), improver)
    summary = run.execute()
    detail = summary.detail or ""
    assert "REACHED" not in detail, detail  # a hole: the improver did what it must not be able to
    if verdict == "no-effect":
        assert summary.stop_reason is rsi.StopReason.BUDGET, detail
        assert summary.evaluations == BUDGET
    else:
        assert verdict == "failed"
        assert summary.stop_reason is rsi.StopReason.IMPROVER_FAILED
        assert expect and expect in detail, detail
    assert not _alive(host)  # the host and whatever it started are gone
    with rsi.open_run(world["run"]) as results:
        assert results.verify_audit().ok and results.verify_state().ok
        assert all(c.score is None or c.score < 1e9 for c in results.candidates())
        failed_events = results.events("improver.failed")
    assert len(failed_events) == (1 if verdict == "failed" else 0)
    assert _hashes(world["problem"]) == problem_files
    assert not list(world["outside"].iterdir())
    assert not (world["run"] / "forged.txt").exists()
    assert not world["listener"].connected


def test_rsi_run_with_a_hostile_improver_then_audit_verify(world, tmp_path):
    """The command line as a user runs it: the run stops with the reason, the trail verifies."""
    path = tmp_path / "hostile.py"
    path.write_text(_fill((ROOT / "tests/hostile/improvers/sandbox/write_database.py").read_text(), world)
                    .replace("return Step(", "raise RuntimeError('gave up')\n    return Step("))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cli = [sys.executable, "-m", "rsi.cli"]
    done = subprocess.run([*cli, "run", str(world["problem"]), "--improver", str(path), "--budget", "4",
                           "--out", str(world["run"])], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "stopped: the improver failed" in done.stdout and "gave up" in done.stdout
    assert "REACHED" not in done.stdout
    verify = subprocess.run([*cli, "audit", "verify", str(world["run"])], capture_output=True, text=True, env=env,
                            timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_the_sandboxed_seed_improver_makes_the_same_run_as_in_process(target_problem, tmp_path):
    """The protocol carries everything a hook sees and changes (state, random state): a copy of the
    seed improver in its host and the same code in the engine make the same candidates."""
    copy = tmp_path / "seed_copy.py"
    copy.write_text(SEED_IMPROVER.read_text() + "\n# a copy: not byte for byte the seed, so it is sandboxed\n")
    runs = {}
    for name, trusted in (("hosted", False), ("trusted", True)):
        out = tmp_path / name
        run = rsi.Run.create(target_problem, out, rsi.Overrides(budget=10, seed=3), copy, trust_improver=trusted)
        assert getattr(run.search.improver, "hosted", False) is not trusted
        run.execute()
        with rsi.open_run(out) as results:
            runs[name] = [(c.id, c.parent_id, c.fingerprint, c.status, c.score) for c in results.candidates()]
    assert runs["hosted"] == runs["trusted"] and len(runs["hosted"]) >= 10


def test_trust_is_recorded_and_runs_in_the_engine(target_problem, tmp_path):
    improver = tmp_path / "mine.py"
    improver.write_text("import os\nfrom rsi.improvers import Step\n\n"
                        "def next_step(ctx):\n    ctx.state['pid'] = os.getpid()\n"
                        "    return Step(parent=ctx.archive.best().id)\n")
    for name, trusted in (("sandboxed", False), ("trusted", True)):
        out = tmp_path / name
        rsi.Run.create(target_problem, out, rsi.Overrides(budget=3, seed=1), improver, trust_improver=trusted).execute()
        with rsi.open_run(out) as results:
            pid = results.store.load_state()["improver"]["pid"]
            assert (pid == os.getpid()) is trusted
            assert len(results.events("improver.trusted")) == (1 if trusted else 0)
            assert results.verify_audit().ok


def test_the_seed_improver_runs_in_process_and_a_changed_file_does_not(tmp_path):
    assert not getattr(open_improver(None), "hosted", False)
    assert not getattr(open_improver(SEED_IMPROVER), "hosted", False)
    copy = tmp_path / "seed.py"
    shutil.copy(SEED_IMPROVER, copy)
    assert not getattr(open_improver(copy), "hosted", False)  # byte for byte rsi's own
    copy.write_text(copy.read_text() + "\nimport os\n")
    hosted = open_improver(copy)
    try:
        assert hosted.hosted
    finally:
        hosted.close()


def test_hosted_operators_run_in_the_host(target_problem, tmp_path):
    improver = tmp_path / "ops.py"
    improver.write_text('''import os
from rsi.improvers import Step

def flip(ctx):
    ctx.state["operator_pid"] = os.getpid()
    sites = ctx.parent.constants()
    if not sites:
        return None
    site = ctx.rng.choice(sites)
    return site.set(site.value + ctx.rng.uniform(-1, 1))

OPERATORS = {"flip": flip}

def next_step(ctx):
    return Step(parent=ctx.archive.best().id, proposer="improver", operator="flip")
''')
    out = tmp_path / "r"
    summary = rsi.Run.create(target_problem, out, rsi.Overrides(budget=4, seed=1), improver).execute()
    assert summary.evaluations == 4
    with rsi.open_run(out) as results:
        assert results.store.load_state()["improver"]["operator_pid"] != os.getpid()
        assert any(c.proposer == "improver" for c in results.candidates())


def test_the_host_sees_the_runs_memory(tmp_path):
    """ctx.memory (what paid in earlier searches) crosses to the host, checked on the way in."""
    import random

    from rsi.archive import Archive
    from rsi.improvers import snapshot

    improver = tmp_path / "remembers.py"
    improver.write_text("from rsi.improvers import Step\n\ndef next_step(ctx):\n"
                        "    ctx.state['arms'] = sorted(ctx.memory['arms'])\n    return Step(parent=1)\n")
    archive = Archive(["code_size"], 4, 1)
    archive.add(1, 0, 1.0, (10.0,), 10)
    memory = {"version": 1, "arms": {"mutate:swap": {"tries": 4, "improved": 1, "new_best": 0}}}
    state: dict = {}
    host = HostedImprover(improver)
    try:
        host.next_step(snapshot(archive, random.Random(0), state, {"mutate": ["swap"]}, {}, 10, 1, [(1, 1.0)],
                                memory))
    finally:
        host.close()
    assert state["arms"] == ["mutate:swap"]
