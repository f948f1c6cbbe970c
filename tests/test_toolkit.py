"""rsi.toolkit (finding and editing sites) and operators an improver owns (rsi.proposers.improver_ops)."""

from __future__ import annotations

import os
import random
import textwrap
from pathlib import Path

import pytest
from conftest import write_problem

import rsi
from rsi import toolkit as tk
from rsi.errors import ProposalFailed, RsiError
from rsi.improvers import load_improver
from rsi.program import edit_violation, editable_regions, syntax_error
from rsi.proposers._cst_helpers import analyze
from rsi.proposers._mutate_base import Ctx
from rsi.proposers.base import Program as Stored
from rsi.proposers.base import ProposalRequest
from rsi.proposers.improver_ops import ImproverOperators, improver_operators
from rsi.proposers.mutate import MutateProposer
from rsi.sandbox import isolation, landlock

ROOT = Path(__file__).resolve().parents[1]
SUITE = sorted((ROOT / "src" / "rsi" / "meta" / "suite").glob("*/initial.py"))
TUNING = ROOT / "examples" / "improvers" / "tuning.py"
CONFINED = landlock.abi_version() > 0 and not {"landlock", "seccomp"} & isolation.disabled_mechanisms()

PROGRAM = '''"""Frozen docstring."""
import numpy as np

LIMIT = 99.5  # frozen: never a site


# EVOLVE-BLOCK-START
ALPHA = 0.5  # tunable


def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Score each bin."""
    # the gap left by the item
    gap = bins - item

    score = -gap * ALPHA  # prefer tight fits
    if item > 50 and gap.min() >= 2:
        score = score + np.sqrt(bins)
    else:
        score -= 1.0
    return score


def helper(x, y):
    return max(x, y) * 3
# EVOLVE-BLOCK-END


def frozen(z):
    return z - 12345.678
'''

INSPIRATION = '''import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    gap = np.maximum(bins - item, 0.0)
    score = -gap / (item + 1.0)
    return score
# EVOLVE-BLOCK-END
'''


def _lines(source: str) -> list[str]:
    return source.splitlines()


def _changed(before: str, after: str) -> list[int]:
    a, b = _lines(before), _lines(after)
    return [i + 1 for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y] + (
        [min(len(a), len(b)) + 1] if len(a) != len(b) else [])


def _in_regions(source: str, line: int) -> bool:
    return any(r.first <= line <= r.last for r in editable_regions(source))


def _legal(parent: str, child: str) -> None:
    assert syntax_error(child) is None, child
    assert edit_violation(parent, child) is None, child


# ----------------------------------------------------------------------------- finding sites

def test_sites_of_a_program():
    program = tk.Program.parse(PROGRAM)
    assert program.regions == [(8, 25)] and program.numpy == "np"
    assert [(c.line, c.text, c.value, c.is_int) for c in program.constants()] == [
        (8, "0.5", 0.5, False), (17, "50", 50, True), (17, "2", 2, True), (20, "1.0", 1.0, False),
        (25, "3", 3, True)]
    assert [(b.text, b.operator) for b in program.binary_operators()] == [
        ("bins - item", "-"), ("-gap * ALPHA", "*"), ("score + np.sqrt(bins)", "+"), ("max(x, y) * 3", "*")]
    assert [(c.text, c.operators) for c in program.comparisons()] == [("item > 50", (">",)),
                                                                     ("gap.min() >= 2", (">=",))]
    assert [(c.function, c.callee, c.text) for c in program.calls()] == [
        ("priority", "gap.min", "gap.min()"), ("priority", "np.sqrt", "np.sqrt(bins)"), ("helper", "max", "max(x, y)")]
    assert program.calls()[1].arguments == ("bins",)
    assert [s.kind for s in program.statements()] == ["simple", "simple", "compound", "simple", "simple", "return",
                                                       "return"]
    [branch] = program.branches()
    assert branch.has_else and branch.condition.text == "item > 50 and gap.min() >= 2"
    assert [(f.name, f.params, f.editable) for f in program.functions()] == [
        ("priority", ("item", "bins"), True), ("helper", ("x", "y"), True)]
    assert program.function("frozen") is None  # wholly outside the regions
    gap = program.statements()[0]
    assert gap.text == "    gap = bins - item" and gap.binds == {"gap"} and gap.reads == {"bins", "item"}
    score = program.statements()[1]
    assert score.names() == {"item": "scalar", "bins": "array", "gap": "array", "LIMIT": "scalar", "ALPHA": "scalar"}
    assert score.function == "priority" and program.constants()[0].function is None  # module level
    kinds = {e.text: e.kind for e in program.expressions()}
    assert kinds["bins - item"] == "array" and kinds["0.5"] == "scalar"


def test_constants_name_the_setting_they_belong_to():
    source = textwrap.dedent("""\
        import numpy as np
        # EVOLVE-BLOCK-START
        RATE = 0.01
        ROWS = [5, 6, -5]
        SHAPE: tuple = (2, 3 * 4)
        A = B = 7
        C, D = 8, 9
        X = 1; Y = np.zeros(2)[0] + 2.5


        def f(v, w=3):
            K = 4
            return v[0] * K + w


        class Box:
            SIZE = 10
        # EVOLVE-BLOCK-END
        """)
    found = [(c.text, c.setting) for c in tk.Program.parse(source).constants()]
    assert found == [("0.01", "RATE"), ("5", "ROWS"), ("6", "ROWS"), ("-5", "ROWS"), ("2", "SHAPE"), ("3", "SHAPE"),
                     ("4", "SHAPE"), ("7", None), ("8", None), ("9", None), ("1", "X"), ("2", "Y"), ("0", "Y"),
                     ("2.5", "Y"), ("3", None), ("4", None), ("0", None), ("10", None)]
    elements = [(c.text, c.element) for c in tk.Program.parse(source).constants()][:7]
    assert elements == [("0.01", None), ("5", 0), ("6", 1), ("-5", 2), ("2", None), ("3", None), ("4", None)]
    child = tk.Program.parse(source).constants()[2].set(7)  # a child's sites know their settings too
    assert [(c.text, c.setting) for c in child.constants()][1:3] == [("5", "ROWS"), ("7", "ROWS")]


@pytest.mark.parametrize("path", SUITE, ids=lambda p: p.parent.name)
def test_sites_and_edits_on_the_suite_programs(path):
    """Every site lies inside the EVOLVE-BLOCK and says where it is; setting each constant changes
    that line only, and the child reads back the new value at the same index."""
    source = path.read_text()
    program = tk.Program.parse(source)
    found = [*program.constants(), *program.binary_operators(), *program.comparisons(), *program.calls(),
             *program.expressions(), *program.statements(), *program.functions()]
    assert program.constants() and program.expressions() and program.statements() and program.functions()
    for site in found:
        assert _in_regions(source, site.line), site
        first_line = site.text.splitlines()[0].strip()
        assert first_line in _lines(source)[site.line - 1], site
    for index, constant in enumerate(program.constants()):
        new = constant.value + 3 if constant.is_int else constant.value * 1.37 + 0.29
        child = constant.set(new)
        _legal(source, child.source)
        assert _changed(source, child.source) == [constant.line]
        assert child.constants()[index].value == pytest.approx(new)
        assert child.changes == (f"set constant {constant.text} -> {child.constants()[index].text} "
                                 f"on line {constant.line}",)
    for site in program.expressions():
        _legal(source, site.wrap_call(f"{program.numpy}.tanh").source)
    for stmt in program.statements():
        if stmt.kind != "return":
            _legal(source, stmt.delete().source)
        _legal(source, stmt.duplicate().source)
        _legal(source, stmt.guard("True").source)


# ----------------------------------------------------------------------------- edits

def test_expression_edits():
    program = tk.Program.parse(PROGRAM)
    cases = {
        program.binary_operators()[0].swap("+"): ("    gap = bins - item", "    gap = bins + item"),
        program.binary_operators()[1].swap("+"): ("    score = -gap * ALPHA  # prefer tight fits",
                                                  "    score = -gap + ALPHA  # prefer tight fits"),
        program.comparisons()[0].swap("<="): ("    if item > 50 and gap.min() >= 2:",
                                              "    if item <= 50 and gap.min() >= 2:"),
        program.calls()[1].rename("np.log1p"): ("        score = score + np.sqrt(bins)",
                                                "        score = score + np.log1p(bins)"),
        program.expressions()[1].wrap("np.maximum({}, 0.0)"): ("    gap = bins - item",
                                                               "    gap = np.maximum(bins - item, 0.0)"),
        program.expressions()[1].wrap("{} ** 2"): ("    gap = bins - item", "    gap = (bins - item) ** 2"),
        program.expressions()[1].wrap_binop("/", "item", left=True): ("    gap = bins - item",
                                                                      "    gap = item / (bins - item)"),
        program.expressions()[1].wrap_where(">", "10.0", "0.0"): (
            "    gap = bins - item", "    gap = np.where(bins - item > 10.0, bins - item, 0.0)"),
        program.expressions()[1].replace("bins * 0.5"): ("    gap = bins - item", "    gap = bins * 0.5"),
        program.constants()[0].set(0.125): ("ALPHA = 0.5  # tunable", "ALPHA = 0.125  # tunable"),
        program.constants()[0].set(-2): ("ALPHA = 0.5  # tunable", "ALPHA = -2  # tunable"),
        program.constants()[4].set(1 / 3, digits=3): ("    return max(x, y) * 3", "    return max(x, y) * 0.333"),
    }
    for child, (old, new) in cases.items():
        _legal(PROGRAM, child.source)
        assert child.source == PROGRAM.replace(old, new, 1), child.changes
        assert len(child.changes) == 1 and "\n" not in child.changes[0]


def test_statement_branch_and_function_edits():
    program = tk.Program.parse(PROGRAM)
    gap, score, branch = program.statements()[:3]
    ret = program.statements()[5]
    assert branch is program.branches()[0]
    children = {
        "delete": score.delete(),
        "duplicate": gap.duplicate(),
        "move": ret.move(ret.index - 1),
        "before": score.insert_before("bonus = 2.0\nscore0 = gap * bonus"),
        "after": gap.insert_after("gap = np.abs(gap)"),
        "branch": score.insert_branch("item < 10", "score = score * 2", orelse="score = score - 1", after=True),
        "guard": score.guard("ALPHA > 0"),
        "replace": score.replace("score = -gap"),
        "negate": branch.negate(),
        "swap": branch.swap_branches(),
    }
    for name, child in children.items():
        _legal(PROGRAM, child.source)
        assert "# the gap left by the item" in child.source  # comment lines always stay
        assert ("# prefer tight fits" in child.source) == (name not in ("delete", "replace")), name  # its own
    assert "-gap * ALPHA" not in children["delete"].source
    assert "    return score\n    score -= 1.0\n" not in children["move"].source
    assert children["duplicate"].source.count("    gap = bins - item\n") == 2
    assert children["before"].source.count("    bonus = 2.0\n    score0 = gap * bonus\n") == 1
    assert ("    score = -gap * ALPHA  # prefer tight fits\n"
            "    if item < 10:\n        score = score * 2\n    else:\n        score = score - 1\n"
            ) in children["branch"].source
    assert "    if ALPHA > 0:\n        score = -gap * ALPHA  # prefer tight fits\n" in children["guard"].source
    assert "    if not (item > 50 and gap.min() >= 2):\n" in children["negate"].source
    assert ("    if not (item > 50 and gap.min() >= 2):\n        score -= 1.0\n    else:\n"
            "        score = score + np.sqrt(bins)\n") in children["swap"].source
    assert tk.Program.parse(children["negate"].source).branches()[0].negate().source == PROGRAM  # not not
    # crossover: a whole function, and a range of statements, from an inspiration's EVOLVE-BLOCK
    other = tk.Program.parse(INSPIRATION)
    mine = program.function("priority")
    whole = mine.replace_with(other.function("priority"))
    _legal(PROGRAM, whole.source)
    assert "np.maximum(bins - item, 0.0)" in whole.source and "def helper(x, y):" in whole.source
    spliced = mine.splice(score.index, score.index + 1, other.function("priority").statements()[1:2])
    _legal(PROGRAM, spliced.source)
    assert "    score = -gap / (item + 1.0)\n" in spliced.source and "-gap * ALPHA" not in spliced.source
    renamed = program.function("helper").replace_with(other.function("priority"))
    assert "def helper(item: float, bins" in renamed.source
    assert program.function("helper").replace("def helper(x, y):\n    return x + y\n").source.count("x + y") == 1


def test_edits_chain_and_programs_are_values():
    program = tk.Program.parse(PROGRAM)
    child = program.constants()[0].set(0.75)
    child = child.constants()[1].set(40)  # the same literal at the same index on the child
    child = child.comparisons()[0].swap(">=")
    assert program.source == PROGRAM and program.changes == ()
    assert "ALPHA = 0.75" in child.source and "if item >= 40 and" in child.source
    assert len(child.changes) == 3 and str(child) == child.render() == child.source
    assert program.constants()[0].set(0.75).source == tk.Program(program.source).constants()[0].set(0.75).source


def test_format_preservation():
    """Tabs, multi-line expressions and comments: an edit changes its own line and nothing else."""
    source = ("import numpy as np\n\ndef f(x, y):\n\tif x > 1:  # keep\n\t\tz = x\n\telif (x < 0.5 and\n"
              "\t      y > 2.0):\n\t\tz = np.maximum(x,\n\t\t               y * 3.0)  # keep too\n"
              "\telse:\n\t\tz = (x +\n\t\t     y) / 2.0\n\t# between\n\tz = z * 1.5\n\treturn z\n")
    program = tk.Program.parse(source)
    for index, constant in enumerate(program.constants()):
        child = constant.set(7.25)
        assert _changed(source, child.source) == [constant.line], (index, child.source)
    child = program.statements()[-2].insert_before("z = z + 1.0")
    assert "\t# between\n\tz = z + 1.0\n\tz = z * 1.5\n" in child.source or \
        "\tz = z + 1.0\n\t# between\n\tz = z * 1.5\n" in child.source
    assert child.source.count("# keep") == 2 and syntax_error(child.source) is None


def test_edits_stay_inside_the_evolve_blocks():
    program = tk.Program.parse(PROGRAM)
    texts = [site.text for site in (*program.constants(), *program.expressions(), *program.statements())]
    assert not any("12345.678" in t or "99.5" in t or "LIMIT" in t for t in texts)
    with pytest.raises(tk.EditError, match="EVOLVE-BLOCK"):  # a smuggled marker is refused
        program.expressions()[1].replace("(bins -\n# EVOLVE-BLOCK-END\n item)")
    inserted = program.statements()[0].insert_after("x = 1\n# EVOLVE-BLOCK-START\ny = 2")
    assert "    x = 1\n    y = 2\n" in inserted.source and inserted.source.count("EVOLVE-BLOCK-START") == 1
    with pytest.raises(tk.EditError, match="docstring"):
        program.statements()[0].move(0)
    frozen_outside = tk.Program.parse(INSPIRATION.replace("# EVOLVE-BLOCK-START\n", "").replace(
        "# EVOLVE-BLOCK-END\n", "") + "# EVOLVE-BLOCK-START\nK = 1.0\n# EVOLVE-BLOCK-END\n")
    assert [c.text for c in frozen_outside.constants()] == ["1.0"] and frozen_outside.functions() == []
    inside_body = textwrap.dedent('''\
        def f(x, y):
            a = x + 1  # frozen
            # EVOLVE-BLOCK-START
            b = a * 2.0
            c = b - y
            # EVOLVE-BLOCK-END
            return c + a
        ''')
    body = tk.Program.parse(inside_body)
    [f] = body.functions()
    assert not f.editable and [s.text.strip() for s in f.statements()] == ["b = a * 2.0", "c = b - y"]
    with pytest.raises(tk.EditError, match="not wholly inside"):
        f.replace_with(tk.Program.parse(PROGRAM).function("helper"))
    with pytest.raises(tk.EditError, match="not all inside"):
        f.splice(0, 2, [])
    for stmt in f.statements():
        for child in (stmt.delete(), stmt.duplicate(), stmt.guard("y > 0")):
            _legal(inside_body, child.source)


def test_errors_name_the_problem():
    with pytest.raises(tk.ParseError, match="does not parse"):
        tk.Program.parse("def broken(:\n")
    with pytest.raises(tk.ParseError, match="EVOLVE-BLOCK-START"):
        tk.Program.parse("# EVOLVE-BLOCK-START\nx = 1\n")
    program = tk.Program.parse(PROGRAM)
    with pytest.raises(tk.EditError, match="unknown operator"):
        program.binary_operators()[0].swap("<>")
    with pytest.raises(tk.EditError, match="not an expression"):
        program.constants()[0].replace("1 +")
    with pytest.raises(tk.EditError, match="finite"):
        program.constants()[0].set(float("nan"))
    with pytest.raises(tk.EditError, match="changed nothing"):
        program.constants()[0].set(0.5)
    with pytest.raises(tk.EditError, match="no else"):
        tk.Program.parse(INSPIRATION.replace("    return score", "    if item:\n        pass\n    return score")
                         ).branches()[0].swap_branches()
    with pytest.raises(tk.EditError, match="template"):
        program.expressions()[1].wrap("np.sqrt(x)")
    assert issubclass(tk.ParseError, tk.ToolkitError) and issubclass(tk.EditError, tk.ToolkitError)
    lazy = tk.Program("def broken(:\n")  # parsed on first use
    with pytest.raises(tk.ParseError):
        lazy.constants()


def test_mutate_operators_are_toolkit_users():
    """Four built-in operators find their sites with the toolkit, and still pass mutate's own checks."""
    proposer, rng = MutateProposer(), random.Random(3)
    for operator in ("perturb_constant", "swap_binop", "swap_compare", "wrap_ufunc"):
        op = proposer._by_name[operator]
        sites = op.sites(Ctx(analyze(PROGRAM), [], ()))
        assert sites and all(isinstance(s[0] if isinstance(s, tuple) else s, tk.Site) for s in sites)
        for _ in range(5):
            _legal(PROGRAM, proposer.edit(PROGRAM, [], operator, rng).source)


# ----------------------------------------------------------------------------- operators an improver owns

HOSTILE = '''
import os
import sys

from rsi.improvers import Step

EVALUATOR = {evaluator!r}
SCHEDULE = ["peek", "loop", "not_a_string", "boom", "exit"]


def start(ctx):
    ctx.state.setdefault("turn", 0)


def next_step(ctx):
    turn = ctx.state["turn"]
    ctx.state["turn"] = turn + 1
    name = SCHEDULE[turn] if turn < len(SCHEDULE) else "good"
    return Step(parent=ctx.archive.best().id, proposer="improver", operator=name)


def good(ctx):
    constant = ctx.rng.choice(ctx.parent.constants())
    ctx.state["good"] = ctx.state.get("good", 0) + 1
    return constant.set(constant.value + ctx.rng.uniform(-1, 1))


def peek(ctx):
    ctx.state["peeked"] = True  # dropped: the call fails
    secret = open(EVALUATOR).read()
    return ctx.parent.source + "\\n# " + secret[:20].replace("\\n", " ") + "\\n"


def loop(ctx):
    while True:
        try:
            pass
        except BaseException:
            pass


def not_a_string(ctx):
    return 42


def boom(ctx):
    raise ValueError("this operator is broken")


def exit(ctx):
    sys.exit(3)


OPERATORS = {{"good": good, "peek": peek, "loop": loop, "not_a_string": not_a_string, "boom": boom, "exit": exit}}
'''


def _problem(tmp_path: Path, budget: int = 10) -> Path:
    return write_problem(tmp_path / "target", toml=f"""\
        [run]
        budget = {budget}
        workers = 2
        [evaluator]
        timeout = 10
        [archive]
        islands = 2
        """)


def test_hostile_operators_each_cost_one_proposal(tmp_path):
    problem = _problem(tmp_path, budget=6)
    evaluator = problem / "evaluate.py"
    before = evaluator.read_text()
    improver = tmp_path / "hostile.py"
    improver.write_text(HOSTILE.format(evaluator=str(evaluator)))
    summary = rsi.improve(problem, tmp_path / "run", budget=6, seed=2, improver=improver)
    assert summary.stop_reason is rsi.StopReason.BUDGET and summary.evaluations == 6
    with rsi.open_run(tmp_path / "run") as results:
        children = [c for c in results.candidates() if c.proposer != "seed"]
        assert results.verify_audit().ok
        state = results.store.load_state()["improver"]
    assert all(c.proposer == "improver" for c in children)
    failed = {c.operator: c.error for c in children if c.status == rsi.Status.INVALID}
    assert sorted(failed) == ["boom", "exit", "loop", "not_a_string", "peek"]  # each cost one proposal
    assert "CPU time limit" in failed["loop"]
    assert "returned int" in failed["not_a_string"]
    assert "raised ValueError: this operator is broken (hostile.py, line" in failed["boom"]
    assert "raised SystemExit: 3" in failed["exit"]
    if CONFINED:
        assert "PermissionError" in failed["peek"]
    assert sum(c.status == rsi.Status.OK and c.operator == "good" for c in children) == 5
    assert state["good"] >= 5 and "peeked" not in state  # a failed call's state changes are dropped
    assert evaluator.read_text() == before


def test_an_improver_with_its_own_operator_drives_a_real_search(tmp_path):
    """The worked example: the seed improver plus its own `tune` operator."""
    problem = _problem(tmp_path, budget=30)
    summary = rsi.improve(problem, tmp_path / "run", budget=30, seed=1, improver=TUNING)
    assert summary.stop_reason is rsi.StopReason.BUDGET
    with rsi.open_run(tmp_path / "run") as results:
        tuned = [c for c in results.candidates() if c.proposer == "improver"]
    assert tuned and all(c.operator == "tune" and c.rationale.startswith("set constant") for c in tuned)
    assert any(c.status == rsi.Status.OK and c.score is not None and c.score > summary.seed.score for c in tuned)
    assert summary.best.score > summary.seed.score


def test_same_seed_same_run_with_improver_operators(tmp_path):
    def run(name: str) -> list[tuple]:
        rsi.improve(_problem(tmp_path / name, budget=14), tmp_path / name / "run", budget=14, seed=4,
                    improver=TUNING)
        with rsi.open_run(tmp_path / name / "run") as results:
            return [(c.id, c.proposer, c.operator, c.fingerprint, c.status, c.score) for c in results.candidates()]

    first = run("a")
    assert any(row[1] == "improver" for row in first) and first == run("b")


def test_search_wiring_and_the_seed_bandit_sees_the_arms(tmp_path):
    improver = tmp_path / "seed_plus.py"
    improver.write_text("from rsi.improvers.seed import DEFAULTS, next_step, observe, start  # noqa: F401\n\n"
                        "def halve(ctx):\n    c = ctx.parent.constants()[0]\n    return c.set(c.value / 2)\n\n"
                        "OPERATORS = {'halve': halve}\n")
    search = rsi.Search.create(_problem(tmp_path), tmp_path / "run", improver=improver)
    try:
        assert search.proposers["improver"].operators == ["halve"]
        search.ask()  # the seed: the loop state (the improver's included) is stored with it
        arms = search.store.load_state()["improver"]["bandit"]["arms"]
        assert "improver:halve" in arms and "mutate:perturb_constant" in arms
    finally:
        search.close()
    plain = rsi.Search.create(_problem(tmp_path / "b"), tmp_path / "run2")
    try:
        assert "improver" not in plain.proposers  # the seed improver defines no OPERATORS
        plain.use_improver(load_improver(improver))  # adopting an improver brings its operators ...
        assert plain.proposers["improver"].operators == ["halve"] and "mutate" in plain.proposers
        plain.use_improver(load_improver(None))  # ... and adopting one without takes them away
        assert "improver" not in plain.proposers and "mutate" in plain.proposers
    finally:
        plain.close()


def _ops(tmp_path: Path, body: str, **kwargs) -> ImproverOperators:
    path = tmp_path / f"imp_{abs(hash(body))}.py"
    header = "from rsi.improvers import Step\n\ndef next_step(ctx):\n    return None\n\n"
    path.write_text(header + textwrap.dedent(body))
    return ImproverOperators(load_improver(path), **kwargs)


def _request(operator: str | None = None, seed: int = 5, source: str = PROGRAM) -> ProposalRequest:
    return ProposalRequest(parent=Stored(7, source, -1.0, {"m": 1.0}), inspirations=(Stored(3, INSPIRATION, -2.0),),
                           operator=operator, seed=seed, options={"k": 1})


def test_operator_context_state_and_determinism(tmp_path):
    state: dict = {"kept": [1, 2]}
    ops = _ops(tmp_path, '''
        DEFAULTS = {"factor": 2.0}

        def scale(ctx):
            assert ctx.parent_id == 7 and ctx.parent_score == -1.0 and ctx.parent_metrics["m"] == 1.0
            assert ctx.inspiration_ids == (3,) and ctx.inspiration_scores == (-2.0,) and ctx.options["k"] == 1
            assert ctx.inspirations[0].function("priority") is not None and ctx.name == "scale"
            ctx.state["calls"] = ctx.state.get("calls", 0) + 1
            constant = ctx.rng.choice(ctx.parent.constants())
            return constant.set(constant.value * ctx.settings["factor"] * ctx.rng.random())

        def nothing(ctx):
            ctx.state["nothing"] = True
            return None

        OPERATORS = {"scale": scale, "nothing": nothing}
        ''', settings={"factor": 3.0}, state=lambda: state)
    assert ops.operators == ["scale", "nothing"] and ops.name == "improver"
    first = ops.propose(_request("scale"))
    assert first.operator == "scale" and first.rationale.startswith("set constant")
    assert ops.propose(_request("scale")).source == first.source  # the call's seed gives its rng
    assert ops.propose(_request("scale", seed=6)).source != first.source
    assert state == {"kept": [1, 2], "calls": 3}  # the operator's changes to ctx.state are kept
    with pytest.raises(ProposalFailed, match="returned None"):
        ops.propose(_request("nothing"))
    assert state["nothing"] is True  # kept: the operator returned
    with pytest.raises(ProposalFailed, match="no operator 'missing'"):
        ops.propose(_request("missing"))
    chosen = set()
    for seed in range(12):  # operator None: the call's rng picks one
        try:
            chosen.add(ops.propose(_request(None, seed=seed)).operator)
        except ProposalFailed as exc:
            chosen.add("nothing" if "returned None" in str(exc) else str(exc))
    assert chosen == {"scale", "nothing"}
    with pytest.raises(ProposalFailed, match="ParseError"):
        ops.propose(_request("scale", source="def broken(:\n"))


def test_the_guard_contains_what_an_operator_does(tmp_path):
    marker = tmp_path / "written.txt"
    ops = _ops(tmp_path, f'''
        import os, sys

        def kill_engine(ctx):
            os.kill(os.getppid(), 0)  # signal 0: only asks whether it may (harmless if it may)

        def hard_exit(ctx):
            os._exit(0)

        def write(ctx):
            open({str(marker)!r}, "w").write("x")
            return ctx.parent.source

        def fd(ctx):
            for n in range(3, 64):
                try:
                    os.fstat(n)
                    return "fd %d is open" % n
                except OSError:
                    pass
            return None

        def unjsonable(ctx):
            ctx.state["bad"] = object()
            return ctx.parent.source

        def memory(ctx):
            block = bytearray(4 << 30)
            return str(len(block))

        def fork(ctx):
            if os.fork() == 0:  # a process that would outlive the call
                while True:
                    pass
            return None

        def thread(ctx):
            import threading
            box = []
            worker = threading.Thread(target=lambda: box.append(ctx.parent.constants()[0].set(9.0)))
            worker.start()
            worker.join()
            return box[0]

        OPERATORS = {{"kill_engine": kill_engine, "hard_exit": hard_exit, "write": write, "fd": fd,
                      "unjsonable": unjsonable, "memory": memory, "fork": fork, "thread": thread}}
        ''')
    assert "ALPHA = 9.0" in ops.propose(_request("thread")).source  # threads are allowed
    reasons = {}
    for name in ops.operators:
        if name == "fork" and not CONFINED:
            continue  # without seccomp the forked loop would live until its CPU limit
        if name == "thread":
            continue
        with pytest.raises(ProposalFailed) as info:
            ops.propose(_request(name))
        reasons[name] = str(info.value)
    assert "without a reply" in reasons["hard_exit"]
    assert "not JSON data" in reasons["unjsonable"]
    assert "MemoryError" in reasons["memory"]
    assert "returned None" in reasons["fd"]  # no inherited descriptor (the run's database) is open
    assert "raised" in reasons["write"]  # Landlock refuses it, or else a file size limit of 0
    if CONFINED:
        assert "PermissionError" in reasons["kill_engine"] and "PermissionError" in reasons["write"]
        assert not marker.exists()
        assert ops.protections == ["fork", "rlimits", "landlock", "seccomp"]
        assert "raised PermissionError" in reasons["fork"]  # no new process
    assert os.getpid()  # still here


def test_bad_operator_tables_are_refused(tmp_path):
    for table, match in (("[1]", "non-empty dict"), ("{}", "non-empty dict"), ("{'a b': len}", "identifiers"),
                         ("{'x': 3}", "not a function")):
        path = tmp_path / f"bad{abs(hash(table))}.py"
        path.write_text(f"def next_step(ctx):\n    return None\n\nOPERATORS = {table}\n")
        with pytest.raises(RsiError, match=match):
            improver_operators(load_improver(path))
    assert improver_operators(load_improver(None)) == {}  # the seed improver: no "improver" proposer
