"""The settings of a self-improvement run, and the problem "the current improver" it works on.

``SelfImproveConfig`` is what ``rsi self-improve`` records in ``selfimprove.json`` (and checks
on ``--resume``); ``improver_problem`` is the problem whose program is the improver, with its
EVOLVE-BLOCK after the imports (``with_block``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RsiError
from ..problem import Problem
from ..program import BLOCK_END, BLOCK_START, has_markers
from ..settings import ProblemSettings
from .metautil import PRODUCE, UnitLimits
from .suite import SuiteProblem, load_suite


@dataclass
class SelfImproveConfig:
    generations: int = 4
    budget: int = 100  # inner evaluations per search
    seeds: int = 2  # training seeds per problem
    validation_seeds: int = 12
    confirm_seeds: int = 1  # fresh training seeds per problem to confirm a screened candidate; 0: no confirmation
    neutral_after: int = 4  # searches identical to the parent's after which a candidate counts as neutral; 0: off
    test_seeds: int = 4
    meta_budget: int = 10  # candidate improvers per generation
    challengers: int = 1  # best training candidates validated per generation
    workers: int = 2  # inner searches at a time
    parallel: int = 2  # candidate improvers measured at a time
    approval: str = "auto"
    level: float = 0.05
    seed: int = 0
    report_test: bool = True
    limits: UnitLimits = field(default_factory=UnitLimits)
    isolation: str | None = None  # passed to the evaluator pools (None: their default, full)
    problems: list[str] | None = None  # only these suite problems (quick runs, tests); None: all
    proposers: list[str] | None = None  # of candidate improvers; None: proposers_for(the starting improver)
    # a memory every inner search hands its improver (ctx.memory): a memory file, "learn" (learned at the
    # start from searches of the training problems by rsi's seed improver), or None; the run keeps a copy.
    # "offer": learned so, handed to no search, and written into candidate improvers by the remember move
    memory: str | None = None
    # the [proposer.llm] table when a language model also writes candidate improvers (STOP-style
    # rewrites of the improver's code); None: no model
    llm: dict[str, Any] | None = None

    def suite(self, split: str) -> list[SuiteProblem]:
        found = load_suite(split)
        return found if self.problems is None else [p for p in found if p.name in self.problems]

    def __post_init__(self):
        if self.approval not in ("auto", "manual"):
            raise RsiError(f"--approval must be auto or manual, not {self.approval!r}")
        for name in ("generations", "budget", "seeds", "validation_seeds", "meta_budget", "challengers", "workers",
                     "parallel"):
            if getattr(self, name) < 1:
                raise RsiError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.test_seeds < 0 or self.confirm_seeds < 0 or self.neutral_after < 0:
            raise RsiError("test_seeds, confirm_seeds and neutral_after must be 0 or more")
        if isinstance(self.limits, dict):
            self.limits = UnitLimits(**self.limits)

    def seeds_of(self, split: str) -> list[int]:
        base = 1000 * self.seed + {"train": 1, "confirm": 51, "validation": 101, "test": 201}[split]
        count = {"train": self.seeds, "confirm": self.confirm_seeds, "validation": self.validation_seeds,
                 "test": self.test_seeds}[split]
        return list(range(base, base + count))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def improver_problem(folder: Path, improver_source: str, config: SelfImproveConfig) -> Problem:
    """The problem "the current improver": its program is the improver (EVOLVE-BLOCK after the
    imports, ``with_block``), written to ``folder/initial.py``; its evaluator is the meta-utility,
    which only ``rsi self-improve`` measures (the problem names ``evaluators/produce.py`` as its
    trusted file, so the run's evaluator hash covers the meta-utility's code)."""
    folder.mkdir(parents=True, exist_ok=True)
    initial = folder / "initial.py"
    if not initial.is_file():
        initial.write_text(with_block(improver_source))
    readme = folder / "README.md"
    if not readme.is_file():
        readme.write_text(IMPROVER_PROBLEM)
    source = initial.read_text()
    proposers = list(config.proposers or proposers_for(source))
    data: dict[str, Any] = {
        "run": {"budget": 1, "seed": config.seed, "workers": config.parallel, "proposers": proposers},
        "archive": {"features": ["code_size"], "bins": 4, "islands": 2, "migration_interval": 8},
        "oversight": {"promote_every": None},  # improvers are adopted by the self-improvement gate
    }
    if config.llm is not None:
        data.setdefault("proposer", {})["llm"] = dict(config.llm)
        proposers += [] if "llm" in proposers else ["llm"]
    if config.memory == "offer":  # the run's memory file (learned at its start) as a move on candidate improvers
        data.setdefault("proposer", {})["remember"] = {"memory": "../memory.json"}  # OUT/memory.json
        proposers += [] if "remember" in proposers else ["remember"]
    settings = ProblemSettings.model_validate(data)
    return Problem(folder.resolve(), source, PRODUCE, False, settings)


IMPROVER_PROBLEM = """\
# The current improver

The program is an rsi improver: the search policy that drives an rsi search. At each step rsi
calls its `next_step(ctx)`, which returns a `Step`: the parent program to change, the proposer and
operator that write the child, the inspirations shown to the proposer. `ctx` holds the search so
far (the population with scores, islands, the budget left, the improver's own state and settings).

Its score is its meta-utility: the mean normalised gain (0: the problem's initial program, 1: a
reference program) of short rsi searches it drives on a suite of training problems (regression,
scheduling, bin packing, caching, sorting and more), re-scored by trusted code. A better improver
finds better programs within the same number of evaluations: it picks promising parents, spends
evaluations on operators that pay, and escapes stagnation. It must stay a valid improver: define
`next_step(ctx)` (and optionally `start(ctx)`, `observe(ctx, step, outcome)`), keep its imports, and not
read or write anything outside what `ctx` gives it.
"""


def proposers_for(improver_source: str) -> list[str]:
    """The proposers of candidate improvers: for a composed improver (a ``SPEC`` in its block,
    ``rsi/improvers/composed.py``), the component grammar alone (``rsi.meta.grammar``: every child
    valid by construction; its ``cst`` operator already makes the libcst edits that keep the SPEC
    valid, whereas raw mutate edits crashed 3 of 4 of their candidates); for any other improver,
    mutate alone. ``--proposers grammar,mutate`` adds mutate back."""
    from ..errors import ProposalFailed
    from .grammar import read_spec

    try:
        read_spec(improver_source)
    except ProposalFailed:
        return ["mutate"]
    return ["grammar"]


def with_block(source: str) -> str:
    """The improver with EVOLVE-BLOCK markers around everything after its docstring and imports
    (so that edits go to settings and logic, not to imports); unchanged if it has markers."""
    if has_markers(source):
        return source
    import ast

    tree = ast.parse(source)
    last = 0
    for node in tree.body:
        is_doc = (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                  and isinstance(node.value.value, str))
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (is_doc and last == 0):
            last = node.end_lineno or last
        else:
            break
    lines = source.splitlines()
    body = lines[last:]
    return "\n".join(lines[:last] + ["", BLOCK_START] + body + [BLOCK_END]) + "\n"
