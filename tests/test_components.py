"""The component library of search strategies, the composed improver and the grammar proposer."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

import rsi
from rsi.archive import Archive
from rsi.errors import ProposalFailed, RsiError
from rsi.improvers import SEED_IMPROVER, Outcome, Step, load_improver, snapshot
from rsi.improvers import components as lib
from rsi.improvers.components import COMPOSED_IMPROVER, SEED_SPEC, SpecError, build, normalise, render
from rsi.meta.cli import starting_improver
from rsi.meta.config import SelfImproveConfig, improver_problem, proposers_for
from rsi.meta.grammar import GrammarProposer, read_spec
from rsi.proposers.base import Program, ProposalRequest
from rsi.sandbox.types import EvalResult

COMPOSED = COMPOSED_IMPROVER.read_text()
OPERATORS = {"mutate": ["perturb_constant", "swap_binop"], "grammar": ["switch"]}


# ----------------------------------------------------------------------------- a small archive

def small_archive() -> Archive:
    """Two islands; island 0 has elites 2 (0.1), 3 (0.5), 4 (0.9) in three cells, island 1 has 5 (0.3)."""
    archive = Archive(["code_size"], bins=4, islands=2)
    for cid, island, score, size in ((2, 0, 0.1, 10.0), (3, 0, 0.5, 20.0), (4, 0, 0.9, 30.0), (5, 1, 0.3, 40.0)):
        archive.add(cid, island, score, (size,), size)
    return archive


POPULATION = [(1, 0.0), (2, 0.1), (3, 0.5), (4, 0.9), (5, 0.3), (6, 0.2)]


def context(state: dict | None = None, seed: int = 0, archive: Archive | None = None):
    return snapshot(archive or small_archive(), random.Random(seed), {} if state is None else state, OPERATORS, {},
                    100, 10, POPULATION)


def policy_of(**roles) -> lib.Policy:
    return build({role: {"use": use, **params} for role, (use, params) in roles.items()})


def parents(policy: lib.Policy, n: int = 400, seed: int = 0) -> Counter:
    state: dict = {}
    policy.start(context(state, seed))
    ctx = context(state, seed)
    return Counter(policy.next_step(ctx).parent for _ in range(n))


def outcome(cid: int, score: float | None, parent_score: float | None, best: float | None, status="ok") -> Outcome:
    return Outcome(cid, status, score, parent_score, best)


# ----------------------------------------------------------------------------- each component

def test_parent_rules_on_a_small_archive():
    single = ("single", {})
    # tournament: k = 16 almost always finds the best of the pool, k = 1 is uniform
    strong = parents(policy_of(islands=single, parent=("tournament", {"k": 16})))
    weak = parents(policy_of(islands=single, parent=("tournament", {"k": 1})))
    assert strong[4] > 0.85 * sum(strong.values()) and set(weak) == {2, 3, 4, 5} and weak[4] < 0.4 * 400
    # best: of the island in turn (round robin: island 0 then 1), or global
    assert parents(policy_of(parent=("best", {"scope": "island"}))) == Counter({4: 200, 5: 200})
    assert parents(policy_of(parent=("best", {"scope": "global"}))) == Counter({4: 400})
    # fitness-proportional: a cold temperature is greedy, a hot one close to uniform
    cold = parents(policy_of(islands=single, parent=("fitness_proportional", {"temperature": 0.01})))
    hot = parents(policy_of(islands=single, parent=("fitness_proportional", {"temperature": 100.0})))
    assert cold[4] == 400 and set(hot) == {2, 3, 4, 5} and min(hot.values()) > 60
    # uniform over the archive, or over every program so far
    assert set(parents(policy_of(parent=("uniform", {"pool": "archive"})))) == {2, 3, 4, 5}
    assert set(parents(policy_of(parent=("uniform", {"pool": "population"})))) == {1, 2, 3, 4, 5, 6}
    # the seed's mixture: global_best = 1 always takes the best
    assert parents(policy_of(parent=("seed_mix", {"global_best": 1.0}))) == Counter({4: 400})


def test_novelty_visits_every_cell_before_any_twice():
    policy = policy_of(islands=("single", {}), parent=("novelty", {}))
    state: dict = {}
    policy.start(context(state))
    chosen = [policy.next_step(context(state, seed=i)).parent for i in range(8)]
    assert sorted(chosen[:4]) == [2, 3, 4, 5] and sorted(chosen[4:]) == [2, 3, 4, 5]
    assert sorted(state["visits"].values()) == [2, 2, 2, 2]


def test_annealing_accepts_worse_children_hot_and_not_cold():
    for t0, accepted in ((1.0, True), (1e-4, False)):
        policy = policy_of(acceptance=("annealing", {"t0": t0, "chain_share": 1.0}))
        state: dict = {}
        policy.start(context(state))
        step = policy.next_step(context(state))
        assert step.parent == 4 and state["chain"]["current"] == 4  # the chain starts at the best
        worse = 0.9 * 0.999  # a 0.1% loss
        policy.observe(context(state), step, outcome(7, worse, 0.9, 0.9))
        assert (state["chain"]["current"] == 7) is accepted
        assert state["chain"]["t"] == pytest.approx(t0 * 0.99)
        better = Step(parent=state["chain"]["current"])
        policy.observe(context(state), better, outcome(8, 0.95, worse, 0.9))  # a better child is always taken
        assert state["chain"]["current"] == 8 and policy.next_step(context(state)).parent == 8


def test_a_restart_after_stagnation_climbs_from_its_target():
    policy = policy_of(restart=("stagnation", {"patience": 5, "target": "seed", "hold": 3}))
    state: dict = {}
    policy.start(context(state))
    for i in range(5):
        assert policy.next_step(context(state)).parent != 1 or i == 0
        policy.observe(context(state), Step(parent=4), outcome(10 + i, 0.2, 0.9, 0.9))
    assert state["restart"]["count"] == 1 and state["restart"]["lineage"] == [[1, 0.0]]
    assert policy.next_step(context(state)).parent == 1
    policy.observe(context(state), Step(parent=1), outcome(20, 0.05, 0.0, 0.9))  # the lineage's best now
    assert [policy.next_step(context(state)).parent for _ in range(2)] == [20, 20]
    assert policy.restart.parent(context(state)) is None  # hold spent: back to the parent rule


def test_inspirations_islands_children():
    state: dict = {}
    seedlike = build(SEED_SPEC)
    seedlike.start(context(state))
    step = seedlike.next_step(context(state))  # island 0: two other elites of island 0, plus the best
    assert step.island == 0 and len(set(step.inspirations)) == len(step.inspirations)
    assert 4 in step.inspirations or step.parent == 4
    assert set(step.inspirations) - {4} <= {2, 3}
    assert seedlike.next_step(context(state)).island == 1  # islands take turns
    top = policy_of(inspirations=("top", {"count": 3}), parent=("best", {"scope": "global"}))
    top.start(context(state := {}))
    assert top.next_step(context(state)).inspirations == [3, 5, 6]
    none = policy_of(inspirations=("none", {}), islands=("single", {}))
    none.start(context(state := {}))
    assert {none.next_step(context(state)).island for _ in range(5)} == {0}
    assert none.next_step(context(state)).inspirations == []
    burst = policy_of(children=("burst", {"count": 1, "burst": 5, "patience": 5}))
    burst.start(context(state := {}))
    assert burst.next_step(context(state)).children == 1
    for i in range(6):
        burst.observe(context(state), Step(parent=4), outcome(10 + i, 0.2, 0.9, 0.9))
    assert burst.next_step(context(state)).children == 5


def test_operator_rules():
    arms = {"grammar:switch", "mutate:perturb_constant", "mutate:swap_binop"}

    def arms_of(policy, n=300, credit_to=None):
        state: dict = {}
        policy.start(context(state))
        seen = Counter()
        for i in range(n):
            step = policy.next_step(context(state, seed=i))
            arm = f"{step.proposer}:{step.operator}"
            seen[arm] += 1
            better = arm == credit_to
            policy.observe(context(state), step, outcome(10 + i, 0.95 if better else 0.1, 0.5, 0.99))
        return seen

    assert set(arms_of(policy_of(operator=("uniform", {})))) == arms
    fixed = arms_of(policy_of(operator=("fixed", {"weights": {"mutate": 0.0, "grammar:switch": 2.0}})))
    assert set(fixed) == {"grammar:switch"}
    learnt = arms_of(policy_of(operator=("bandit", {"floor": 0.1, "decay": 0.99})), credit_to="mutate:swap_binop")
    assert learnt.most_common(1)[0][0] == "mutate:swap_binop" and learnt["mutate:swap_binop"] > 150


def test_parameters_move_and_sample_within_their_bounds():
    rng = random.Random(1)
    for role, classes in lib.ROLES.items():
        for cls in classes:
            for param in cls.params:
                value = param.default
                for _ in range(50):
                    moved = param.move(value, rng, ("mutate", "llm"))
                    where = f"{role}.{cls.name}.{param.name}"
                    assert param.check(moved, where) == moved
                    assert param.check(param.sample(rng, ("mutate",)), where) is not None
                    value = moved
    scale = lib.Bandit.params[4]  # tokens_per_evaluation: a scale, moved by factors
    assert scale.log and all(scale.lo <= scale.move(40.0, rng) <= scale.hi for _ in range(100))


# ----------------------------------------------------------------------------- refusing bad specs

@pytest.mark.parametrize(("spec", "message"), [
    ({"parent": {"use": "tournament", "k": 99}}, r"SPEC\['parent'\]\['k'\] of tournament: 99 is out of range"),
    ({"parent": {"use": "tournament", "k": 2.5}}, r"must be an int from 1 to 16"),
    ({"parent": {"use": "roulette"}}, r"unknown component 'roulette'; the parent components are seed_mix, "),
    ({"strategy": {"use": "x"}}, r"unknown role 'strategy'; the roles are islands, parent"),
    ({"operator": {"use": "bandit", "temperature": 1.0}}, r"bandit has no parameter 'temperature'"),
    ({"operator": {"use": "bandit", "floor": float("nan")}}, r"must be a number from 0 to 1"),
    ({"restart": {"use": "stagnation", "target": "moon"}}, r"must be one of 'seed', 'random_elite', 'best'"),
    ({"inspirations": {"use": "top", "count": True}}, r"must be an int"),
    ({"operator": {"use": "fixed", "weights": {"mutate": -1}}}, r"\['mutate'\]: -1 is out of range"),
    ({"children": "fixed"}, r"must be a dict with 'use'"),
    ([("parent", "best")], r"SPEC must be a dict"),
])
def test_a_hostile_spec_is_refused_with_a_clear_error(spec, message):
    with pytest.raises(SpecError, match=message):
        build(spec)


def test_a_composed_improver_with_a_bad_spec_does_not_load(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(COMPOSED.replace('"k": 3,', '"k": 300,'))
    with pytest.raises(RsiError, match=r"failed to import: SpecError: .*'k'.* 300 is out of range"):
        load_improver(bad)


def test_the_composed_improver_is_the_seed_spec_rendered():
    spec, _ = read_spec(COMPOSED)
    assert spec == SEED_SPEC and render(SEED_SPEC) in COMPOSED
    assert normalise({}) == SEED_SPEC  # every role and parameter has its default


# ----------------------------------------------------------------------------- real searches

INITIAL = "# EVOLVE-BLOCK-START\ndef f(x):\n    y = 1.0 * x + 0.5\n    return y\n# EVOLVE-BLOCK-END\n"


def score(source: str) -> float:
    namespace: dict = {}
    exec(compile(source, "<candidate>", "exec"), namespace)  # test programs: straight-line arithmetic
    return -sum(abs(namespace["f"](x) - (2.5 * x * x - x + 3.0)) for x in (-1.0, 0.5, 2.0))


def search(improver, out: Path, budget: int = 20, seed: int = 0) -> list[tuple]:
    """A real search (engine, store, archive, mutate), evaluated in-process; its candidates."""
    problem = rsi.problem_from(INITIAL, lambda path: {}, settings={
        "run": {"budget": budget, "workers": 1, "seed": seed},
        "archive": {"features": ["code_size"], "islands": 2, "migration_interval": 5}})
    run = rsi.Search.create(problem, out, improver=improver)
    try:
        while not run.done:
            task = run.ask()
            if task is None:  # the budget is spent: nothing is in flight, so the search is done
                assert run.done, run.stop_reason
                break
            try:
                result = EvalResult(task.candidate_id, task.kind, "ok", {"combined_score": score(task.source)},
                                    ticket=task.ticket)
            except Exception as exc:  # a child that raises: an error, as a worker would report it
                result = EvalResult(task.candidate_id, task.kind, "error", error=repr(exc), ticket=task.ticket)
            run.tell(result)
        summary = run.finish()
        assert summary.evaluations == budget
        return [(c.id, c.parent_id, c.fingerprint, c.status, c.score) for c in run.store.candidates()]
    finally:
        run.close()


def test_the_composed_improver_makes_the_seed_improvers_candidates(tmp_path):
    for seed in (0, 1):
        assert (search(COMPOSED_IMPROVER, tmp_path / f"c{seed}", 40, seed)
                == search(SEED_IMPROVER, tmp_path / f"s{seed}", 40, seed))


def test_the_composed_improver_drives_rsi_improve(tmp_path):
    """Through the public API, with a spec far from the seed's."""
    spec = {"islands": {"use": "single"}, "parent": {"use": "novelty"}, "acceptance": {"use": "annealing"},
            "restart": {"use": "stagnation", "patience": 5, "hold": 3}, "inspirations": {"use": "top", "count": 1},
            "operator": {"use": "uniform"}, "children": {"use": "burst", "patience": 5}}
    improver = tmp_path / "improver.py"
    improver.write_text(COMPOSED.replace(render(SEED_SPEC), render(normalise(spec))))
    target = rsi.problem_from(INITIAL, lambda path: {"combined_score": score(Path(path).read_text())},
                              settings={"run": {"budget": 25, "workers": 1, "executor": "fork"},
                                        "archive": {"features": ["code_size"]}})
    summary = rsi.improve(target, tmp_path / "run", improver=improver)
    assert summary.evaluations == 25 and summary.best is not None
    assert summary.best.score is not None and summary.best.score >= summary.seed.score
    with rsi.open_run(tmp_path / "run") as results:
        assert len(results.candidates()) > 25


# ----------------------------------------------------------------------------- the grammar

def request(source: str, rng: random.Random, operator: str | None = None, inspirations=()) -> ProposalRequest:
    return ProposalRequest(parent=Program(1, source), inspirations=tuple(Program(i + 2, s) for i, s in
                                                                          enumerate(inspirations)),
                           operator=operator, rng=rng)


def test_every_grammar_operator_makes_a_valid_changed_child():
    grammar = GrammarProposer()
    rng = random.Random(0)
    inspiration = COMPOSED.replace('"use": "round_robin"', '"use": "single"')
    for operator in grammar.operators:
        proposal = grammar.propose(request(COMPOSED, rng, operator, [inspiration]))
        spec, _ = read_spec(proposal.source)
        assert proposal.operator == operator and spec != SEED_SPEC and proposal.rationale.startswith("grammar")
        build(spec)
    child = grammar.propose(request(COMPOSED, rng, "toggle_restart")).source
    assert read_spec(child)[0]["restart"] == lib.entry(lib.StagnationRestart)


@pytest.mark.slow
def test_two_hundred_random_grammar_children_load_and_run(tmp_path):
    """Random walks of grammar edits from the composed improver (the previous child an
    inspiration): every child builds its policy and drives 20 steps of a real search without an
    error (about 90 s on 2 busy cores)."""
    grammar = GrammarProposer()
    rng = random.Random(7)
    parent = previous = COMPOSED
    used = Counter()
    for i in range(200):
        proposal = grammar.propose(request(parent, rng, inspirations=[previous]))
        previous = proposal.source
        used[proposal.operator] += 1
        path = tmp_path / f"child{i}.py"
        path.write_text(proposal.source)
        candidates = search(load_improver(path), tmp_path / f"run{i}", budget=20, seed=i)
        assert len([c for c in candidates if c[3] in ("ok", "error")]) == 20
        parent = proposal.source if rng.random() < 0.7 else COMPOSED
    assert set(used) == set(grammar.operators)


def test_the_grammar_gives_no_child_of_a_non_composed_improver():
    with pytest.raises(ProposalFailed, match="not a composed improver"):
        GrammarProposer().propose(request(SEED_IMPROVER.read_text(), random.Random(0)))
    with pytest.raises(ProposalFailed, match="not a literal"):
        GrammarProposer().propose(request(COMPOSED.replace('"k": 3,', '"k": int("3"),'), random.Random(0)))
    assert rsi.proposers.create("grammar").name == "grammar"


def test_self_improvement_uses_the_grammar_for_a_composed_start(tmp_path):
    assert proposers_for(COMPOSED) == ["grammar"]  # the grammar alone: every candidate improver valid
    assert proposers_for(SEED_IMPROVER.read_text()) == ["mutate"]
    problem = improver_problem(tmp_path / "a", COMPOSED, SelfImproveConfig())
    assert problem.settings.run.proposers == ["grammar"] and problem.initial_source == COMPOSED
    chosen = improver_problem(tmp_path / "b", COMPOSED, SelfImproveConfig(proposers=["grammar"]))
    assert chosen.settings.run.proposers == ["grammar"]
    assert starting_improver(None, "composed") == COMPOSED_IMPROVER
    assert starting_improver("x.py", None) == "x.py" and starting_improver(None, None) is None
    with pytest.raises(RsiError, match="pass one of them"):
        starting_improver("x.py", "composed")


def test_the_starting_improver_drives_the_outer_run_until_an_adoption(tmp_path):
    from rsi.meta.selfimprove import SelfImproveRun

    run = SelfImproveRun.start(tmp_path / "si", SelfImproveConfig(), COMPOSED_IMPROVER)
    try:
        assert run.search.improver.path == COMPOSED_IMPROVER  # not rsi's seed improver
        assert run.improver.module.POLICY.spec["tuning"]["use"] == "none"
    finally:
        run.search.close()
    reopened = SelfImproveRun.reopen(tmp_path / "si")
    try:
        assert reopened.search.improver.source == COMPOSED_IMPROVER.read_text()
    finally:
        reopened.search.close()
