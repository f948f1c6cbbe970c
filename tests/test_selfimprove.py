"""Self-improvement: the gate adopts a better improver and nothing else; the measurement is honest.

The end-to-end checks drive the real loop (outer run, meta-evaluator pools, sandboxed inner
searches, trusted re-scoring, gate, review, audit) on a few fast suite problems with tiny budgets.
The outer run's proposer is replaced by one that proposes chosen improvers, so that each check
knows what it is offering the gate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rsi.meta.config as si_config
import rsi.meta.selfimprove as selfimprove
from rsi.errors import ProposalFailed, RsiError
from rsi.improvers import SEED_IMPROVER, load_improver
from rsi.meta import report
from rsi.meta.cli import approve, pending
from rsi.meta.metautil import MetaEvaluator, MetaResult, UnitLimits, UnitResult
from rsi.meta.protocol import parse_result
from rsi.meta.selfimprove import BEST_FILE, SelfImproveConfig, SelfImproveRun, with_block
from rsi.meta.suite import SUITE_DIR, load_suite
from rsi.oversight import audit
from rsi.program import BLOCK_END, BLOCK_START, edit_violation
from rsi.proposers.base import Proposal
from rsi.proposers.mutate import MutateProposer
from rsi.storage import Store

TRAIN = ["regress_damped", "regress_sinpoly"]
VALIDATION = ["cache_loop", "minimise_logistic", "regress_rational"]
TEST = ["regress_bump"]

WEAK = '''\
"""A deliberately weak improver: always the seed program as parent, always one blind operator."""
from rsi.improvers import Step


def next_step(ctx):
    return Step(parent=ctx.population[0][0], proposer="mutate", operator="delete_stmt")
'''

SEED = SEED_IMPROVER.read_text()

CRASHING = SEED.replace("def next_step(ctx: ImproverContext) -> Step:\n",
                        "def next_step(ctx: ImproverContext) -> Step:\n"
                        "    raise ZeroDivisionError('broken on purpose')\n")
HANGING = SEED.replace("def next_step(ctx: ImproverContext) -> Step:\n",
                       "def next_step(ctx: ImproverContext) -> Step:\n    while True:\n        pass\n")

# Reports a fake score: it rewrites what its searches return, claiming an absurd score for the
# *initial* program (whose true gain is 0).
FAKING = SEED + '''

import sys as _sys

_produce = _sys.modules.get("rsi_evaluator")
if _produce is not None and hasattr(_produce, "inner"):
    _real_search = _produce.inner.search

    def _fake_search(problem, *args, **kwargs):
        found = _real_search(problem, *args, **kwargs)
        found.best_source, found.best_score = problem.initial_source, 1e9
        return found

    _produce.inner.search = _fake_search
'''


def _block(source: str) -> str:
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(BLOCK_START))
    end = next(i for i, line in enumerate(lines) if line.strip().startswith(BLOCK_END))
    return "\n".join(lines[start + 1:end])


def rigged() -> str:
    """The seed improver, plus a cheat on the training problems: it recognises each one by its
    initial program and proposes the problem's reference solution. Elsewhere it is the seed."""
    cheats = {}
    for name in TRAIN:
        folder = SUITE_DIR / name
        cheats[_block((folder / "initial.py").read_text()).strip()] = _block((folder / "reference.py").read_text())
    return SEED + f'''

import rsi.proposers.mutate as _mutate
from rsi.proposers.base import Proposal as _Proposal

_CHEATS = {cheats!r}
_original = _mutate.MutateProposer.edit


def _cheat(self, parent, inspirations, operator, rng):
    lines = parent.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "{BLOCK_START}")
    end = next(i for i, line in enumerate(lines) if line.strip() == "{BLOCK_END}")
    block = "\\n".join(lines[start + 1:end]).strip()
    if block in _CHEATS:
        child = "\\n".join(lines[:start + 1] + [_CHEATS[block]] + lines[end:]) + "\\n"
        return _Proposal(child, "perturb_constant", "I know this training problem")
    return _original(self, parent, inspirations, operator, rng)


_mutate.MutateProposer.edit = _cheat
'''


def lucky() -> str:
    """The rigged improver, but it cheats only in searches seeded 1 (the training seed of the
    tests' config): ahead on the training measurement, the seed improver everywhere else."""
    return rigged().replace("    if block in _CHEATS:", "    if _LUCKY[0] and block in _CHEATS:") + '''
_LUCKY = [False]
_seed_start = start
def start(ctx):
    import random as _random
    _LUCKY[0] = ctx.rng.getstate() == _random.Random(1).getstate()
    _seed_start(ctx)
'''


class Offer:
    """The outer run's proposer, replaced: it offers the given improvers, in order, as children of
    whatever parent the driving improver picks (spliced into its EVOLVE-BLOCK)."""

    name = "mutate"

    def __init__(self, *sources: str):
        self.sources = list(sources)
        self.operators = MutateProposer().operators  # whichever operator the driving improver names

    def propose(self, request) -> Proposal:
        parent = request.parent.source
        if not self.sources:
            raise ProposalFailed("nothing more to offer")
        body = self.sources.pop(0).replace("from __future__ import annotations\n", "")
        lines = parent.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip() == BLOCK_START)
        end = next(i for i, line in enumerate(lines) if line.strip() == BLOCK_END)
        child = "\n".join(lines[:start + 1] + body.splitlines() + lines[end:]) + "\n"
        assert edit_violation(parent, child) is None
        return Proposal(child, "offer", "an improver chosen by the test")


def config(**changes) -> SelfImproveConfig:
    values = dict(generations=1, budget=20, seeds=1, validation_seeds=3, test_seeds=1, meta_budget=1, workers=2,
                  parallel=1, problems=TRAIN + VALIDATION + TEST, report_test=False,
                  limits=UnitLimits(cpu_base=4.0, cpu_per_eval=0.05, wall_base=20.0, wall_per_eval=0.5))
    values.update(changes)
    return SelfImproveConfig(**values)


def start(tmp_path: Path, starting: str, offers: list[str], **changes) -> SelfImproveRun:
    improver = tmp_path / "starting_improver.py"
    improver.write_text(starting)
    run = SelfImproveRun.start(tmp_path / "si", config(**changes), improver)
    run.proposers = {"mutate": Offer(*offers)}
    run.log = lambda line: None
    return run


def events(out: Path, kind: str) -> list[dict]:
    return [e.payload for e in audit.events(Store.open(out).conn, [kind])]


# ----------------------------------------------------------------------------- fast checks


def test_with_block_marks_everything_after_the_imports():
    marked = with_block(SEED)
    before, _, rest = marked.partition(BLOCK_START)
    assert "import" in before and "DEFAULTS" not in before
    assert "DEFAULTS" in rest and rest.rstrip().endswith(BLOCK_END)
    assert with_block(marked) == marked
    compile(marked, "improver", "exec")


def test_search_results_are_checked_before_anything_is_believed():
    data = {"problem": "p", "seed": 3, "source": "y = 2\n", "claimed": 1.5, "evaluations": 5, "stop": "budget"}
    assert parse_result(data, "p", 3) == {"source": "y = 2\n", "claimed": 1.5, "evaluations": 5, "operators": {}}
    counts = {"mutate:swap": {"tries": 4, "improved": 1, "new_best": 1}}
    assert parse_result({**data, "operators": counts}, "p", 3)["operators"] == counts
    forged = {"mutate:swap": {"tries": 1, "improved": 9}}  # more improvements than tries: dropped, not believed
    assert parse_result({**data, "operators": forged}, "p", 3)["operators"] == {}
    assert isinstance(parse_result(data, "q", 3), str)  # a result for another unit
    assert isinstance(parse_result(None, "p", 3), str)  # no artifacts at all
    assert isinstance(parse_result({**data, "source": 7}, "p", 3), str)
    assert parse_result({**data, "claimed": float("nan")}, "p", 3)["claimed"] is None
    assert parse_result({**data, "evaluations": -4}, "p", 3)["evaluations"] == 0


def test_the_run_spends_its_level_over_any_number_of_tests():
    levels = [selfimprove.test_level(0.05, k) for k in range(1, 10001)]
    assert levels[:3] == pytest.approx([0.025, 0.05 / 6, 0.05 / 12])
    assert all(a > b for a, b in zip(levels, levels[1:], strict=False))
    assert sum(levels) < 0.05 and sum(levels) > 0.0499  # the union bound: never above the run's level
    with pytest.raises(RsiError):
        selfimprove.test_level(0.05, 0)


def test_a_candidate_that_repeats_its_parents_searches_is_not_measured_further(tmp_path):
    problems = [p for p in load_suite("train") if p.name in TRAIN]
    neutral = SEED.replace('"stagnation": 150,', '"stagnation": 151,')  # never reached in 20 evaluations
    assert neutral != SEED
    with MetaEvaluator(problems, budget=20, workers=2, scratch=tmp_path / "s") as meta:
        units = meta.units("train", [1, 2, 3])
        parent = meta.measure({"parent": SEED}, units)["parent"]
        for key, source in (("neutral", neutral), ("weak", WEAK)):
            meta.submit(key, source, units, reference=parent, neutral_after=2)
        found = {}
        while len(found) < 2:
            found.update({r.key: r for r in meta.collect(1.0)})
    same, weak = found["neutral"], found["weak"]
    assert same.ok and same.neutral_of == "parent" and same.gains == parent.gains
    assert 2 <= sum(1 for u in same.units if u.cpu_seconds > 0) < len(units)  # stopped early
    assert same.metrics()["units_run"] >= 2
    assert weak.ok and weak.neutral_of is None and all(u.cpu_seconds > 0 for u in weak.units)
    again = MetaResult.from_json(same.key, json.loads(json.dumps(same.to_json(sources=True))))
    assert again.neutral_of == "parent" and again.gains == same.gains


def test_a_decision_evaluator_refuses_test_problems():
    with pytest.raises(RsiError, match="test problems are for reports only"):
        MetaEvaluator(load_suite("test")[:1], budget=5)


def test_config_and_report_render(tmp_path):
    with pytest.raises(RsiError):
        SelfImproveConfig(approval="sometimes")
    cfg = SelfImproveConfig(seeds=2, validation_seeds=3, test_seeds=1, confirm_seeds=2)
    assert cfg.seeds_of("train") == [1, 2] and cfg.seeds_of("validation") == [101, 102, 103]
    assert cfg.seeds_of("confirm") == [51, 52]
    splits = [set(cfg.seeds_of(s)) for s in ("train", "confirm", "validation", "test")]
    assert sum(map(len, splits)) == len(set().union(*splits))  # disjoint
    rows = [{"generation": 0, "incumbent": 1, "driver": None, "train": 0.4, "validation": 0.3, "test": 0.35,
             "candidates": 1, "failed": 0, "best_train_this_generation": 0.4, "best_train_so_far": 0.4,
             "decision": None, "next_id": 2},
            {"generation": 1, "incumbent": 5, "driver": 1, "train": 0.5, "validation": 0.45, "test": None,
             "candidates": 4, "failed": 1, "best_train_this_generation": 0.5, "best_train_so_far": 0.5,
             "decision": {"challenger": 5, "outcome": "adopted", "effect": 0.15, "p_value": 0.01}, "next_id": 9}]
    report.write(tmp_path, rows, [(1, 0.2), (1, 0.5)])
    table = (tmp_path / "generations.md").read_text()
    assert "| 1 | #1 | 4 (1) |" in table and "| #5 | +0.150 (p=0.01) | yes |" in table
    svg = (tmp_path / "curves.svg").read_text()
    assert svg.startswith("<svg") and "adopt #5" in svg
    assert json.loads((tmp_path / "generations.json").read_text())[1]["incumbent"] == 5


def test_meta_result_utility_counts_failed_checks_as_no_gain():
    units = [UnitResult("a", 1, "ok", gain=0.5, score=1.0, claimed=1.0),
             UnitResult("a", 2, "flagged", gain=0.0), UnitResult("b", 1, "ok", gain=1.0, score=2.0, claimed=9.0)]
    result = MetaResult("k", "train", 10, units)
    assert result.utility == pytest.approx(0.5)
    assert result.metrics()["claims_wrong"] == 1 and result.metrics()["units_flagged"] == 1
    assert MetaResult.from_json("k", result.to_json()).gains == result.gains
    assert MetaResult("k", "train", 10, units, status="error").utility is None


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_reported_scores_are_ignored_the_trusted_rescore_counts(tmp_path):
    problems = [p for p in load_suite("train") if p.name in TRAIN]
    with MetaEvaluator(problems, budget=20, workers=2, scratch=tmp_path / "s") as meta:
        units = meta.units("train", [1])
        found = meta.measure({"honest": SEED, "faker": FAKING}, units)
    honest, faker = found["honest"], found["faker"]
    assert honest.ok and honest.utility > 0
    assert all(u.claimed == pytest.approx(u.score) for u in honest.units)
    assert faker.ok and [u.claimed for u in faker.units] == [1e9, 1e9]
    assert faker.utility == pytest.approx(0.0, abs=1e-9)  # the initial programs it returned, re-scored: no gain at all
    assert faker.metrics()["claims_wrong"] == 2


@pytest.fixture(scope="module")
def adoption(tmp_path_factory):
    """A weak incumbent, offered the seed improver; decisions and suite loads instrumented."""
    tmp_path = tmp_path_factory.mktemp("adoption")
    loads, evaluators, deciding = [], [], [False]
    real_load, real_init = si_config.load_suite, MetaEvaluator.__init__
    real_decide = SelfImproveRun._decide

    def load(split=None, *args, **kwargs):
        loads.append((split, deciding[0]))
        return real_load(split, *args, **kwargs)

    def init(self, problems, *args, **kwargs):
        problems = list(problems)
        evaluators.append(({p.split for p in problems}, deciding[0]))
        real_init(self, problems, *args, **kwargs)

    def decide(self, generation):
        deciding[0] = True
        try:
            return real_decide(self, generation)
        finally:
            deciding[0] = False

    patch = pytest.MonkeyPatch()
    patch.setattr(si_config, "load_suite", load)
    patch.setattr(MetaEvaluator, "__init__", init)
    patch.setattr(SelfImproveRun, "_decide", decide)
    try:
        run = start(tmp_path, WEAK, [SEED], report_test=True)
        run.execute()
    finally:
        patch.undo()
    return run, loads, evaluators


@pytest.mark.slow
def test_a_better_improver_is_adopted_and_drives_the_next_steps(adoption):
    run, _, _ = adoption
    out = run.out
    assert run.incumbent_id != 1
    adopted = run.store.get(run.incumbent_id)
    assert "CreditBandit" in adopted.source
    assert (out / BEST_FILE).read_text() == adopted.source
    assert callable(load_improver(out / BEST_FILE).next_step)  # usable at once with `rsi run --improver`
    assert run.improver.path.read_text() == adopted.source  # the adopted one now drives the run
    [request] = run.store.promotions("promoted")
    evidence = request["evidence"]
    # the run's first test spends half its level (0.05 / (1 * 2))
    assert evidence["test"] == "sign+bootstrap" and evidence["run_level"] == 0.05
    assert evidence["test_number"] == 1 and evidence["level"] == 0.025
    assert evidence["p_value"] < 0.025 and evidence["effect"] > 0 and not evidence["flags"]
    assert len(evidence["validation"]["challenger_gains"]) == len(VALIDATION) * 3
    [event] = events(out, "improver.adopted")
    assert event["id"] == adopted.id and event["previous"] == 1
    rows = json.loads((out / "generations.json").read_text())
    assert [r["generation"] for r in rows] == [0, 1]
    assert rows[1]["decision"]["outcome"] == "adopted" and rows[1]["driver"] == 1
    assert rows[1]["validation"] > rows[0]["validation"] and rows[1]["test"] is not None
    assert (out / "curves.svg").read_text().startswith("<svg")
    assert audit.verify(run.store.conn).ok
    assert not [p.name for p in out.iterdir() if p.name.startswith("scratch")]  # no working folders left


@pytest.mark.slow
def test_no_decision_reads_a_test_problem(adoption):
    run, loads, evaluators = adoption
    assert run.store.promotions("promoted")  # decisions were made (and test reported: see below)
    assert loads and all(not (split in ("test", None) and inside) for split, inside in loads)
    assert ("test", False) in loads  # the report did measure the test split, outside decisions
    for splits, inside in evaluators:
        if inside:
            assert "test" not in splits
    decision_pool = [splits for splits, _ in evaluators if "train" in splits]
    assert decision_pool and all("test" not in splits for splits in decision_pool)


@pytest.mark.slow
def test_an_equal_improver_is_not_adopted(tmp_path):
    # same behaviour, different text: identical searches, so nothing to prefer on any split
    run = start(tmp_path, SEED, [SEED + "\nUNUSED_SETTING = 1\n"])
    run.execute()
    assert run.incumbent_id == 1 and not run.store.promotions("promoted")
    rows = json.loads((run.out / "generations.json").read_text())
    assert rows[1]["decision"]["outcome"] in ("no challenger", "refused")
    assert (run.out / BEST_FILE).read_text() == run.store.get(1).source


def the_only_refusal(run: SelfImproveRun) -> dict:
    """Run it; nothing may be adopted and exactly one candidate refused: that refusal."""
    run.execute()
    assert run.incumbent_id == 1 and not run.store.promotions("promoted")
    [request] = run.store.promotions("refused")
    return request


@pytest.mark.slow
def test_a_rigged_improver_that_wins_only_on_training_is_refused(tmp_path):
    run = start(tmp_path, SEED, [rigged()])
    evidence = the_only_refusal(run)["evidence"]
    assert evidence["train"]["challenger"] > evidence["train"]["incumbent"] + 0.5  # it does cheat on training
    assert evidence["effect"] <= 0 and "not better" in evidence["summary"]  # and gains nothing on validation
    assert any(f["code"] == "foreign-attr-assign" for f in evidence["flags"])  # review saw the patch too
    assert events(run.out, "improver.refused")


@pytest.mark.slow
def test_a_lucky_training_win_is_not_confirmed_on_fresh_seeds(tmp_path):
    run = start(tmp_path, SEED, [lucky()])
    request = the_only_refusal(run)
    evidence = request["evidence"]
    assert evidence["stage"] == "confirmation" and "test_number" not in evidence  # no level spent
    assert evidence["train"]["challenger"] > evidence["train"]["incumbent"] + 0.5  # it won on training...
    assert evidence["confirm"]["challenger"] <= evidence["confirm"]["incumbent"]  # ...by luck of the seed
    assert (request["candidate_id"], "validation") not in run.measurements  # never validated
    assert events(run.out, "improver.unconfirmed")
    rows = json.loads((run.out / "generations.json").read_text())
    assert rows[1]["decision"]["outcome"] == "unconfirmed"


@pytest.mark.slow
def test_crashing_and_hanging_improvers_fail_and_the_loop_goes_on(tmp_path):
    run = start(tmp_path, WEAK, [CRASHING, HANGING, SEED], meta_budget=3,
                limits=UnitLimits(cpu_base=2.0, cpu_per_eval=0.0, wall_base=40.0, wall_per_eval=0.0))
    run.execute()
    measured = [c for c in run.store.candidates() if c.proposer == "mutate" and c.status in ("ok", "error", "timeout")]
    assert [c.status for c in measured] == ["error", "timeout", "ok"]
    assert "ZeroDivisionError" in measured[0].error
    assert "CPU time limit" in measured[1].error  # enforced by the OS (RLIMIT_CPU) on the search
    assert measured[1].cpu_seconds < 30
    assert measured[2].status == "ok" and run.incumbent_id == measured[2].id  # and the next one is adopted


@pytest.mark.slow
def test_manual_approval_waits_for_a_person(tmp_path):
    run = start(tmp_path, WEAK, [SEED], approval="manual")
    run.execute()
    out = run.out
    assert run.incumbent_id == 1
    [request] = pending(out)
    assert request["evidence"]["policy"] == "manual"
    assert (out / BEST_FILE).read_text() == run.store.get(1).source
    approve(out, request["candidate_id"], "read the diff")
    again = SelfImproveRun.reopen(out)
    again.log = lambda line: None
    again.execute()
    assert again.incumbent_id == request["candidate_id"]
    assert (out / BEST_FILE).read_text() == again.store.get(request["candidate_id"]).source
    adopted = events(out, "improver.adopted")[-1]
    assert adopted["note"] == "read the diff" and adopted["approved_by"]


KILLED_RUN = '''
import sys
from pathlib import Path
from rsi.meta.metautil import UnitLimits
from rsi.meta.selfimprove import SelfImproveConfig, SelfImproveRun
config = SelfImproveConfig(generations=2, budget=20, seeds=1, validation_seeds=2, test_seeds=0, meta_budget=4,
                           workers=2, parallel=1, problems={problems!r}, report_test=False,
                           limits=UnitLimits(cpu_base=4.0, cpu_per_eval=0.05, wall_base=20.0, wall_per_eval=0.5))
run = SelfImproveRun.start(Path(sys.argv[1]), config)
run.execute()
'''


@pytest.mark.slow
def test_kill_9_during_self_improvement_loses_nothing_and_resumes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "si"
    script = KILLED_RUN.format(problems=TRAIN + VALIDATION)
    proc = subprocess.Popen([sys.executable, "-c", script, str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300  # generous: a loaded machine measures slowly
    while len(list((out / "measurements").glob("*-train.json"))) < 3:  # the seed and two candidates
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended or stalled before the kill"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {c.id: (c.status, c.score) for c in Store.open(out).candidates(("ok", "error", "timeout"))}
    assert len(before) >= 3
    run = SelfImproveRun.reopen(out)
    run.log = lambda line: None
    summary = run.execute()
    assert summary.stop_reason == "all generations done"
    after = {c.id: (c.status, c.score) for c in run.store.candidates(("ok", "error", "timeout"))}
    assert all(after[cid] == value for cid, value in before.items())  # nothing measured was lost
    assert len(after) == 1 + 2 * 4 and not run.store.candidates(("pending",))
    rows = json.loads((out / "generations.json").read_text())
    assert [r["generation"] for r in rows] == [0, 1, 2]
    assert audit.verify(run.store.conn).ok
    assert not (out / "scratch").exists()


def test_rsi_stop_reaches_a_self_improvement_run(tmp_path):
    run = start(tmp_path, SEED, [SEED])
    (run.out / "STOP").write_text("stop requested from the command line\n")
    summary = run.execute()
    assert summary.stop_reason == "stop requested" and not (run.out / "STOP").exists()
    assert not run.store.candidates(("ok", "error", "timeout"))  # stopped before measuring anything
    again = SelfImproveRun.reopen(run.out)  # resumable
    assert again.search.stop_reason is None
    again.search.close()


# ----------------------------------------------------------------------------- memory

# an improver that cannot work without a memory: it fails every search that hands it none
NEEDS_MEMORY = SEED.replace("def next_step(ctx: ImproverContext) -> Step:\n",
                            "def next_step(ctx: ImproverContext) -> Step:\n"
                            "    assert ctx.memory.get('searches', 0) >= 1, 'no memory was handed over'\n")


def test_a_broken_memory_file_is_named_before_the_run_exists(tmp_path):
    bad = tmp_path / "memory.json"
    bad.write_text('{"version": 1, "arms": {"mutate:swap_binop": {"tries": 1, "improved": 5}}}')
    with pytest.raises(RsiError, match=r"memory.json: arm 'mutate:swap_binop'.*rsi memory learn"):
        SelfImproveRun.start(tmp_path / "si", config(memory=str(bad)))
    assert not (tmp_path / "si").exists()


@pytest.mark.slow
def test_a_learned_memory_reaches_every_inner_search_and_is_kept(tmp_path):
    run = start(tmp_path, SEED, [NEEDS_MEMORY], memory="learn", validation_seeds=1, problems=TRAIN + VALIDATION)
    run.execute()
    kept = json.loads((run.out / selfimprove.MEMORY_FILE).read_text())
    # learned before generation 0 by the seed improver: one search per training problem and seed
    assert kept["searches"] == len(TRAIN) and set(kept["problems"]) == set(TRAIN)
    assert sum(arm["tries"] for arm in kept["arms"].values()) > 0
    [event] = events(run.out, "selfimprove.memory")
    assert event["source"].startswith("learned") and event["searches"] == len(TRAIN)
    challenger = run.store.get(2)
    assert challenger.status == "ok", challenger.error  # its searches all had the memory
    # a resumed run uses the copy it kept, and does not learn again
    again = SelfImproveRun.reopen(run.out)
    assert again._load_memory()["searches"] == len(TRAIN)
    again.search.close()
    assert len(events(run.out, "selfimprove.memory")) == 1


@pytest.mark.slow
def test_without_a_memory_the_inner_searches_get_none(tmp_path):
    run = start(tmp_path, SEED, [NEEDS_MEMORY], validation_seeds=1, problems=TRAIN + VALIDATION)
    run.execute()
    assert run.store.get(2).status != "ok" and not (run.out / selfimprove.MEMORY_FILE).exists()


# the seed improver, asserting that its searches hand it a memory exactly when it carries one (MEMORY)
CARRIES_CHECKED = SEED.replace("def next_step(ctx: ImproverContext) -> Step:\n",
                               "def _carries():\n    try:\n        MEMORY\n    except NameError:\n"
                               "        return False\n    return True\n\n\n"
                               "def next_step(ctx: ImproverContext) -> Step:\n"
                               "    assert bool(ctx.memory) == _carries(), 'memory: ' + str(bool(ctx.memory))\n")


@pytest.mark.slow
def test_an_offered_memory_is_a_candidate_part_of_the_improver(tmp_path):
    """--memory offer: learned at the start, handed to no search; the generation's first candidate
    is the incumbent carrying it (the remember move), whose searches use it, while the incumbent's
    searches have none; an adopted improver would carry it into best_improver.py."""
    improver = tmp_path / "starting_improver.py"
    improver.write_text(CARRIES_CHECKED)
    run = SelfImproveRun.start(tmp_path / "si", config(memory="offer", validation_seeds=1,
                                                       problems=TRAIN + VALIDATION), improver)
    run.log = lambda line: None
    assert "remember" in run.proposers
    run.execute()
    kept = json.loads((run.out / selfimprove.MEMORY_FILE).read_text())
    assert kept["searches"] == len(TRAIN)
    assert run.memory is None  # the inner searches get none from the run
    start, offered = run.store.get(1), run.store.get(2)
    assert start.status == "ok", start.error  # its searches had no memory (it carries none)
    assert offered.proposer == "remember" and offered.parent_id == 1
    assert offered.status == "ok", offered.error  # its searches had the one it carries
    from rsi.memory import carried

    assert dict(carried(offered.source, "#2")["arms"]).keys() == kept["arms"].keys()
    best = (run.out / BEST_FILE).read_text()
    assert ("MEMORY = " in best) == (run.incumbent_id == 2)


# ----------------------------------------------------------------------------- a language model writes improvers

from test_llm import gguf  # noqa: E402,F401 - the packaged SmolLM2 model file (a session fixture)


@pytest.mark.slow
def test_a_language_model_writes_candidate_improvers(tmp_path, gguf):  # noqa: F811
    import threading

    llm = {"backend": "llama-cpp", "gguf": str(gguf), "threads": 1, "formats": ["diff", "rewrite"],
           "max_tokens": 96, "timeout": 120}
    run = SelfImproveRun.start(tmp_path / "si", config(llm=llm, proposers=["llm"], meta_budget=2, validation_seeds=1,
                                                       problems=TRAIN + VALIDATION))
    run.log = lambda line: None
    assert "next_step(ctx)" in (run.out / "problem" / "README.md").read_text()  # what the model is told

    def written():
        store = Store.open(run.out)
        try:
            return [c for c in store.candidates() if c.proposer == "llm"]
        finally:
            store.close()

    def stop_after_three():  # a 135M model rarely writes a valid improver: stop once it has written three
        while len(written()) < 3 and not finished.is_set():
            finished.wait(1.0)
        (run.out / selfimprove.STOP_FILE).write_text("enough")

    finished = threading.Event()
    watcher = threading.Thread(target=stop_after_three)
    watcher.start()
    try:
        run.execute()
    finally:
        finished.set()
        watcher.join()
    found = written()
    # stopped after three, or the generation ended first: two of the model's improvers loaded and were measured
    assert len(found) >= 3 or len([c for c in found if c.status != "invalid"]) == 2
    for cand in found:  # every proposal is a candidate: valid ones measured in the sandbox, the others marked
        assert cand.prompt and "rsi improver" in cand.prompt and cand.reply is not None
        assert cand.status in ("ok", "error", "timeout", "invalid", "duplicate", "pending")
        assert cand.status != "invalid" or cand.error  # a reply that did not make an improver says why
    assert json.loads((run.out / "selfimprove.json").read_text())["llm"]["formats"] == ["diff", "rewrite"]
    assert audit.verify(run.store.conn).ok
