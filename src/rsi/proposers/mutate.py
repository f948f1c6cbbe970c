"""The built-in offline proposer: small, format-preserving code edits (genetic-improvement style).

Each edit type is a small registered class (as in MAGPIE) with a ``name``, a ``sites(ctx)`` list
of places it could apply, and ``apply(ctx, rng)`` that returns the child source and a one-line
description of what it did. ``MutateProposer.propose`` picks an operator (uniformly among those
with a site, unless one is named), applies it, and keeps the child only if it compiles and differs
from the parent in its syntax tree; otherwise it tries again, a few times, then raises
``ProposalFailed`` with the reasons.

Edits touch only the EVOLVE-BLOCK regions of the parent (see ``_cst_helpers``); material taken
from inspirations comes only from *their* editable regions. All randomness comes from ``rng``.

Operators: constants (perturb), operator swaps (arithmetic, comparison, boolean, augmented
assignment), name and call swaps, wrapping a subexpression (ufunc, binary op with a terminal,
``np.where``), combining two subexpressions, hoisting a child over its parent, statement delete /
duplicate / move / copy, inserting a new assignment, and three crossovers with inspirations.
"""

from __future__ import annotations

import ast
import math
import random

import libcst as cst

from ..errors import ProposalFailed
from . import _cst_helpers as h
from .base import Proposal

MAX_TRIES = 8
ARITH = {"+": cst.Add, "-": cst.Subtract, "*": cst.Multiply, "/": cst.Divide,
         "**": cst.Power, "//": cst.FloorDivide, "%": cst.Modulo}
ARITH_WEIGHTS = {"+": 3, "-": 3, "*": 3, "/": 3, "**": 1, "//": 0.5, "%": 0.5}
BITWISE = {"&": cst.BitAnd, "|": cst.BitOr, "^": cst.BitXor}
SHIFTS = {"<<": cst.LeftShift, ">>": cst.RightShift}
COMPARE = {"<": cst.LessThan, "<=": cst.LessThanEqual, ">": cst.GreaterThan,
           ">=": cst.GreaterThanEqual, "==": cst.Equal, "!=": cst.NotEqual}
AUG = {"+=": cst.AddAssign, "-=": cst.SubtractAssign, "*=": cst.MultiplyAssign,
       "/=": cst.DivideAssign, "**=": cst.PowerAssign, "//=": cst.FloorDivideAssign,
       "%=": cst.ModuloAssign}
AUG_WEIGHTS = {"+=": 3, "-=": 3, "*=": 3, "/=": 3, "**=": 1, "//=": 0.5, "%=": 0.5}
WRAP_UFUNCS = ("abs", "sqrt", "square", "exp", "log", "log1p", "tanh", "reciprocal", "arctan",
               "cbrt", "negative", "exp2")
NICE_FLOATS = (0.0, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 100.0, 1e-6)
NICE_INTS = (0, 1, 2, 3, 4, 5, 10, 100)
SYMBOL = {cls: sym for table in (ARITH, BITWISE, SHIFTS, COMPARE, AUG) for sym, cls in table.items()}


class NoSite(Exception):
    """An operator found nothing to do; ``permanent`` when it has no site at all."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Ctx:
    """One propose() call: the parent's analysis, the inspirations' (parsed lazily), extras."""

    def __init__(self, parent: h.Analysis, inspirations: list[str], extra: tuple[str, ...]):
        self.a, self.extra, self._sources, self._insp = parent, extra, inspirations, None
        self.cache: dict[str, object] = {}

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


def random_expr(ctx: Ctx, rng: random.Random, names: dict[str, str], depth: int = 2) -> str:
    """A small new expression over the names in scope: ``a OP b``, ``np.f(a)``, ``a OP c``..."""
    r = rng.random()
    if depth == 0 or r < 0.3:
        return terminal(ctx, rng, names)
    np_ = ctx.a.np_alias
    if np_ and r < 0.5:
        return f"{np_}.{rng.choice(WRAP_UFUNCS)}({random_expr(ctx, rng, names, depth - 1)})"
    left, right = random_expr(ctx, rng, names, depth - 1), random_expr(ctx, rng, names, depth - 1)
    left = f"({left})" if " " in left else left
    right = f"({right})" if " " in right else right
    return f"{left} {weighted(rng, ARITH_WEIGHTS)} {right}"


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


REGISTRY: list[type[Operator]] = []


def register(cls: type[Operator]) -> type[Operator]:
    REGISTRY.append(cls)
    return cls


# -- expression-level operators ------------------------------------------------------------------
def _number(a: h.Analysis, node: cst.BaseExpression) -> tuple[float | int, bool]:
    negative = isinstance(node, cst.UnaryOperation)
    literal = node.expression if negative else node
    text = literal.value.replace("_", "")
    value = int(text, 0) if isinstance(literal, cst.Integer) else float(text)
    return (-value if negative else value), isinstance(literal, cst.Integer)


@register
class PerturbConstant(Operator):
    """Ints move by a small step or double/halve; floats scale by a log-normal factor."""

    name = "perturb_constant"

    def sites(self, ctx):
        return ctx.a.constants

    def apply(self, ctx, rng):
        site = self.pick(ctx, rng)
        old, is_int = _number(ctx.a, site.node)
        for _ in range(5):
            new = self._int(old, rng) if is_int else self._float(old, rng)
            text = str(new) if is_int else fmt_float(new)
            if text != (str(old) if is_int else fmt_float(old)):
                break
        else:
            raise NoSite("constant did not change")
        node = h.fit_slot(ctx.a, cst.parse_expression(text), site.node)
        before = ctx.a.code(site.node)
        return ctx.a.render(site.node, node), f"perturb constant {before} -> {text} on line {site.line}"

    @staticmethod
    def _int(v: int, rng: random.Random) -> int:
        r = rng.random()
        if r < 0.6:
            return v + rng.choice((-1, 1))
        if r < 0.8:
            return v + rng.choice((-3, -2, 2, 3))
        if r < 0.9:
            return v * 2 if rng.random() < 0.5 or abs(v) < 2 else v // 2
        return rng.choice(NICE_INTS)

    @staticmethod
    def _float(v: float, rng: random.Random) -> float:
        r = rng.random()
        if r < 0.1:
            return rng.choice(NICE_FLOATS)
        if r < 0.15:
            return -v
        if v == 0:
            return rng.choice((-1, 1)) * 10 ** rng.uniform(-3, 0)
        return v * math.exp(rng.gauss(0, rng.choice((0.05, 0.2, 0.5, 1.0))))


@register
class SwapBinop(Operator):
    """Change an arithmetic (+ - * / ** // %), bitwise (& | ^) or shift operator."""

    name = "swap_binop"

    def sites(self, ctx):
        return ctx.a.binops

    def apply(self, ctx, rng):
        site = self.pick(ctx, rng)
        node = site.node
        old = SYMBOL[type(node.operator)]
        if old in ARITH:
            new = weighted(rng, ARITH_WEIGHTS, exclude=old)
            table = ARITH
        else:
            table = BITWISE if old in BITWISE else SHIFTS
            new = rng.choice(sorted(k for k in table if k != old))
        op = table[new](whitespace_before=node.operator.whitespace_before,
                        whitespace_after=node.operator.whitespace_after)
        repl = h.fit_slot(ctx.a, h.refit(node.with_changes(operator=op)), node)
        return ctx.a.render(node, repl), f"swap operator {old} -> {new} in `{short(ctx.a, node)}` on line {site.line}"


@register
class SwapCompare(Operator):
    """Change a comparison operator among < <= > >= == !=."""

    name = "swap_compare"

    def sites(self, ctx):
        return [(s, i) for s in ctx.a.compares for i, t in enumerate(s.node.comparisons)
                if type(t.operator) in SYMBOL]

    def apply(self, ctx, rng):
        site, index = self.pick(ctx, rng)
        target = site.node.comparisons[index]
        old = SYMBOL[type(target.operator)]
        new = rng.choice(sorted(k for k in COMPARE if k != old))
        op = COMPARE[new](whitespace_before=target.operator.whitespace_before,
                          whitespace_after=target.operator.whitespace_after)
        items = list(site.node.comparisons)
        items[index] = target.with_changes(operator=op)
        repl = site.node.with_changes(comparisons=items)
        return ctx.a.render(site.node, repl), f"swap comparison {old} -> {new} on line {site.line}"


@register
class SwapBoolean(Operator):
    """Swap and/or, remove a ``not``, or add ``not`` in a Python-bool context (if/while/and/or)."""

    name = "swap_boolean"

    def sites(self, ctx):
        a = ctx.a
        return ([("flip", s) for s in a.boolops] + [("unnot", s) for s in a.nots]
                + [("not", s) for s in a.tests if not isinstance(s.node, cst.UnaryOperation)])

    def apply(self, ctx, rng):
        kind, site = self.pick(ctx, rng)
        node, a = site.node, ctx.a
        if kind == "flip":
            cls = cst.Or if isinstance(node.operator, cst.And) else cst.And
            op = cls(whitespace_before=node.operator.whitespace_before,
                     whitespace_after=node.operator.whitespace_after)
            repl = h.fit_slot(a, h.refit(node.with_changes(operator=op)), node)
            what = f"swap {'and -> or' if cls is cst.Or else 'or -> and'}"
        elif kind == "unnot":
            repl = h.fit_slot(a, node.expression, node)
            what = "remove `not`"
        else:
            repl = h.fit_slot(a, h.refit(cst.UnaryOperation(operator=cst.Not(), expression=node)), node)
            what = "add `not`"
        return a.render(node, repl), f"{what} in `{short(a, node)}` on line {site.line}"


@register
class SwapAugmented(Operator):
    """Change the operator of an augmented assignment (+= -= *= /= ...)."""

    name = "swap_augassign"

    def sites(self, ctx):
        return [s for s in ctx.a.augassigns if type(s.node.operator) in SYMBOL]

    def apply(self, ctx, rng):
        site = self.pick(ctx, rng)
        node = site.node
        old = SYMBOL[type(node.operator)]
        new = weighted(rng, AUG_WEIGHTS, exclude=old)
        op = AUG[new](whitespace_before=node.operator.whitespace_before,
                      whitespace_after=node.operator.whitespace_after)
        return ctx.a.render(node, node.with_changes(operator=op)), f"swap {old} -> {new} on line {site.line}"


@register
class SwapName(Operator):
    """Replace a name that is read by another name in scope of the same kind (array / scalar)."""

    name = "swap_name"

    def sites(self, ctx):
        out = []
        for site in ctx.a.names:
            if self._choices(ctx, site):
                out.append(site)
        return out

    @staticmethod
    def _choices(ctx, site) -> list[str]:
        kind = ctx.a.kind_of(site.scope, site.node.value)
        names = ctx.avail(site.scope, site.line)
        return sorted(n for n, k in names.items() if n != site.node.value and compatible(k, kind))

    def apply(self, ctx, rng):
        site = self.pick(ctx, rng)
        new = rng.choice(self._choices(ctx, site))
        repl = site.node.with_changes(value=new)
        return ctx.a.render(site.node, repl), f"swap name {site.node.value} -> {new} on line {site.line}"


@register
class SwapCall(Operator):
    """Swap a function for another of the same arity: numpy ufuncs/reductions, math, min/max."""

    name = "swap_call"

    def sites(self, ctx):
        return [(s, t) for s in ctx.a.calls if (t := self._table(ctx.a, s.node))]

    @staticmethod
    def _table(a, call):
        target = h.call_target(a, call)
        if target is None or any(arg.star for arg in call.args):
            return None
        module, name = target
        positional = [arg for arg in call.args if arg.keyword is None]
        keywords = len(call.args) - len(positional)
        if module == "np":
            if name in h.NP_UNARY and len(positional) == 1 and not keywords:
                return h.NP_UNARY
            if name in h.NP_BINARY and len(positional) == 2 and not keywords:
                return h.NP_BINARY
            if name in h.NP_REDUCE and len(positional) == 1:
                return h.NP_REDUCE
        if module == "math" and name in h.MATH_UNARY and len(positional) == 1 and not keywords:
            return h.MATH_UNARY
        if module == "" and name in ("min", "max") and len(positional) >= 2 and not keywords:
            return ("min", "max")
        return None

    def apply(self, ctx, rng):
        (site, table) = self.pick(ctx, rng)
        call = site.node
        old = call.func.attr.value if isinstance(call.func, cst.Attribute) else call.func.value
        new = rng.choice([f for f in table if f != old])
        if isinstance(call.func, cst.Attribute):
            func = call.func.with_changes(attr=call.func.attr.with_changes(value=new))
        else:
            func = call.func.with_changes(value=new)
        prefix = ctx.a.code(call.func)[: -len(old)]
        desc = f"swap call {prefix}{old} -> {prefix}{new} on line {site.line}"
        return ctx.a.render(call, call.with_changes(func=func)), desc


def _value_sites(ctx: Ctx, max_len: int | None = None) -> list[h.Site]:
    sites = ctx.a.values
    if max_len is not None:
        sites = [s for s in sites if _one_line_len(ctx.a, s.node) <= max_len]
    return sites


def _one_line_len(a: h.Analysis, node: cst.CSTNode) -> int:
    r = a.pos[node]
    return r.end.column - r.start.column if r.start.line == r.end.line else 10**9


@register
class WrapUfunc(Operator):
    """e -> np.f(e) for a numpy ufunc f (sqrt, log1p, exp, tanh, abs, square...)."""

    name = "wrap_ufunc"

    def sites(self, ctx):
        return _value_sites(ctx) if ctx.a.np_alias else []

    def apply(self, ctx, rng):
        site = self.pick(ctx, rng)
        f = rng.choice(WRAP_UFUNCS)
        func = cst.Attribute(value=cst.Name(ctx.a.np_alias), attr=cst.Name(f))
        call = cst.Call(func=func, args=[cst.Arg(h.bare(site.node))])
        repl = h.fit_slot(ctx.a, call, site.node)
        return ctx.a.render(site.node, repl), f"wrap `{short(ctx.a, site.node)}` in {ctx.a.np_alias}.{f} on line {site.line}"


@register
class WrapBinop(Operator):
    """e -> e OP t (or t OP e) where t is a name in scope or a constant."""

    name = "wrap_binop"

    def sites(self, ctx):
        return _value_sites(ctx)

    def apply(self, ctx, rng):
        site = self.pick(ctx, rng)
        a = ctx.a
        kind = a.expr_kind(site.node, site.scope)
        op = weighted(rng, {"+": 3, "-": 3, "*": 3, "/": 3, "**": 1})
        if op == "**":
            t = rng.choice(("2", "0.5", "3", "1.5"))
        else:
            allowed = h.VALUE_KINDS if kind == h.ARRAY else (h.SCALAR, h.UNKNOWN)
            t = terminal(ctx, rng, ctx.avail(site.scope, site.line), allowed)
        other = cst.parse_expression(t)
        opnode = ARITH[op]()
        if op != "**" and rng.random() < 0.3:
            new, text = h.binop(other, opnode, site.node), f"{t} {op} e"
        else:
            new, text = h.binop(site.node, opnode, other), f"e {op} {t}"
        repl = h.fit_slot(a, new, site.node)
        return a.render(site.node, repl), f"wrap e=`{short(a, site.node)}` as {text} on line {site.line}"


@register
class WrapWhere(Operator):
    """e -> np.where(e CMP t, e, t2) and variants (a piecewise change of e)."""

    name = "wrap_where"

    def sites(self, ctx):
        return _value_sites(ctx, max_len=60) if ctx.a.np_alias else []

    def apply(self, ctx, rng):
        site = self.pick(ctx, rng)
        a = ctx.a
        e = a.code(h.bare(site.node))
        names = ctx.avail(site.scope, site.line)
        cmp = rng.choice(("<", "<=", ">", ">="))
        t, t2 = terminal(ctx, rng, names), terminal(ctx, rng, names)
        form = rng.random()
        if form < 0.4:
            branches = f"{e}, {t2}"
        elif form < 0.6:
            branches = f"{t2}, {e}"
        else:
            op = weighted(rng, {"+": 3, "-": 3, "*": 3, "/": 2})
            branches = f"({e}) {op} {t2}, {e}" if " " in e else f"{e} {op} {t2}, {e}"
        text = f"{a.np_alias}.where({e} {cmp} {t}, {branches})"
        repl = h.fit_slot(a, cst.parse_expression(text), site.node)
        return a.render(site.node, repl), f"wrap as `{text if len(text) < 70 else text[:67] + '...'}` on line {site.line}"


def _names_in(node: cst.CSTNode) -> set[str] | None:
    """Names an expression reads; None if it binds names of its own (lambda, comprehension)."""
    if isinstance(node, (cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.NamedExpr)):
        return None
    if isinstance(node, cst.Name):
        return {node.value}
    if isinstance(node, cst.Attribute):
        return _names_in(node.value)
    out: set[str] = set()
    for child in node.children:
        if isinstance(child, cst.Arg):
            child = child.value
        if isinstance(child, cst.CSTNode):
            sub = _names_in(child)
            if sub is None:
                return None
            out |= sub
    return out


@register
class Combine(Operator):
    """e -> e OP e2, e2 another subexpression of the program or of an inspiration."""

    name = "combine"
    uses_inspirations = True

    def sites(self, ctx):
        return _value_sites(ctx) if self._pool(ctx) else []

    @staticmethod
    def _pool(ctx) -> list[tuple[h.Analysis, h.Site, frozenset]]:
        if "combine" not in ctx.cache:
            pool = []
            for a in (ctx.a, *ctx.insp):
                for s in a.values:
                    if isinstance(s.node, (cst.Name, cst.Integer, cst.Float)) or _one_line_len(a, s.node) > 60:
                        continue
                    key = ("names-in", id(s.node))
                    if key not in a.memo:
                        names = _names_in(s.node)
                        a.memo[key] = None if names is None else frozenset(names)
                    if a.memo[key] is not None:
                        pool.append((a, s, a.memo[key]))
            ctx.cache["combine"] = pool
        return ctx.cache["combine"]

    def apply(self, ctx, rng):
        site = self.pick(ctx, rng)
        a = ctx.a
        names = ctx.avail(site.scope, site.line)
        usable = [(src, s) for src, s, need in self._pool(ctx)
                  if all(n in names or (a.module_ok(n) and n not in site.scope.kinds) for n in sorted(need))
                  and s.node is not site.node]
        if not usable:
            raise NoSite("no subexpression fits in scope here")
        src, other = rng.choice(usable)
        op = weighted(rng, {"+": 3, "-": 3, "*": 3, "/": 2})
        repl = h.fit_slot(a, h.binop(site.node, ARITH[op](), h.bare(other.node)), site.node)
        where = "program" if src is a else f"inspiration {ctx.insp.index(src) + 1}"
        desc = f"combine `{short(a, site.node, 30)}` {op} `{short(src, other.node, 30)}` (from {where}) on line {site.line}"
        return a.render(site.node, repl), desc


def _children(node: cst.CSTNode) -> list[cst.BaseExpression]:
    if isinstance(node, cst.BinaryOperation):
        return [node.left, node.right]
    if isinstance(node, cst.UnaryOperation):
        return [node.expression]
    if isinstance(node, cst.Call):
        return [arg.value for arg in node.args if arg.keyword is None and not arg.star]
    return []


@register
class Hoist(Operator):
    """Replace an expression by one of its operands / arguments (shrinks bloated code)."""

    name = "hoist"

    def sites(self, ctx):
        a = ctx.a
        out = []
        for site in a.values:
            kind = a.expr_kind(site.node, site.scope)
            for child in _children(site.node):
                if isinstance(child, h._VALUE_TYPES) and compatible(a.expr_kind(child, site.scope), kind):
                    out.append((site, child))
        return out

    def apply(self, ctx, rng):
        site, child = self.pick(ctx, rng)
        repl = h.fit_slot(ctx.a, child, site.node)
        desc = f"hoist `{short(ctx.a, child, 30)}` out of `{short(ctx.a, site.node, 30)}` on line {site.line}"
        return ctx.a.render(site.node, repl), desc


# -- statement-level operators -------------------------------------------------------------------
def _stmts(ctx: Ctx, kinds: tuple[str, ...]) -> list[tuple[h.Block, h.Stmt]]:
    return [(b, s) for b in ctx.a.blocks for s in b.stmts
            if s.region is not None and not s.docstring and h.stmt_kind(s.node) in kinds]


def _required(a: h.Analysis, scope: h.Scope, stmt: h.Stmt) -> frozenset[str]:
    """Names a statement needs bound before it runs."""
    loads, stores = a.stmt_names(scope, stmt)
    return loads if isinstance(stmt.node, cst.SimpleStatementLine) else loads - stores


def _bound(ctx: Ctx, scope: h.Scope, line: int, name: str, source_scope: h.Scope | None = None) -> bool:
    """Is ``name`` usable at ``line`` of ``scope`` (a local bound earlier, a global, a builtin)?"""
    if name in ctx.avail(scope, line) or name in ctx.extra:
        return True
    local = name in scope.kinds or (source_scope is not None and name in source_scope.kinds)
    return not local and ctx.a.module_ok(name)


def _gaps(block: h.Block) -> list[int]:
    """Insertion gaps that are region-safe, after any docstring and not after a return."""
    start = 1 if block.stmts and block.stmts[0].docstring else 0
    return [g for g in range(start, block.first_return() + 1) if block.gap_ok(g)]


def _where(block: h.Block, gap: int) -> str:
    return f"before line {block.stmts[gap].first}" if gap < len(block.stmts) else \
        f"after line {block.stmts[-1].last}"


@register
class DeleteStmt(Operator):
    """Delete a statement (never a function's final return, a def or an import)."""

    name = "delete_stmt"

    def sites(self, ctx):
        a, out = ctx.a, []
        for block, stmt in _stmts(ctx, ("simple", "compound", "return", "pass", "flow", "string")):
            kind = h.stmt_kind(stmt.node)
            if kind == "return" and block.node is block.scope.body and stmt.index == len(block.stmts) - 1:
                continue
            if kind == "pass" and len(block.stmts) == 1:
                continue
            _, stores = a.stmt_names(block.scope, stmt)
            fresh = frozenset(n for n in stores if not a.defined_before(block.scope, n, stmt.first))
            if fresh and a.loaded_between(block.scope, fresh, stmt.last, 10**9):
                continue  # a later statement reads a name only this one binds
            out.append((block, stmt))
        return out

    def apply(self, ctx, rng):
        block, stmt = self.pick(ctx, rng)
        new = h.edit_block(block, {stmt.index}, {})
        return ctx.a.render(block.node, new), f"delete line {stmt.first}: `{short(ctx.a, stmt.node)}`"


@register
class DuplicateStmt(Operator):
    """Repeat a statement right after itself (e.g. apply an update twice)."""

    name = "duplicate_stmt"

    def sites(self, ctx):
        return _stmts(ctx, ("simple", "compound"))

    def apply(self, ctx, rng):
        block, stmt = self.pick(ctx, rng)
        new = h.edit_block(block, (), {stmt.index + 1: [stmt.node]})
        return ctx.a.render(block.node, new), f"duplicate line {stmt.first}: `{short(ctx.a, stmt.node)}`"


@register
class MoveStmt(Operator):
    """Move a statement elsewhere in its block, where the names it reads are still bound."""

    name = "move_stmt"

    def sites(self, ctx):
        out = []
        for block, stmt in _stmts(ctx, ("simple", "compound")):
            targets = self._targets(ctx, block, stmt)
            if targets:
                out.append((block, stmt, targets))
        return out

    @staticmethod
    def _targets(ctx, block, stmt) -> list[int]:
        a, scope, i = ctx.a, block.scope, stmt.index
        need = _required(a, scope, stmt)
        _, stores = a.stmt_names(scope, stmt)
        fresh = frozenset(n for n in stores if not a.defined_before(scope, n, stmt.first))
        out = []
        for g in _gaps(block):
            if g in (i, i + 1):
                continue
            if g < i and not all(_bound(ctx, scope, block.gap_line(g), n) for n in sorted(need)):
                continue
            if g > i + 1 and fresh and a.loaded_between(scope, fresh, stmt.last, block.stmts[g - 1].last):
                continue
            out.append(g)
        return out

    def apply(self, ctx, rng):
        block, stmt, targets = self.pick(ctx, rng)
        gap = rng.choice(targets)
        new = h.edit_block(block, {stmt.index}, {gap: [stmt.node]})
        desc = f"move line {stmt.first} `{short(ctx.a, stmt.node, 30)}` {_where(block, gap)}"
        return ctx.a.render(block.node, new), desc


@register
class CopyStmt(Operator):
    """Insert a copy of a statement from elsewhere in the program or from an inspiration."""

    name = "copy_stmt"
    uses_inspirations = True

    def sites(self, ctx):
        if not self._sources(ctx):
            return []
        return [(b, g) for b in ctx.a.blocks for g in _gaps(b)]

    @staticmethod
    def _sources(ctx):
        if "copy" not in ctx.cache:
            ctx.cache["copy"] = [(a, b.scope, s) for a in (ctx.a, *ctx.insp) for b in a.blocks
                                 for s in b.stmts if s.region is not None and not s.docstring
                                 and h.stmt_kind(s.node) in ("simple", "compound")]
        return ctx.cache["copy"]

    def apply(self, ctx, rng):
        block, gap = self.pick(ctx, rng)
        line = block.gap_line(gap)
        usable = [(a, s) for a, scope, s in self._sources(ctx)
                  if all(_bound(ctx, block.scope, line, n, scope) for n in sorted(_required(a, scope, s)))]
        if not usable:
            raise NoSite("no statement reads only names bound here")
        src, stmt = rng.choice(usable)
        new = h.edit_block(block, (), {gap: [stmt.node]})
        origin = "program" if src is ctx.a else f"inspiration {ctx.insp.index(src) + 1}"
        desc = f"copy `{short(src, stmt.node, 40)}` from {origin} line {stmt.first} {_where(block, gap)}"
        return ctx.a.render(block.node, new), desc


@register
class InsertAssign(Operator):
    """Insert new material: ``v = v OP t``, ``v = np.where(a < t, v OP t2, v)``, ``t1 = expr``..."""

    name = "insert_assign"

    def sites(self, ctx):
        return [(b, g) for b in ctx.a.blocks for g in _gaps(b)]

    def apply(self, ctx, rng):
        block, gap = self.pick(ctx, rng)
        a, scope = ctx.a, block.scope
        line = block.gap_line(gap)
        names = ctx.avail(scope, line)
        targets = sorted(n for n, k in names.items() if n in scope.kinds and k in (h.ARRAY, h.UNKNOWN))
        arrays = sorted(n for n, k in names.items() if k in (h.ARRAY, h.UNKNOWN)) or sorted(names)
        np_ = a.np_alias
        forms = {"new": 0.25}
        if targets:
            forms["update"] = 0.3
            if np_:
                forms.update(where=0.3, ufunc=0.15)
        form = weighted(rng, forms)
        if form == "new":
            fresh = next(f"t{i}" for i in range(1, 10**6) if f"t{i}" not in a.all_names)
            text = f"{fresh} = {random_expr(ctx, rng, names, 2)}"
        else:
            v = rng.choice(targets)
            op = weighted(rng, {"+": 3, "-": 3, "*": 3, "/": 2})
            if form == "update":
                other = random_expr(ctx, rng, names, 1)
                text = f"{v} = {v} {op} " + (f"({other})" if " " in other else other)
            elif form == "where":
                subject = rng.choice(arrays)
                if len(arrays) > 1 and rng.random() < 0.4:
                    subject = f"{subject} - {rng.choice([n for n in arrays if n != subject])}"
                cmp = rng.choice(("<", "<=", ">", ">="))
                t, t2 = terminal(ctx, rng, names, (h.SCALAR,)), terminal(ctx, rng, names)
                text = f"{v} = {np_}.where({subject} {cmp} {t}, {v} {op} {t2}, {v})"
            else:
                f = rng.choice(WRAP_UFUNCS)
                if rng.random() < 0.5:
                    text = f"{v} = {np_}.{f}({v})"
                else:
                    text = f"{v} = {v} {op} {np_}.{f}({terminal(ctx, rng, names)})"
        stmt = cst.parse_statement(text + a.module.default_newline, config=a.module.config_for_parsing)
        new = h.edit_block(block, (), {gap: [stmt]})
        return a.render(block.node, new), f"insert `{text}` {_where(block, gap)}"


# -- crossover with inspirations -----------------------------------------------------------------
def _body(a: h.Analysis, scope: h.Scope) -> h.Block | None:
    for block in a.blocks:
        if block.node is scope.body:
            return block
    return None


def _pairs(ctx: Ctx):
    """(parent function, its body, inspiration number, inspiration function, its body), by name."""
    if "pairs" not in ctx.cache:
        out = []
        for scope, def_stmt in ctx.a.functions:
            for k, ia in enumerate(ctx.insp):
                match = next(((s, d) for s, d in ia.functions if s.name == scope.name), None)
                if match is not None:
                    out.append((scope, def_stmt, _body(ctx.a, scope), k, ia, *match, _body(ia, match[0])))
        ctx.cache["pairs"] = out
    return ctx.cache["pairs"]


def _names_flow(ctx: Ctx, scope: h.Scope, seq) -> bool:
    """Would each statement of a new function body find the names it reads already bound?"""
    bound = set(scope.params) | set(ctx.extra)
    for a, src_scope, stmt in seq:
        _, stores = a.stmt_names(src_scope, stmt)
        for name in sorted(_required(a, src_scope, stmt)):
            local = name in scope.kinds or name in src_scope.kinds
            if name not in bound and (local or not ctx.a.module_ok(name)):
                return False
        bound |= stores
    return True


def _ends_with_return(stmts) -> bool:
    return bool(stmts) and h.stmt_kind(stmts[-1].node) == "return"


@register
class CrossoverRange(Operator):
    """Replace a range of a function's statements by a range of the same-named inspiration one."""

    name = "crossover_range"
    uses_inspirations = True

    def sites(self, ctx):
        return [p for p in _pairs(ctx) if p[2] is not None and p[7] is not None
                and any(s.region is not None and not s.docstring for s in p[2].stmts)
                and any(s.region is not None and not s.docstring for s in p[7].stmts)]

    def apply(self, ctx, rng):
        scope, _, block, k, ia, iscope, _, iblock = self.pick(ctx, rng)
        P = [s for s in block.stmts if not s.docstring]
        I = [s for s in iblock.stmts if not s.docstring and s.region is not None]
        if rng.random() < 0.5:  # one point: keep the head of one, the tail of the other
            lo, hi = rng.randint(0, len(P)), len(P)
            c = min(lo, len(I)) if rng.random() < 0.5 else rng.randint(0, len(I))
            d = len(I)
        else:
            lo, hi = sorted((rng.randint(0, len(P)), rng.randint(0, len(P))))
            c, d = sorted((rng.randint(0, len(I)), rng.randint(0, len(I))))
        if hi - lo + d - c == 0 or any(s.region is None for s in P[lo:hi]):
            raise NoSite("empty or frozen crossover range")
        offset = len(block.stmts) - len(P)
        gap = offset + hi
        if lo == hi and not block.gap_ok(gap):
            raise NoSite("insertion point outside the editable region")
        if _ends_with_return(P) and hi == len(P) > lo and not (d == len(I) and _ends_with_return(I)):
            raise NoSite("crossover would drop the final return")
        seq = [(ctx.a, scope, s) for s in P[:lo]] + [(ia, iscope, s) for s in I[c:d]] + \
              [(ctx.a, scope, s) for s in P[hi:]]
        if not _names_flow(ctx, scope, seq):
            raise NoSite("crossover would read unbound names")
        removes = {offset + i for i in range(lo, hi)}
        new = h.edit_block(block, removes, {gap: [s.node for s in I[c:d]]} if d > c else {})
        desc = (f"crossover {scope.name}: statements {lo + 1}..{hi} <- inspiration {k + 1} "
                f"statements {c + 1}..{d}")
        return ctx.a.render(block.node, new), desc


@register
class CrossoverUniform(Operator):
    """Build a function's body slot by slot from the parent's or the inspiration's statement."""

    name = "crossover_uniform"
    uses_inspirations = True

    def sites(self, ctx):
        out = []
        for p in _pairs(ctx):
            if p[2] is None or p[7] is None:
                continue
            P = [s for s in p[2].stmts if not s.docstring]
            if P and all(s.region is not None for s in P) and any(
                    s.region is not None and not s.docstring for s in p[7].stmts):
                out.append(p)
        return out

    def apply(self, ctx, rng):
        scope, _, block, k, ia, iscope, _, iblock = self.pick(ctx, rng)
        P = [s for s in block.stmts if not s.docstring]
        I = [s for s in iblock.stmts if not s.docstring and s.region is not None]
        length = rng.choice((len(P), len(I)))
        picks = []
        for i in range(length):
            if i < len(P) and (i >= len(I) or rng.random() < 0.5):
                picks.append((ctx.a, scope, P[i]))
            else:
                picks.append((ia, iscope, I[i]))
        taken = sum(1 for src, _, s in picks if src is ctx.a)
        if length == len(P) and taken == len(P):
            raise NoSite("uniform crossover kept every parent statement")
        if _ends_with_return(P) and not _ends_with_return([s for _, _, s in picks]):
            raise NoSite("crossover would drop the final return")
        if not _names_flow(ctx, scope, picks):
            raise NoSite("crossover would read unbound names")
        body = list(block.node.body[: len(block.stmts) - len(P)])
        for i, (src, _, stmt) in enumerate(picks):
            if src is ctx.a and stmt is P[i]:
                body.append(stmt.node)
            else:
                lead = P[i].node.leading_lines if i < len(P) else ()
                body.append(stmt.node.with_changes(leading_lines=lead))
        carry = [line for s in P[length:] for line in s.node.leading_lines]
        new = block.node.with_changes(body=body, footer=(*carry, *block.node.footer))
        desc = f"crossover {scope.name}: uniform over {length} statements, {length - taken} from inspiration {k + 1}"
        return ctx.a.render(block.node, new), desc


@register
class CrossoverFunction(Operator):
    """Replace a whole function by the same-named function of an inspiration."""

    name = "crossover_function"
    uses_inspirations = True

    def sites(self, ctx):
        return [p for p in _pairs(ctx) if p[1].region is not None and p[6].region is not None]

    def apply(self, ctx, rng):
        scope, def_stmt, _, k, ia, _, idef, _ = self.pick(ctx, rng)
        new = idef.node.with_changes(leading_lines=def_stmt.node.leading_lines)
        desc = f"crossover: function {scope.name} <- inspiration {k + 1}"
        return ctx.a.render(def_stmt.node, new), desc


# -- the proposer --------------------------------------------------------------------------------
def _problem(a: h.Analysis, child: str) -> str | None:
    """Why ``child`` is not worth evaluating (does not compile, or is the parent again)."""
    try:
        tree = ast.parse(child)
        compile(tree, "<mutate>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"the edit does not compile ({exc.msg}, line {exc.lineno})"
    except ValueError as exc:
        return f"the edit does not compile ({exc})"
    if "ast" not in a.memo:
        a.memo["ast"] = ast.dump(ast.parse(a.source))
    if ast.dump(tree) == a.memo["ast"]:
        return "the edit changed nothing"
    return None


class MutateProposer:
    """Offline, format-preserving code edits; see the module docstring for the operators."""

    name = "mutate"

    def __init__(self, extra_names: list[str] | None = None) -> None:
        names = tuple(dict.fromkeys(extra_names or ()))
        bad = [n for n in names if not (isinstance(n, str) and n.isidentifier())]
        if bad:
            raise ValueError(f"extra_names must be Python identifiers; not: {bad!r}")
        self.extra_names = names
        self._ops = [cls() for cls in REGISTRY]
        self._by_name = {op.name: op for op in self._ops}

    @property
    def operators(self) -> list[str]:
        return [op.name for op in self._ops]

    def propose(self, parent: str, inspirations: list[str], operator: str | None,
                rng: random.Random) -> Proposal:
        if operator is not None and operator not in self._by_name:
            raise ProposalFailed(f"mutate has no operator {operator!r}; it has: {', '.join(self.operators)}")
        try:
            a = h.analyze(parent)
        except Exception as exc:  # noqa: BLE001 - libcst syntax errors, broken markers
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ProposalFailed(f"mutate cannot parse the parent: {first}") from exc
        ctx = Ctx(a, list(inspirations), self.extra_names)
        if operator is None:
            candidates = [op for op in self._ops if op.cached_sites(ctx)]
            if not candidates:
                raise ProposalFailed("mutate: no operator has a site in the editable regions")
        else:
            candidates = [self._by_name[operator]]
        reasons: list[str] = []
        for _ in range(MAX_TRIES):
            if not candidates:
                break
            op = rng.choice(candidates)
            try:
                child, description = op.apply(ctx, rng)
            except NoSite as exc:
                reasons.append(f"{op.name}: {exc}")
                if exc.permanent:
                    candidates.remove(op)
                continue
            except (cst.CSTValidationError, cst.ParserSyntaxError) as exc:
                reasons.append(f"{op.name}: could not build the edit ({type(exc).__name__})")
                continue
            problem = _problem(a, child)
            if problem is None:
                return Proposal(source=child, operator=op.name, rationale=description)
            reasons.append(f"{op.name}: {problem}")
        what = operator or "any operator"
        tail = "; ".join(dict.fromkeys(reasons)) or "no site"
        raise ProposalFailed(f"mutate: {what} found no applicable site after {MAX_TRIES} tries ({tail})")
