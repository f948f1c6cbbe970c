"""The sandbox's parts and the split evaluator contract, with real workers (no mocks).

The hostile corpus is in test_hostile.py; here: the data codec, the seccomp and Landlock
programs in a forked child, the environment allow-list, the split contract end to end (scorer
errors, timeouts, restarts), the binpack example through the pool, degraded modes, integrity
checks and ``rsi doctor``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rsi.problem import hash_evaluator_files
from rsi.sandbox import cgroups, codec, integrity, isolation, landlock, seccomp
from rsi.sandbox.capabilities import capabilities
from rsi.sandbox.doctor import doctor_report
from rsi.sandbox.environment import worker_environment
from rsi.sandbox.pool import EvaluatorPool, evaluate_fresh, tree_note
from rsi.sandbox.types import EvalResult, EvalTask, Limits

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LIMITS = Limits(wall_seconds=5, cpu_seconds=5, memory_mb=600, score_seconds=2, data_bytes=2**20,
                scratch_bytes=32 * 2**20)
CAPS = capabilities()
FULL = CAPS["level"] == "full"
needs_full = pytest.mark.skipif(not FULL, reason=f"this machine reaches {CAPS['level']} isolation")

SPLIT = '''
import importlib.util, os, time

def _run(path):
    spec = importlib.util.spec_from_file_location("candidate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run()

def produce(program_path):
    return _run(program_path)

def score(data):
    if data == "raise":
        raise ValueError("not a valid answer")
    if data == "slow":
        time.sleep(60)
    if data == "die":
        os._exit(3)
    if data == "nan":
        return {"combined_score": float("nan")}
    return {"combined_score": float(sum(data["values"])), "pid": os.getpid(), "n": len(data["values"])}

def evaluate_holdout(program_path):
    return {"combined_score": -1.0, "beside": 1}
'''


RUNNER = """
    import importlib.util
    def evaluate(path):
        spec = importlib.util.spec_from_file_location("c", path)
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        return m.run()
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def evaluate(pool: EvaluatorPool, source: str, *, kind: str = "train", cid: int = 1) -> EvalResult:
    pool.submit(EvalTask(candidate_id=cid, source=textwrap.dedent(source), seed=0, kind=kind))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        results = pool.collect(timeout=0.5)
        if results:
            return results[0]
    raise AssertionError("no result")


def returning(expr: str) -> str:
    return f"import numpy as np\ndef run():\n    return {expr}\n"


@pytest.fixture(scope="module")
def split_pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    with EvaluatorPool(write(root / "problem", "evaluate.py", SPLIT), 1, LIMITS, root / "s") as p:
        yield p


# ---------------------------------------------------------------- the codec


def test_codec_round_trip_of_plain_data():
    value = {"a": [1, 2.5, None, True, "x", (3, 4)], "arr": np.arange(6).reshape(2, 3),
             "f": np.float32(1.5), "nan": float("nan"), "c": np.array([1 + 2j]), "empty": np.zeros(0)}
    back = codec.decode(codec.encode(value, 10**6), 10**6)
    assert back["a"] == [1, 2.5, None, True, "x", [3, 4]] and back["f"] == 1.5
    assert back["arr"].dtype == np.int64 and back["arr"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["arr"].flags.writeable and np.isnan(back["nan"]) and back["empty"].shape == (0,)


class _Liar(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


@pytest.mark.parametrize("value, message", [
    (_Liar(1.0), "produced an object of type"),
    (np.array([object()]), "dtype object"),
    (np.zeros(3, dtype=[("a", "i4")]), "dtype"),
    ({1: 2}, "dict key"),
    ({"\x00nd": 0}, "dict key"),
    (set(), "produced an object of type builtins.set"),
    (np.zeros(10**6), "larger than"),
    ("x" * 10**6, "larger than"),
])
def test_codec_refuses_what_is_not_plain(value, message):
    with pytest.raises(codec.DataError, match=message):
        codec.encode(value, 10**5)


def test_codec_decoder_trusts_nothing():
    good = codec.encode({"v": np.arange(100)}, 10**6)
    rng = np.random.default_rng(0)
    for _ in range(3000):
        bad = bytearray(good)
        for i in rng.integers(0, len(bad), 3):
            bad[i] = int(rng.integers(0, 256))
        try:
            codec.decode(bytes(bad), 10**6)
        except codec.DataError:
            pass
    for bad in (b"", b"RSI1", b"pickle", good[:-10], good + b"x" * 10**6):
        with pytest.raises(codec.DataError):
            codec.decode(bad, 10**6)


# ---------------------------------------------------------------- mechanisms, in a forked child


def in_child(fn) -> str:
    """Run ``fn`` in a forked child; what it returns (a str) or the exception it raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = str(fn())
        except BaseException as exc:  # noqa: BLE001
            out = f"{type(exc).__name__}: {exc}"
        os.write(w, out.encode()[:4000])
        os._exit(0)
    os.close(w)
    data = b"".join(iter(lambda: os.read(r, 4096), b""))
    os.close(r)
    os.waitpid(pid, 0)
    return data.decode()


@pytest.mark.skipif(not seccomp.supported(), reason="no seccomp table for this architecture")
def test_seccomp_filter_denies_dangerous_calls_and_keeps_python_working():
    import socket
    import threading

    def body():
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)
        seccomp.install(seccomp.build(allow_inet=True), libc)
        out = [libc.unshare(0x10000000), libc.ptrace(16, os.getppid(), 0, 0), libc.mount(b"x", b"/", b"tmpfs", 0, None)]
        try:
            socket.socket(socket.AF_UNIX)
        except OSError as exc:
            out.append(exc.errno)
        socket.socket(socket.AF_INET).close()
        socket.socketpair()
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        out.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        return out

    assert in_child(body) == "[-1, -1, -1, 97, 7]"


@pytest.mark.skipif(not landlock.abi_version(), reason="no Landlock")
def test_landlock_rules_allow_reads_and_one_writable_folder(tmp_path):
    (tmp_path / "rw").mkdir()
    (tmp_path / "secret").write_text("s")

    def body():
        ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)
        rules = landlock.open_rule_paths([("/usr", landlock.READ), (sys.base_prefix, landlock.READ),
                                          (str(tmp_path / "rw"), isolation.TASK_RIGHTS)])
        landlock.restrict(rules, landlock.abi_version())
        (tmp_path / "rw" / "ok").write_text("fine")
        out = []
        for action in (lambda: (tmp_path / "secret").read_text(), lambda: (tmp_path / "x").write_text("x"),
                       lambda: os.listdir(tmp_path)):
            try:
                action()
                out.append("allowed")
            except PermissionError:
                out.append("denied")
        return out

    assert in_child(body) == "['denied', 'denied', 'denied']"
    assert (tmp_path / "rw" / "ok").read_text() == "fine"


@needs_full
def test_rsi_code_is_readable_but_not_the_meta_suite(tmp_path):
    import rsi

    engine = Path(rsi.__file__).parent
    problem = next(p for p in sorted((engine / "meta" / "suite").glob("*")) if (p / "evaluate.py").exists())
    evaluator = write(tmp_path / "p", "evaluate.py", RUNNER)
    with EvaluatorPool(evaluator, 1, LIMITS, tmp_path / "s") as pool:
        r = evaluate(pool, f"""
            import importlib
            def run():
                out = [len(open({str(engine / "proposers" / "bandit.py")!r}).read()) > 0]
                try:
                    open({str(problem / "evaluate.py")!r}).read()
                    out.append("read")
                except PermissionError:
                    out.append("denied")
                print(out)
                return {{"combined_score": 1}}
        """)
    assert r.stdout.strip() == "[True, 'denied']", (r.error, r.stdout)


def test_a_folder_can_be_granted_but_one_subfolder(tmp_path):
    for sub in ("a/b/c", "a/x", "y"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "a" / "f.py").write_text("")
    granted = isolation._all_but(str(tmp_path), str(tmp_path / "a" / "b"))
    assert sorted(Path(p).relative_to(tmp_path).as_posix() for p in granted) == ["a/f.py", "a/x", "y"]


def test_environment_allow_list_keeps_secrets_out():
    env = worker_environment({"PATH": "/bin", "LANG": "C", "LC_ALL": "C", "OMP_NUM_THREADS": "1",
                              "OPENAI_API_KEY": "k", "AWS_SECRET_ACCESS_KEY": "k", "GITHUB_TOKEN": "t",
                              "HF_TOKEN": "t", "DATABASE_URL": "u", "PYTHONPATH": "/src",
                              "LC_PASSWORD": "p", "NUMBA_AUTH_KEY": "k", "NPY_DISABLE_CPU_FEATURES": "AVX2"})
    assert env == {"PATH": "/bin", "LANG": "C", "LC_ALL": "C", "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": "/src", "NPY_DISABLE_CPU_FEATURES": "AVX2"}


# ---------------------------------------------------------------- the split contract


def test_split_scores_in_another_process(split_pool):
    # the plain evaluate_holdout beside it runs behind the guard (rsi.sandbox.guard), the default
    assert split_pool.score_mode == "split" and split_pool.modes == {"train": "split", "holdout": "guarded"}
    r = evaluate(split_pool, returning("{'values': np.arange(4)}"))
    assert (r.status, r.error) == ("ok", None)
    assert r.metrics["combined_score"] == 6.0 and r.metrics["n"] == 4
    worker_pids = {w.proc.pid for w in split_pool._workers}
    assert r.metrics["pid"] not in worker_pids  # the scorer, not the worker nor the child
    h = evaluate(split_pool, returning("None"), kind="holdout")  # evaluate_holdout, beside
    assert (h.status, h.metrics) == ("ok", {"combined_score": -1.0, "beside": 1.0})


@pytest.mark.parametrize("expr, status, message", [
    ("'raise'", "error", "score() rejected the candidate's data"),
    ("'nan'", "error", "score returned combined_score=nan"),
    ("object()", "error", "produced an object of type builtins.object"),
    ("{'values': [1] * 10**6}", "error", "larger than"),
    ("'slow'", "timeout", "score() took more than 2s"),
    ("'die'", "error", "the scorer died (exit code 3)"),
])
def test_split_failures_are_clear_and_the_scorer_recovers(split_pool, expr, status, message):
    r = evaluate(split_pool, returning(expr))
    assert r.status == status and message in r.error, r.error
    ok = evaluate(split_pool, returning("{'values': [2, 3]}"))
    assert (ok.status, ok.metrics.get("combined_score")) == ("ok", 5.0), ok.error


def test_split_produce_failure_keeps_the_traceback(split_pool):
    r = evaluate(split_pool, "def run():\n    raise KeyError('missing piece')\n")
    assert r.status == "error" and "KeyError: 'missing piece'" in r.error and "program.py" in r.error


def test_plain_evaluator_is_guarded_by_default_and_beside_without_the_guard(tmp_path):
    evaluator = write(tmp_path / "p", "evaluate.py", "def evaluate(path):\n    return {'combined_score': 1}\n")
    with EvaluatorPool(evaluator, 1, LIMITS, tmp_path / "s") as pool:
        assert pool.score_mode == "guarded" and not pool.has_holdout
        assert evaluate(pool, "x = 1\n").metrics == {"combined_score": 1.0}
    with EvaluatorPool(evaluator, 1, dataclasses.replace(LIMITS, guard=False), tmp_path / "s2") as pool:
        assert pool.score_mode == "beside"
        assert evaluate(pool, "x = 1\n").metrics == {"combined_score": 1.0}


def test_scorer_import_failure_is_a_problem_error(tmp_path):
    from rsi.errors import ProblemError

    evaluator = write(tmp_path / "p", "evaluate.py", """
        import os
        if os.environ.get("RSI_IN_SCORER", "1") and "rsi.sandbox.scorer" in __import__("sys").modules:
            raise RuntimeError("the scorer cannot load this")
        def produce(path):
            return 1
        def score(data):
            return {"combined_score": data}
    """)
    with pytest.raises(ProblemError, match="scorer"):
        EvaluatorPool(evaluator, 1, LIMITS, tmp_path / "s")


@pytest.mark.parametrize("example, holdout", [("binpack", (3.98, 5.37)), ("binpack_or", (5.37, 3.98))])
def test_binpack_examples_run_split_through_the_pool(tmp_path, example, holdout):
    folder = EXAMPLES / example
    spec = __import__("importlib").util.spec_from_file_location(f"ev_{example}", folder / "evaluate.py")
    module = __import__("importlib").util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = (folder / "initial.py").read_text()
    with EvaluatorPool(folder / "evaluate.py", 1, Limits(wall_seconds=30), tmp_path / "s") as pool:
        assert pool.score_mode == "split" and pool.modes["holdout"] == "split"
        train = evaluate(pool, source)
        held = evaluate(pool, source, kind="holdout")
        assert pool.verify_evaluator() is None
    assert train.status == "ok" and train.metrics == module.evaluate(str(folder / "initial.py"))
    assert train.metrics["behavior"] == 1.0  # Best Fit, as replayed by the trusted side
    assert held.status == "ok", held.error
    assert (round(held.metrics["weibull5k_excess_pct"], 2), round(held.metrics["or3_excess_pct"], 2)) \
        == (3.98, 5.37)  # FunSearch's Best Fit numbers
    assert round(-held.metrics["combined_score"], 2) == holdout[0]


def test_evaluate_fresh_uses_a_pool_of_its_own():
    source = (EXAMPLES / "binpack" / "initial.py").read_text()
    r = evaluate_fresh(EXAMPLES / "binpack" / "evaluate.py", source, kind="holdout")
    assert r.status == "ok" and round(r.metrics["weibull5k_excess_pct"], 2) == 3.98


def test_binpack_score_rejects_invalid_packings():
    spec = __import__("importlib").util.spec_from_file_location("ev_bp", EXAMPLES / "binpack" / "evaluate.py")
    module = __import__("importlib").util.module_from_spec(spec)
    spec.loader.exec_module(module)
    good = module.produce(str(EXAMPLES / "binpack" / "initial.py"))
    assert module.score(good)["behavior"] == 1.0
    overfull = [np.zeros_like(a) for a in good]  # every item in bin 0
    for bad, message in ((overfull, "overfills"), (good[:-1], "packings, one per instance"),
                         ([a.astype(float) for a in good], "one bin index"),
                         ([a[:-1] for a in good], "one bin index"), ("x", "packings, one per")):
        with pytest.raises(ValueError, match=message):
            module.score(bad)


# ---------------------------------------------------------------- levels and degraded modes


@needs_full
def test_pool_reaches_the_predicted_level_and_says_nothing(tmp_path, capfd):
    evaluator = write(tmp_path / "p", "evaluate.py", RUNNER)
    with EvaluatorPool(evaluator, 1, LIMITS, tmp_path / "s") as pool:
        assert pool.sandbox_level == "full"
        trees = cgroups.support()
        optional = {"process tree": trees.available, "pid namespace": os.geteuid() == 0}
        assert all(p["on"] for p in pool.sandbox["protections"] if p["name"] not in optional)
        assert all(p["on"] is optional[p["name"]] for p in pool.sandbox["protections"] if p["name"] in optional)
        worker = pool._workers[0].proc.pid
        r = evaluate(pool, "import os\ndef run():\n    print(os.getuid(), os.getcwd())\n"
                           "    return {'combined_score': 1}\n")
    assert capfd.readouterr().err == ("" if trees.available else tree_note(trees))
    uid, cwd = r.stdout.split()
    if os.geteuid() == 0:
        assert int(uid) == isolation.UID_BASE + worker  # a uid of its own, per worker
    assert not Path(cwd).exists()  # the task folder lived in the worker's own tmpfs


@needs_full
@pytest.mark.parametrize("off, lost, still_blocked", [
    ("landlock", "filesystem", "write"),  # read-only mounts still stop writes
    ("net", "network", "connect"),  # Landlock and seccomp still stop TCP
    ("seccomp", "syscalls", "connect"),
])
def test_degraded_modes_warn_and_keep_what_they_can(tmp_path, monkeypatch, capfd, off, lost, still_blocked):
    monkeypatch.setenv("RSI_SANDBOX_DISABLE", off)
    evaluator = write(tmp_path / "p", "evaluate.py", RUNNER)
    (tmp_path / "outside").mkdir(mode=0o777)
    os.chmod(tmp_path / "outside", 0o777)
    probe = {"write": f"open({str(tmp_path / 'outside' / 'x')!r}, 'w')",
             "connect": "__import__('socket').create_connection(('127.0.0.1', 9), timeout=1)"}[still_blocked]
    with EvaluatorPool(evaluator, 1, LIMITS, tmp_path / "s") as pool:
        assert pool.sandbox_level == "partial"
        assert [p["name"] for p in pool.sandbox["protections"] if not p["on"]] == [lost]
        r = evaluate(pool, f"def run():\n    {probe}\n    return {{'combined_score': 1}}\n")
    assert r.status == "error" and ("Error" in r.error), r.error
    err = capfd.readouterr().err
    assert "WARNING: candidates run with PARTIAL isolation" in err and f"- {lost}:" in err
    assert not (tmp_path / "outside" / "x").exists()


def test_isolation_none_is_loud(tmp_path, capfd):
    evaluator = write(tmp_path / "p", "evaluate.py", "def evaluate(path):\n    return {'combined_score': 1}\n")
    with EvaluatorPool(evaluator, 1, LIMITS, tmp_path / "s", isolation="none") as pool:
        assert pool.sandbox_level == "none"
        assert evaluate(pool, "x = 1\n").status == "ok"
    assert "WARNING: isolation='none'" in capfd.readouterr().err
    with pytest.raises(ValueError, match="isolation"):
        EvaluatorPool(evaluator, 1, LIMITS, tmp_path / "s2", isolation="some")


# ---------------------------------------------------------------- integrity and doctor


def test_evaluator_changes_are_detected(tmp_path):
    folder = tmp_path / "p"
    evaluator = write(folder, "evaluate.py", "def evaluate(path):\n    return {'combined_score': 1}\n")
    write(folder, "initial.py", "x = 1\n")
    expected = hash_evaluator_files(folder)
    with EvaluatorPool(evaluator, 1, LIMITS, tmp_path / "s") as pool:
        before = pool.evaluator_hash()
        assert pool.verify_evaluator() is None and integrity.verify_evaluator(folder, expected) is None
        (folder / "initial.py").write_text("x = 2\n")  # the program to improve is not the evaluator
        assert pool.verify_evaluator() is None and integrity.verify_evaluator(folder, expected) is None
        (folder / "data.json").write_text("[1]")
        assert "changed" in pool.verify_evaluator() and pool.evaluator_hash() != before
        assert "changed" in integrity.verify_evaluator(folder, expected)


def test_binpack_or_hash_covers_the_sibling_it_loads(tmp_path):
    with EvaluatorPool(EXAMPLES / "binpack_or" / "evaluate.py", 1, Limits(), tmp_path / "s") as pool:
        files = {p.relative_to(EXAMPLES).as_posix() for p in pool.evaluator_files()}
    assert {"binpack_or/evaluate.py", "binpack/binpacking.py", "binpack/evaluate.py"} <= files
    assert "binpack_or/initial.py" not in files


def test_doctor_reports_and_checks_each_protection():
    text = doctor_report()
    assert text.startswith("rsi doctor:") and "level: " in text
    assert "checked by a probe candidate" in text and "not protected" in text
    if FULL:
        assert "level: FULL" in text and "\n  !!" not in text
