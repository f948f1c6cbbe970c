"""The built-in ``mutate`` proposer: every operator, determinism, regions, format, valid rate."""

from __future__ import annotations

import collections
import os
import random
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from rsi.errors import ProposalFailed
from rsi.program import edit_violation, editable_regions, syntax_error
from rsi.proposers import _cst_helpers, _cst_parse
from rsi.proposers.base import Proposal
from rsi.proposers.mutate import MutateProposer

SEED = '''import numpy as np

# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Score each bin; the item goes to the bin with the highest score."""
    return -(bins - item)
# EVOLVE-BLOCK-END
'''

RICH = '''"""Frozen module docstring."""
import math
import numpy as np

SCALE = 2.0  # frozen constant


def helper(x):
    # frozen helper: never edited
    return x * 3 + 1


# EVOLVE-BLOCK-START
# Tunable constants
ALPHA = 0.5
BETA = 3


def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Score each bin."""
    # remaining capacity after placing the item
    r = bins - item

    score = -r * ALPHA  # prefer tight fits
    if item > 50 and BETA >= 2:
        score = score + np.sqrt(bins)
    elif not item < 10:
        score -= 1.0
    for k in range(BETA):
        score = score - np.abs(r - k * 10.0)
    score = np.where(r < 5.0, score - max(item, 2.0), score)
    return score


def other(a, b):
    total = a + b
    total *= 2
    return math.sqrt(abs(total)) + min(a, b)
# EVOLVE-BLOCK-END


def frozen_tail(z):
    return z - 1  # never edited
'''

# An inspiration: same functions, different bodies, and a frozen part holding a marker constant
# (12345.678) that must never travel into a child, since only editable regions are sources.
INSPIRATION = '''import math
import numpy as np


def frozen_only():
    return 12345.678


# EVOLVE-BLOCK-START
ALPHA = 0.7
BETA = 3


def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Another take."""
    r = bins - item
    gap = np.maximum(r, 0.0)
    score = -gap / (item + 1.0)
    score = np.where(gap < 2.0, score + 3.0, score)
    score = score * 1.5 - np.log1p(bins)
    return score


def other(a, b):
    total = a * b
    return math.exp(-abs(total)) + max(a, b)
# EVOLVE-BLOCK-END
'''

# Multi-line expressions, an elif with a multi-line test, tabs: the awkward cases for rendering.
AWKWARD = (
    "import numpy as np\n"
    "\n"
    "def f(x, y):\n"
    "\tif x > 1:\n"
    "\t\tz = x\n"
    "\telif (x < 0.5 and\n"
    "\t      y > 2.0):\n"
    "\t\tz = np.maximum(x,\n"
    "\t\t               y * 3.0)  # keep\n"
    "\telse:\n"
    "\t\tz = (x +\n"
    "\t\t     y) / 2.0\n"
    "\tz = z * 1.5\n"
    "\treturn z\n"
)

ALL_OPERATORS = [
    "perturb_constant", "swap_binop", "swap_compare", "swap_boolean", "swap_augassign",
    "swap_name", "swap_call", "wrap_ufunc", "wrap_binop", "wrap_where", "combine", "hoist",
    "delete_stmt", "duplicate_stmt", "move_stmt", "copy_stmt", "insert_assign",
    "crossover_range", "crossover_uniform", "crossover_function",
]
CROSSOVERS = {"crossover_range", "crossover_uniform", "crossover_function"}


def _run_priority(source: str):
    namespace: dict = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        exec(compile(source, "<child>", "exec"), namespace)
        return namespace["priority"](5.0, np.array([10.0, 20.0, 100.0]))


def _region_text(source: str) -> str:
    lines = source.splitlines()
    return "\n".join(
        "\n".join(lines[r.first - 1 : r.last]) for r in editable_regions(source)
    )


def test_operator_names_are_unique_and_complete():
    proposer = MutateProposer()
    assert proposer.name == "mutate"
    assert proposer.operators == ALL_OPERATORS
    assert len(set(proposer.operators)) == len(proposer.operators)


@pytest.mark.parametrize("operator", ALL_OPERATORS)
def test_every_operator_applies(operator):
    proposer = MutateProposer()
    rng = random.Random(7)
    for _ in range(10):
        proposal = proposer.edit(RICH, [INSPIRATION], operator, rng)
        assert isinstance(proposal, Proposal)
        assert proposal.operator == operator
        assert syntax_error(proposal.source) is None
        assert proposal.source != RICH
        assert proposal.rationale.strip() and "\n" not in proposal.rationale
        assert edit_violation(RICH, proposal.source) is None


def test_same_seed_same_proposals():
    def run(clear_cache: bool) -> list[Proposal]:
        if clear_cache:
            _cst_parse._CACHE.clear()
        proposer, rng = MutateProposer(), random.Random(123)
        parent, out = RICH, []
        for _ in range(60):
            proposal = proposer.edit(parent, [INSPIRATION, SEED], None, rng)
            out.append(proposal)
            parent = proposal.source if rng.random() < 0.5 else parent
        return out

    first = run(clear_cache=True)
    assert first == run(clear_cache=False) == run(clear_cache=True)
    assert len({p.operator for p in first}) > 8
    other = [MutateProposer().edit(RICH, [INSPIRATION], None, random.Random(124)) for _ in range(5)]
    assert [p.source for p in other] != [p.source for p in first[:5]]


_SUBPROCESS = """
import hashlib, random
from rsi.proposers.mutate import MutateProposer
import test_programs as t
p, rng, parent, h = MutateProposer(), random.Random(5), t.RICH, hashlib.sha256()
for _ in range(40):
    prop = p.edit(parent, [t.INSPIRATION], None, rng)
    h.update((prop.operator + prop.rationale + prop.source).encode())
    parent = prop.source
print(h.hexdigest())
"""


def test_reproducible_across_processes_and_hash_seeds(tmp_path):
    (tmp_path / "test_programs.py").write_text(f"RICH = {RICH!r}\nINSPIRATION = {INSPIRATION!r}\n")
    digests = set()
    for hash_seed in ("1", "2", "987"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(tmp_path))
        out = subprocess.run([sys.executable, "-c", _SUBPROCESS], env=env, capture_output=True,
                             text=True, check=True, timeout=120)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_edits_stay_inside_editable_regions():
    proposer, rng = MutateProposer(), random.Random(2024)
    population = [RICH]
    counts: collections.Counter = collections.Counter()
    for _ in range(500):
        parent = rng.choice(population)
        proposal = proposer.edit(parent, [INSPIRATION, rng.choice(population)], None, rng)
        assert edit_violation(parent, proposal.source) is None, proposal.rationale
        assert "12345.678" not in proposal.source, "material from an inspiration's frozen part"
        counts[proposal.operator] += 1
        if syntax_error(proposal.source) is None and len(proposal.source) < 2 * len(RICH):
            population.append(proposal.source)
            population = population[-25:]
    assert set(counts) == set(ALL_OPERATORS)


def test_markers_inside_a_function_body():
    source = textwrap.dedent('''\
        import numpy as np


        def f(x, y):
            a = x + 1  # frozen
            # EVOLVE-BLOCK-START
            b = a * 2.0
            b = b + y
            c = b - y
            # EVOLVE-BLOCK-END
            return c + a
        ''')
    proposer, rng = MutateProposer(), random.Random(3)
    seen = set()
    for _ in range(300):
        proposal = proposer.edit(source, [], None, rng)
        assert edit_violation(source, proposal.source) is None, proposal.rationale
        seen.add(proposal.operator)
    assert {"delete_stmt", "move_stmt", "insert_assign", "perturb_constant"} <= seen


def test_without_markers_the_whole_file_is_editable():
    source = "def f(x):\n    return x * 2.5\n"
    proposal = MutateProposer().edit(source, [], "perturb_constant", random.Random(0))
    assert "2.5" not in proposal.source and proposal.source.startswith("def f(x):\n")


def _comment_lines(source: str) -> collections.Counter:
    lines = (line.strip() for line in source.splitlines())
    return collections.Counter(line for line in lines if line.startswith("#"))


def test_comments_and_blank_lines_survive():
    proposer, rng = MutateProposer(), random.Random(11)
    before_comments = _comment_lines(RICH)
    before_blank = sum(1 for line in RICH.splitlines() if not line.strip())
    for operator in sorted(set(ALL_OPERATORS) - CROSSOVERS):
        for _ in range(15):
            child = proposer.edit(RICH, [INSPIRATION], operator, rng).source
            assert _comment_lines(child) >= before_comments, operator
            assert sum(1 for line in child.splitlines() if not line.strip()) >= before_blank, operator


def test_an_expression_edit_changes_only_its_line():
    proposal = MutateProposer().edit(RICH, [], "perturb_constant", random.Random(1))
    before, after = RICH.splitlines(), proposal.source.splitlines()
    assert len(before) == len(after)
    changed = [i for i, (x, y) in enumerate(zip(before, after, strict=True)) if x != y]
    assert len(changed) == 1
    assert f"line {changed[0] + 1}" in proposal.rationale


def test_rendering_one_node_equals_rendering_the_module(monkeypatch):
    """The fast path splices the new node's text; it must equal libcst's full rendering."""
    fast = _cst_helpers.Analysis.render
    checked = []

    def both(self, old, new):
        text = fast(self, old, new)
        assert text == self.replace(old, new).code
        checked.append(type(old).__name__)
        return text

    monkeypatch.setattr(_cst_helpers.Analysis, "render", both)
    proposer, rng = MutateProposer(), random.Random(8)
    tabbed = RICH.replace("    ", "\t")
    for parent in (RICH, tabbed, SEED, AWKWARD):
        for _ in range(80):
            proposer.edit(parent, [INSPIRATION], None, rng)
    assert {"IndentedBlock", "FunctionDef"} <= set(checked)


def test_valid_rate_from_the_binpack_seed():
    proposer, rng = MutateProposer(), random.Random(0)
    valid = 0
    for _ in range(500):
        child = proposer.edit(SEED, [], None, rng).source
        try:
            scores = _run_priority(child)
        except Exception:  # noqa: BLE001 - an invalid child is what is being counted
            continue
        valid += np.shape(scores) == (3,)
    rate = valid / 500
    print(f"mutate valid-child rate from the binpack seed: {rate:.1%}")
    assert rate >= 0.7


def test_a_one_line_seed_grows_into_a_multi_statement_heuristic():
    """Accepting every running child, a few dozen edits turn the seed into several statements."""
    proposer, rng = MutateProposer(), random.Random(4)
    parent = SEED
    for _ in range(200):
        child = proposer.edit(parent, [], None, rng).source
        try:
            if np.shape(_run_priority(child)) == (3,):
                parent = child
        except Exception:  # noqa: BLE001 - a child that raises is simply not kept
            pass
        body = [line for line in _region_text(parent).splitlines() if line.strip()]
        if len(body) >= 6 and "np." in _region_text(parent):
            break
    else:
        pytest.fail(f"the seed did not grow:\n{parent}")


def test_statement_delete_keeps_blocks_non_empty():
    source = "def f(x):\n    y = 0\n    if x > 1:\n        y = 2\n    return y\n"
    proposer, rng = MutateProposer(), random.Random(0)
    children = {proposer.edit(source, [], "delete_stmt", rng).source for _ in range(20)}
    assert "def f(x):\n    y = 0\n    if x > 1:\n        pass\n    return y\n" in children
    assert all("return y" in child for child in children)  # the final return is never deleted


def test_extra_names_are_used_as_terminals():
    source = "def f(x: float) -> float:\n    return x + 1.0\n"
    proposer, rng = MutateProposer(extra_names=["CAPACITY"]), random.Random(0)
    children = [proposer.edit(source, [], "swap_name", rng).source for _ in range(5)]
    assert any("return CAPACITY + 1.0" in child for child in children)
    with pytest.raises(ValueError):
        MutateProposer(extra_names=["not a name"])


def test_operators_setting_keeps_only_the_named_ones(tmp_path):
    from conftest import write_problem

    import rsi
    from rsi.errors import RsiError

    chosen = ["swap_binop", "perturb_constant"]
    proposer, rng = MutateProposer(operators=chosen), random.Random(0)
    assert proposer.operators == ["perturb_constant", "swap_binop"]  # in the registry's order
    assert {proposer.edit(RICH, [], None, rng).operator for _ in range(30)} == set(chosen)
    with pytest.raises(ProposalFailed, match="no operator 'hoist'"):
        proposer.edit(RICH, [], "hoist", rng)
    for bad, message in ((["perturb_constant", "tweak"], "no operator 'tweak'; the operators are: perturb_constant"),
                         ([], "a non-empty list"), ("perturb_constant", "a non-empty list")):
        with pytest.raises(RsiError, match=rf"\[proposer.mutate\] operators.*{message}"):
            MutateProposer(operators=bad)
    # from problem.toml: the run's proposals use those operators only
    problem = write_problem(tmp_path / "p", toml="""\
        [run]
        budget = 12
        executor = "fork"
        [proposer.mutate]
        operators = ["perturb_constant", "swap_binop"]
        """)
    rsi.improve(problem, out=tmp_path / "r")
    with rsi.open_run(tmp_path / "r") as results:
        used = {c.operator for c in results.candidates() if c.proposer == "mutate"}
    assert used and used <= set(chosen)


def test_numpy_alias_is_detected():
    source = "import numpy as xp\n\ndef f(v):\n    return xp.sqrt(v)\n"
    proposer, rng = MutateProposer(), random.Random(0)
    swapped = proposer.edit(source, [], "swap_call", rng)
    assert "xp." in swapped.source and "xp.sqrt" not in swapped.source
    wrapped = proposer.edit(source, [], "wrap_ufunc", rng)
    assert wrapped.source.count("xp.") == 2
    plain = "import os.path\nimport numpy\n\ndef f(v, w):\n    return os.path.join(v, w)\n"
    children = {proposer.edit(plain, [], None, rng).source for _ in range(30)}
    assert any("numpy." in child for child in children)


def test_failures_raise_proposal_failed():
    proposer, rng = MutateProposer(), random.Random(0)
    no_numbers = "def f(a, b):\n    return a + b\n"
    with pytest.raises(ProposalFailed, match="perturb_constant"):
        proposer.edit(no_numbers, [], "perturb_constant", rng)
    with pytest.raises(ProposalFailed, match="crossover_range"):
        proposer.edit(RICH, [], "crossover_range", rng)
    with pytest.raises(ProposalFailed, match="no operator"):
        proposer.edit("x = 'only a string'\n", [], None, rng)
    with pytest.raises(ProposalFailed, match="cannot parse"):
        proposer.edit("def broken(:\n", [], None, rng)
    with pytest.raises(ProposalFailed, match="has no operator"):
        proposer.edit(RICH, [], "no_such_operator", rng)
    frozen = "import numpy as np\n# EVOLVE-BLOCK-START\n# EVOLVE-BLOCK-END\nx = 1.5 + 2\n"
    with pytest.raises(ProposalFailed):
        proposer.edit(frozen, [], None, rng)


def test_unparsable_inspirations_give_no_material():
    proposer, rng = MutateProposer(), random.Random(0)
    proposal = proposer.edit(RICH, ["def broken(:\n", INSPIRATION], "crossover_function", rng)
    assert "inspiration 1" in proposal.rationale  # numbered among the usable inspirations
    assert proposal.source != RICH and edit_violation(RICH, proposal.source) is None
