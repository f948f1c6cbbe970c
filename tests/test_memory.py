"""An improver that carries its own memory (MEMORY), the remember move that writes one in, and a
search that uses it when it is given none. Real runs of the seed improver on a small problem."""

from __future__ import annotations

import json

import pytest
from conftest import write_problem

import rsi
from rsi.cli import main
from rsi.errors import ProposalFailed, RsiError
from rsi.improvers import SEED_IMPROVER
from rsi.memory import carried, carry, save_memory
from rsi.meta.config import with_block
from rsi.proposers.base import Program, ProposalRequest
from rsi.proposers.remember import RememberProposer

MEMORY = {"version": 1, "searches": 3, "problems": ["quad"],
          "arms": {"mutate:perturb_constant": {"tries": 40, "improved": 9, "new_best": 4},
                   "mutate:delete_stmt": {"tries": 40, "improved": 0, "new_best": 0}}}
OTHER = {**MEMORY, "arms": {"mutate:swap_binop": {"tries": 5, "improved": 1, "new_best": 0}}}


def _problem(tmp_path):
    return write_problem(tmp_path / "p", toml="[run]\nbudget = 4\n[oversight]\npromote_every = false\n")


def test_carry_writes_a_memory_that_reads_back_and_code_edits_of_numbers_leave_alone():
    source = with_block(SEED_IMPROVER.read_text())
    assert carried(source, "seed") is None
    child = carry(source, MEMORY)
    compile(child, "child", "exec")
    back = carried(child, "child")
    assert back is not None and json.loads(json.dumps(back["arms"], default=dict)) == MEMORY["arms"]
    assert child.count("MEMORY = ") == 1 and child.index("MEMORY = ") > child.index("# EVOLVE-BLOCK-START")
    assert carry(child, MEMORY) == child  # replaced in place, not added twice
    replaced = carry(child, OTHER)
    assert replaced.count("MEMORY = ") == 1 and set(carried(replaced, "r")["arms"]) == {"mutate:swap_binop"}
    # the counts sit in a string: mutate's number edits (perturb_constant) have no site in them
    import ast

    from rsi.toolkit import Program as Code

    node = next(n for n in ast.parse(child).body if isinstance(n, ast.Assign) and n.targets[0].id == "MEMORY")
    sites = {site.line for site in Code(child).constants()}
    assert sites and not any(node.lineno <= line <= node.end_lineno for line in sites)
    # a program the parser cannot take (nesting too deep) carries none: the engine reading it does not fail
    assert carried("x = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n", "deep") is None
    # a dict literal is read too
    assert carried("MEMORY = " + repr(MEMORY) + "\n", "dict")["searches"] == 3


@pytest.mark.parametrize("text, message", [
    ('MEMORY = "not json"\n', "not a literal memory"),
    ("MEMORY = dict(version=1)\n", "not a literal memory"),
    ('MEMORY = {"version": 1, "arms": {"mutate:x": {"tries": 1, "improved": 3}}}\n', "at most tries"),
])
def test_a_broken_carried_memory_is_named_with_the_fix_before_the_run_exists(tmp_path, text, message):
    improver = tmp_path / "mine.py"
    improver.write_text(SEED_IMPROVER.read_text() + "\n" + text)
    with pytest.raises(RsiError, match=rf"mine.py: MEMORY \(line \d+\).*{message}"):
        rsi.Search.create(_problem(tmp_path), tmp_path / "r", improver=improver)
    assert not (tmp_path / "r").exists()


def test_a_search_uses_the_memory_its_improver_carries_unless_given_one(tmp_path):
    problem = _problem(tmp_path)
    improver = tmp_path / "carrying.py"
    improver.write_text(carry(SEED_IMPROVER.read_text(), MEMORY))
    search = rsi.Search.create(problem, tmp_path / "r1", improver=improver)
    try:
        assert set(search._context().memory["arms"]) == set(MEMORY["arms"])
        primed = search._improver_state["bandit"]["tries"]  # the bandit, in its sandboxed host, started from it
        assert primed["mutate:perturb_constant"] == 20.0 and primed["mutate:swap_binop"] == 0.0
    finally:
        search.close()
    resumed = rsi.Search.resume(tmp_path / "r1")  # the recorded copy
    try:
        assert set(resumed._context().memory["arms"]) == set(MEMORY["arms"])
    finally:
        resumed.close()
    given = save_memory(OTHER, tmp_path / "other.json")
    search = rsi.Search.create(problem, tmp_path / "r2", rsi.Overrides(memory=str(given)), improver=improver)
    try:
        assert set(search._context().memory["arms"]) == {"mutate:swap_binop"}  # the run's own wins
    finally:
        search.close()
    plain = rsi.Search.create(problem, tmp_path / "r3")
    try:
        assert not plain._context().memory  # the seed improver carries none
    finally:
        plain.close()


def test_the_remember_move_writes_the_memory_file_into_the_parent(tmp_path):
    file = save_memory(MEMORY, tmp_path / "memory.json")
    proposer = RememberProposer("memory.json", problem_dir=tmp_path)
    parent = with_block(SEED_IMPROVER.read_text())
    proposal = proposer.propose(ProposalRequest(parent=Program(1, parent)))
    assert proposal.operator == "learned" and "memory of 3 searches" in proposal.rationale
    assert set(carried(proposal.source, "child")["arms"]) == set(MEMORY["arms"])
    from rsi.program import edit_violation

    assert edit_violation(parent, proposal.source) is None  # inside the EVOLVE-BLOCK
    with pytest.raises(ProposalFailed, match="already carries this memory"):
        proposer.propose(ProposalRequest(parent=Program(2, proposal.source)))
    file.write_text("{}")
    with pytest.raises(ProposalFailed, match="not an rsi memory file"):
        proposer.propose(ProposalRequest(parent=Program(1, parent)))
    with pytest.raises(RsiError, match=r"\[proposer.remember\] memory"):
        RememberProposer("")


def test_rsi_memory_show_reads_an_improver_that_carries_one(tmp_path, capsys):
    improver = tmp_path / "carrying.py"
    improver.write_text(carry(SEED_IMPROVER.read_text(), MEMORY))
    assert main(["memory", "show", str(improver)]) == 0
    assert "memory of 3 searches on 1 problems" in capsys.readouterr().out
    assert main(["memory", "show", str(SEED_IMPROVER)]) == 2
    assert "carries no memory" in capsys.readouterr().err
