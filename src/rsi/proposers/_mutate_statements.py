"""Statement-level ``mutate`` operators (genetic-improvement style) and crossovers.

Statements are edited only inside function bodies, through ``_cst_helpers.edit_block``, which keeps
every comment line and the EVOLVE-BLOCK markers where they are. Before moving or copying a
statement, the operators check that the names it reads are bound at its new place, which keeps the
share of children that run high.
"""

from __future__ import annotations

import ast

import libcst as cst

from . import _cst_helpers as h
from ._mutate_base import WRAP_UFUNCS, Ctx, NoSite, Operator, random_expr, short, terminal, usable_names, weighted


# -- statement-level operators -------------------------------------------------------------------
def _stmts(ctx: Ctx, kinds: tuple[str, ...]) -> list[tuple[h.Block, h.Stmt]]:
    return [(b, s) for b in ctx.a.blocks for s in b.stmts
            if s.region is not None and not s.docstring and s.kind in kinds]


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


def _all_gaps(a: h.Analysis) -> list[tuple[h.Block, int]]:
    if "gaps" not in a.memo:
        a.memo["gaps"] = [(b, g) for b in a.blocks for g in _gaps(b)]
    return a.memo["gaps"]


def _same_code(a: h.Analysis, old: list[cst.CSTNode], new: list[cst.CSTNode]) -> bool:
    """Do two statement lists have the same syntax tree (differing at most in layout/comments)?"""
    try:
        dumps = [ast.dump(ast.parse("".join(a.code(n) for n in nodes))) for nodes in (old, new)]
    except (SyntaxError, ValueError):
        return False
    return dumps[0] == dumps[1]


def _where(block: h.Block, gap: int) -> str:
    return f"before line {block.stmts[gap].first}" if gap < len(block.stmts) else \
        f"after line {block.stmts[-1].last}"


class DeleteStmt(Operator):
    """Delete a statement (never a function's final return, a def or an import)."""

    name = "delete_stmt"

    def sites(self, ctx):
        a, out = ctx.a, []
        for block, stmt in _stmts(ctx, ("simple", "compound", "return", "pass", "flow", "string")):
            kind = stmt.kind
            last = stmt.index == len(block.stmts) - 1
            if kind == "return" and last and block.node is block.scope.body:
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


class DuplicateStmt(Operator):
    """Repeat a statement right after itself (e.g. apply an update twice)."""

    name = "duplicate_stmt"

    def sites(self, ctx):
        return _stmts(ctx, ("simple", "compound"))

    def apply(self, ctx, rng):
        block, stmt = self.pick(ctx, rng)
        new = h.edit_block(block, (), {stmt.index + 1: [stmt.node]})
        return ctx.a.render(block.node, new), f"duplicate line {stmt.first}: `{short(ctx.a, stmt.node)}`"


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
            if g > i + 1 and fresh and a.loaded_between(scope, fresh, stmt.last,
                                                          block.stmts[g - 1].last):
                continue
            out.append(g)
        return out

    def apply(self, ctx, rng):
        block, stmt, targets = self.pick(ctx, rng)
        gap = rng.choice(targets)
        new = h.edit_block(block, {stmt.index}, {gap: [stmt.node]})
        desc = f"move line {stmt.first} `{short(ctx.a, stmt.node, 30)}` {_where(block, gap)}"
        return ctx.a.render(block.node, new), desc


class CopyStmt(Operator):
    """Insert a copy of a statement from elsewhere in the program or from an inspiration."""

    name = "copy_stmt"
    uses_inspirations = True

    def sites(self, ctx):
        return _all_gaps(ctx.a) if self._sources(ctx) else []

    @staticmethod
    def _sources(ctx):
        if "copy" not in ctx.cache:
            out = []
            for a in (ctx.a, *ctx.insp):
                if "copy-sources" not in a.memo:
                    a.memo["copy-sources"] = [
                        (a, b.scope, s) for b in a.blocks for s in b.stmts
                        if s.region is not None and not s.docstring
                        and s.kind in ("simple", "compound")]
                out += a.memo["copy-sources"]
            ctx.cache["copy"] = out
        return ctx.cache["copy"]

    def apply(self, ctx, rng):
        block, gap = self.pick(ctx, rng)
        line = block.gap_line(gap)
        usable = [(a, s) for a, scope, s in self._sources(ctx)
                  if all(_bound(ctx, block.scope, line, n, scope)
                         for n in sorted(_required(a, scope, s)))]
        if not usable:
            raise NoSite("no statement reads only names bound here")
        src, stmt = rng.choice(usable)
        new = h.edit_block(block, (), {gap: [stmt.node]})
        origin = "program" if src is ctx.a else f"inspiration {ctx.insp.index(src) + 1}"
        desc = f"copy `{short(src, stmt.node, 40)}` from {origin} line {stmt.first} {_where(block, gap)}"
        return ctx.a.render(block.node, new), desc


class InsertAssign(Operator):
    """Insert new material: ``v = v OP t``, ``v = np.where(a < t, v OP t2, v)``, ``t1 = expr``..."""

    name = "insert_assign"

    def sites(self, ctx):
        return _all_gaps(ctx.a)

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
            text = f"{fresh} = {self._new_value(ctx, rng, scope, line, names)}"
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

    @staticmethod
    def _new_value(ctx, rng, scope, line, names) -> str:
        """Name an existing subexpression of the function (e.g. ``bins - item``), or build one."""
        a = ctx.a
        if rng.random() < 0.4:
            known = [s for s in a.values if s.scope is scope
                     and type(s.node) not in (cst.Name, cst.Integer, cst.Float)
                     and (needed := h.names_in(s.node)) is not None
                     and usable_names(ctx, scope, names, needed) and "\n" not in a.code(s.node)]
            if known:
                return a.code(h.bare(rng.choice(known).node))
        arrays = sorted(n for n, k in names.items() if k == h.ARRAY)
        return random_expr(ctx, rng, names, 2, anchor=rng.choice(arrays) if arrays else None)


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
                    out.append((scope, def_stmt, _body(ctx.a, scope), k, ia, *match,
                                _body(ia, match[0])))
        ctx.cache["pairs"] = out
    return ctx.cache["pairs"]


def _names_flow(ctx: Ctx, scope: h.Scope, seq) -> bool:
    """Would each statement of a new function body find the names it reads already bound
    (and is there no dead code after a ``return``)?"""
    if any(stmt.kind == "return" for _, _, stmt in seq[:-1]):
        return False
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
    return bool(stmts) and stmts[-1].kind == "return"


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
        Q = [s for s in iblock.stmts if not s.docstring and s.region is not None]
        if rng.random() < 0.5:  # one point: keep the head of one, the tail of the other
            lo, hi = rng.randint(0, len(P)), len(P)
            c = min(lo, len(Q)) if rng.random() < 0.5 else rng.randint(0, len(Q))
            d = len(Q)
        else:
            lo, hi = sorted((rng.randint(0, len(P)), rng.randint(0, len(P))))
            c, d = sorted((rng.randint(0, len(Q)), rng.randint(0, len(Q))))
        if hi - lo + d - c == 0 or any(s.region is None for s in P[lo:hi]):
            raise NoSite("empty or frozen crossover range")
        offset = len(block.stmts) - len(P)
        gap = offset + hi
        if lo == hi and not block.gap_ok(gap):
            raise NoSite("insertion point outside the editable region")
        if _ends_with_return(P) and hi == len(P) > lo and not (d == len(Q) and _ends_with_return(Q)):
            raise NoSite("crossover would drop the final return")
        seq = [(ctx.a, scope, s) for s in P[:lo]] + [(ia, iscope, s) for s in Q[c:d]] + \
              [(ctx.a, scope, s) for s in P[hi:]]
        if not _names_flow(ctx, scope, seq):
            raise NoSite("crossover would read unbound names or leave dead code")
        if _same_code(ctx.a, [s.node for s in P[lo:hi]], [s.node for s in Q[c:d]]):
            raise NoSite("the inspiration's statements are the same code")
        removes = {offset + i for i in range(lo, hi)}
        new = h.edit_block(block, removes, {gap: [s.node for s in Q[c:d]]} if d > c else {})
        desc = (f"crossover {scope.name}: statements {lo + 1}..{hi} <- inspiration {k + 1} "
                f"statements {c + 1}..{d}")
        return ctx.a.render(block.node, new), desc


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
        Q = [s for s in iblock.stmts if not s.docstring and s.region is not None]
        # A final return stays last: slots are aligned over the statements before it.
        body_p, ret_p = (P[:-1], P[-1]) if _ends_with_return(P) else (P, None)
        body_i, ret_i = (Q[:-1], Q[-1]) if _ends_with_return(Q) else (Q, None)
        length = rng.choice((len(body_p), len(body_i)))
        picks: list[tuple[h.Analysis, h.Scope, h.Stmt]] = []  # (source, scope, statement)
        slots: list[h.Stmt | None] = []  # the parent statement whose comment lines each one keeps
        for i in range(length):
            from_parent = i < len(body_p) and (i >= len(body_i) or rng.random() < 0.5)
            picks.append((ctx.a, scope, body_p[i]) if from_parent else (ia, iscope, body_i[i]))
            slots.append(body_p[i] if i < len(body_p) else None)
        if ret_p is not None:
            if ret_i is not None and rng.random() < 0.5:
                picks.append((ia, iscope, ret_i))
            else:
                picks.append((ctx.a, scope, ret_p))
            slots.append(ret_p)
        from_insp = sum(1 for src, _, _ in picks if src is not ctx.a)
        if not from_insp and len(picks) == len(P):
            raise NoSite("uniform crossover kept every parent statement")
        if not _names_flow(ctx, scope, picks):
            raise NoSite("crossover would read unbound names or leave dead code")
        if _same_code(ctx.a, [s.node for s in P], [s.node for _, _, s in picks]):
            raise NoSite("uniform crossover gave the same code")
        carry = [line for s in body_p[length:] for line in s.node.leading_lines]
        body = list(block.node.body[: len(block.stmts) - len(P)])
        for (_, _, stmt), slot in zip(picks, slots, strict=True):
            lead = list(slot.node.leading_lines) if slot is not None else []
            if slot is ret_p and ret_p is not None:
                lead, carry = carry + lead, []
            same = stmt is slot and lead == list(stmt.node.leading_lines)
            body.append(stmt.node if same else stmt.node.with_changes(leading_lines=lead))
        new = block.node.with_changes(body=body, footer=(*carry, *block.node.footer))
        desc = (f"crossover {scope.name}: uniform over {len(picks)} statements, "
                f"{from_insp} from inspiration {k + 1}")
        return ctx.a.render(block.node, new), desc


class CrossoverFunction(Operator):
    """Replace a whole function by the same-named function of an inspiration."""

    name = "crossover_function"
    uses_inspirations = True

    def sites(self, ctx):
        return [p for p in _pairs(ctx) if p[1].region is not None and p[6].region is not None]

    def apply(self, ctx, rng):
        scope, def_stmt, _, k, ia, _, idef, _ = self.pick(ctx, rng)
        if _same_code(ctx.a, [def_stmt.node], [idef.node]):
            raise NoSite("the inspiration's function is the same code")
        new = idef.node.with_changes(leading_lines=def_stmt.node.leading_lines)
        desc = f"crossover: function {scope.name} <- inspiration {k + 1}"
        return ctx.a.render(def_stmt.node, new), desc
