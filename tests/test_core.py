"""The search core: the ask/tell protocol, ordered results, engine-owned budgets, plug-ins, the layout."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from conftest import TARGET_EVALUATE, write_problem

import rsi
from rsi.errors import RsiError, SearchError
from rsi.improvers import SEED_IMPROVER
from rsi.oversight.review import review
from rsi.proposers.base import Proposal
from rsi.registry import Registry
from rsi.sandbox.types import EvalResult

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_IMPROVERS = sorted((ROOT / "tests" / "hostile" / "improvers").glob("*.py"))

# an evaluator whose evaluation time varies from candidate to candidate (results arrive out of order)
JITTER_EVALUATE = TARGET_EVALUATE.replace("def evaluate(program_path):\n", '''def evaluate(program_path):
    import hashlib, time
    text = open(program_path).read()
    time.sleep(hashlib.sha256(text.encode()).digest()[0] / 255 * 0.04)
''')


def fingerprints(out: Path) -> list[tuple]:
    with rsi.open_run(out) as results:
        return [(c.id, c.parent_id, c.fingerprint, c.status, c.score) for c in results.candidates()]


# ----------------------------------------------------------------------------- the protocol

def test_ask_tell_by_hand_with_the_fork_executor(tmp_path):
    """The protocol as a user drives it, without rsi's driver: results told in reverse order."""
    problem = rsi.problem_from("def f(x):\n    return 1.0 * x\n",
                               lambda path: {"combined_score": -abs(_call(path, 3.0) - 7.5)},
                               settings={"run": {"budget": 12, "workers": 3, "executor": "fork"},
                                         "archive": {"features": ["code_size"]}})
    search = rsi.Search.create(problem, tmp_path / "r")
    executor = rsi.executors.create("fork", problem, search.settings, tmp_path / "scratch")
    seed = search.ask()
    assert seed is not None and seed.candidate_id == 1 and search.ask() is None  # nothing before the seed's result
    executor.submit(seed)
    [result] = executor.collect(0)
    assert search.tell(result)[0].status is rsi.Status.OK
    while not search.done:
        tasks = []
        while (task := search.ask()) is not None:
            tasks.append(task)
        assert len(tasks) <= 3  # never more than `parallel` children in flight
        results = []
        for task in tasks:
            executor.submit(task)
            results += executor.collect(0)
        for result in reversed(results):  # told out of order: applied in ticket order
            search.tell(result)
        if results:
            with pytest.raises(SearchError, match="exactly once"):
                search.tell(results[0])
    summary = search.finish()
    assert summary.evaluations == 12 and summary.stop_reason is rsi.StopReason.BUDGET
    with pytest.raises(SearchError, match="finished"):
        search.ask()


def _call(path: str, x: float) -> float:
    namespace: dict = {}
    exec(compile(open(path).read(), path, "exec"), namespace)
    return float(namespace["f"](x))


def test_a_result_for_a_task_never_asked_is_refused(target_problem, tmp_path):
    search = rsi.Search.create(target_problem, tmp_path / "r", rsi.Overrides(budget=3))
    search.ask()
    with pytest.raises(SearchError, match="ticket 99"):
        search.tell(EvalResult(candidate_id=1, kind="train", status="ok", ticket=99))


@pytest.mark.parametrize("workers", [2, 3])
def test_same_seed_same_run_at_several_workers_despite_out_of_order_results(tmp_path, workers):
    problem = write_problem(tmp_path / "p", evaluate=JITTER_EVALUATE)
    runs = []
    for name in ("a", "b"):
        rsi.improve(problem, tmp_path / name, budget=30, seed=5, workers=workers)
        runs.append(fingerprints(tmp_path / name))
    assert runs[0] == runs[1]
    assert sum(1 for c in runs[0] if c[3] == "ok") > 10


def test_step_children_makes_that_many_children_of_one_decision(target_problem, tmp_path):
    improver = tmp_path / "three.py"
    improver.write_text('''
from rsi.improvers import Step

def start(ctx):
    ctx.state["steps"] = 0

def next_step(ctx):
    ctx.state["steps"] += 1
    return Step(parent=ctx.archive.best().id, children=3)
''')
    rsi.improve(target_problem, tmp_path / "r", budget=10, improver=improver, workers=1)
    with rsi.open_run(tmp_path / "r") as results:
        children = [c for c in results.candidates() if c.id > 1]
        steps = results.store.load_state()["improver"]["steps"]
    assert len(children) >= 9 and steps <= (len(children) + 2) // 3 + 1
    # each decision's three children share their parent
    for i in range(0, len(children) - 2, 3):
        assert len({c.parent_id for c in children[i:i + 3]}) == 1


def test_improver_settings_it_does_not_declare_are_errors(tmp_path):
    problem = write_problem(tmp_path / "p", toml="[improver]\nexploit = 0.5\nexplot = 0.5\n")
    with pytest.raises(RsiError, match=r"\[improver\] explot: not a setting .* exploit"):
        rsi.Search.create(problem, tmp_path / "r")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_suite_meta_and_a_gate_that_is_off(tmp_path):
    problem = write_problem(tmp_path / "p", toml="[oversight]\npromote_every = false\n[meta]\nsplit = 'train'\n")
    with pytest.raises(rsi.ProblemError, match=r"\[meta\.kind\]"):
        rsi.load_problem(problem)
    (problem / "problem.toml").write_text("[oversight]\npromote_every = false\n")
    assert rsi.load_problem(problem).settings.oversight.promote_every is None
    summary = rsi.improve(problem, tmp_path / "r", budget=15)
    with rsi.open_run(tmp_path / "r") as results:
        assert not results.store.promotions() and summary.evaluations == 15


# ----------------------------------------------------------------------------- plug-ins

class Reverse:
    """A proposer from 'another package': swaps the two operands of the first '+' it finds."""

    name = "reverse"
    operators = ["swap"]

    def propose(self, request):
        parent = request.parent.source
        child = re.sub(r"(\d+\.\d+) \* x \+ (\d+\.\d+)", lambda m: f"{m[2]} + {m[1]} * x", parent, count=1)
        if child == parent:
            child = parent.replace("return y", f"return y + {request.rng.random():.3f}")
        return Proposal(child, "swap", "reverse the sum")


def test_a_registered_proposer_plugs_in_by_name(target_problem, tmp_path):
    rsi.proposers.register("reverse-test", Reverse, replace=True)
    improver = tmp_path / "mixed.py"
    improver.write_text('''
from rsi.improvers import Step

def next_step(ctx):
    proposer = "reverse-test" if ctx.rng.random() < 0.5 else "mutate"
    return Step(parent=ctx.archive.best().id, proposer=proposer)
''')
    (target_problem / "problem.toml").write_text('[run]\nproposers = ["mutate", "reverse-test"]\n')
    rsi.improve(target_problem, tmp_path / "r", budget=12, improver=improver)
    with rsi.open_run(tmp_path / "r") as results:
        used = {c.proposer for c in results.candidates()}
    assert {"reverse-test", "mutate"} <= used


def test_entry_points_register_proposers_and_unknown_names_are_named(tmp_path, monkeypatch):
    dist = tmp_path / "rsi_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rsi-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[rsi.proposers]\nreverse = test_core:Reverse\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("proposer", "rsi.proposers", {"mutate": "rsi.proposers.mutate:MutateProposer"})
    assert registry.names() == ["mutate", "reverse"]
    assert registry.create("reverse").name == "reverse"
    with pytest.raises(RsiError, match="no proposer named 'llm'; known: mutate, reverse"):
        registry.get("llm")
    problem = write_problem(tmp_path / "p", toml='[run]\nproposers = ["nope"]\n')
    with pytest.raises(RsiError, match="no proposer named 'nope'"):
        rsi.Search.create(problem, tmp_path / "r")


# ----------------------------------------------------------------------------- engine-owned budgets

def _header(path: Path, key: str) -> str:
    return re.search(rf"^# {key}: (.+)$", path.read_text(), re.M).group(1).strip()


@pytest.mark.parametrize("hostile", HOSTILE_IMPROVERS, ids=lambda p: p.stem)
def test_hostile_improvers_get_no_extra_evaluations_and_are_flagged(target_problem, tmp_path, hostile):
    flags = review(SEED_IMPROVER.read_text(), hostile.read_text())
    assert _header(hostile, "flag") in {f.code for f in flags}
    verdict = _header(hostile, "verdict")
    if verdict not in ("refused", "no-effect"):
        return  # the sandbox corpus: tests/test_improver_host.py
    run = rsi.Run.create(target_problem, tmp_path / "r", rsi.Overrides(budget=12, seed=1), hostile)
    summary = run.execute()
    if verdict == "refused":  # the run ends, with the reason; the engine goes on
        assert summary.stop_reason is rsi.StopReason.IMPROVER_FAILED and "read-only" in (summary.detail or "")
    else:
        assert summary.evaluations == 12
    with rsi.open_run(tmp_path / "r") as results:
        evaluated = results.candidates("ok", "error", "timeout")
        assert len(evaluated) <= 12
        assert results.verify_audit().ok


def test_the_improver_sees_a_snapshot_and_the_engine_counts(target_problem, tmp_path):
    improver = tmp_path / "watch.py"
    improver.write_text('''
from rsi.improvers import Step

def start(ctx):
    ctx.state["seen"] = []

def next_step(ctx):
    ctx.state["seen"].append([ctx.evaluations, ctx.budget, len(ctx.population)])
    return Step(parent=ctx.archive.best().id)
''')
    rsi.improve(target_problem, tmp_path / "r", budget=8, workers=1, improver=improver)
    with rsi.open_run(tmp_path / "r") as results:
        seen = results.store.load_state()["improver"]["seen"]
    assert [s[0] for s in seen] == sorted(s[0] for s in seen) and seen[0][0] == 1
    assert all(s[1] == 8 for s in seen)


# ----------------------------------------------------------------------------- the API and the layout

def test_the_readme_api_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    monkeypatch.chdir(ROOT)
    namespace = {"OUT": str(tmp_path / "api")}
    exec(compile(code.replace('"runs/api"', "OUT"), "README.md", "exec"), namespace)
    with rsi.open_run(tmp_path / "api") as results:
        assert results.best() is not None and results.verify_audit().ok


def test_help_shows_the_api():
    import pydoc

    text = pydoc.render_doc(rsi, renderer=pydoc.plaintext)
    for name in ("ask", "tell", "load_problem", "open_run", "improve"):
        assert name in text
    for name in rsi.__all__:
        assert getattr(rsi, name) is not None
        if name[0].isupper() or callable(getattr(rsi, name)):
            assert getattr(rsi, name).__doc__, name


def _import_graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    src = ROOT / "src"
    modules = {}
    for path in (src / "rsi").rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    edges: dict[str, set[str]] = {}
    private = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                       for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in typing_only or not isinstance(node, ast.ImportFrom):
                continue
            base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            target = (".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
                      if node.level else node.module or "")
            if not target.startswith("rsi"):
                continue
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    edges.setdefault(module, set()).add(f"{target}.{alias.name}")
                    continue
                edges.setdefault(module, set()).add(target)
                if alias.name.startswith("_") and not alias.name.startswith("__") and target != module:
                    private.append((module, target, alias.name))
    return edges, private


def test_no_import_cycle_and_no_private_name_across_modules():
    edges, private = _import_graph()
    assert private == []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for other in sorted(edges.get(module, ())):
            if state.get(other) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(other):] + [other]))
            if other not in state:
                visit(other, path + [other])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_no_private_function_of_another_module_is_called():
    src = ROOT / "src"
    for path in (src / "rsi").rglob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.level or (node.module or "").startswith("rsi")) for alias in node.names}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                raise AssertionError(f"{path.relative_to(src)}:{node.lineno} uses {node.value.id}.{node.attr}")


def test_engine_modules_install_no_signal_handler_and_never_exit():
    for path in (ROOT / "src" / "rsi").rglob("*.py"):
        rel = path.relative_to(ROOT / "src" / "rsi").as_posix()
        if rel in ("cli.py", "meta/cli.py", "interrupts.py") or rel.startswith("sandbox/") or "suite" in rel:
            continue  # the command line, and the sandbox's own worker processes
        text = path.read_text()
        assert "signal.signal(" not in text and "sys.exit(" not in text, rel


# ----------------------------------------------------------------------------- context in, artifacts out

CONTEXT_EVALUATE = '''
from rsi.sandbox.types import Evaluation


def evaluate(program_path, context):
    text = open(program_path).read()
    return Evaluation({"combined_score": float(len(text))}, {"echo": context, "lines": text.count("\\n")})
'''


def _one(executor, task):
    executor.submit(task)
    for _ in range(100):
        results = executor.collect(timeout=0.5)
        if results:
            return results[0]
    raise AssertionError("no result")


def test_a_task_context_reaches_the_evaluator_and_artifacts_come_back(tmp_path):
    from rsi.sandbox.fork import ForkExecutor
    from rsi.sandbox.pool import EvaluatorPool
    from rsi.sandbox.types import EvalTask, Limits

    evaluator = tmp_path / "evaluate.py"
    evaluator.write_text(CONTEXT_EVALUATE)
    namespace: dict = {}
    exec(CONTEXT_EVALUATE, namespace)
    task = EvalTask(7, "a = 1\nb = 2\n", seed=0, ticket=3, context={"problem": "p", "seed": [1, 2]})
    with EvaluatorPool(evaluator, 1, Limits(wall_seconds=10), tmp_path / "scratch") as pool:
        pooled = _one(pool, task)
        plain = _one(pool, EvalTask(8, "x = 1\n", seed=0, ticket=4))
    forked = _one(ForkExecutor(namespace["evaluate"], tmp_path / "fork"), task)
    for result in (pooled, forked):
        assert result.status == "ok" and result.ticket == 3, result.error
        assert result.data == {"echo": {"problem": "p", "seed": [1, 2]}, "lines": 2}
    assert plain.status == "error" and "context" in (plain.error or "")  # it needs one, none was given

    only_path = tmp_path / "plain" / "evaluate.py"
    only_path.parent.mkdir()
    only_path.write_text("def evaluate(program_path):\n    return {'combined_score': 1.0}\n")
    with EvaluatorPool(only_path, 1, Limits(wall_seconds=10), tmp_path / "scratch2") as pool:
        refused = _one(pool, task)
    assert refused.status == "error" and "f(program_path, context)" in refused.error


def test_unordered_runs_apply_results_as_they_arrive(tmp_path):
    problem = write_problem(tmp_path / "p", evaluate=JITTER_EVALUATE, toml="[run]\nordered = false\n")
    summary = rsi.improve(problem, tmp_path / "r", budget=20, seed=2, workers=2)
    assert summary.evaluations == 20 and summary.stop_reason is rsi.StopReason.BUDGET
    assert fingerprints(tmp_path / "r")[0][3] == "ok"


def test_registries_load_a_plug_in_once_from_several_threads():
    import threading

    registry = Registry("proposer", "rsi.proposers", {"mutate": "rsi.proposers.mutate:MutateProposer"})
    errors: list[str] = []

    def use() -> None:
        try:
            registry.get("mutate")
        except Exception as exc:  # noqa: BLE001 - the failure under test
            errors.append(repr(exc))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_proposer_that_cannot_be_built_leaves_no_run_folder(tmp_path):
    problem = write_problem(tmp_path / "p", toml='[run]\nproposers = ["mutate"]\n[proposer.mutate]\nno_such_key = 1\n')
    with pytest.raises(RsiError, match=r"\[proposer.mutate\]"):
        rsi.Search.create(problem, tmp_path / "r")
    assert not (tmp_path / "r" / "rsi.db").exists()
