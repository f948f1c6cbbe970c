"""The 'ray' executor on a real Ray cluster on loopback (a head and a worker node, started here and always
stopped): the same candidates as the local pool, problem files shipped, a killed worker or node survived,
a killed driver resumed, the inner searches of self-improvement fanned out; and the errors without a cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TARGET_EVALUATE, write_problem
from ray_cluster import LocalCluster, free_port

from rsi.oversight import audit
from rsi.run import Overrides, Run
from rsi.sandbox.shipping import Remap, pack, unpack
from rsi.sandbox.types import EvalTask, Limits
from rsi.storage import Store

pytestmark = pytest.mark.ray
RSI = [sys.executable, "-m", "rsi.cli"]

TOML = """\
[run]
budget = 14
workers = 2
[evaluator]
timeout = 20
[archive]
islands = 2
migration_interval = 5
"""

# what the program says, after a pause: lets a test kill a worker while an evaluation runs
SLEEPY_EVALUATE = '''
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def evaluate(program_path):
    text = Path(program_path).read_text()
    time.sleep(float(text.split("SLEEP=")[1].split()[0]) if "SLEEP=" in text else 0.0)
    return {"combined_score": float((HERE / "data.txt").read_text()) + len(text) % 7,
            "elsewhere": float(str(HERE) != DRIVER_FOLDER)}
'''


def sleepy_problem(folder: Path) -> Path:
    write_problem(folder, initial="x = 1\n", evaluate=f"DRIVER_FOLDER = {str(folder.resolve())!r}\n" + SLEEPY_EVALUATE)
    (folder / "data.txt").write_text("40\n")
    return folder


def fingerprint(out: Path) -> list[tuple]:
    return [(c.id, c.parent_id, c.operator, c.source, c.status, c.score, c.metrics)
            for c in Store.open(out).candidates()]


def collect(pool, count: int, timeout: float = 180.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} results in {timeout:g}s"
        got += pool.collect(1.0)
    return got


# ---------------------------------------------------------------------------------- without a cluster

def test_problem_files_pack_unpack_and_remap(tmp_path):
    problem = write_problem(tmp_path / "p")
    (problem / "data").mkdir()
    (problem / "data" / "x.bin").write_bytes(b"\x00\x01")
    (problem / "__pycache__").mkdir()
    (problem / "__pycache__" / "evaluate.cpython-311.pyc").write_bytes(b"stale")
    (problem / "link.py").symlink_to("/etc/hostname")
    folders = unpack(pack([problem]), tmp_path / "node")
    assert folders == [tmp_path / "node" / "0"]
    assert sorted(p.relative_to(folders[0]).as_posix() for p in folders[0].rglob("*")) == [
        "data", "data/x.bin", "evaluate.py", "initial.py"]
    assert (folders[0] / "evaluate.py").read_text() == (problem / "evaluate.py").read_text()
    remap = Remap(((str(problem), str(folders[0])),), "/elsewhere/rsi")
    assert remap.path(problem / "evaluate.py") == str(folders[0] / "evaluate.py")
    import rsi
    engine = Path(rsi.__file__).resolve().parent
    assert remap.path("/elsewhere/rsi/meta/evaluators/produce.py") == str(engine / "meta/evaluators/produce.py")
    assert remap.env({"P": f"{problem}/data{os.pathsep}/usr/lib{os.pathsep}rel"}) == {
        "P": f"{folders[0]}/data{os.pathsep}/usr/lib{os.pathsep}rel"}


def test_without_ray_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    from rsi.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: `import ray` fails
    problem = write_problem(tmp_path / "p", toml=TOML)
    assert main(["run", str(problem), "--out", str(tmp_path / "r"), "--executor", "ray"]) == 2
    assert "pip install 'rsi[ray]'" in capsys.readouterr().err


def needs_ray():
    """The ray module; a skip without it, a failure under `make` (RSI_REQUIRE_RAY=1)."""
    try:
        import ray
    except ImportError:
        if os.environ.get("RSI_REQUIRE_RAY"):
            pytest.fail("RSI_REQUIRE_RAY is set but Ray is not installed: pip install -e '.[ray]'")
        pytest.skip("the ray extra is not installed: pip install 'rsi[ray]'")
    return ray


def test_an_unreachable_address_is_reported_at_once(tmp_path, capsys):
    from rsi.cli import main

    ray = needs_ray()
    problem = write_problem(tmp_path / "p", toml=TOML)
    port = free_port()  # nothing listens there
    assert not ray.is_initialized()
    assert main(["run", str(problem), "--out", str(tmp_path / "r"), "--executor", "ray",
                 "--address", f"127.0.0.1:{port}"]) == 2  # at once: not Ray's minutes of retries
    assert f"the Ray cluster at 127.0.0.1:{port} is unreachable" in capsys.readouterr().err
    assert main(["run", str(problem), "--out", str(tmp_path / "r2"), "--executor", "local", "--address", "auto"]) == 2
    assert "--address is the Ray cluster's" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- on a cluster

@pytest.fixture(scope="module")
def cluster():
    ray = needs_ray()
    nodes = LocalCluster(nodes=1, cpus=2)
    try:
        ray.init(address=nodes.address, namespace="rsi", logging_level="ERROR", log_to_driver=False)
        nodes.add_node()
        nodes.wait_nodes(2)
        yield nodes
    finally:
        try:
            ray.shutdown()
        finally:
            nodes.stop()


@pytest.mark.slow
def test_a_ray_run_makes_the_same_candidates_as_a_local_run(cluster, tmp_path):
    problem = write_problem(tmp_path / "p", evaluate=TARGET_EVALUATE, toml=TOML)
    local = Run.create(problem, tmp_path / "local", Overrides(seed=7))
    local.execute()
    on_ray = Run.create(problem, tmp_path / "ray", Overrides(seed=7, executor="ray", address=cluster.address))
    summary = on_ray.execute()
    assert summary.evaluations == 14
    assert fingerprint(tmp_path / "ray") == fingerprint(tmp_path / "local")
    assert on_ray.store.meta()["sandbox_level"] == local.store.meta()["sandbox_level"]
    assert (tmp_path / "ray" / "best.py").read_text() == (tmp_path / "local" / "best.py").read_text()
    rechecked = audit.events(on_ray.store.conn, ["candidate.rechecked"])  # the best, on a fresh Ray actor
    assert len(rechecked) == 1 and rechecked[0].payload["agrees"], rechecked


@pytest.mark.slow
def test_workers_spread_over_nodes_and_get_the_files_from_the_object_store(cluster, tmp_path):
    from rsi.sandbox.raypool import RayPool

    problem = sleepy_problem(tmp_path / "p")
    with RayPool(problem / "evaluate.py", 2, Limits(wall_seconds=20), address=cluster.address) as pool:
        assert len(pool.nodes) == 2  # one actor on each node
        assert pool.sandbox_level in ("full", "partial")
        sources = [f"x = {i}\n" + "#" * i for i in range(4)]
        results: list = []
        for i, source in enumerate(sources):
            if pool.in_flight == pool.workers:
                results += collect(pool, 1)
            pool.submit(EvalTask(candidate_id=i, source=source, seed=0, ticket=10 + i))
        results += collect(pool, 4 - len(results))
    assert sorted((r.candidate_id, r.ticket) for r in results) == [(i, 10 + i) for i in range(4)]
    for r in results:
        assert r.status == "ok", r.error
        assert r.metrics["combined_score"] == 40 + len(sources[r.candidate_id]) % 7  # data.txt, shipped
        assert r.metrics["elsewhere"] == 1.0  # the evaluator ran from the node's copy, not the driver's folder


@pytest.mark.slow
def test_a_worker_killed_mid_evaluation_is_retried_then_marked(cluster, tmp_path):
    from rsi.sandbox.raypool import RayPool

    problem = sleepy_problem(tmp_path / "p")
    with RayPool(problem / "evaluate.py", 2, Limits(wall_seconds=30), address=cluster.address, retries=1) as pool:
        victim = pool.infos[0]["pid"]
        pool.submit(EvalTask(candidate_id=1, source="x = 1  # SLEEP=2\n", seed=0, ticket=1))
        pool.submit(EvalTask(candidate_id=2, source="x = 2  # SLEEP=0.5\n", seed=0, ticket=2))
        time.sleep(1.0)  # both are running
        os.kill(victim, signal.SIGKILL)
        results = {r.candidate_id: r for r in collect(pool, 2)}
        assert results[1].status == "ok" and results[2].status == "ok", results
        assert results[1].metrics["combined_score"] == 40 + len("x = 1  # SLEEP=2\n") % 7
        assert pool.retried == 1 and pool.lost == 0
        pool.submit(EvalTask(candidate_id=3, source="x = 3\n", seed=0, ticket=3))
        assert collect(pool, 1)[0].status == "ok"  # on the replacement
    # retries=0: a lost evaluation is marked at once, and the pool goes on
    with RayPool(problem / "evaluate.py", 1, Limits(wall_seconds=30), address=cluster.address, retries=0) as pool:
        pool.submit(EvalTask(candidate_id=4, source="x = 4  # SLEEP=2\n", seed=0, ticket=4))
        time.sleep(1.0)
        os.kill(pool.infos[0]["pid"], signal.SIGKILL)
        lost = collect(pool, 1)[0]
        assert lost.candidate_id == 4 and lost.ticket == 4 and lost.status == "error"
        assert "lost 1 time(s) with its Ray worker or node" in lost.error and pool.lost == 1
        pool.submit(EvalTask(candidate_id=5, source="x = 5\n", seed=0, ticket=5))
        assert collect(pool, 1)[0].status == "ok"


def _evaluated(out: Path) -> int:
    try:
        return sum(Store.open(out).counts().get(s, 0) for s in ("ok", "error", "timeout"))
    except Exception:
        return 0


@pytest.mark.slow
def test_a_killed_driver_resumes_on_the_same_cluster(cluster, tmp_path):
    problem = sleepy_problem(tmp_path / "p")
    (problem / "problem.toml").write_text(TOML.replace("budget = 14", "budget = 200"))
    (problem / "initial.py").write_text("x = 1  # SLEEP=0.1\n")
    out = tmp_path / "r"
    proc = subprocess.Popen([*RSI, "run", str(problem), "--out", str(out), "--seed", "3", "--executor", "ray",
                             "--address", cluster.address], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 240
    while _evaluated(out) < 4:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    before = {c.id: (c.status, c.score) for c in Store.open(out).candidates(("ok", "error", "timeout"))}
    done = subprocess.run([*RSI, "run", "--resume", str(out), "--budget", str(len(before) + 4)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    store = Store.open(out)
    after = {c.id: (c.status, c.score) for c in store.candidates(("ok", "error", "timeout"))}
    assert all(after[cid] == value for cid, value in before.items())  # nothing evaluated was lost
    assert len(after) == len(before) + 4 and store.counts().get("pending", 0) == 0


@pytest.mark.slow
def test_a_run_through_ray_client(cluster, tmp_path):
    problem = sleepy_problem(tmp_path / "p")
    out = tmp_path / "r"
    done = subprocess.run([*RSI, "run", str(problem), "--out", str(out), "--budget", "4", "--workers", "1",
                           "--address", f"ray://127.0.0.1:{cluster.client_port}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _evaluated(out) == 4 and Store.open(out).counts().get("ok", 0) >= 1


@pytest.mark.slow
def test_self_improvement_fans_its_inner_searches_out_on_ray(cluster, tmp_path):
    from rsi.improvers import SEED_IMPROVER
    from rsi.meta.metautil import MetaEvaluator
    from rsi.meta.suite import load_suite

    seed = SEED_IMPROVER.read_text()
    problems = [p for p in load_suite("train") if p.name == "regress_damped"]
    found = {}
    for executor in ("local", "ray"):
        with MetaEvaluator(problems, budget=12, workers=2, scratch=tmp_path / executor, executor=executor,
                           address=cluster.address) as meta:
            if executor == "ray":
                assert len(meta.produce.nodes) == 2
            found[executor] = meta.measure({"seed": seed}, meta.units("train", [1, 2]))["seed"]
    assert found["ray"].ok, found["ray"].error
    assert found["ray"].gains == found["local"].gains
    assert [u.source for u in found["ray"].units] == [u.source for u in found["local"].units]


# last: it leaves the cluster with its head node only
@pytest.mark.slow
def test_a_node_killed_mid_run_is_survived(cluster, tmp_path):
    from rsi.sandbox.raypool import RayPool

    problem = sleepy_problem(tmp_path / "p")
    with RayPool(problem / "evaluate.py", 2, Limits(wall_seconds=30), address=cluster.address) as pool:
        assert len(pool.nodes) == 2
        for i in range(2):
            pool.submit(EvalTask(candidate_id=i, source=f"x = {i}  # SLEEP=2\n", seed=0, ticket=i))
        time.sleep(1.0)
        cluster.kill_node(cluster.procs[1])  # the worker node, with one of the two evaluations
        results = collect(pool, 2)
        assert sorted(r.candidate_id for r in results) == [0, 1]
        assert {r.status for r in results} == {"ok"}, [r.error for r in results]
        # retried at least once (again if the replacement was placed on the node before Ray knew it dead)
        assert pool.retried >= 1 and pool.lost == 0
        pool.submit(EvalTask(candidate_id=2, source="x = 2\n", seed=0, ticket=2))
        pool.submit(EvalTask(candidate_id=3, source="x = 3\n", seed=0, ticket=3))
        assert {r.status for r in collect(pool, 2)} == {"ok"}  # both on the head now
