"""The built-in offline proposer: small, format-preserving code edits (genetic-improvement style).

Each edit type is a small class (as in MAGPIE) with a ``name``, ``sites(ctx)``, the places it
could apply, and ``apply(ctx, rng)``, which returns the child source and a one-line description
(it becomes the proposal's rationale). ``OPERATORS`` below is the registry, in a fixed order.
``MutateProposer.propose`` picks an operator (uniformly among those with a site, unless one is
named), applies it, and keeps the child if it compiles and is not the parent again; otherwise it
tries again, up to ``MAX_TRIES`` times, then raises ``ProposalFailed`` listing the reasons.

Edits touch only the parent's EVOLVE-BLOCK regions, and material taken from inspirations comes
only from *their* regions. All randomness comes from the ``rng`` argument, and nothing depends on
hash order, so a seed reproduces a run bit for bit.

Layout: this file holds the expression-level operators and the proposer;
``_mutate_statements.py`` the statement-level ones and the crossovers; ``_mutate_base.py`` the
operator base class and random generators; ``_cst_helpers.py`` (over ``_cst_parse.py``,
``_cst_model.py`` and ``_cst_build.py``) parsing (libcst, cached per source text), sites, scopes,
precedence and rendering.
"""

from __future__ import annotations

import math
import random

import libcst as cst

from .. import toolkit
from ..errors import ProgramError, ProposalFailed, RsiError
from . import _cst_helpers as h
from . import _mutate_statements as st
from ._mutate_base import (
    ARITH,
    ARITH_WEIGHTS,
    AUG,
    AUG_WEIGHTS,
    BITWISE,
    COMPARE,
    MAX_TRIES,
    NICE_FLOATS,
    NICE_INTS,
    SHIFTS,
    SYMBOL,
    WRAP_UFUNCS,
    Ctx,
    NoSite,
    Operator,
    compatible,
    fmt_float,
    short,
    terminal,
    usable_names,
    weighted,
)
from .base import Proposal, ProposalRequest


# -- expression-level operators ------------------------------------------------------------------
class PerturbConstant(Operator):
    """Ints move by a small step or double/halve; floats scale by a log-normal factor.

    Written with the public toolkit (``rsi.toolkit``): its sites are ``program.constants()``."""

    name = "perturb_constant"

    def sites(self, ctx):
        return ctx.program.constants()

    def apply(self, ctx, rng):
        site: toolkit.Constant = self.pick(ctx, rng)
        old, is_int = site.value, site.is_int
        for _ in range(5):
            new = self._int(old, rng) if isinstance(old, int) else self._float(old, rng)  # int iff is_int
            text = str(new) if is_int else fmt_float(new)
            if text != (str(old) if is_int else fmt_float(old)):
                break
        else:
            raise NoSite("constant did not change")
        return site.replace(text).source, f"perturb constant {site.text} -> {text} on line {site.line}"

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


class SwapBinop(Operator):
    """Change an arithmetic (+ - * / ** // %), bitwise (& | ^) or shift operator (toolkit:
    ``program.binary_operators()``, ``site.swap(new)``)."""

    name = "swap_binop"

    def sites(self, ctx):
        return ctx.program.binary_operators()

    def apply(self, ctx, rng):
        site: toolkit.BinaryOperator = self.pick(ctx, rng)
        old = site.operator
        if old in ARITH:
            new = weighted(rng, ARITH_WEIGHTS, exclude=old)
        else:
            table = BITWISE if old in BITWISE else SHIFTS
            new = rng.choice(sorted(k for k in table if k != old))
        desc = f"swap operator {old} -> {new} in `{short(ctx.a, site.node)}` on line {site.line}"
        return site.swap(new).source, desc


class SwapCompare(Operator):
    """Change a comparison operator among < <= > >= == != (toolkit: ``program.comparisons()``)."""

    name = "swap_compare"

    def sites(self, ctx):
        return [(c, i) for c in ctx.program.comparisons() for i, op in enumerate(c.operators) if op in COMPARE]

    def apply(self, ctx, rng):
        site, index = self.pick(ctx, rng)
        old = site.operators[index]
        new = rng.choice(sorted(k for k in COMPARE if k != old))
        return site.swap(new, index).source, f"swap comparison {old} -> {new} on line {site.line}"


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
        desc = f"swap {old} -> {new} on line {site.line}"
        return ctx.a.render(node, node.with_changes(operator=op)), desc


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


_TERMINALS = (cst.Name, cst.Integer, cst.Float)


def _value_sites(ctx: Ctx, max_len: int | None = None) -> list[h.Site]:
    sites = ctx.a.values
    if max_len is not None:
        sites = [s for s in sites if _one_line_len(ctx.a, s.node) <= max_len]
    return sites


def _one_line_len(a: h.Analysis, node: cst.CSTNode) -> int:
    r = a.pos[node]
    return r.end.column - r.start.column if r.start.line == r.end.line else 10**9


class WrapUfunc(Operator):
    """e -> np.f(e) for a numpy ufunc f (sqrt, log1p, exp, tanh, abs, square...); toolkit:
    ``program.expressions()``, ``site.wrap_call(f)``."""

    name = "wrap_ufunc"

    def sites(self, ctx):
        return ctx.program.expressions() if ctx.a.np_alias else []

    def apply(self, ctx, rng):
        site: toolkit.Expression = self.pick(ctx, rng)
        f = rng.choice(WRAP_UFUNCS)
        desc = f"wrap `{short(ctx.a, site.node)}` in {ctx.a.np_alias}.{f} on line {site.line}"
        return site.wrap_call(f"{ctx.a.np_alias}.{f}").source, desc


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


class WrapWhere(Operator):
    """e -> np.where(e CMP t, e, t2) and variants (a piecewise change of e)."""

    name = "wrap_where"

    def sites(self, ctx):
        return _value_sites(ctx, max_len=40) if ctx.a.np_alias else []

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
        shown = text if len(text) < 70 else text[:67] + "..."
        return a.render(site.node, repl), f"wrap as `{shown}` on line {site.line}"


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
                    if type(s.node) in _TERMINALS or _one_line_len(a, s.node) > 60:
                        continue
                    key = ("names-in", id(s.node))
                    if key not in a.memo:
                        names = h.names_in(s.node)
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
                  if s.node is not site.node and usable_names(ctx, site.scope, names, need)]
        if not usable:
            raise NoSite("no subexpression fits in scope here")
        src, other = rng.choice(usable)
        op = weighted(rng, {"+": 3, "-": 3, "*": 3, "/": 2})
        repl = h.fit_slot(a, h.binop(site.node, ARITH[op](), h.bare(other.node)), site.node)
        where = "program" if src is a else f"inspiration {ctx.insp.index(src) + 1}"
        desc = (f"combine `{short(a, site.node, 30)}` {op} `{short(src, other.node, 30)}` "
                f"(from {where}) on line {site.line}")
        return a.render(site.node, repl), desc


def _children(node: cst.CSTNode) -> list[cst.BaseExpression]:
    if isinstance(node, cst.BinaryOperation):
        return [node.left, node.right]
    if isinstance(node, cst.UnaryOperation):
        return [node.expression]
    if isinstance(node, cst.Call):
        return [arg.value for arg in node.args if arg.keyword is None and not arg.star]
    return []


class Hoist(Operator):
    """Replace an expression by one of its operands / arguments (shrinks bloated code)."""

    name = "hoist"

    def sites(self, ctx):
        a = ctx.a
        out = []
        for site in a.values:
            kind = a.expr_kind(site.node, site.scope)
            for child in _children(site.node):
                if type(child) in h.VALUE_TYPES and compatible(a.expr_kind(child, site.scope), kind):
                    out.append((site, child))
        return out

    def apply(self, ctx, rng):
        site, child = self.pick(ctx, rng)
        repl = h.fit_slot(ctx.a, child, site.node)
        desc = (f"hoist `{short(ctx.a, child, 30)}` out of `{short(ctx.a, site.node, 30)}` "
                f"on line {site.line}")
        return ctx.a.render(site.node, repl), desc


# -- the registry and the proposer ----------------------------------------------------------------
OPERATORS: tuple[type[Operator], ...] = (
    PerturbConstant, SwapBinop, SwapCompare, SwapBoolean, SwapAugmented, SwapName, SwapCall,
    WrapUfunc, WrapBinop, WrapWhere, Combine, Hoist,
    st.DeleteStmt, st.DuplicateStmt, st.MoveStmt, st.CopyStmt, st.InsertAssign,
    st.CrossoverRange, st.CrossoverUniform, st.CrossoverFunction,
)


def _problem(parent: str, child: str) -> str | None:
    """Why ``child`` is not worth evaluating: it does not compile, or it is the parent again."""
    if child == parent:
        return "the edit changed nothing"
    try:
        compile(child, "<mutate>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"the edit does not compile ({exc.msg}, line {exc.lineno})"
    except ValueError as exc:
        return f"the edit does not compile ({exc})"
    return None


class MutateProposer:
    """Offline, format-preserving code edits; ``operators`` lists them (see ``OPERATORS``).

    ``operators`` (``[proposer.mutate] operators = [...]`` in problem.toml) keeps only the named
    ones: the arms an improver chooses among (``ctx.operators``), for a problem whose useful edits
    are known to be few (its numbers, say) and whose other edits mostly break it. Default: all."""

    name = "mutate"

    def __init__(self, extra_names: list[str] | None = None, operators: list[str] | None = None) -> None:
        names = tuple(dict.fromkeys(extra_names or ()))
        given: tuple[object, ...] = names  # checked here: settings files may hold anything
        bad = [n for n in given if not (isinstance(n, str) and n.isidentifier())]
        if bad:
            raise ValueError(f"extra_names must be Python identifiers; not: {bad!r}")
        self.extra_names = names
        self._ops = [cls() for cls in OPERATORS]
        if operators is not None:
            known = [op.name for op in self._ops]
            chosen: object = operators
            if not (isinstance(chosen, list | tuple) and chosen and all(isinstance(n, str) for n in chosen)):
                raise RsiError(f"[proposer.mutate] operators = {operators!r}: a non-empty list of operator names "
                               f"(of: {', '.join(known)})")
            unknown = [n for n in operators if n not in known]
            if unknown:
                raise RsiError(f"[proposer.mutate] operators: no operator {unknown[0]!r}; "
                               f"the operators are: {', '.join(known)}")
            self._ops = [op for op in self._ops if op.name in operators]
        self._by_name = {op.name: op for op in self._ops}

    @property
    def operators(self) -> list[str]:
        return [op.name for op in self._ops]

    def propose(self, request: ProposalRequest) -> Proposal:
        """The Proposer protocol: one edit of ``request.parent`` (``edit``)."""
        return self.edit(request.parent.source, [p.source for p in request.inspirations], request.operator,
                         request.rng)

    def edit(self, parent: str, inspirations: list[str], operator: str | None,
             rng: random.Random) -> Proposal:
        """One edit of ``parent`` by ``operator`` (None: any with a site), with material from
        ``inspirations``."""
        if operator is not None and operator not in self._by_name:
            known = ", ".join(self.operators)
            raise ProposalFailed(f"mutate has no operator {operator!r}; it has: {known}")
        try:
            a = h.analyze(parent)
        except (cst.ParserSyntaxError, ProgramError, RecursionError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
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
            except toolkit.ToolkitError as exc:
                reasons.append(f"{op.name}: {exc}")
                continue
            problem = _problem(parent, child)
            if problem is None:
                return Proposal(source=child, operator=op.name, rationale=description)
            reasons.append(f"{op.name}: {problem}")
        what = operator or "mutate"
        tail = "; ".join(dict.fromkeys(reasons)) or "no site"
        raise ProposalFailed(f"{what}: no applicable site after {MAX_TRIES} tries ({tail})")
