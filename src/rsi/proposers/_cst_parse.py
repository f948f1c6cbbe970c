"""Parsing a program once and collecting its sites: roles of names, scopes, editable nodes.

``analyze(source)`` parses a program with libcst once (results are kept in a small LRU keyed by
the source text) and records, in source order, every place an operator may edit: constants,
operators, names, calls, value expressions and statements inside function bodies. A node is a
site only if the whole text it owns (``WhitespaceInclusivePositionProvider``) lies inside one
editable region. The walk is a hand-written pre-order over node fields (``_walk``), with the
roles of names decided by their parents (``_Collector``).
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from typing import cast

import libcst as cst
from libcst.metadata import MetadataWrapper, WhitespaceInclusivePositionProvider

from ..program import editable_regions
from ._cst_build import ARITH, BINPREC, stmt_kind
from ._cst_model import (
    ARRAY,
    MODULE,
    NOT_SWAPPABLE,
    OTHER,
    SCALAR,
    UNKNOWN,
    VALUE_KINDS,
    Analysis,
    Block,
    Scope,
    Site,
    Stmt,
    expr_kind,
)

# Roles of a node, decided by its parent: how a name there is used and what may be edited.
LOAD, STORE, AUG, LOCAL, PARAM, CALLEE, FIXED, SKIP = range(8)  # FIXED: constants only
DENY_KEYWORDS = frozenset({"axis", "dtype", "out", "keepdims", "ord", "kind", "order", "where"})
_NEWLINE = re.compile(r"\r\n?|\n")


# -- the collecting visitor ----------------------------------------------------------------------
_SKIP_TYPES = (cst.Import, cst.ImportFrom, cst.Global, cst.Nonlocal, cst.Del, cst.Decorator,
               cst.Annotation, cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)
VALUE_TYPES = (cst.Name, cst.Integer, cst.Float, cst.UnaryOperation, cst.BinaryOperation,
                cst.Call, cst.Subscript)
_CONTAINERS = (cst.Tuple, cst.List, cst.Element, cst.StarredElement)


def _annotation_kind(annotation: cst.Annotation | None, module: cst.Module) -> str:
    if annotation is None:
        return UNKNOWN
    text = module.code_for_node(annotation.annotation)
    if any(word in text for word in ("ndarray", "NDArray", "list", "List", "Sequence", "array")):
        return ARRAY
    if text in ("float", "int", "bool"):
        return SCALAR
    return UNKNOWN


class _Collector:
    """Records roles, scopes and sites while ``_walk`` visits each node (parents first)."""

    def __init__(self, a: Analysis) -> None:
        self.a = a
        self.stack: list[cst.CSTNode] = []
        self.roles: list[int] = []
        self.marks: dict[int, int] = {}
        self.scopes: list[Scope] = [a.module_scope]
        self.hinted: set[int] = set()

    def mark(self, node, role: int) -> None:
        if node is not None and type(node) is not cst.MaybeSentinel:
            self.marks[id(node)] = role

    def on_visit(self, node: cst.CSTNode) -> None:
        parent = self.stack[-1] if self.stack else None
        self.a.parent[id(node)] = parent
        above = self.roles[-1] if self.roles else LOAD
        role = self.marks.pop(id(node), None)
        if above == SKIP or type(node) in _SKIP_TYPES:
            role = SKIP
        elif role is None:
            if above == FIXED:
                role = FIXED
            elif above in (STORE, LOCAL) and type(parent) in _CONTAINERS:
                role = above
            else:
                role = LOAD
        self.stack.append(node)
        self.roles.append(role)
        self._scan(node, role, parent)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()
        self.roles.pop()
        if type(original_node) in (cst.FunctionDef, cst.ClassDef):
            self.scopes.pop()

    def _hint(self, target, value) -> None:
        if isinstance(target, cst.Name):
            self.scopes[-1].assigns.append((target.value, value))
            self.hinted.add(id(target))

    def _scan(self, node: cst.CSTNode, role: int, parent) -> None:  # noqa: C901 - a dispatch
        a, scope = self.a, self.scopes[-1]
        if type(node) is cst.Name:
            a.all_names.add(node.value)
            line = a.pos[node].start.line
            if role in (STORE, AUG):
                scope.stores.append((line, node.value))
                if id(node) not in self.hinted and role == STORE:
                    scope.assigns.append((node.value, UNKNOWN))
            if role == LOCAL:
                scope.local_names.add(node.value)
            if role in (LOAD, CALLEE, AUG, FIXED):
                scope.loads.append((line, node.value))
        if role == SKIP:
            if type(node) is cst.Import:
                for alias in node.names:
                    full = a.code(alias.name)
                    name = a.code(alias.asname.name) if alias.asname else full.split(".")[0]
                    if full == "numpy" and a.np_alias is None:
                        a.np_alias = name
                    if full == "math" and a.math_alias is None:
                        a.math_alias = name
                    scope.stores.append((a.pos[node].start.line, name))
                    scope.assigns.append((name, MODULE))
            elif type(node) is cst.ImportFrom and not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    name = a.code(alias.asname.name if alias.asname else alias.name)
                    scope.stores.append((a.pos[node].start.line, name))
                    scope.assigns.append((name, OTHER))
            return
        if type(node) is cst.FunctionDef:
            scope.stores.append((a.pos[node].start.line, node.name.value))
            scope.assigns.append((node.name.value, OTHER))
            self.mark(node.name, SKIP)
            new = Scope(node.name.value, "function", node)
            p = node.params
            for param in (*p.posonly_params, *p.params, *p.kwonly_params, p.star_arg, p.star_kwarg):
                if isinstance(param, cst.Param):
                    self.mark(param.name, PARAM)
                    self.mark(param.annotation, SKIP)
                    self.mark(param.default, FIXED)
                    new.params.append(param.name.value)
                    new.assigns.append((param.name.value, _annotation_kind(param.annotation, a.module)))
            if isinstance(node.body, cst.IndentedBlock):
                new.body = node.body
            a.scopes.append(new)
            self.scopes.append(new)
            a.functions.append((new, self._stmt(node, None, 0)))
            return
        if type(node) is cst.ClassDef:
            scope.stores.append((a.pos[node].start.line, node.name.value))
            scope.assigns.append((node.name.value, OTHER))
            for child in (node.name, *node.bases, *node.keywords):
                self.mark(child, SKIP)
            self.scopes.append(Scope(node.name.value, "class", node))
            return
        if type(node) is cst.Lambda:
            for param in (*node.params.params, *node.params.kwonly_params, *node.params.posonly_params):
                self.mark(param.name, LOCAL)
                self.mark(param.default, FIXED)
        elif type(node) is cst.Assign:
            for target in node.targets:
                self.mark(target.target, STORE)
            if len(node.targets) == 1:
                self._hint(node.targets[0].target, node.value)
        elif type(node) is cst.AnnAssign:
            self.mark(node.target, STORE)
            self._hint(node.target, node.value if node.value is not None else UNKNOWN)
        elif type(node) is cst.AugAssign:
            self.mark(node.target, AUG)
            if self._in_region(node):
                a.augassigns.append(Site(node, scope, a.pos[node].start.line))
        elif type(node) is cst.For:
            self.mark(node.target, STORE)
            it = node.iter
            ranged = type(it) is cst.Call and type(it.func) is cst.Name and it.func.value == "range"
            self._hint(node.target, SCALAR if ranged else UNKNOWN)
        elif type(node) is cst.CompFor:
            self.mark(node.target, LOCAL)
        elif type(node) is cst.NamedExpr:
            self.mark(node.target, STORE)
        elif type(node) is cst.WithItem:
            if node.asname is not None:
                self.mark(node.asname.name, STORE)
        elif type(node) is cst.ExceptHandler:
            if node.name is not None:
                self.mark(node.name.name, STORE)
        elif type(node) is cst.Attribute:
            self.mark(node.attr, SKIP)
        elif type(node) is cst.Call:
            self.mark(node.func, CALLEE)
        elif type(node) is cst.Arg:
            if node.keyword is not None:
                self.mark(node.keyword, SKIP)
                if node.keyword.value in DENY_KEYWORDS:
                    self.mark(node.value, SKIP)
        elif type(node) is cst.SubscriptElement:
            self.mark(node.slice, FIXED)
        elif type(node) is cst.IndentedBlock and scope.kind == "function":
            stmts = [self._stmt(s, node, i) for i, s in enumerate(node.body)]
            if stmts and node is scope.body and stmts[0].kind == "string":
                stmts[0].docstring = True
            a.blocks.append(Block(node, scope, stmts))
        if type(node) in (cst.If, cst.While, cst.IfExp, cst.Assert):
            test = cast("cst.If | cst.While | cst.IfExp | cst.Assert", node).test
            if self._in_region(test):
                a.tests.append(Site(test, scope, a.pos[test].start.line))
        self._expression_sites(node, role, parent, scope)

    def _expression_sites(self, node, role, parent, scope) -> None:
        if not _is_expression(type(node)) or role not in (LOAD, FIXED, CALLEE):
            return
        if not self._in_region(node):
            return
        a = self.a
        site = Site(node, scope, a.pos[node].start.line)
        negated = type(parent) is cst.UnaryOperation and type(parent.operator) is cst.Minus
        number = type(node) in (cst.Integer, cst.Float)
        if role in (LOAD, FIXED):
            if number and not (negated and not node.lpar):
                a.constants.append(site)
            elif type(node) is cst.UnaryOperation and isinstance(node.operator, cst.Minus) \
                    and isinstance(node.expression, (cst.Integer, cst.Float)) and not node.expression.lpar:
                a.constants.append(site)
            if type(node) is cst.BinaryOperation and not isinstance(node.operator, cst.MatrixMultiply):
                a.binops.append(site)
            if type(node) is cst.Call:
                a.calls.append(site)
        if role != LOAD:
            return
        if type(node) is cst.Comparison:
            a.compares.append(site)
        elif type(node) is cst.BooleanOperation:
            a.boolops.append(site)
            for side in (node.left, node.right):
                if self._in_region(side):
                    a.tests.append(Site(side, scope, a.pos[side].start.line))
        elif type(node) is cst.UnaryOperation and isinstance(node.operator, cst.Not):
            a.nots.append(site)
        elif type(node) is cst.Name and node.value not in NOT_SWAPPABLE:
            a.names.append(site)
        if type(node) in VALUE_TYPES and not (number and negated):
            if type(node) is cst.UnaryOperation and isinstance(node.operator, (cst.Not, cst.BitInvert)):
                return
            if type(node) is cst.BinaryOperation and BINPREC[type(node.operator)] < ARITH:
                return
            a.values.append(site)

    def _in_region(self, node) -> bool:
        return self.a.editable(node)

    def _stmt(self, node, block, index: int) -> Stmt:
        first, last = self.a.lines(node, len(node.leading_lines))
        return Stmt(node, index, first, last, self.a.region_of(first, last), stmt_kind(node))


def _finish(a: Analysis) -> None:
    for scope in (a.module_scope, *a.scopes):
        kinds: dict[str, str] = {}
        for name, value in scope.assigns:
            if isinstance(value, str):
                kind = value
            else:
                kind = expr_kind(a, value, lambda n, s=scope, k=kinds: k.get(n) or (
                    a.module_scope.kinds.get(n, OTHER) if s is not a.module_scope else OTHER))
            previous = kinds.get(name)
            kinds[name] = kind if previous is None or previous == kind else UNKNOWN
        scope.kinds = kinds

    def keep(site: Site) -> bool:
        node = site.node
        if isinstance(node, cst.Name):
            return a.kind_of(site.scope, node.value) in VALUE_KINDS and node.value not in NOT_SWAPPABLE
        if isinstance(node, cst.Call):
            return a.expr_kind(node, site.scope) in (ARRAY, SCALAR)
        return site.scope.kind != "class"

    a.values = [s for s in a.values if keep(s)]
    a.names = [s for s in a.names if a.kind_of(s.scope, cast(cst.Name, s.node).value) in VALUE_KINDS
               and cast(cst.Name, s.node).value not in s.scope.local_names]


# Leaves that carry no site: skipping them makes the walk several times cheaper.
_LEAVES = (cst.BaseParenthesizableWhitespace, cst.EmptyLine, cst.TrailingWhitespace, cst.Newline,
           cst.Comment, cst.LeftParen, cst.RightParen, cst.LeftSquareBracket, cst.RightSquareBracket,
           cst.LeftCurlyBrace, cst.RightCurlyBrace, cst.Comma, cst.Dot, cst.Colon, cst.Semicolon,
           cst.AssignEqual, cst.BaseBinaryOp, cst.BaseBooleanOp, cst.BaseCompOp, cst.BaseUnaryOp,
           cst.BaseAugOp)
_FIELDS: dict[type, tuple[str, ...]] = {}
_WALKED: dict[type, bool] = {}
_EXPRESSION: dict[type, bool] = {}


def _is_expression(t: type) -> bool:
    if t not in _EXPRESSION:
        _EXPRESSION[t] = issubclass(t, cst.BaseExpression)
    return _EXPRESSION[t]


def children(node: cst.CSTNode):
    """The child nodes that can hold code (no whitespace, commas, operators), in field order."""
    names = _FIELDS.get(type(node))
    if names is None:
        names = _FIELDS[type(node)] = tuple(f.name for f in dataclasses.fields(node))
    for name in names:
        value = getattr(node, name)
        for item in value if type(value) in (tuple, list) else (value,):
            t = type(item)
            walk = _WALKED.get(t)
            if walk is None:
                walk = _WALKED[t] = issubclass(t, cst.CSTNode) and not issubclass(t, _LEAVES)
            if walk:
                yield item


_BINDS = (cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.NamedExpr)


def names_in(node: cst.CSTNode) -> set[str] | None:
    """Names an expression reads; None if it binds names of its own (lambda, comprehension)."""
    t = type(node)
    if t in _BINDS:
        return None
    if type(node) is cst.Name:
        return {node.value}
    if type(node) is cst.Attribute:
        return names_in(node.value)
    out: set[str] = set()
    for child in children(node):
        sub = names_in(child.value if type(child) is cst.Arg else child)
        if sub is None:
            return None
        out |= sub
    return out


def _walk(node: cst.CSTNode, collector: _Collector) -> None:
    """Pre-order walk over the fields of each node (libcst's visitor rebuilds every node).

    Type tests are cached per class: isinstance against libcst's abstract bases is slow.
    """
    collector.on_visit(node)
    names = _FIELDS.get(type(node))
    if names is None:
        names = _FIELDS[type(node)] = tuple(f.name for f in dataclasses.fields(node))
    for name in names:
        value = getattr(node, name)
        items = value if type(value) in (tuple, list) else (value,)
        for item in items:
            t = type(item)
            walk = _WALKED.get(t)
            if walk is None:
                walk = _WALKED[t] = issubclass(t, cst.CSTNode) and not issubclass(t, _LEAVES)
            if walk:
                _walk(item, collector)
    collector.on_leave(node)


# -- parsing with an LRU -------------------------------------------------------------------------
_CACHE: OrderedDict[str, Analysis] = OrderedDict()
_CACHE_SIZE = 64


def analyze(source: str) -> Analysis:
    """Parse ``source`` and collect its sites (cached). Raises libcst's ParserSyntaxError."""
    hit = _CACHE.get(source)
    if hit is not None:
        _CACHE.move_to_end(source)
        return hit
    module = cst.parse_module(source)
    pos = MetadataWrapper(module, unsafe_skip_copy=True).resolve(WhitespaceInclusivePositionProvider)
    starts = [0]
    for match in _NEWLINE.finditer(source):
        starts.append(match.end())
    a = Analysis(source, module, editable_regions(source), pos, starts)
    _walk(module, _Collector(a))
    _finish(a)
    _CACHE[source] = a
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return a
