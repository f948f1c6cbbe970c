"""The ``grammar`` proposer: meta-level edits of a composed improver that are valid by construction.

A composed improver (``rsi/improvers/composed.py``) is a ``SPEC`` literal in its EVOLVE-BLOCK and
frozen code that builds the search policy from it through ``rsi.improvers.components``. This
proposer reads the parent's ``SPEC`` (``ast.literal_eval``: nothing of the parent runs), edits
it through the component library's declarations, checks the result by building its policy
(``components.build``), and writes it back in the library's canonical layout
(``components.render``), so every child is an improver that loads and runs:

==========================  ========================================================================
``switch``                  another component for one role, with its default parameters
``move``                    one parameter of one component to a nearby value within its bounds
                            (multiplicatively for scales, a step of a sixth of the range otherwise;
                            bools flip, choices change)
``jump``                    one parameter to a value drawn over its whole range
``toggle_islands``          islands used (``round_robin``) or not (``single``)
``toggle_restart``          restarts on stagnation on or off
``toggle_acceptance``       greedy or simulated-annealing acceptance
``toggle_tuning``           multi-evaluation moves (CMA-ES over a program's constants) on or off
``crossover``               one role's component and parameters taken from an inspiration's SPEC
``cst``                     a libcst edit of the SPEC by ``mutate`` (e.g. a perturbed constant),
                            kept only if the SPEC it gives is valid (up to ``MAX_TRIES`` edits)
==========================  ========================================================================

A parent without a readable ``SPEC`` (not a composed improver, or one edited into something that is
not a literal) gets no child: ``ProposalFailed``, recorded as an invalid attempt. Randomness comes
from ``request.rng`` only, so a seeded run is reproducible.

    # problem.toml of a problem whose program is a composed improver
    [run]
    proposers = ["grammar", "mutate"]
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable
from typing import Any

from ..errors import ProgramError, ProposalFailed
from ..improvers import components as lib
from ..program import edit_violation, editable_regions
from ..proposers.base import Proposal, ProposalRequest

MAX_TRIES = 12
Spec = dict[str, dict[str, Any]]
# keys the ``fixed`` operator rule's weights may name: proposers, and mutate's operators as arms
WEIGHT_KEYS = ("mutate", "improver", "llm")


def read_spec(source: str) -> tuple[Spec, tuple[int, int]]:
    """The normalised ``SPEC`` of an improver's source and the lines (first, last, 1-based) of its
    assignment; ProposalFailed if there is none inside an EVOLVE-BLOCK, or it is not a valid spec."""
    try:
        tree = ast.parse(source)
        regions = editable_regions(source)
    except (SyntaxError, ValueError, ProgramError) as exc:
        raise ProposalFailed(f"grammar: the parent does not parse ({exc})") from None
    found = [node for node in tree.body if isinstance(node, ast.Assign) and len(node.targets) == 1
             and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "SPEC"]
    if len(found) != 1:
        raise ProposalFailed("grammar: the parent is not a composed improver (no single top-level `SPEC = {...}`; "
                             "see rsi/improvers/composed.py)")
    node = found[0]
    first, last = node.lineno, node.end_lineno or node.lineno
    if not any(r.first <= first and last <= r.last for r in regions):
        raise ProposalFailed("grammar: the parent's SPEC is not inside an EVOLVE-BLOCK")
    try:
        spec = lib.normalise(ast.literal_eval(node.value))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ProposalFailed(f"grammar: the parent's SPEC is not a literal ({type(exc).__name__})") from None
    except lib.SpecError as exc:
        raise ProposalFailed(f"grammar: the parent's SPEC is invalid: {exc}") from None
    return spec, (first, last)


def write_spec(source: str, lines: tuple[int, int], spec: Spec) -> str:
    """``source`` with the SPEC assignment on ``lines`` replaced by ``spec``, rendered."""
    text = source.splitlines(keepends=True)
    first, last = lines
    return "".join(text[: first - 1]) + lib.render(spec) + "".join(text[last:])


# --- the operators: each returns (new spec, rationale) or raises _NoEdit -----------------------------
class _NoEdit(Exception):
    pass


def _copy(spec: Spec) -> Spec:
    return {role: {k: (dict(v) if isinstance(v, dict) else v) for k, v in entry.items()}
            for role, entry in spec.items()}


def _switch(spec: Spec, rng: random.Random, others: list[Spec]) -> tuple[Spec, str]:
    role = rng.choice([r for r, classes in lib.ROLES.items() if len(classes) > 1])
    current = spec[role]["use"]
    cls = rng.choice([c for c in lib.ROLES[role] if c.name != current])
    new = _copy(spec)
    new[role] = lib.entry(cls)
    return new, f"{role}: {current} -> {cls.name} (default parameters)"


def _params(spec: Spec) -> list[tuple[str, lib.Param]]:
    return [(role, param) for role, entry in spec.items()
            for param in lib.component(role, entry["use"]).params]


def _move(spec: Spec, rng: random.Random, others: list[Spec], jump: bool = False) -> tuple[Spec, str]:
    sites = _params(spec)
    if not sites:
        raise _NoEdit("no component of this SPEC has a parameter")
    role, param = rng.choice(sites)
    old = spec[role][param.name]
    keys = WEIGHT_KEYS + tuple(f"mutate:{op}" for op in _mutate_operators())
    new_value = param.sample(rng, keys) if jump else param.move(old, rng, keys)
    if new_value == old:
        raise _NoEdit(f"{role}.{param.name} did not change")
    new = _copy(spec)
    new[role][param.name] = new_value
    return new, f"{role}.{param.name} of {spec[role]['use']}: {old!r} -> {new_value!r}"


def _jump(spec: Spec, rng: random.Random, others: list[Spec]) -> tuple[Spec, str]:
    return _move(spec, rng, others, jump=True)


def _toggle(role: str, off: str, on: str) -> Callable[[Spec, random.Random, list[Spec]], tuple[Spec, str]]:
    def toggle(spec: Spec, rng: random.Random, others: list[Spec]) -> tuple[Spec, str]:
        current = spec[role]["use"]
        target = off if current != off else on
        new = _copy(spec)
        new[role] = lib.entry(lib.component(role, target))
        return new, f"{role}: {current} -> {target}"
    return toggle


def _crossover(spec: Spec, rng: random.Random, others: list[Spec]) -> tuple[Spec, str]:
    options = [(role, other[role]) for other in others for role in lib.ROLES if other[role] != spec[role]]
    if not options:
        raise _NoEdit("no inspiration has a SPEC that differs from the parent's")
    role, entry = rng.choice(options)
    new = _copy(spec)
    new[role] = dict(entry)
    return new, f"{role}: {spec[role]['use']} -> {entry['use']} with its parameters, from an inspiration"


_mutate = None


def _mutate_operators() -> list[str]:
    return list(_mutate_proposer().operators)


def _mutate_proposer():
    global _mutate
    if _mutate is None:
        from ..proposers.mutate import MutateProposer

        _mutate = MutateProposer()
    return _mutate


OPERATORS: dict[str, Callable[[Spec, random.Random, list[Spec]], tuple[Spec, str]]] = {
    "switch": _switch,
    "move": _move,
    "jump": _jump,
    "toggle_islands": _toggle("islands", "round_robin", "single"),
    "toggle_restart": _toggle("restart", "none", "stagnation"),
    "toggle_acceptance": _toggle("acceptance", "greedy", "annealing"),
    "toggle_tuning": _toggle("tuning", "none", "cma"),
    "crossover": _crossover,
}


class GrammarProposer:
    """Edits of a composed improver's ``SPEC`` through the component grammar (see the module
    docstring); every child builds its policy before it is returned."""

    name = "grammar"

    @property
    def operators(self) -> list[str]:
        return [*OPERATORS, "cst"]

    def propose(self, request: ProposalRequest) -> Proposal:
        parent = request.parent.source
        spec, lines = read_spec(parent)
        others = []
        for inspiration in request.inspirations:
            try:
                others.append(read_spec(inspiration.source)[0])
            except ProposalFailed:
                continue
        operator = request.operator
        if operator is not None and operator not in self.operators:
            raise ProposalFailed(f"grammar has no operator {operator!r}; it has: {', '.join(self.operators)}")
        rng = request.rng
        reasons: list[str] = []
        for _ in range(MAX_TRIES):
            name = operator or rng.choice(self.operators)
            try:
                new, why = (self._cst(parent, request, rng) if name == "cst"
                            else OPERATORS[name](spec, rng, others))
            except _NoEdit as exc:
                reasons.append(f"{name}: {exc}")
                continue
            new = lib.normalise(new)  # a SpecError here is a bug of the operator: let it show
            if new == spec:
                reasons.append(f"{name}: the SPEC did not change")
                continue
            lib.build(new)
            child = write_spec(parent, lines, new)
            violation = edit_violation(parent, child)
            if violation is not None:  # cannot happen while the SPEC is inside a block; checked anyway
                reasons.append(f"{name}: {violation}")
                continue
            if read_spec(child)[0] != new:
                raise AssertionError("grammar: the rendered SPEC does not read back as written")
            return Proposal(source=child, operator=name, rationale=f"grammar {name}: {why}")
        tail = "; ".join(dict.fromkeys(reasons)) or "no edit"
        raise ProposalFailed(f"grammar: no valid edit after {MAX_TRIES} tries ({tail})")

    def _cst(self, parent: str, request: ProposalRequest, rng: random.Random) -> tuple[Spec, str]:
        """A mutate edit of the parent whose SPEC is still valid."""
        try:
            proposal = _mutate_proposer().edit(parent, [p.source for p in request.inspirations], None, rng)
            new, _ = read_spec(proposal.source)
        except ProposalFailed as exc:
            raise _NoEdit(str(exc)[:200]) from None
        return new, f"mutate {proposal.operator}: {proposal.rationale}"
