"""A SPEC and its parts: how a component declares its parameters, and a spec as Python source.

A *spec* says which component (``rsi.improvers.components``) plays each role of a search policy,
with its parameters. Each parameter is a ``Param``: its type (float, int, bool, choice, weights),
default, bounds, whether it is a scale (moved on a log scale) and a line of documentation; it
checks a value (``SpecError`` naming the place, the value and what is allowed), draws one and
moves one. A ``Component`` declares its ``role``, ``name`` and ``params``. The meta-level grammar
(``rsi.meta.grammar``) edits specs through these declarations only (switch a component, move a
parameter within its bounds), so every improver it writes is valid by construction; ``render``
writes a spec back as the source ``composed.py`` holds.

The library of components, checking a whole spec against it (``normalise``) and building a policy
(``build``) are in ``rsi.improvers.components``, which re-exports what is here.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import RsiError
from . import ImproverContext, Outcome, Step

if TYPE_CHECKING:
    from .components import Policy

class SpecError(RsiError):
    """A spec names an unknown role, component or parameter, or a value of the wrong type or
    outside its bounds."""



# --- parameters -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """A typed parameter of a component: ``kind`` is float, int, bool, choice or weights (a dict
    {proposer or "proposer:operator": weight}); ``lo``/``hi`` bound numbers and weights; ``log``:
    a scale, moved multiplicatively."""

    name: str
    kind: str
    default: Any
    doc: str = ""
    lo: float = 0.0
    hi: float = 1.0
    log: bool = False
    choices: tuple[str, ...] = ()

    def check(self, value: Any, where: str) -> Any:
        """``value`` if it is valid (ints given for floats become floats); SpecError otherwise."""
        bounds = f"from {self.lo:g} to {self.hi:g}"
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise SpecError(f"{where}: must be True or False, not {value!r}")
            return value
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise SpecError(f"{where}: must be one of {', '.join(map(repr, self.choices))}, not {value!r}")
            return value
        if self.kind == "weights":
            if not isinstance(value, dict) or len(value) > 32:
                raise SpecError(f"{where}: must be a dict of at most 32 {{proposer or 'proposer:operator': weight}}, "
                                f"not {type(value).__name__}")
            out = {}
            for key, weight in value.items():
                if not isinstance(key, str) or not 0 < len(key) <= 80:
                    raise SpecError(f"{where}: keys are proposer or 'proposer:operator' names, not {key!r}")
                out[key] = Param(key, "float", 1.0, lo=self.lo, hi=self.hi).check(weight, f"{where}[{key!r}]")
            return out
        if self.kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise SpecError(f"{where}: must be an int {bounds}, not {value!r}")
            if not self.lo <= value <= self.hi:
                raise SpecError(f"{where}: {value} is out of range: must be an int {bounds}")
            return value
        if self.kind == "float":
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise SpecError(f"{where}: must be a number {bounds}, not {value!r}")
            if not self.lo <= value <= self.hi:
                raise SpecError(f"{where}: {value} is out of range: must be a number {bounds}")
            return float(value)
        raise SpecError(f"{where}: unknown parameter kind {self.kind!r}")  # a bug of this module

    def sample(self, rng: random.Random, keys: Sequence[str] = ()) -> Any:
        """A value drawn over the whole range (log-uniform for scales)."""
        if self.kind == "bool":
            return rng.random() < 0.5
        if self.kind == "choice":
            return rng.choice(self.choices)
        if self.kind == "weights":
            return {key: self.sample_number(rng) for key in rng.sample(list(keys), min(len(keys), 2))} if keys else {}
        value = self.sample_number(rng)
        return int(round(value)) if self.kind == "int" else value

    def sample_number(self, rng: random.Random) -> float:
        lo, hi = self.lo, self.hi
        if self.log and lo > 0:
            return _round(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        return _round(rng.uniform(lo, hi))

    def move(self, value: Any, rng: random.Random, keys: Sequence[str] = ()) -> Any:
        """A nearby valid value, different from ``value`` when the range allows: a scale moves by a
        log-normal factor, other numbers by a normal step of a sixth of the range; a bool flips; a
        choice changes; a weight moves (or a weight is added for one of ``keys``)."""
        if self.kind == "bool":
            return not value
        if self.kind == "choice":
            others = [c for c in self.choices if c != value]
            return rng.choice(others) if others else value
        if self.kind == "weights":
            weights = dict(value)
            missing = [k for k in keys if k not in weights]
            if missing and (not weights or rng.random() < 0.3):
                weights[rng.choice(missing)] = self.sample_number(rng)
            elif weights:
                key = rng.choice(sorted(weights))
                weights[key] = Param(key, "float", 1.0, lo=self.lo, hi=self.hi, log=True).move(weights[key], rng)
            return weights
        for _ in range(12):
            if self.log and self.lo > 0:
                new = max(value, self.lo) * math.exp(rng.gauss(0.0, 0.6))
            else:
                new = value + rng.gauss(0.0, (self.hi - self.lo) / 6)
            new = min(self.hi, max(self.lo, new))
            new = int(round(new)) if self.kind == "int" else _round(new)
            new = min(self.hi, max(self.lo, new))
            if new != value:
                return int(new) if self.kind == "int" else float(new)
        return value


def _round(value: float) -> float:
    """4 significant digits: specs stay readable."""
    return float(f"{value:.4g}")



# --- components: what they declare ---------------------------------------------------------------
class Component:
    """A part of a policy: ``role``, ``name``, typed ``params``; its values are in ``self.p``."""

    role: ClassVar[str] = ""
    name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, values: Mapping[str, Any]):
        self.p = dict(values)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {param.name: param.default for param in cls.params}

    def start(self, ctx: ImproverContext) -> None:
        """Initialise this component's part of ``ctx.state`` (when it is not there yet)."""

    def observe(self, ctx: ImproverContext, step: Step, outcome: Outcome, policy: Policy) -> None:
        """Learn from one finished child."""


def entry(cls: type[Component]) -> dict[str, Any]:
    """The spec entry of a component with its default parameters."""
    return {"use": cls.name, **cls.defaults()}


# --- a spec as source -----------------------------------------------------------------------------
def render(spec: Mapping[str, Mapping[str, Any]], name: str = "SPEC") -> str:
    """``name = {...}``: the spec as Python source, one role per line (what ``composed.py`` holds
    and the grammar writes back)."""
    lines = [f"{name} = {{"]
    for role, entry_ in spec.items():
        items = [f"{_literal(key)}: {_literal(value)}" for key, value in entry_.items()]
        line = f"    {_literal(role)}: {{{', '.join(items)}}},"
        if len(line) <= 110:
            lines.append(line)
        else:  # one parameter a line: the module stays within its line length
            lines += [f"    {_literal(role)}: {{", *(f"        {item}," for item in items), "    },"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _literal(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, str):
        return json.dumps(value)  # a Python string literal too
    return repr(value)
