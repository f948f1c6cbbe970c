"""The ``nudge`` proposer: one small move of one of a program's named settings.

Programs under improvement often keep their knobs at the top, as module-level assignments inside
the EVOLVE-BLOCK (``RATE = 0.002``, ``STARTS = 24``, ``ROWS = [5, 5, 6, 5, 5]``, ``SEED = 0``).
Where a search's budget is a few hundred evaluations and each setting matters on its own, moving
*one* of them at a time pays better than moving all of them at once (``tune``'s CMA-ES does that,
and its early generations are close to a random search of every setting together), and better than
``mutate``'s ``perturb_constant``, which picks among every literal of the program (array indices,
an optimiser's own 0.9) and moves an int by whole steps without knowing it is part of a list.

The settings are found with the toolkit (``rsi.toolkit.Constant.setting``: the numbers of a
module-level ``NAME = ...``). Three operators, so that an improver's bandit learns which kind of
move pays on a problem:

``nudge_float``  one float setting times a log-normal factor, ``exp(N(0, s))`` with ``s`` drawn
                 from 0.1, 0.5 and 1.0 (small, medium and large steps); a 0.0 becomes +-0.001 to +-1
``nudge_int``    one int setting (not one of nudge_list's lists) moved by +-1 (60%), +-2 (20%), doubled
                 or halved (20%); from 10 up, the +-1 and +-2 become a log-normal factor (s 0.1 or
                 0.5, rounded); it keeps its sign: a positive int stays at least 1, a zero at least 0
``nudge_list``   one list or tuple of two or more ints >= 0 (``ROWS = [5, 5, 6, 5, 5]``): one
                 unit moved from one element to another (the total kept, e.g. ``[5, 6, 5, 5, 5]``),
                 two neighbours swapped, or one element +-1; elements stay at least 1 (or 0)

Each proposal is one evaluation; all randomness comes from ``request.rng`` (a seed reproduces a
run). A program with nothing for an operator to move raises ``ProposalFailed`` naming what is
missing. Use it by listing it: ``[run] proposers = ["mutate", "nudge"]``; no settings.
"""

from __future__ import annotations

import math
import random

from .. import toolkit
from ..errors import ProposalFailed
from .base import Proposal, ProposalRequest

OPERATORS = ("nudge_float", "nudge_int", "nudge_list")
FLOAT_STEPS = (0.1, 0.5, 1.0)  # sd of the log of a float's factor, one drawn per move
DIGITS = 6  # significant digits a nudged float is written with


class NudgeProposer:
    """One move of one named setting; see the module docstring."""

    name = "nudge"

    @property
    def operators(self) -> list[str]:
        return list(OPERATORS)

    def propose(self, request: ProposalRequest) -> Proposal:
        operator = request.operator
        if operator is None:
            operator = request.rng.choice(OPERATORS)
        if operator not in OPERATORS:
            raise ProposalFailed(f"nudge has no operator {operator!r} (it has: {', '.join(OPERATORS)})")
        try:
            program = toolkit.Program.parse(request.parent.source)
        except toolkit.ParseError as exc:
            raise ProposalFailed(f"nudge: {exc}") from None
        settings = [(i, c) for i, c in enumerate(program.constants()) if c.setting is not None]
        rng = request.rng
        try:
            if operator == "nudge_float":
                child, what = _nudge_float(program, settings, rng)
            elif operator == "nudge_int":
                child, what = _nudge_int(program, settings, rng)
            else:
                child, what = _nudge_list(program, settings, rng)
        except toolkit.EditError as exc:
            raise ProposalFailed(f"{operator}: {exc}") from None
        return Proposal(source=child.render(), operator=operator, rationale=what)


def _nudge_float(program: toolkit.Program, settings: list, rng: random.Random) -> tuple[toolkit.Program, str]:
    floats = [(i, c) for i, c in settings if not c.is_int]
    if not floats:
        raise ProposalFailed("nudge_float: the program has no float settings (module-level NAME = 0.5)")
    index, site = rng.choice(floats)
    old = float(site.value)
    for _ in range(8):
        if old == 0.0:
            new = rng.choice((-1.0, 1.0)) * 10 ** rng.uniform(-3.0, 0.0)
        else:
            new = old * math.exp(rng.gauss(0.0, rng.choice(FLOAT_STEPS)))
        if f"{new:.{DIGITS}g}" != f"{old:.{DIGITS}g}":
            break
    child = program.constants()[index].set(new, DIGITS)
    return child, f"nudge {site.setting} {site.text} -> {_written(child, index)} (x{new / old:.3g})" if old else \
        f"nudge {site.setting} {site.text} -> {_written(child, index)}"


def _step_int(value: int, rng: random.Random) -> int:
    draw = rng.random()
    if abs(value) >= 10 and draw < 0.8:  # a count of steps or samples: a relative move
        new = round(value * math.exp(rng.gauss(0.0, rng.choice(FLOAT_STEPS[:2]))))
    elif draw < 0.6:
        new = value + rng.choice((-1, 1))
    elif draw < 0.8:
        new = value + rng.choice((-2, 2))
    else:
        new = value * 2 if rng.random() < 0.5 or abs(value) < 2 else int(value / 2)
    floor = 1 if value > 0 else 0 if value == 0 else None
    if floor is not None:
        new = max(new, floor)
    else:
        new = min(new, -1)
    return new if new != value else value + (1 if value >= 0 else -1)


def _nudge_int(program: toolkit.Program, settings: list, rng: random.Random) -> tuple[toolkit.Program, str]:
    listed = {i for _, members in _int_lists(settings) for i in members}  # those are nudge_list's
    ints = [(i, c) for i, c in settings if c.is_int and i not in listed]
    if not ints:
        raise ProposalFailed("nudge_int: the program has no int settings (module-level NAME = 24, outside int lists)")
    index, site = rng.choice(ints)
    new = _step_int(int(site.value), rng)
    child = program.constants()[index].set(new)
    return child, f"nudge {site.setting} {site.text} -> {new}"


def _int_lists(settings: list) -> list[tuple[str, list[int]]]:
    """Settings that are a list or tuple of two or more ints, none negative: (name, constant indices)."""
    groups: dict[str, list[tuple[int, object]]] = {}
    for i, c in settings:
        if c.element is not None:
            groups.setdefault(c.setting, []).append((i, c))
    return [(name, [i for i, _ in members]) for name, members in groups.items()
            if len(members) >= 2 and all(c.is_int and c.value >= 0 for _, c in members)]  # type: ignore[attr-defined]


def _nudge_list(program: toolkit.Program, settings: list, rng: random.Random) -> tuple[toolkit.Program, str]:
    lists = _int_lists(settings)
    if not lists:
        raise ProposalFailed("nudge_list: the program has no list of int settings (module-level NAME = [5, 6, 5])")
    name, members = rng.choice(lists)
    sites = program.constants()
    old = [int(sites[i].value) for i in members]
    floors = [1 if v > 0 else 0 for v in old]
    new = list(old)
    draw = rng.random()
    if draw < 0.5:  # one unit from one element to another: the total stays
        donors = [k for k, v in enumerate(old) if v - 1 >= floors[k]]
        if donors:
            k = rng.choice(donors)
            j = rng.choice([m for m in range(len(old)) if m != k])
            new[k] -= 1
            new[j] += 1
    elif draw < 0.75:  # two neighbours swapped
        pairs = [k for k in range(len(old) - 1) if old[k] != old[k + 1]]
        if pairs:
            k = rng.choice(pairs)
            new[k], new[k + 1] = new[k + 1], new[k]
    if new == old:  # or one element +-1
        k = rng.randrange(len(old))
        new[k] = max(floors[k], old[k] + rng.choice((-1, 1)))
        if new[k] == old[k]:
            new[k] += 1
    child = program
    for i, value, before in zip(members, new, old, strict=True):
        if value != before:
            child = child.constants()[i].set(value)
    return child, f"nudge {name} {old} -> {new}"


def _written(program: toolkit.Program, index: int) -> str:
    return program.constants()[index].text
