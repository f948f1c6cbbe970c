"""What the ``mutate`` operators share: one parse per source, editable sites, scopes, rebuilding.

``analyze(source)`` parses a program with libcst once (results are kept in a small LRU keyed by
the source text) and records, in source order, every place an operator may edit: constants,
operators, names, calls, value expressions and statements inside function bodies. A node is a
site only if the whole text it owns (``WhitespaceInclusivePositionProvider``) lies inside one
editable region; a statement's leading comment lines are never removed, only carried along, so
``# EVOLVE-BLOCK-*`` markers stay exactly where they are.

Nothing here iterates over a set or a hash-ordered dict to make a choice: lists keep source order
and callers sort names before drawing from them, so a seeded rng gives the same child in every
process.
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from collections import OrderedDict
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, WhitespaceInclusivePositionProvider

from ..program import editable_regions

try:  # rendering one statement at its indentation needs libcst's codegen state
    from libcst._nodes.internal import CodegenState as _CodegenState
except ImportError:  # pragma: no cover - then every statement edit renders the whole module
    _CodegenState = None

BUILTINS = frozenset(dir(builtins))
ARRAY, SCALAR, UNKNOWN, MODULE, OTHER = "array", "scalar", "unknown", "module", "other"
VALUE_KINDS = (ARRAY, SCALAR, UNKNOWN)
NOT_SWAPPABLE = frozenset({"self", "cls", "True", "False", "None"})
# Roles of a node, decided by its parent: how a name there is used and what may be edited.
LOAD, STORE, AUG, LOCAL, PARAM, CALLEE, FIXED, SKIP = range(8)  # FIXED: constants only
DENY_KEYWORDS = frozenset({"axis", "dtype", "out", "keepdims", "ord", "kind", "order", "where"})
_NEWLINE = re.compile(r"\r\n?|\n")

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

# Operator precedence, low to high (Python's grammar).
LAMBDA, IFEXP, OR, AND, NOT, COMPARE, BOR, BXOR, BAND, SHIFT, ARITH, TERM, UNARY, POWER, AWAIT, \
    ATOM = range(16)
BINPREC = {
    cst.BitOr: BOR, cst.BitXor: BXOR, cst.BitAnd: BAND, cst.LeftShift: SHIFT, cst.RightShift: SHIFT,
    cst.Add: ARITH, cst.Subtract: ARITH, cst.Multiply: TERM, cst.Divide: TERM,
    cst.FloorDivide: TERM, cst.Modulo: TERM, cst.MatrixMultiply: TERM, cst.Power: POWER,
}


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
    assigns: list[tuple[str, object]] = field(default_factory=list)  # (name, value node | kind)
    kinds: dict[str, str] = field(default_factory=dict)
    body: cst.IndentedBlock | None = None


@dataclass(eq=False)
class Site:
    node: cst.CSTNode
    scope: Scope
    line: int


@dataclass(eq=False)
class Stmt:
    node: cst.BaseStatement
    index: int
    first: int  # first line of code, after the leading comment / blank lines
    last: int
    region: int | None  # the editable region holding the whole statement, or None
    kind: str = "simple"  # see stmt_kind
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
    pos: object  # node -> CodeRange (whitespace inclusive)
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
        return _expr_kind(self, node, lambda name: self.kind_of(scope, name))

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
        node = self.parent.get(id(node))
        while node is not None:
            if type(node) is cst.IndentedBlock:
                out.append(self.module.default_indent if node.indent is None else node.indent)
            node = self.parent.get(id(node))
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


def _expr_kind(a: Analysis, node: cst.CSTNode, lookup) -> str:
    if isinstance(node, cst.Name):
        if node.value in ("True", "False"):
            return SCALAR
        kind = lookup(node.value)
        return kind if kind in VALUE_KINDS else UNKNOWN
    if isinstance(node, (cst.Integer, cst.Float)):
        return SCALAR
    if isinstance(node, cst.UnaryOperation):
        return _expr_kind(a, node.expression, lookup)
    if isinstance(node, (cst.BinaryOperation, cst.BooleanOperation)):
        return _join([_expr_kind(a, node.left, lookup), _expr_kind(a, node.right, lookup)])
    if isinstance(node, cst.Comparison):
        parts = [node.left, *(t.comparator for t in node.comparisons)]
        return _join(_expr_kind(a, p, lookup) for p in parts)
    if isinstance(node, cst.IfExp):
        return _join([_expr_kind(a, node.body, lookup), _expr_kind(a, node.orelse, lookup)])
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
            return _join(_expr_kind(a, arg, lookup) for arg in args) if args else UNKNOWN
        if module == "math":
            return SCALAR
        if name in ("abs", "round") and args:
            return _expr_kind(a, args[0], lookup)
        if name in ("min", "max", "len", "float", "int", "sum"):
            return SCALAR if name in ("len", "float", "int") else UNKNOWN
        return UNKNOWN
    return UNKNOWN


# -- precedence ----------------------------------------------------------------------------------
def prec(node: cst.CSTNode) -> int:
    if getattr(node, "lpar", None):
        return ATOM
    if isinstance(node, cst.BinaryOperation):
        return BINPREC[type(node.operator)]
    if isinstance(node, cst.UnaryOperation):
        return NOT if isinstance(node.operator, cst.Not) else UNARY
    if isinstance(node, cst.BooleanOperation):
        return AND if isinstance(node.operator, cst.And) else OR
    if isinstance(node, cst.Comparison):
        return COMPARE
    if isinstance(node, cst.IfExp):
        return IFEXP
    if isinstance(node, cst.Lambda):
        return LAMBDA
    if isinstance(node, cst.Await):
        return AWAIT
    if isinstance(node, (cst.NamedExpr, cst.Yield, cst.Tuple)):
        return -1
    return ATOM


def slot_min(parent: cst.CSTNode | None, child: cst.CSTNode) -> int:
    """The lowest precedence an expression may have to sit unparenthesised where ``child`` is."""
    if isinstance(parent, cst.BinaryOperation):
        p = BINPREC[type(parent.operator)]
        power = isinstance(parent.operator, cst.Power)
        if parent.left is child:
            return p + 1 if power else p
        return UNARY if power else p + 1
    if isinstance(parent, cst.UnaryOperation):
        return NOT if isinstance(parent.operator, cst.Not) else UNARY
    if isinstance(parent, cst.BooleanOperation):
        p = AND if isinstance(parent.operator, cst.And) else OR
        return p if parent.left is child else p + 1
    if isinstance(parent, (cst.Comparison, cst.ComparisonTarget)):
        return COMPARE + 1
    if isinstance(parent, (cst.Attribute, cst.Subscript, cst.Await)):
        return ATOM
    if isinstance(parent, cst.Call):
        return ATOM if parent.func is child else LAMBDA
    if isinstance(parent, cst.IfExp):
        return IFEXP if parent.orelse is child else IFEXP + 1
    return LAMBDA


def paren(node: cst.BaseExpression) -> cst.BaseExpression:
    return node.with_changes(lpar=(cst.LeftParen(),), rpar=(cst.RightParen(),))


def bare(node: cst.BaseExpression) -> cst.BaseExpression:
    """``node`` without its outer parentheses, when they are single-line and not needed by it."""
    if not node.lpar or isinstance(node, (cst.Tuple, cst.GeneratorExp, cst.Yield, cst.NamedExpr)):
        return node
    for p in (*node.lpar, *node.rpar):
        for ws in (getattr(p, "whitespace_after", None), getattr(p, "whitespace_before", None)):
            if ws is not None and not isinstance(ws, cst.SimpleWhitespace):
                return node
    return node.with_changes(lpar=(), rpar=())


def fit(new: cst.BaseExpression, need: int) -> cst.BaseExpression:
    return new if prec(new) >= need else paren(new)


def fit_slot(a: Analysis, new: cst.BaseExpression, old: cst.CSTNode) -> cst.BaseExpression:
    """``new`` parenthesised if it could not replace ``old`` in ``old``'s parent as it stands."""
    return fit(new, slot_min(a.parent.get(id(old)), old))


def refit(node: cst.BaseExpression) -> cst.BaseExpression:
    """Parenthesise the operands of a binary / unary / boolean node as its operator requires."""
    if isinstance(node, (cst.BinaryOperation, cst.BooleanOperation)):
        left = fit(node.left, slot_min(node, node.left))
        right = fit(node.right, slot_min(node, node.right))
        return node.with_changes(left=left, right=right)
    if isinstance(node, cst.UnaryOperation):
        return node.with_changes(expression=fit(node.expression, slot_min(node, node.expression)))
    return node


def binop(left: cst.BaseExpression, op: cst.BaseBinaryOp, right: cst.BaseExpression):
    return refit(cst.BinaryOperation(left=left, operator=op, right=right))


# -- statements ----------------------------------------------------------------------------------
def stmt_kind(node: cst.BaseStatement) -> str:
    if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        return "def"
    if isinstance(node, cst.SimpleStatementLine):
        kinds = {type(s) for s in node.body}
        if kinds & {cst.Return}:
            return "return"
        if kinds & {cst.Import, cst.ImportFrom}:
            return "import"
        if kinds & {cst.Break, cst.Continue, cst.Global, cst.Nonlocal, cst.Raise}:
            return "flow"
        if kinds <= {cst.Pass}:
            return "pass"
        if len(node.body) == 1 and isinstance(node.body[0], cst.Expr) and isinstance(
            node.body[0].value, (cst.SimpleString, cst.ConcatenatedString)
        ):
            return "string"
        return "simple"
    return "compound"


def edit_block(block: Block, removes, inserts: dict[int, list]) -> cst.IndentedBlock:
    """``block`` without statements ``removes`` and with ``inserts[gap]`` before ``stmts[gap]``.

    Leading comment / blank lines of a removed statement move to whatever follows it, and a new
    statement goes right after an editable neighbour, or right before one (taking its comments),
    so text outside the editable regions never moves. Callers check ``block.gap_ok(gap)`` and
    that each removed statement is editable. An emptied block gets ``pass``.
    """
    body = block.node.body
    out: list = []
    carry: list = []
    for gap in range(len(body) + 1):
        taken = False
        new = inserts.get(gap)
        if new:
            new = [s.with_changes(leading_lines=()) for s in new]
            lead, carry = carry, []
            if not (gap > 0 and block.stmts[gap - 1].region is not None):
                lead = [*lead, *body[gap].leading_lines]
                taken = True
            new[0] = new[0].with_changes(leading_lines=lead)
            out.extend(new)
        if gap == len(body):
            break
        stmt = body[gap]
        own = () if taken else stmt.leading_lines
        if gap in removes:
            carry.extend(own)
            continue
        if carry or taken:
            stmt = stmt.with_changes(leading_lines=(*carry, *own))
            carry = []
        out.append(stmt)
    footer = block.node.footer
    if not out:
        out = [cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=carry)]
    elif carry:
        footer = (*carry, *footer)
    return block.node.with_changes(body=out, footer=footer)


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
        elif type(node) in (cst.WithItem, cst.ExceptHandler):
            asname = node.asname if type(node) is cst.WithItem else node.name
            if asname is not None:
                self.mark(asname.name, STORE)
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
        if type(node) in (cst.If, cst.While, cst.IfExp, cst.Assert) and self._in_region(node.test):
            a.tests.append(Site(node.test, scope, a.pos[node.test].start.line))
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
                kind = _expr_kind(a, value, lambda n, s=scope, k=kinds: k.get(n) or (
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
    a.names = [s for s in a.names if a.kind_of(s.scope, s.node.value) in VALUE_KINDS
               and s.node.value not in s.scope.local_names]


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
    if t is cst.Name:
        return {node.value}
    if t is cst.Attribute:
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
