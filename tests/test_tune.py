"""The tune proposer: a multi-evaluation move (CMA-ES over a program's constants) inside the budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_problem

import rsi
from rsi.errors import RsiError
from rsi.proposers.base import Program, ProposalRequest
from rsi.proposers.tune import TuneProposer

# f(x) should be 2.5 x^2 - x + 3: the program's form is right, only its constants are off
QUADRATIC = '''\
# EVOLVE-BLOCK-START
def f(x):
    return 1.0 * x * x + 0.5 * x + 1.0
# EVOLVE-BLOCK-END
'''

# an improver that spends every step on tuning the best program
TUNING_IMPROVER = '''\
from rsi.improvers import Step

def next_step(ctx):
    return Step(parent=ctx.archive.best().id, proposer="tune", operator="cma", children=6)
'''


def tuned_problem(tmp_path: Path, budget: int, workers: int = 1, proposers: str = '["mutate"]') -> Path:
    return write_problem(tmp_path / "quad", initial=QUADRATIC, toml=f"""\
        [run]
        budget = {budget}
        workers = {workers}
        executor = "fork"
        proposers = {proposers}
        [evaluator]
        timeout = 10
        [archive]
        features = ["code_size"]
        """)


def run(problem: Path, out: Path, improver: Path | None = None) -> list[tuple]:
    rsi.improve(problem, out=out, improver=improver)
    with rsi.open_run(out) as results:
        return [(c.id, c.proposer, c.operator, c.fingerprint, c.status, c.score) for c in results.candidates()]


def test_tuning_the_constants_alone_closes_most_of_the_gap(tmp_path):
    improver = tmp_path / "tuner.py"
    improver.write_text(TUNING_IMPROVER)
    rows = run(tuned_problem(tmp_path, budget=60), tmp_path / "r", improver)
    seed_score = rows[0][5]
    tuned = [r for r in rows[1:] if r[1] == "tune"]
    assert len(tuned) >= 50 and all(r[2] == "cma" for r in tuned)
    evaluated = [r for r in rows if r[4] == "ok"]
    assert len(evaluated) == 60  # the move spends the run's own evaluation budget, no more
    best = max(r[5] for r in evaluated)
    assert best > seed_score + 0.8 * abs(seed_score)  # the error shrinks by more than 80%
    with rsi.open_run(tmp_path / "r") as results:
        first = next(c for c in results.candidates() if c.proposer == "tune")
        assert first.rationale.startswith("tune 3 constants with CMA-ES (generation 1, point 1)")


@pytest.mark.parametrize("workers", [1, 3])
def test_a_seed_gives_the_same_tuning_run(tmp_path, workers):
    improver = tmp_path / "tuner.py"
    improver.write_text(TUNING_IMPROVER)
    problem = tuned_problem(tmp_path, budget=30, workers=workers)
    assert run(problem, tmp_path / "a", improver) == run(problem, tmp_path / "b", improver)


def test_the_seed_improver_offers_tune_only_when_the_run_lists_it(tmp_path):
    without = run(tuned_problem(tmp_path, budget=40), tmp_path / "a")
    assert not any(r[1] == "tune" for r in without)
    listed = run(tuned_problem(tmp_path / "b", budget=120, proposers='["mutate", "tune"]'), tmp_path / "r2")
    assert any(r[1] == "tune" for r in listed)


def test_a_program_without_float_constants_is_an_invalid_attempt_with_the_reason():
    proposer = TuneProposer()
    with pytest.raises(rsi.errors.ProposalFailed, match="no float constants.*integers = true"):
        proposer.propose(ProposalRequest(parent=Program(1, "def f(x):\n    return x + 1\n", 0.0)))
    child = TuneProposer(integers=True).propose(
        ProposalRequest(parent=Program(1, "def f(x):\n    return x + 10\n", 0.0), seed=3))
    assert "return x + " in child.source and child.source != "def f(x):\n    return x + 10\n"


# settings whose best values are whole numbers (COUNTS [5, 5, 5], SEED 3) beside a float (SCALE 2.0);
# the function's own literals (an index, a factor) are not settings
SETTINGS = '''\
# EVOLVE-BLOCK-START
COUNTS = [2, 9, 4]
SEED = 0
SCALE = 1.0


def f(x):
    return x[0] * 2
# EVOLVE-BLOCK-END
'''


def _settings_score(source: str) -> float:
    space: dict = {}
    exec(compile(source, "<child>", "exec"), space)
    counts, seed, scale = space["COUNTS"], space["SEED"], space["SCALE"]
    assert all(type(c) is int for c in counts) and type(seed) is int  # ints stay ints
    assert min(counts) >= 1 and seed >= 0  # and keep their sign
    assert space["f"]([1.5]) == 3.0  # scope = "settings": the function's literals are never tuned
    return -sum((c - 5) ** 2 for c in counts) - (seed - 3) ** 2 - (scale - 2.0) ** 2


def _tune_settings(proposer: TuneProposer, evaluations: int) -> tuple[float, str]:
    """Tune SETTINGS, always from the best so far (a new best starts a new session), as a search would."""
    best = (_settings_score(SETTINGS), SETTINGS)
    for n in range(evaluations):
        try:
            proposal = proposer.propose(ProposalRequest(parent=Program(1, best[1], best[0]), seed=n))
        except rsi.errors.ProposalFailed:
            continue
        score = _settings_score(proposal.source)
        proposer.observe(proposal.key, score)
        best = max(best, (score, proposal.source))
    return best


def test_integers_are_tuned_on_their_own_grid_and_only_the_settings_with_scope_settings():
    score, source = _tune_settings(TuneProposer(integers=True, scope="settings", population=8), 200)
    assert "COUNTS = [5, 5, 5]" in source and "SEED = 3" in source  # whole numbers, found exactly
    assert score > -0.01 and "return x[0] * 2" in source
    with pytest.raises(rsi.errors.ProposalFailed, match="no float constants in its module-level settings"):
        TuneProposer(scope="settings").propose(
            ProposalRequest(parent=Program(1, "N = 3\ndef f(x):\n    return x * 0.5\n", 0.0)))


def test_a_zero_int_moves_and_a_single_int_is_tuned():
    proposer = TuneProposer(integers=True)
    parent = ProposalRequest(parent=Program(1, "SEED = 0\n", 0.0), seed=1)
    seeds = set()
    for _ in range(12):
        try:
            proposal = proposer.propose(parent)
        except rsi.errors.ProposalFailed:  # a point on the parent's own value
            continue
        proposer.observe(proposal.key, 0.0)
        seeds.add(int(proposal.source.split("=")[1]))
    assert len(seeds) >= 2 and min(seeds) >= 1  # a 0 moves on a scale of 1 (sigma * 0 would never move)


def test_generations_are_told_once_their_points_are_known_and_extras_left_out():
    proposer = TuneProposer(population=4)
    parent = ProposalRequest(parent=Program(1, "def f(x):\n    return 0.5 * x + 2.0\n", -3.0), seed=5)
    keys = [proposer.propose(parent).key for _ in range(6)]  # 4 of generation 1, then 2 extras
    assert all(keys)
    for key in keys[4:]:
        proposer.observe(key, 100.0)  # extras: not part of the update
    for i, key in enumerate(keys[:3]):
        proposer.observe(key, -float(i))
    assert "generation 1" in proposer.propose(parent).rationale  # one point still unknown
    proposer.observe(keys[3], None)  # failed: counted as the generation's worst
    assert "generation 2" in proposer.propose(parent).rationale


@pytest.mark.parametrize("setting", ["population = -1", "sigma = 0", "digits = 1", "integers = 2", "sessions = 0",
                                     'scope = "functions"'])
def test_bad_tune_settings_name_the_key(tmp_path, setting):
    problem = tuned_problem(tmp_path, budget=10)
    with open(problem / "problem.toml", "a") as toml:
        toml.write(f"[proposer.tune]\n{setting}\n")
    with pytest.raises(RsiError, match=rf"\[proposer.tune\] {setting.split()[0]}"):
        rsi.Search.create(problem, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def composed_with(tmp_path: Path, tuning: str) -> Path:
    from rsi.improvers.components import COMPOSED_IMPROVER

    source = COMPOSED_IMPROVER.read_text().replace('"tuning": {"use": "none"}', tuning)
    assert source != COMPOSED_IMPROVER.read_text()
    path = tmp_path / "composed_tuning.py"
    path.write_text(source)
    return path


def test_the_cma_tuning_component_spends_moves_on_the_best_every_so_often(tmp_path):
    improver = composed_with(tmp_path, '"tuning": {"use": "cma", "every": 10, "children": 6, "target": "best"}')
    rows = run(tuned_problem(tmp_path, budget=50), tmp_path / "r", improver)
    tuned = [r for r in rows if r[1] == "tune"]
    assert 12 <= len(tuned) <= 30  # a move of 6 about every 10 evaluations
    with rsi.open_run(tmp_path / "r") as results:
        for cand in results.candidates():
            if cand.proposer == "tune":  # the move's parent was the best when the move was decided
                assert cand.parent_id is not None and results.get(cand.parent_id).score is not None
    assert any(r[1] == "mutate" for r in rows)


def test_a_program_with_nothing_to_tune_is_tried_once(tmp_path):
    improver = composed_with(tmp_path, '"tuning": {"use": "cma", "every": 5, "children": 2, "target": "best"}')
    problem = tuned_problem(tmp_path, budget=25)
    (problem / "initial.py").write_text("# EVOLVE-BLOCK-START\ndef f(x):\n    return x * x\n# EVOLVE-BLOCK-END\n")
    rows = run(problem, tmp_path / "r", improver)
    failed = [r for r in rows if r[1] == "tune" and r[4] == "invalid"]
    with rsi.open_run(tmp_path / "r") as results:
        parents = [c.parent_id for c in results.candidates() if c.proposer == "tune" and c.status == "invalid"]
    assert failed
    assert all(parents.count(p) <= 2 for p in parents)  # one move (2 children) per untunable program, never again


# ----------------------------------------------------------------------------- memory across problems

def test_a_memory_learned_from_runs_primes_the_seed_improvers_bandit(tmp_path):
    from rsi import memory

    first = run(tuned_problem(tmp_path / "a", budget=60), tmp_path / "r1")
    learned = memory.learn([tmp_path / "r1"])
    arms = learned["arms"]
    assert sum(c["tries"] for c in arms.values()) == len(first) - 1  # every child but the seed
    assert all(c["improved"] <= c["tries"] and c["new_best"] <= c["tries"] for c in arms.values())
    assert learned["problems"] == ["quad"]
    file = memory.save_memory(learned, tmp_path / "memory.json")
    assert "credit/try" in memory.describe(memory.load_memory(file))

    # a new run handed the memory: its improver sees it, read-only, and its bandit starts from it
    problem = tuned_problem(tmp_path / "b", budget=5)
    search = rsi.Search.create(problem, tmp_path / "r2", rsi.Overrides(memory=str(file)))
    try:
        bandit = search._improver_state["bandit"]
        primed = {a for a, t in bandit["tries"].items() if t == 20.0}
        assert primed and primed <= set(arms)
        assert search._context().memory["arms"].keys() == arms.keys()
        with pytest.raises(TypeError):
            search._context().memory["arms"]["mutate:x"] = {}  # type: ignore[index]
    finally:
        search.close()
    resumed = rsi.Search.resume(tmp_path / "r2")  # the recorded copy, not the file
    file.unlink()
    try:
        assert resumed._context().memory["arms"].keys() == arms.keys()
    finally:
        resumed.close()


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    ('{"version": 2, "arms": {}}', "not an rsi memory file"),
    ('{"version": 1, "arms": {"mutate:x": {"tries": 1, "improved": 5}}}', "improved and new_best at most tries"),
    ('{"version": 1, "arms": {"no-colon": {"tries": 1}}}', "is not 'proposer:operator'"),
])
def test_a_broken_memory_file_is_named_with_the_fix(tmp_path, content, message):
    file = tmp_path / "memory.json"
    file.write_text(content)
    with pytest.raises(RsiError, match=message):
        rsi.Search.create(tuned_problem(tmp_path, budget=5), tmp_path / "r", rsi.Overrides(memory=str(file)))
    assert not (tmp_path / "r").exists()
    from rsi.cli import main

    assert main(["run", str(tmp_path / "quad"), "--memory", str(tmp_path / "missing.json"),
                 "--out", str(tmp_path / "r3")]) == 2


def test_memory_commands_learn_from_runs_and_show(tmp_path, capsys):
    from rsi.cli import main

    run(tuned_problem(tmp_path, budget=20), tmp_path / "r1")
    assert main(["memory", "learn", str(tmp_path / "r1"), "--out", str(tmp_path / "m.json")]) == 0
    assert main(["memory", "show", str(tmp_path / "m.json")]) == 0
    shown = capsys.readouterr().out
    assert "memory of 1 searches on 1 problems" in shown and "mutate:" in shown
    assert main(["memory", "learn", "--out", str(tmp_path / "m2.json")]) == 2  # nothing to learn from
    assert "give run folders" in capsys.readouterr().err


@pytest.mark.slow
def test_a_memory_learned_from_the_suites_training_searches(tmp_path):
    from rsi.memory import load_memory
    from rsi.meta.memory import learn_from_suite

    with pytest.raises(RsiError, match="test problems only measure it"):
        learn_from_suite("test")
    learned = learn_from_suite("train", seeds=[1], budget=15)
    assert learned["searches"] == 14 and len(learned["problems"]) == 14
    assert sum(c["tries"] for c in learned["arms"].values()) >= 14 * 14  # every search's children, counted
    assert any(c["improved"] for c in learned["arms"].values())
    from rsi.memory import save_memory

    assert load_memory(save_memory(learned, tmp_path / "m.json"))["arms"].keys() == learned["arms"].keys()
    # the command line learns from the seeds it is given: --first-seed 2 is seed 2's searches, not seed 1's
    from rsi.cli import main

    assert main(["memory", "learn", "--suite", "train", "--seeds", "1", "--first-seed", "2", "--budget", "15",
                 "--out", str(tmp_path / "m2.json")]) == 0
    from_cli = load_memory(tmp_path / "m2.json")
    assert from_cli["arms"] == load_memory(save_memory(learn_from_suite("train", seeds=[2], budget=15),
                                                       tmp_path / "direct2.json"))["arms"]
    assert from_cli["arms"] != load_memory(tmp_path / "m.json")["arms"]
