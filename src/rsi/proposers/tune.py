"""The ``tune`` proposer: a multi-evaluation move that tunes a program's numeric constants with CMA-ES.

One child is one point of a CMA-ES run (the ``cmaes`` library, ask/tell) over the float constants
of the parent's EVOLVE-BLOCKs: every constant ``c`` is written as ``c + s * z`` with ``s = sigma *
max(|c|, 1e-3)`` and ``z`` drawn by CMA-ES around 0, so each constant moves on its own scale.
Consecutive children of the same parent program continue one *session* (the same CMA-ES run):
``Step(parent=p, proposer="tune", operator="cma", children=8)`` spends eight evaluations tuning
``p``; a later step on ``p`` goes on where that one stopped. Every child is an ordinary candidate:
stored, evaluated, counted in the run's evaluation budget, archived if it is good.

The proposer learns what its children scored through ``observe(key, score)``, which the search
calls when a child's result is applied (in ticket order, so a seed reproduces a run); a child that
repeats an earlier program is given that program's score, one that fails to evaluate the worst of
its generation. A generation of ``population`` points is told to CMA-ES once all of them are
known; points asked while a generation waits for its last results (the search proposes child ``k``
knowing results up to ``k - workers``) are drawn from the current distribution, evaluated and
archived as usual, and left out of the update.

**Integers.** With ``integers = true`` int literals are tuned too, as integers: CMA-ES with margin
(``cmaes.CMAwM``), which samples each of them on its own grid of whole numbers and keeps a chance of
moving every one of them, where rounding a continuous CMA-ES would leave an int stuck on a plateau.
An int ``c`` moves on the scale ``max(1, sigma * |c|)`` (a ``SEED = 0`` moves too), within ten of
those steps either side, and keeps its sign (a positive int stays at least 1, a zero at least 0,
a negative one at most -1). Each number of a list (``ROWS = [5, 6, 5]``) is one of them.

**Which constants.** ``scope = "all"`` tunes every numeric literal of the EVOLVE-BLOCKs;
``scope = "settings"`` only those of module-level assignments (``RATE = 0.01``, ``ROWS = [5, 6,
5]``: ``toolkit.Constant.setting``), the named settings a program keeps at its top, and not the
literals inside its functions (array indices, axes, an optimiser's own 0.9), which tuning mostly
breaks.

Settings (``[proposer.tune]`` in problem.toml): ``population`` (CMA-ES's lambda; 0: its default,
4 + 3 ln d), ``sigma`` (initial step, relative to each constant, default 0.3), ``digits``
(significant digits written, default 6), ``integers`` (tune int literals too, as integers; default
false: loop bounds and indices are rarely worth it), ``scope`` (``"all"``, the default, or
``"settings"``), ``sessions`` (parents tuned at once; the oldest is dropped beyond it, default 8).
Sessions live in memory: a resumed run starts them again.

The proposer is always available to improvers as ``Step(proposer="tune")``; the seed improver's
bandit offers it among its arms only when ``[run] proposers`` lists it.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import toolkit
from ..errors import ProposalFailed, RsiError
from .base import Proposal, ProposalRequest

SMALLEST_SCALE = 1e-3  # a constant at 0 still moves on this scale (times sigma)
INT_SPAN = 10  # an int is tuned within this many of its steps either side of its value
SCOPES = ("all", "settings")


@dataclass
class _Point:
    z: np.ndarray  # what CMA-ES is told (with margin: its raw sample, not the integers evaluated)
    generation: int
    counted: bool  # part of its generation's update (False: an extra drawn while the generation waited)


@dataclass
class _Session:
    """One CMA-ES run over one parent program's constants."""

    values: list[float]
    scales: np.ndarray
    optimizer: object  # cmaes.CMA, or cmaes.CMAwM when some constants are integers
    generation: int = 0
    asked: int = 0  # points of the current generation handed out
    points: dict[int, _Point] = field(default_factory=dict)  # point id -> point, until told
    told: dict[int, tuple[np.ndarray, float | None]] = field(default_factory=dict)  # this generation: z, -score
    next_point: int = 0

    def ask(self) -> tuple[int, np.ndarray]:
        """A new point: its id and the steps to evaluate (integers' steps on their grids)."""
        drawn = self.optimizer.ask()  # type: ignore[attr-defined]
        evaluated, told = drawn if isinstance(drawn, tuple) else (drawn, drawn)  # CMAwM: (encoded, raw)
        counted = self.asked < self.optimizer.population_size  # type: ignore[attr-defined]
        self.asked += counted
        pid = self.next_point
        self.next_point += 1
        self.points[pid] = _Point(np.array(told, dtype=np.float64), self.generation, counted)
        return pid, np.array(evaluated, dtype=np.float64)

    def tell(self, pid: int, score: float | None) -> None:
        point = self.points.pop(pid, None)
        if point is None or not point.counted or point.generation != self.generation:
            return  # an extra, or a point of a generation already told
        self.told[pid] = (point.z, -score if score is not None and math.isfinite(score) else None)
        if len(self.told) < self.optimizer.population_size:  # type: ignore[attr-defined]
            return
        known = [v for _, v in self.told.values() if v is not None]
        worst = max(known) + abs(max(known)) * 0.1 + 1e-9 if known else 0.0
        self.optimizer.tell([(z, worst if v is None else v)  # type: ignore[attr-defined]
                             for _, (z, v) in sorted(self.told.items())])
        self.generation += 1
        self.asked = 0
        self.told = {}

    def converged(self) -> bool:
        return bool(self.optimizer.should_stop())  # type: ignore[attr-defined]


class TuneProposer:
    """CMA-ES over the parent's numeric constants; see the module docstring."""

    name = "tune"

    def __init__(self, population: Any = 0, sigma: Any = 0.3, digits: Any = 6, integers: Any = False,
                 sessions: Any = 8, scope: Any = "all"):  # Any: problem.toml's values, checked here
        checks = [
            (isinstance(population, int) and not isinstance(population, bool) and 0 <= population <= 256,
             f"population = {population!r}: an int from 0 (CMA-ES's default) to 256"),
            (isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and 0 < sigma <= 10,
             f"sigma = {sigma!r}: a number above 0 and at most 10 (relative step)"),
            (isinstance(digits, int) and not isinstance(digits, bool) and 2 <= digits <= 17,
             f"digits = {digits!r}: an int from 2 to 17"),
            (isinstance(integers, bool), f"integers = {integers!r}: true or false"),
            (isinstance(sessions, int) and not isinstance(sessions, bool) and 1 <= sessions <= 1000,
             f"sessions = {sessions!r}: an int from 1 to 1000"),
            (scope in SCOPES, f"scope = {scope!r}: \"all\" (every constant of the EVOLVE-BLOCKs) or \"settings\" "
                              "(those of module-level assignments, NAME = ...)"),
        ]
        for ok, what in checks:
            if not ok:
                raise RsiError(f"[proposer.tune] {what}")
        self.population = population
        self.sigma = float(sigma)
        self.digits = digits
        self.integers = integers
        self.max_sessions = sessions
        self.scope = scope
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    @property
    def operators(self) -> list[str]:
        return ["cma"]

    def propose(self, request: ProposalRequest) -> Proposal:
        if request.operator not in (None, "cma"):
            raise ProposalFailed(f"tune has no operator {request.operator!r} (it has: cma)")
        try:
            program = toolkit.Program.parse(request.parent.source)
        except toolkit.ParseError as exc:
            raise ProposalFailed(f"tune: {exc}") from None
        sites = [(i, c) for i, c in enumerate(program.constants())
                 if (self.integers or not c.is_int) and (self.scope == "all" or c.setting is not None)]
        if not sites:
            kinds = "numeric" if self.integers else "float"
            where = "EVOLVE-BLOCKs" if self.scope == "all" else "module-level settings (scope = \"settings\")"
            raise ProposalFailed(f"tune: the parent has no {kinds} constants in its {where} to tune"
                                 + ("" if self.integers else " (set [proposer.tune] integers = true to tune ints)"))
        key = hashlib.sha256(request.parent.source.encode()).hexdigest()[:16]
        session = self._session(key, [c.value for _, c in sites], request.seed)
        pid, z = session.ask()
        child, changes = program, []
        for (index, site), base, scale, step in zip(sites, session.values, session.scales, z, strict=False):
            value: float | int = base + scale * float(step)
            if site.is_int:
                value = int(round(value))  # on its grid already: the rounding only undoes float error
            try:
                child = child.constants()[index].set(value, None if site.is_int else self.digits)
            except toolkit.EditError:
                continue  # the same text after rounding: this constant stays
            change = child.changes[-1].replace("set constant ", "")
            changes.append(f"{site.setting} {change.rsplit(' on line ', 1)[0]}" if site.setting else change)
        if not changes:
            session.tell(pid, request.parent.score)  # the parent again: its score is known
            raise ProposalFailed("tune: the point rounds to the parent's own constants")
        shown = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
        return Proposal(source=child.render(), operator="cma",
                        rationale=f"tune {len(sites)} constants with CMA-ES (generation {session.generation + 1}, "
                                  f"point {pid + 1}): {shown}",
                        key=f"{key}:{pid}")

    def observe(self, key: str, score: float | None) -> None:
        """The score of the child proposed with ``key`` (None: it failed)."""
        session_key, _, pid = key.partition(":")
        session = self._sessions.get(session_key)
        if session is None or not pid.isdigit():
            return
        session.tell(int(pid), score)
        if session.converged():
            del self._sessions[session_key]  # a later step on this parent starts afresh

    def _session(self, key: str, values: list[int | float], seed: int) -> _Session:
        session = self._sessions.get(key)
        if session is not None and len(session.values) == len(values):
            self._sessions.move_to_end(key)
            return session
        import cmaes  # type: ignore[import-untyped]  # a core dependency; imported on first use (the proposer is built for every run)

        ints = [isinstance(v, int) for v in values]
        scales = np.array([max(1.0, self.sigma * abs(v)) if is_int else self.sigma * max(abs(v), SMALLEST_SCALE)
                           for v, is_int in zip(values, ints, strict=True)])
        dims = max(2, len(values))  # CMA-ES needs two dimensions: one constant gets a dummy second
        common = {"mean": np.zeros(dims), "sigma": 1.0, "seed": seed % (2**31 - 1),
                  "population_size": self.population or None}
        if any(ints):
            optimizer = cmaes.CMAwM(bounds=_bounds(values, scales, dims), steps=_steps(ints, scales, dims), **common)
        else:
            optimizer = cmaes.CMA(**common)
        session = _Session([float(v) for v in values], scales, optimizer)
        self._sessions[key] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session


def _steps(ints: list[bool], scales: np.ndarray, dims: int) -> np.ndarray:
    """CMA-ES with margin's grid step of each dimension: one unit of an int, in its scaled
    coordinate (0: continuous; the dummy dimension of a single constant is continuous)."""
    steps = np.zeros(dims)
    for i, is_int in enumerate(ints):
        if is_int:
            steps[i] = 1.0 / scales[i]
    return steps


def _bounds(values: list[int | float], scales: np.ndarray, dims: int) -> np.ndarray:
    """Each dimension's range in scaled coordinates: an int within INT_SPAN of its steps, keeping
    its sign (the grid starts on a whole number, so coordinate 0 is the int itself); floats free."""
    bounds = np.tile([-np.inf, np.inf], (dims, 1))
    for i, v in enumerate(values):
        if isinstance(v, int):
            span = int(math.ceil(INT_SPAN * scales[i]))
            low, high = v - span, v + span
            if v > 0:
                low = max(low, 1)
            elif v == 0:
                low = 0
            else:
                high = min(high, -1)
            bounds[i] = [(low - v) / scales[i], (high - v) / scales[i]]
    return bounds
