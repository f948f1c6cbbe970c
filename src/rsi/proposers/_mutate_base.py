"""Shared parts of the ``mutate`` operators: the operator base class, the per-call context,
operator tables and small random generators (all randomness comes from the ``rng`` passed in).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import libcst as cst

from .. import toolkit
from . import _cst_helpers as h

MAX_TRIES = 8
ARITH: dict[str, Callable[..., cst.BaseBinaryOp]] = {
    "+": cst.Add, "-": cst.Subtract, "*": cst.Multiply, "/": cst.Divide, "**": cst.Power, "//": cst.FloorDivide,
    "%": cst.Modulo}
ARITH_WEIGHTS = {"+": 3, "-": 3, "*": 3, "/": 3, "**": 1, "//": 0.5, "%": 0.5}
BITWISE: dict[str, Callable[..., cst.BaseBinaryOp]] = {"&": cst.BitAnd, "|": cst.BitOr, "^": cst.BitXor}
SHIFTS: dict[str, Callable[..., cst.BaseBinaryOp]] = {"<<": cst.LeftShift, ">>": cst.RightShift}
COMPARE: dict[str, Callable[..., cst.BaseCompOp]] = {
    "<": cst.LessThan, "<=": cst.LessThanEqual, ">": cst.GreaterThan, ">=": cst.GreaterThanEqual, "==": cst.Equal,
    "!=": cst.NotEqual}
AUG: dict[str, Callable[..., cst.BaseAugOp]] = {
    "+=": cst.AddAssign, "-=": cst.SubtractAssign, "*=": cst.MultiplyAssign, "/=": cst.DivideAssign,
    "**=": cst.PowerAssign, "//=": cst.FloorDivideAssign, "%=": cst.ModuloAssign}
AUG_WEIGHTS = {"+=": 3, "-=": 3, "*=": 3, "/=": 3, "**=": 1, "//=": 0.5, "%=": 0.5}
WRAP_UFUNCS = ("abs", "sqrt", "square", "exp", "log", "log1p", "tanh", "reciprocal", "arctan",
               "cbrt", "negative", "exp2")
CORE_UFUNCS = ("abs", "sqrt", "square", "exp", "log", "log1p", "tanh", "reciprocal")
NICE_FLOATS = (0.0, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 100.0, 1e-6)
NICE_INTS = (0, 1, 2, 3, 4, 5, 10, 100)
SYMBOL: dict[object, str] = {cls: sym for table in (ARITH, BITWISE, SHIFTS, COMPARE, AUG) for sym, cls in table.items()}


class NoSite(Exception):
    """An operator found nothing to do; ``permanent`` when it has no site at all."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Ctx:
    """One propose() call: the parent's analysis, the inspirations' (parsed lazily), extras."""

    def __init__(self, parent: h.Analysis, inspirations: list[str], extra: tuple[str, ...]):
        self.a, self.extra, self._sources = parent, extra, inspirations
        self._insp: list[h.Analysis] | None = None
        self._program: toolkit.Program | None = None
        self.cache: dict[str, object] = {}

    @property
    def program(self) -> toolkit.Program:
        """The parent as an ``rsi.toolkit`` Program (the same cached parse as ``a``), for the
        operators written with the public toolkit."""
        if self._program is None:
            self._program = toolkit.Program.parse(self.a.source)
        return self._program

    @property
    def insp(self) -> list[h.Analysis]:
        """Analyses of the inspirations that parse (one that does not simply gives no material)."""
        if self._insp is None:
            self._insp = []
            for source in self._sources:
                try:
                    self._insp.append(h.analyze(source))
                except Exception:  # noqa: BLE001 - unparsable or malformed inspiration: no material
                    continue
        return self._insp

    def avail(self, site_scope: h.Scope, line: int) -> dict[str, str]:
        return self.a.available(site_scope, line, self.extra)


# -- small random helpers ------------------------------------------------------------------------
def weighted(rng: random.Random, weights: dict[str, float], exclude: str | None = None) -> str:
    keys = [k for k in weights if k != exclude]
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def fmt_float(x: float) -> str:
    x = max(-1e12, min(1e12, x))
    return repr(float(f"{x:.4g}"))


def random_constant(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return repr(rng.choice(NICE_FLOATS[1:]))
    return fmt_float(10 ** rng.uniform(-1, 2))


def terminal(ctx: Ctx, rng: random.Random, names: dict[str, str], kinds=h.VALUE_KINDS) -> str:
    """A name in scope of a compatible kind (half the time, when there is one) or a constant."""
    pool = sorted(n for n, k in names.items() if k in kinds)
    if pool and rng.random() < 0.5:
        return rng.choice(pool)
    return random_constant(rng)


def random_expr(ctx: Ctx, rng: random.Random, names: dict[str, str], depth: int = 2,
                anchor: str | None = None) -> str:
    """A small new expression over the names in scope: ``a OP b``, ``np.f(a)``, ``np.max(a)``...

    With ``anchor``, that name is one operand of the top operation (so e.g. a new variable is
    a per-bin array rather than a scalar).
    """
    np_ = ctx.a.np_alias
    r = rng.random()
    if anchor is None and (depth == 0 or r < 0.3):
        arrays = sorted(n for n, k in names.items() if k == h.ARRAY)
        if np_ and arrays and rng.random() < 0.1:
            return f"{np_}.{rng.choice(('max', 'min', 'mean'))}({rng.choice(arrays)})"
        return terminal(ctx, rng, names)
    if np_ and r < 0.5:
        inner = anchor or random_expr(ctx, rng, names, depth - 1)
        return f"{np_}.{rng.choice(CORE_UFUNCS)}({inner})"
    left = anchor or random_expr(ctx, rng, names, depth - 1)
    right = random_expr(ctx, rng, names, max(depth - 1, 0))
    if anchor and rng.random() < 0.5:
        left, right = right, left
    left = f"({left})" if " " in left else left
    right = f"({right})" if " " in right else right
    return f"{left} {weighted(rng, ARITH_WEIGHTS)} {right}"


def usable_names(ctx: Ctx, scope: h.Scope, names: dict[str, str], needed) -> bool:
    """Can code reading ``needed`` run where ``names`` are bound (else: a global or builtin)?"""
    return all(n in names or (n not in scope.kinds and ctx.a.module_ok(n)) for n in sorted(needed))


def short(a: h.Analysis, node: cst.CSTNode, width: int = 40) -> str:
    text = " ".join(a.code(node).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def compatible(k1: str, k2: str) -> bool:
    return k1 == k2 or h.UNKNOWN in (k1, k2)


# -- the operator registry -----------------------------------------------------------------------
class Operator:
    name = ""
    uses_inspirations = False

    def sites(self, ctx: Ctx) -> list:
        raise NotImplementedError

    def apply(self, ctx: Ctx, rng: random.Random) -> tuple[str, str]:
        raise NotImplementedError

    def cached_sites(self, ctx: Ctx) -> list:
        if self.uses_inspirations:
            return self.sites(ctx)
        key = ("sites", self.name, ctx.extra)
        if key not in ctx.a.memo:
            ctx.a.memo[key] = self.sites(ctx)
        return ctx.a.memo[key]

    def pick(self, ctx: Ctx, rng: random.Random):
        sites = self.cached_sites(ctx)
        if not sites:
            raise NoSite(f"no site for {self.name}", permanent=True)
        return rng.choice(sites)
