"""The nudge proposer: one move of one named setting (module-level NAME = ...) per child."""

from __future__ import annotations

import random

import pytest
from conftest import write_problem

import rsi
from rsi import toolkit as tk
from rsi.errors import ProposalFailed
from rsi.proposers.base import Program, ProposalRequest
from rsi.proposers.nudge import OPERATORS, NudgeProposer

SETTINGS = '''\
import numpy as np

# EVOLVE-BLOCK-START
RATE = 0.5
ZERO = 0.0
STEPS = 100
SEED = 0
ROWS = [5, 5, 6, 1]
MIXED = [1, 2.5]


def f(x):
    return np.asarray(x)[0] * 2 + RATE
# EVOLVE-BLOCK-END
'''


def settings_of(source: str) -> dict[str, list]:
    values: dict[str, list] = {}
    for c in tk.Program.parse(source).constants():
        values.setdefault(c.setting or f"line {c.line}", []).append(c.value)
    return values


def nudged(operator: str, seed: int) -> tuple[dict[str, list], str]:
    proposal = NudgeProposer().propose(ProposalRequest(parent=Program(1, SETTINGS, 0.0), operator=operator,
                                                       rng=random.Random(seed)))
    assert proposal.operator == operator and "\n" not in proposal.rationale
    return settings_of(proposal.source), proposal.rationale


def test_each_move_changes_one_setting_and_nothing_else():
    before = settings_of(SETTINGS)
    kinds = {"nudge_float": {"RATE", "ZERO", "MIXED"}, "nudge_int": {"STEPS", "SEED", "MIXED"}, "nudge_list": {"ROWS"}}
    for operator in OPERATORS:
        for seed in range(40):
            after, rationale = nudged(operator, seed)
            changed = {name for name in before if after[name] != before[name]}
            assert len(changed) == 1 and changed <= kinds[operator], (operator, rationale)
            name = changed.pop()
            assert rationale.startswith(f"nudge {name} ")
            assert after["line 13"] == before["line 13"] == [0, 2]  # the function's literals are not settings
            if operator == "nudge_int":
                assert after["ROWS"] == before["ROWS"]  # a list of ints is nudge_list's
                assert [type(v) for v in after[name]] == [type(v) for v in before[name]]  # ints stay ints
                assert min(after[name]) >= 0
                assert after["SEED"][0] >= 0 and after["STEPS"][0] >= 1  # a zero stays >= 0, a count >= 1
            if operator == "nudge_list":
                rows, old = after["ROWS"], before["ROWS"]
                assert min(rows) >= 1 and len(rows) == 4
                moved = sum(rows) == sum(old) and sorted(rows) != sorted(old)  # one unit moved between two
                swapped = sorted(rows) == sorted(old)  # two neighbours swapped
                stepped = abs(sum(rows) - sum(old)) == 1 and sum(a != b for a, b in zip(rows, old, strict=True)) == 1
                assert moved or swapped or stepped, rationale


def test_every_setting_is_some_operators():
    changed = set()
    for operator in OPERATORS:
        for seed in range(60):
            after, _ = nudged(operator, seed)
            changed |= {(name, k) for name, v in settings_of(SETTINGS).items() for k in range(len(v))
                        if after[name][k] != v[k]}
    assert changed == {("RATE", 0), ("ZERO", 0), ("STEPS", 0), ("SEED", 0), ("MIXED", 0), ("MIXED", 1),
                       ("ROWS", 0), ("ROWS", 1), ("ROWS", 2), ("ROWS", 3)}


def test_a_list_move_reaches_every_neighbouring_layout():
    layouts = {tuple(nudged("nudge_list", seed)[0]["ROWS"]) for seed in range(300)}
    assert (5, 6, 5, 1) in layouts and (5, 5, 5, 2) in layouts  # one unit moved: kept the total
    assert (5, 6, 5, 1) in layouts and (5, 5, 1, 6) in layouts  # neighbours swapped
    assert (5, 5, 6, 2) in layouts  # one element + 1


def test_same_seed_same_child_and_missing_settings_are_named():
    assert nudged("nudge_float", 3) == nudged("nudge_float", 3)
    proposer = NudgeProposer()
    plain = ProposalRequest(parent=Program(1, "def f(x):\n    return x * 0.5 + 1\n", 0.0))
    for operator, missing in (("nudge_float", "no float settings"), ("nudge_int", "no int settings"),
                              ("nudge_list", "no list of int settings")):
        with pytest.raises(ProposalFailed, match=missing):
            proposer.propose(ProposalRequest(parent=plain.parent, operator=operator))
    with pytest.raises(ProposalFailed, match="nudge has no operator 'jiggle'"):
        proposer.propose(ProposalRequest(parent=plain.parent, operator="jiggle"))


def test_a_search_with_nudge_improves_the_settings(tmp_path):
    problem = write_problem(tmp_path / "p", initial='''\
        # EVOLVE-BLOCK-START
        A = 1.0
        B = 0.5
        C = 1


        def f(x):
            return A * x * x + B * x + C
        # EVOLVE-BLOCK-END
        ''', toml="""\
        [run]
        budget = 40
        executor = "fork"
        proposers = ["nudge"]
        [archive]
        islands = 1
        """)
    rsi.improve(problem, out=tmp_path / "r")
    with rsi.open_run(tmp_path / "r") as results:
        candidates = results.candidates()
        seed, best = candidates[0], results.best()
    assert {c.operator for c in candidates[1:]} <= set(OPERATORS)
    assert best.score > seed.score + 0.5 * abs(seed.score)  # f(x) -> 2.5 x^2 - x + 3: the error more than halves
