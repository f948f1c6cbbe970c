"""What an analysis of one program holds, and how an edit is rendered back to source.

``Analysis`` (built by ``_cst_parse.analyze``) keeps the parsed module, the whitespace-inclusive
position of every node, the editable regions, the scopes and the sites of each kind. Its methods
answer questions about positions and names, and render an edit: ``render`` regenerates only the
changed node's text and splices it in, ``replace`` rebuilds the module with libcst (the
reference the fast path must equal). The kind of a value (array, scalar, unknown) is inferred
here from what is assigned to it and from the numpy / math functions it comes from.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import CodeRange

try:  # rendering one statement at its indentation needs libcst's codegen state
    from libcst._nodes.internal import CodegenState as _CodegenState
except ImportError:  # pragma: no cover - then every statement edit renders the whole module
    _CodegenState = None  # type: ignore[assignment,misc]  # checked for None before use

BUILTINS = frozenset(dir(builtins))
ARRAY, SCALAR, UNKNOWN, MODULE, OTHER = "array", "scalar", "unknown", "module", "other"
VALUE_KINDS = (ARRAY, SCALAR, UNKNOWN)
NOT_SWAPPABLE = frozenset({"self", "cls", "True", "False", "None"})

# numpy functions by how they behave, used for kind inference and call swaps.
NP_UNARY = ("abs", "sqrt", "square", "exp", "log", "log1p", "expm1", "tanh", "reciprocal",
            "negative", "sin", "cos", "arctan", "log2", "cbrt", "sign", "floor", "ceil", "exp2",
            "sinh", "cosh", "arcsinh", "fabs", "rint")
NP_BINARY = ("maximum", "minimum", "add", "subtract", "multiply", "divide", "power", "fmax",
             "fmin", "hypot", "arctan2", "mod")
NP_REDUCE = ("max", "min", "mean", "sum", "median", "std")
NP_ARRAY_MAKERS = frozenset({"zeros_like", "ones_like", "full_like", "array", "asarray", "arange",
                             "zeros", "ones", "full", "linspace", "cumsum", "sort", "argsort"})
MATH_UNARY = ("sqrt", "exp", "log", "log1p", "expm1", "tanh", "fabs", "sin", "cos", "atan",
              "floor", "ceil")


@dataclass(eq=False)
class Scope:
    """A function (or the module, or a class body): its parameters, stores and loads by line."""

    name: str
    kind: str  # "function" | "module" | "class"
    node: cst.CSTNode | None = None
    params: list[str] = field(default_factory=list)
    stores: list[tuple[int, str]] = field(default_factory=list)
    loads: list[tuple[int, str]] = field(default_factory=list)
    local_names: set[str] = field(default_factory=set)  # comprehension / lambda variables
    assigns: list[tuple[str, str | cst.CSTNode]] = field(default_factory=list)  # (name, value node | kind)
    kinds: dict[str, str] = field(default_factory=dict)
    body: cst.IndentedBlock | None = None


@dataclass(eq=False)
class Site:
    node: cst.CSTNode
    scope: Scope
    line: int


@dataclass(eq=False)
class Stmt:
    node: cst.SimpleStatementLine | cst.BaseCompoundStatement  # (libcst's two kinds of BaseStatement)
    index: int
    first: int  # first line of code, after the leading comment / blank lines
    last: int
    region: int | None  # the editable region holding the whole statement, or None
    kind: str = "simple"  # see _cst_build.stmt_kind
    docstring: bool = False


@dataclass(eq=False)
class Block:
    node: cst.IndentedBlock
    scope: Scope
    stmts: list[Stmt]

    def gap_ok(self, gap: int) -> bool:
        """May a statement be inserted before ``stmts[gap]`` (``gap == len``: at the end)?"""
        n = len(self.stmts)
        return (gap > 0 and self.stmts[gap - 1].region is not None) or (
            gap < n and self.stmts[gap].region is not None
        )

    def gap_line(self, gap: int) -> int:
        return self.stmts[gap].first if gap < len(self.stmts) else self.stmts[-1].last + 1

    def first_return(self) -> int:
        """Index of the first statement that is a ``return`` (or ``len``): later gaps are dead."""
        for s in self.stmts:
            if s.kind == "return":
                return s.index
        return len(self.stmts)


@dataclass(eq=False)
class Analysis:
    source: str
    module: cst.Module
    regions: list
    pos: Mapping[cst.CSTNode, CodeRange]  # whitespace inclusive
    line_starts: list[int]
    parent: dict[int, cst.CSTNode | None] = field(default_factory=dict)
    module_scope: Scope = field(default_factory=lambda: Scope("<module>", "module"))
    scopes: list[Scope] = field(default_factory=list)
    constants: list[Site] = field(default_factory=list)
    binops: list[Site] = field(default_factory=list)
    compares: list[Site] = field(default_factory=list)
    boolops: list[Site] = field(default_factory=list)
    nots: list[Site] = field(default_factory=list)
    tests: list[Site] = field(default_factory=list)  # Python-bool contexts where `not` may go
    augassigns: list[Site] = field(default_factory=list)
    names: list[Site] = field(default_factory=list)
    calls: list[Site] = field(default_factory=list)
    values: list[Site] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    functions: list[tuple[Scope, Stmt | None]] = field(default_factory=list)
    np_alias: str | None = None
    math_alias: str | None = None
    all_names: set[str] = field(default_factory=set)
    memo: dict = field(default_factory=dict)  # per-analysis caches (site lists, ast dump...)

    # -- positions ---------------------------------------------------------------------------
    def lines(self, node: cst.CSTNode, leading: int = 0) -> tuple[int, int]:
        r = self.pos[node]
        last = r.end.line - 1 if r.end.column == 0 and r.end.line > r.start.line else r.end.line
        return r.start.line + leading, last

    def region_of(self, first: int, last: int) -> int | None:
        for index, region in enumerate(self.regions):
            if region.first <= first and last <= region.last:
                return index
        return None

    def editable(self, node: cst.CSTNode) -> bool:
        return self.region_of(*self.lines(node)) is not None

    # -- names -------------------------------------------------------------------------------
    def kind_of(self, scope: Scope, name: str) -> str:
        if name in scope.kinds:
            return scope.kinds[name]
        if name in scope.local_names:
            return UNKNOWN
        if name in self.module_scope.kinds:
            return self.module_scope.kinds[name]
        return OTHER

    def expr_kind(self, node: cst.CSTNode, scope: Scope) -> str:
        return expr_kind(self, node, lambda name: self.kind_of(scope, name))

    def available(self, scope: Scope, line: int, extra: tuple[str, ...] = ()) -> dict[str, str]:
        """Value names usable at ``line`` of ``scope``, with their kinds (insertion ordered)."""
        key = ("avail", id(scope), line, extra)
        if key in self.memo:
            return self.memo[key]
        out: dict[str, str] = {}
        for name in scope.params:
            out[name] = scope.kinds.get(name, UNKNOWN)
        for at, name in scope.stores:
            if at < line and name not in out:
                out[name] = scope.kinds.get(name, UNKNOWN)
        mod = self.module_scope
        for at, name in mod.stores:
            if name in out or mod.kinds.get(name) not in VALUE_KINDS:
                continue
            if scope is not mod or at < line:
                out[name] = mod.kinds[name]
        for name in extra:
            out.setdefault(name, UNKNOWN)
        out = {k: v for k, v in out.items() if v in VALUE_KINDS and k not in NOT_SWAPPABLE}
        self.memo[key] = out
        return out

    def module_ok(self, name: str) -> bool:
        """Is ``name`` defined at module level (import, def, global) or a builtin?"""
        return name in self.module_scope.kinds or name in BUILTINS

    def stmt_names(self, scope: Scope, stmt: Stmt) -> tuple[frozenset[str], frozenset[str]]:
        """(names a statement reads, names it binds), from the scope's load/store lists."""
        key = ("names", id(stmt))
        if key not in self.memo:
            loads = {n for at, n in scope.loads if stmt.first <= at <= stmt.last}
            stores = {n for at, n in scope.stores if stmt.first <= at <= stmt.last}
            self.memo[key] = (frozenset(loads - scope.local_names), frozenset(stores))
        return self.memo[key]

    def defined_before(self, scope: Scope, name: str, line: int) -> bool:
        return name in scope.params or any(n == name and at < line for at, n in scope.stores)

    def loaded_between(self, scope: Scope, names: frozenset[str], lo: int, hi: int) -> bool:
        return any(lo < at <= hi and n in names for at, n in scope.loads)

    # -- rendering ---------------------------------------------------------------------------
    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        """Offsets in ``source`` of the text ``node`` owns (whitespace and comments included)."""
        r = self.pos[node]
        return (self.line_starts[r.start.line - 1] + r.start.column,
                self.line_starts[r.end.line - 1] + r.end.column)

    def render(self, old: cst.CSTNode, new: cst.CSTNode) -> str:
        """The source with ``old`` replaced by ``new``.

        Only what changed is rendered and spliced over the text ``old`` owns: a one-line
        expression needs no context; a statement is rendered at its indentation; a block keeps
        the original text of every statement it still holds. This equals
        ``self.replace(old, new).code`` (the fallback) at a fraction of the cost.
        """
        if _CodegenState is None:
            return self.replace(old, new).code
        start, end = self.span(old)
        if isinstance(old, cst.BaseExpression):
            text = self.module.code_for_node(new)
            if "\n" in text or "\r" in text or "\n" in self.source[start:end]:
                return self._render_statement(old, new)
        elif not isinstance(old, (cst.BaseStatement, cst.IndentedBlock)):
            return self._render_statement(old, new)
        elif type(old) is cst.IndentedBlock and type(new) is cst.IndentedBlock and old.body \
                and new.header is old.header and new.indent == old.indent:
            own = self.module.default_indent if old.indent is None else old.indent
            indents = [*self._indents(old), own]
            kept = {id(s): self.span(s) for s in old.body}
            body_start, body_end = self.span(old.body[0])[0], self.span(old.body[-1])[1]
            pieces = [self.source[start:body_start]]
            for stmt in new.body:
                at = kept.get(id(stmt))
                pieces.append(self.source[at[0]:at[1]] if at else self._codegen(stmt, indents))
            if new.footer is old.footer:
                pieces.append(self.source[body_end:end])
            else:
                pieces.extend(self._codegen(line, indents) for line in new.footer)
            text = "".join(pieces)
        else:
            text = self._codegen(new, self._indents(old))
        return self.source[:start] + text + self.source[end:]

    def _render_statement(self, old: cst.CSTNode, new: cst.CSTNode) -> str:
        """Render the edit by re-rendering the statement that encloses ``old``."""
        child, repl = old, new
        node = self.parent.get(id(old))
        while node is not None and (not isinstance(node, cst.BaseStatement) or (
                type(node) is cst.If and type(self.parent.get(id(node))) is cst.If)):  # an elif
            repl = _with_child(node, child, repl)
            child, node = node, self.parent.get(id(node))
        if node is None:
            return self.replace(old, new).code
        return self.render(node, _with_child(node, child, repl))

    def _indents(self, node: cst.CSTNode) -> list[str]:
        """Indentation tokens of the blocks enclosing ``node``, outermost first."""
        out = []
        up = self.parent.get(id(node))
        while up is not None:
            if type(up) is cst.IndentedBlock:
                out.append(self.module.default_indent if up.indent is None else up.indent)
            up = self.parent.get(id(up))
        return out[::-1]

    def _codegen(self, node: cst.CSTNode, indents: list[str]) -> str:
        state = _CodegenState(default_indent=self.module.default_indent,
                              default_newline=self.module.default_newline, indent_tokens=list(indents))
        node._codegen(state)
        return "".join(state.tokens)

    def replace(self, old: cst.CSTNode, new: cst.CSTNode) -> cst.Module:
        """A new module with ``old`` replaced by ``new``, rebuilding only its ancestors."""
        child, repl = old, new
        node = self.parent.get(id(old))
        while node is not None:
            repl = _with_child(node, child, repl)
            child, node = node, self.parent.get(id(node))
        assert isinstance(repl, cst.Module)
        return repl

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)


def _with_child(parent: cst.CSTNode, old: cst.CSTNode, new: cst.CSTNode) -> cst.CSTNode:
    for f in dataclasses.fields(parent):
        value = getattr(parent, f.name)
        if value is old:
            return parent.with_changes(**{f.name: new})
        if isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                if item is old:
                    items = list(value)
                    items[i] = new
                    return parent.with_changes(**{f.name: tuple(items)})
    raise LookupError(f"{type(old).__name__} is not a child of {type(parent).__name__}")


# -- kinds ---------------------------------------------------------------------------------------
def _join(kinds) -> str:
    kinds = list(kinds)
    if ARRAY in kinds:
        return ARRAY
    if kinds and all(k == SCALAR for k in kinds):
        return SCALAR
    return UNKNOWN


def call_target(a: Analysis, call: cst.Call) -> tuple[str, str] | None:
    """("np", f) for ``<numpy alias>.f(...)``, ("math", f), ("", f) for a builtin, else None."""
    func = call.func
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
        base = func.value.value
        if base == a.np_alias:
            return "np", func.attr.value
        if base == a.math_alias:
            return "math", func.attr.value
    elif isinstance(func, cst.Name) and func.value in BUILTINS:
        if func.value not in a.module_scope.kinds:
            return "", func.value
    return None


def expr_kind(a: Analysis, node: cst.CSTNode, lookup) -> str:
    if isinstance(node, cst.Name):
        if node.value in ("True", "False"):
            return SCALAR
        kind = lookup(node.value)
        return kind if kind in VALUE_KINDS else UNKNOWN
    if isinstance(node, (cst.Integer, cst.Float)):
        return SCALAR
    if isinstance(node, cst.UnaryOperation):
        return expr_kind(a, node.expression, lookup)
    if isinstance(node, (cst.BinaryOperation, cst.BooleanOperation)):
        return _join([expr_kind(a, node.left, lookup), expr_kind(a, node.right, lookup)])
    if isinstance(node, cst.Comparison):
        parts = [node.left, *(t.comparator for t in node.comparisons)]
        return _join(expr_kind(a, p, lookup) for p in parts)
    if isinstance(node, cst.IfExp):
        return _join([expr_kind(a, node.body, lookup), expr_kind(a, node.orelse, lookup)])
    if isinstance(node, cst.Call):
        target = call_target(a, node)
        args = [arg.value for arg in node.args if not arg.keyword and not arg.star]
        if target is None:
            return UNKNOWN
        module, name = target
        if module == "np":
            if name in NP_REDUCE or name in ("argmax", "argmin", "prod", "var", "ptp"):
                return SCALAR if len(node.args) == 1 else UNKNOWN
            if name in NP_ARRAY_MAKERS:
                return ARRAY
            return _join(expr_kind(a, arg, lookup) for arg in args) if args else UNKNOWN
        if module == "math":
            return SCALAR
        if name in ("abs", "round") and args:
            return expr_kind(a, args[0], lookup)
        if name in ("min", "max", "len", "float", "int", "sum"):
            return SCALAR if name in ("len", "float", "int") else UNKNOWN
        return UNKNOWN
    return UNKNOWN
