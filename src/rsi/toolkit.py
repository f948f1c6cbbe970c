"""rsi.toolkit: find the places a program may change, and change them. For writing operators.

An *operator* writes a child program from a parent. rsi's built-in ones live in
``rsi.proposers.mutate``; an improver can bring its own (``OPERATORS`` in the improver module, see
``rsi.proposers.improver_ops``). This module is what both are written with: a small layer over
libcst that parses a program once, lists its editable *sites*, and turns one edit of a site into
the child's full source, with every comment, blank line and quirk of layout kept.

A first operator, from parse to child::

    from rsi import toolkit as tk

    program = tk.Program.parse(source)          # parse once; ParseError if it is not Python
    for c in program.constants():               # numeric literals, in source order
        print(c.line, c.text, c.value)          # 12 0.5 0.5
    child = program.constants()[0].set(0.25)    # an edit returns a new Program ...
    child = child.comparisons()[0].swap("<=")   # ... so edits chain: find again on the child
    print(child.changes)                        # one line per edit: the child's rationale
    source = child.render()                     # the child's source text

**Only the EVOLVE-BLOCKs.** A site exists only if all of its text lies inside one
``# EVOLVE-BLOCK-START`` / ``# EVOLVE-BLOCK-END`` region (no markers: the whole file), material
taken from another program comes only from *its* regions, and every edit is checked against its
parent before it is returned: an edit that would change a frozen line (say, text that smuggles in
a marker comment) raises ``EditError`` instead. The engine refuses such children anyway; the
toolkit refuses them first, with a reason.

**What you can find** (each a list, in source order):

==========================  ==============================================================
``constants()``             numeric literals (``0.5``, ``-3``, ``1e-6``): ``.value``, ``.set(x)``,
                            ``.setting`` (``"RATE"`` for ``RATE = 0.5`` at module level),
                            ``.element`` (its place in ``ROWS = [5, 6, 5]``)
``binary_operators()``      ``a + b``, ``x ** 2``, ``h ^ k``: ``.operator``, ``.swap("*")``
``comparisons()``           ``r < 5.0``: ``.operators``, ``.swap("<=")``
``calls()``                 ``np.sqrt(x)``, ``max(a, b)``: ``.callee``, ``.rename("np.log1p")``
``expressions()``           value expressions (names, numbers, arithmetic, calls, subscripts):
                            ``.wrap("np.tanh({})")``, ``.wrap_call(f)``, ``.wrap_binop(op, t)``,
                            ``.wrap_where(cmp, t, other)``
``statements()``            statements of function bodies: ``.delete()``, ``.duplicate()``,
                            ``.move(before)``, ``.insert_before(code)``, ``.insert_after(code)``,
                            ``.insert_branch(cond, body, orelse)``, ``.guard(cond)``
``branches()``              ``if`` statements: ``.condition``, ``.negate()``, ``.swap_branches()``
``functions()``             ``def``s: ``.statements()``, ``.replace_with(other)`` (crossover of a
                            whole function), ``.splice(start, stop, statements)`` (of a range)
==========================  ==============================================================

Every site has ``.text`` (its code), ``.line``, ``.function`` (the enclosing function's name),
``.names()`` (the names in scope there, each with its kind: ``"array"``, ``"scalar"`` or
``"unknown"``) and ``.replace(code)``. Expressions also have ``.kind``. ``Program.program_names``
and ``Program.numpy`` (the alias numpy is imported as, or None) help build new code.

**Edits are values.** ``Program`` is immutable: an edit returns a new ``Program`` whose ``changes``
lists what was done since ``Program.parse``; the sites of the parent still refer to the parent.
To make several edits, find the next site on the child (the order of sites is stable: after
``constants()[2].set(x)`` the child's ``constants()[2]`` is the same literal). Nothing here draws
random numbers: an operator brings its own ``rng``, so a seeded run stays reproducible.

**Crossover.** ``Function.replace_with(other_function)`` takes a whole function from another
program (``Program.parse(inspiration)``); ``Function.splice(start, stop, statements)`` replaces
statements ``start..stop-1`` of a function body by statements from anywhere. Checking that the
names they read are bound is up to you: ``Statement.reads`` and ``Site.names()`` tell.

**Errors.** ``ParseError``: the source is not Python (or its markers are unbalanced).
``EditError``: this edit cannot be made here (code that does not parse, an operator that does not
exist, a position outside the regions, a change of a frozen line). Both are ``ToolkitError``.

**Statements** are those of function bodies, at any depth (module-level code has constants and
expressions but no statement sites). ``Statement.index`` is its position in its block (a docstring
counts: it is index 0), ``siblings()`` the editable statements of that block, ``reads`` and
``binds`` the names it uses. Comment lines of inserted code are dropped; comments at the end of a
line are kept.

**Cost** (on this project's 2-core machine at a load of 8): parsing a 20-40 line program takes
13-18 ms and is cached per source text (64 programs); an edit, about 0.15 ms: it renders only the
node that changed, splices it into the text and checks the frozen lines.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, cast

import libcst as cst

from .errors import ProgramError
from .program import edit_violation, editable_regions, syntax_error
from .proposers import _cst_helpers as h

__all__ = [
    "ToolkitError", "ParseError", "EditError", "Program", "Site", "Expression", "Constant", "BinaryOperator",
    "Comparison", "Call", "Statement", "Branch", "Function", "ARITHMETIC", "BITWISE", "COMPARISONS",
]


class ToolkitError(Exception):
    """A program could not be read or an edit could not be made (the message says why)."""


class ParseError(ToolkitError):
    """The source is not Python, or its EVOLVE-BLOCK markers are unbalanced."""


class EditError(ToolkitError):
    """This edit cannot be made at this site (bad code, unknown operator, frozen text...)."""


# Operator symbols an edit may use, and the libcst node of each.
ARITHMETIC: dict[str, Callable[..., cst.BaseBinaryOp]] = {
    "+": cst.Add, "-": cst.Subtract, "*": cst.Multiply, "/": cst.Divide, "**": cst.Power, "//": cst.FloorDivide,
    "%": cst.Modulo}
BITWISE: dict[str, Callable[..., cst.BaseBinaryOp]] = {
    "&": cst.BitAnd, "|": cst.BitOr, "^": cst.BitXor, "<<": cst.LeftShift, ">>": cst.RightShift}
COMPARISONS: dict[str, Callable[..., cst.BaseCompOp]] = {
    "<": cst.LessThan, "<=": cst.LessThanEqual, ">": cst.GreaterThan, ">=": cst.GreaterThanEqual, "==": cst.Equal,
    "!=": cst.NotEqual}
_BINARY = {**ARITHMETIC, **BITWISE}
_SYMBOL: dict[object, str] = {cls: s for table in (_BINARY, COMPARISONS) for s, cls in table.items()}
_SYMBOL.update({cst.MatrixMultiply: "@", cst.In: "in", cst.NotIn: "not in", cst.Is: "is", cst.IsNot: "is not"})
_BUILD_ERRORS = (cst.CSTValidationError, cst.ParserSyntaxError, LookupError, TypeError, ValueError)


def _is(value: object, kind: type | tuple[type, ...]) -> bool:
    """A run-time type check of an argument (operators are machine-written: their calls are checked)."""
    return isinstance(value, kind) and not isinstance(value, bool)


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _expression(code: str) -> cst.BaseExpression:
    """``code`` parsed as one expression, or EditError."""
    if not isinstance(code, str):
        raise EditError(f"code must be a string, not {type(code).__name__}")
    try:
        return cst.parse_expression(code.strip())
    except cst.ParserSyntaxError as exc:
        raise EditError(f"not an expression: {code!r} ({str(exc).splitlines()[0]})") from None


_HOLE = "__rsi_toolkit_hole__"


class _Fill(cst.CSTTransformer):
    """Put ``e`` where a template holds the placeholder name, parenthesised as its slot needs."""

    def __init__(self, e: cst.BaseExpression):
        super().__init__()
        self.e = h.bare(e)

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        changes = {}
        for f in dataclasses.fields(updated_node):
            value = getattr(updated_node, f.name)
            if isinstance(value, cst.Name) and value.value == _HOLE:
                changes[f.name] = h.fit(self.e, h.slot_min(updated_node, value))
        return updated_node.with_changes(**changes) if changes else updated_node


def _fill(template: str, e: cst.BaseExpression) -> cst.BaseExpression:
    """``template`` (an expression with ``{}`` holes) with ``e`` in every hole."""
    node = _expression(template.replace("{}", _HOLE))
    if isinstance(node, cst.Name) and node.value == _HOLE:
        return e
    return cast(cst.BaseExpression, node.visit(_Fill(e)))


def _is_number(node: object) -> bool:
    """A numeric literal, or a negated one (as ``constants()`` lists them)."""
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        node = node.expression
    return isinstance(node, (cst.Integer, cst.Float))


class _Literals(cst.CSTVisitor):
    """Collects the ids of numeric literals (and of negated ones, as constants() lists them)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[int] = []

    def visit_Integer(self, node: cst.Integer) -> None:
        self.ids.append(id(node))

    def visit_Float(self, node: cst.Float) -> None:
        self.ids.append(id(node))

    def visit_UnaryOperation(self, node: cst.UnaryOperation) -> None:
        self.ids.append(id(node))


# -- the program ------------------------------------------------------------------------------------
class Program:
    """One program's source, parsed on first use; find its sites, edit them, ``render()`` it.

    ``Program.parse(source)`` parses at once (``ParseError`` if it cannot); the programs that edits
    return are parsed only if you look for sites in them. ``changes``: the edits made since the
    program was parsed, one line each.
    """

    def __init__(self, source: str, changes: Sequence[str] = ()):
        self.source = source
        self.changes: tuple[str, ...] = tuple(changes)
        self._parsed: h.Analysis | None = None
        self._found: dict[str, list[Any]] = {}

    @classmethod
    def parse(cls, source: str) -> Program:
        """Parse ``source`` (cached per text): a Program to find sites in and edit."""
        program = cls(source)
        program._analysis()
        return program

    def _analysis(self) -> h.Analysis:
        if self._parsed is None:
            if not isinstance(self.source, str):
                raise ParseError(f"a program is source text, not {type(self.source).__name__}")
            try:
                self._parsed = h.analyze(self.source)
            except cst.ParserSyntaxError as exc:
                raise ParseError(f"the program does not parse: {str(exc).strip().splitlines()[0]}") from None
            except ProgramError as exc:
                raise ParseError(str(exc)) from None
            except RecursionError:
                raise ParseError("the program is nested too deeply to parse") from None
        return self._parsed

    # -- reading ---------------------------------------------------------------------------------
    def render(self) -> str:
        """The program's full source text."""
        return self.source

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"<Program: {len(self.source.splitlines())} lines, {len(self.changes)} changes>"

    @property
    def regions(self) -> list[tuple[int, int]]:
        """The editable line ranges (first, last), 1-based and inclusive."""
        return [(r.first, r.last) for r in editable_regions(self.source)]

    @property
    def numpy(self) -> str | None:
        """The name numpy is imported as (``"np"``), or None: use it to write numpy calls."""
        return self._analysis().np_alias

    @property
    def program_names(self) -> frozenset[str]:
        """Every name the program uses (to pick a fresh one for a new variable)."""
        return frozenset(self._analysis().all_names)

    def error(self) -> str | None:
        """Why the program does not compile (one line), or None."""
        return syntax_error(self.source)

    # -- finding ---------------------------------------------------------------------------------
    def constants(self) -> list[Constant]:
        """Numeric literals inside the regions (a negative literal is one site: ``-0.5``)."""
        return self._find("constants", lambda a: [Constant(self, s.node, s.scope, s.line) for s in a.constants])

    def binary_operators(self) -> list[BinaryOperator]:
        """Binary operations (arithmetic, bitwise, shifts) inside the regions."""
        return self._find("binops", lambda a: [BinaryOperator(self, s.node, s.scope, s.line) for s in a.binops])

    def comparisons(self) -> list[Comparison]:
        """Comparisons (``a < b``, ``lo <= x < hi``) inside the regions."""
        return self._find("compares", lambda a: [Comparison(self, s.node, s.scope, s.line) for s in a.compares])

    def calls(self) -> list[Call]:
        """Function calls inside the regions."""
        return self._find("calls", lambda a: [Call(self, s.node, s.scope, s.line) for s in a.calls])

    def expressions(self) -> list[Expression]:
        """Value expressions (names, numbers, arithmetic, calls, subscripts) that may be wrapped or
        replaced: the places where a new computation can go."""
        return self._find("values", lambda a: [Expression(self, s.node, s.scope, s.line) for s in a.values])

    def statements(self) -> list[Statement]:
        """Statements of function bodies (at any depth) inside the regions, docstrings excepted."""
        def find(a: h.Analysis) -> list[Statement]:
            out: list[Statement] = []
            for block in a.blocks:
                for stmt in block.stmts:
                    if stmt.region is not None and not stmt.docstring:
                        kind = Branch if type(stmt.node) is cst.If else Statement
                        out.append(kind(self, block, stmt))
            out.sort(key=lambda s: (s.line, s.stmt.last))
            return out
        return self._find("statements", find)

    def branches(self) -> list[Branch]:
        """``if`` statements of function bodies inside the regions (``elif`` parts belong to theirs)."""
        return [s for s in self.statements() if isinstance(s, Branch)]

    def functions(self) -> list[Function]:
        """Functions with something editable: the whole ``def`` (``.editable``) or statements of it."""
        def find(a: h.Analysis) -> list[Function]:
            out = []
            for scope, stmt in a.functions:
                body = next((b for b in a.blocks if b.node is scope.body), None)
                whole = stmt is not None and stmt.region is not None
                if whole or (body is not None and any(s.region is not None for s in body.stmts)):
                    out.append(Function(self, scope, stmt, body))
            return out
        return self._find("functions", find)

    def function(self, name: str) -> Function | None:
        """The first function called ``name`` with something editable, or None."""
        return next((f for f in self.functions() if f.name == name), None)

    def _settings(self) -> dict[int, str]:
        """id of each numeric literal of a module-level ``NAME = ...`` -> NAME (see ``Constant.setting``)."""
        if "settings" not in self._found:
            found: dict[int, str] = {}
            elements: dict[int, int] = {}
            for stmt in self._analysis().module.body:
                if not isinstance(stmt, cst.SimpleStatementLine):
                    continue
                for small in stmt.body:
                    if isinstance(small, cst.Assign) and len(small.targets) == 1:
                        target, value = small.targets[0].target, small.value
                    elif isinstance(small, cst.AnnAssign) and small.value is not None:
                        target, value = small.target, small.value
                    else:
                        continue
                    if isinstance(target, cst.Name):
                        collector = _Literals()
                        value.visit(collector)
                        found.update((i, target.value) for i in collector.ids)
                        if isinstance(value, (cst.List, cst.Tuple)):
                            items = [getattr(e, "value", None) for e in value.elements]
                            if items and all(_is_number(item) for item in items):
                                elements.update((id(item), k) for k, item in enumerate(items))
            self._found["settings"] = [found]
            self._found["elements"] = [elements]
        return cast("dict[int, str]", self._found["settings"][0])

    def _elements(self) -> dict[int, int]:
        self._settings()
        return cast("dict[int, int]", self._found["elements"][0])

    def _find(self, key: str, make: Callable[[h.Analysis], list[Any]]) -> list[Any]:
        if key not in self._found:
            self._found[key] = make(self._analysis())
        return list(self._found[key])

    # -- editing (used by the sites) ---------------------------------------------------------------
    def _derive(self, source: str, change: str) -> Program:
        """The child program ``source``, made by the edit ``change``: checked against this one."""
        violation = edit_violation(self.source, source)
        if violation is not None:
            raise EditError(f"{change}: {violation}")
        if source == self.source:
            raise EditError(f"{change}: the edit changed nothing")
        return Program(source, (*self.changes, change))

    def _statements(self, code: str) -> list[cst.BaseStatement]:
        """``code`` (one or more statements, at any indentation) parsed as this program's statements."""
        if not _is(code, str) or not code.strip():
            raise EditError(f"statement code must be a non-empty string, not {code!r}")
        module = self._analysis().module
        text = textwrap.dedent(code).strip("\n") + module.default_newline
        try:
            parsed = cst.parse_module(text)
        except cst.ParserSyntaxError as exc:
            raise EditError(f"not statements: {code!r} ({str(exc).splitlines()[0]})") from None
        body: list[cst.BaseStatement] = list(parsed.body)
        if not body:
            raise EditError(f"no statement in {code!r}")
        return body

    def _indent(self, code: str) -> str:
        """``code`` as the body of a block: dedented, then indented by the program's own unit."""
        unit = self._analysis().module.default_indent
        lines = textwrap.dedent(code).strip("\n").splitlines()
        return "\n".join(unit + line if line.strip() else line for line in lines)


# -- sites ------------------------------------------------------------------------------------------
class Site:
    """A place in a program that an edit may change. ``text``, ``line``, ``function``, ``names()``,
    ``replace(code)``; the subclasses add edits of their own."""

    label = "site"

    def __init__(self, program: Program, node: cst.CSTNode, scope: h.Scope, line: int):
        self.program = program
        self.node = node  # the libcst node, for those who know libcst (never needed otherwise)
        self._scope = scope
        self.line = line

    @property
    def _a(self) -> h.Analysis:
        return self.program._analysis()

    @property
    def text(self) -> str:
        """The site's code, as written."""
        return self._a.code(self.node).strip()

    @property
    def function(self) -> str | None:
        """The name of the enclosing function (None at module level)."""
        return self._scope.name if self._scope.kind == "function" else None

    def names(self) -> dict[str, str]:
        """Names in scope here that hold values, each with its kind (``"array"``, ``"scalar"``,
        ``"unknown"``): parameters, variables assigned above, module-level values."""
        return dict(self._a.available(self._scope, self.line))

    def replace(self, code: str) -> Program:
        """The program with this site's code replaced by ``code`` (an expression)."""
        new = _expression(code)
        return self._swap(h.fit_slot(self._a, new, self.node),
                          f"replace `{_short(self.text)}` with `{_short(code)}` on line {self.line}")

    def _swap(self, new: cst.CSTNode, change: str) -> Program:
        try:
            source = self._a.render(self.node, new)
        except _BUILD_ERRORS as exc:
            raise EditError(f"{change}: cannot build the edit ({type(exc).__name__}: {exc})") from None
        return self.program._derive(source, change)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} line {self.line}: {_short(self.text, 50)}>"


class Expression(Site):
    """A value expression: replace it, or wrap it in a new computation."""

    label = "expression"

    @property
    def kind(self) -> str:
        """What it holds, as far as the code shows: ``"array"``, ``"scalar"`` or ``"unknown"``."""
        return self._a.expr_kind(self.node, self._scope)

    def wrap(self, template: str) -> Program:
        """Replace ``e`` by ``template`` with each ``{}`` standing for ``e`` (parenthesised when
        needed): ``wrap("np.tanh({})")``, ``wrap("{} * 0.5")``, ``wrap("np.where({} > 0, {}, 0)")``."""
        if not _is(template, str) or "{}" not in template:
            raise EditError(f"a wrap template holds {{}} where the expression goes, not {template!r}")
        new = _fill(template, cast(cst.BaseExpression, self.node))
        return self._swap(h.fit_slot(self._a, new, self.node),
                          f"wrap `{_short(self.text)}` as `{_short(template)}` on line {self.line}")

    def wrap_call(self, function: str) -> Program:
        """``e`` -> ``function(e)``, e.g. ``wrap_call("np.sqrt")`` (see ``Program.numpy``)."""
        func = _expression(function)
        if not isinstance(func, (cst.Name, cst.Attribute)):
            raise EditError(f"wrap_call takes a function name such as 'np.sqrt', not {function!r}")
        call = cst.Call(func=func, args=[cst.Arg(h.bare(cast(cst.BaseExpression, self.node)))])
        return self._swap(h.fit_slot(self._a, call, self.node),
                          f"wrap `{_short(self.text)}` in {function} on line {self.line}")

    def wrap_binop(self, operator: str, operand: str, left: bool = False) -> Program:
        """``e`` -> ``e OP operand`` (``left``: ``operand OP e``), e.g. ``wrap_binop("*", "2.0")``."""
        if operator not in _BINARY:
            raise EditError(f"unknown operator {operator!r}; one of {' '.join(_BINARY)}")
        other = _expression(operand)
        e = cast(cst.BaseExpression, self.node)
        new = h.binop(other, _BINARY[operator](), e) if left else h.binop(e, _BINARY[operator](), other)
        shown = f"{operand} {operator} e" if left else f"e {operator} {operand}"
        return self._swap(h.fit_slot(self._a, new, self.node),
                          f"wrap e=`{_short(self.text)}` as {shown} on line {self.line}")

    def wrap_where(self, compare: str, threshold: str, other: str) -> Program:
        """``e`` -> ``np.where(e COMPARE threshold, e, other)``: a piecewise change of ``e``."""
        np_ = self.program.numpy
        if np_ is None:
            raise EditError("wrap_where needs numpy imported by the program")
        if compare not in COMPARISONS:
            raise EditError(f"unknown comparison {compare!r}; one of {' '.join(COMPARISONS)}")
        return self.wrap(f"{np_}.where({{}} {compare} {threshold}, {{}}, {other})")


class Constant(Expression):
    """A numeric literal: ``value`` (int or float), ``is_int``, ``setting``, ``element``, ``set(value)``."""

    label = "constant"

    @property
    def setting(self) -> str | None:
        """The name this literal is a setting of: ``"RATE"`` for the ``0.01`` of a module-level
        ``RATE = 0.01``, ``"ROWS"`` for each number of ``ROWS = [5, 6, 5]`` (or of any expression
        assigned to one module-level name, annotated or not); None inside functions and classes,
        and for any other statement (a tuple target, ``A = B = 3``)."""
        return self.program._settings().get(id(self.node))

    @property
    def element(self) -> int | None:
        """Its position in the list or tuple its setting is (``ROWS = [5, 6, 5]``: 0, 1, 2), when
        that list holds only numbers; None otherwise."""
        return self.program._elements().get(id(self.node))

    @property
    def value(self) -> int | float:
        node = self.node
        negative = isinstance(node, cst.UnaryOperation)
        literal = cast("cst.Integer | cst.Float", node.expression if isinstance(node, cst.UnaryOperation) else node)
        text = literal.value.replace("_", "")
        number: int | float = int(text, 0) if isinstance(literal, cst.Integer) else float(text)
        return -number if negative else number

    @property
    def is_int(self) -> bool:
        node = self.node
        return isinstance(node.expression if isinstance(node, cst.UnaryOperation) else node, cst.Integer)

    def set(self, value: int | float, digits: int | None = None) -> Program:
        """The program with this literal set to ``value`` (an int stays an int if ``value`` is
        one; ``digits``: round a float to that many significant digits)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EditError(f"a constant is set to a number, not {value!r}")
        if isinstance(value, int):
            text = str(value)
        elif not math.isfinite(value):
            raise EditError(f"a constant must be finite, not {value!r}")
        else:
            text = repr(float(f"{value:.{digits}g}")) if digits else repr(float(value))
        new = h.fit_slot(self._a, cst.parse_expression(text), self.node)
        return self._swap(new, f"set constant {self.text} -> {text} on line {self.line}")


class BinaryOperator(Expression):
    """``left OP right``: ``operator`` (its symbol), ``swap(new)``."""

    label = "binary operator"

    @property
    def operator(self) -> str:
        return _SYMBOL[type(cast(cst.BinaryOperation, self.node).operator)]

    @property
    def left(self) -> str:
        return self._a.code(cast(cst.BinaryOperation, self.node).left).strip()

    @property
    def right(self) -> str:
        return self._a.code(cast(cst.BinaryOperation, self.node).right).strip()

    def swap(self, operator: str) -> Program:
        """The program with this operator changed to ``operator`` (``+ - * / ** // % & | ^ << >>``);
        parentheses are added where precedence needs them."""
        if operator not in _BINARY:
            raise EditError(f"unknown operator {operator!r}; one of {' '.join(_BINARY)}")
        node = cast(cst.BinaryOperation, self.node)
        old: Any = node.operator
        op = _BINARY[operator](whitespace_before=old.whitespace_before, whitespace_after=old.whitespace_after)
        new = h.fit_slot(self._a, h.refit(node.with_changes(operator=op)), node)
        return self._swap(new, f"swap operator {self.operator} -> {operator} in `{_short(self.text)}` "
                               f"on line {self.line}")


class Comparison(Site):
    """``a < b`` (or a chain ``lo <= x < hi``): ``operators``, ``swap(new, index)``."""

    label = "comparison"

    @property
    def operators(self) -> tuple[str, ...]:
        return tuple(_SYMBOL.get(type(t.operator), "?") for t in cast(cst.Comparison, self.node).comparisons)

    def swap(self, operator: str, index: int = 0) -> Program:
        """The program with the ``index``-th comparison operator changed to ``operator``
        (``< <= > >= == !=``)."""
        if operator not in COMPARISONS:
            raise EditError(f"unknown comparison {operator!r}; one of {' '.join(COMPARISONS)}")
        node = cast(cst.Comparison, self.node)
        if not 0 <= index < len(node.comparisons):
            raise EditError(f"comparison {index} of {len(node.comparisons)} in `{_short(self.text)}`")
        target = node.comparisons[index]
        old: Any = target.operator
        op = COMPARISONS[operator](whitespace_before=old.whitespace_before, whitespace_after=old.whitespace_after)
        items = list(node.comparisons)
        items[index] = target.with_changes(operator=op)
        return self._swap(node.with_changes(comparisons=items),
                          f"swap comparison {self.operators[index]} -> {operator} on line {self.line}")


class Call(Expression):
    """``f(args)``: ``callee`` (the called function's code, e.g. ``"np.sqrt"``), ``arguments``,
    ``rename(new)``."""

    label = "call"

    @property
    def callee(self) -> str:
        return self._a.code(cast(cst.Call, self.node).func).strip()

    @property
    def arguments(self) -> tuple[str, ...]:
        return tuple(self._a.code(arg).strip().rstrip(",").strip() for arg in cast(cst.Call, self.node).args)

    def rename(self, function: str) -> Program:
        """The program calling ``function`` here instead (same arguments): ``rename("np.log1p")``."""
        func = _expression(function)
        if not isinstance(func, (cst.Name, cst.Attribute)):
            raise EditError(f"rename takes a function name such as 'np.log1p', not {function!r}")
        node = cast(cst.Call, self.node)
        return self._swap(node.with_changes(func=func),
                          f"swap call {self.callee} -> {function} on line {self.line}")


class Statement(Site):
    """A statement of a function body: delete, duplicate, move, insert around it, guard it.

    ``index`` is its position in its block (``siblings()``); ``kind`` is one of ``simple``,
    ``compound``, ``return``, ``pass``, ``flow``, ``string``, ``def``, ``import``; ``reads`` and
    ``binds`` are the names it reads and assigns.
    """

    label = "statement"

    def __init__(self, program: Program, block: h.Block, stmt: h.Stmt):
        super().__init__(program, stmt.node, block.scope, stmt.first)
        self.block = block
        self.stmt = stmt

    @property
    def text(self) -> str:
        lines = self.program.source.splitlines()
        return "\n".join(lines[self.stmt.first - 1: self.stmt.last])

    @property
    def kind(self) -> str:
        return self.stmt.kind

    @property
    def index(self) -> int:
        return self.stmt.index

    @property
    def reads(self) -> frozenset[str]:
        return self._a.stmt_names(self._scope, self.stmt)[0]

    @property
    def binds(self) -> frozenset[str]:
        return self._a.stmt_names(self._scope, self.stmt)[1]

    def siblings(self) -> list[Statement]:
        """The editable statements of the same block (this one included), in order."""
        return [s for s in self.program.statements() if s.block is self.block]

    def _block_edit(self, removes: set[int], inserts: dict[int, list[cst.BaseStatement]], change: str) -> Program:
        return _edit_block(self.program, self.block, removes, inserts, change)

    def replace(self, code: str) -> Program:
        """The program with this statement replaced by ``code`` (one or more statements)."""
        i = self.index
        return self._block_edit({i}, {i + 1: self.program._statements(code)},
                                f"replace line {self.line} `{_short(self.text)}` with `{_short(code)}`")

    def delete(self) -> Program:
        """The program without this statement (an emptied block gets ``pass``)."""
        return self._block_edit({self.index}, {}, f"delete line {self.line}: `{_short(self.text)}`")

    def duplicate(self) -> Program:
        """The program with this statement repeated right after itself."""
        node = cast(cst.BaseStatement, self.node)
        return self._block_edit(set(), {self.index + 1: [node]}, f"duplicate line {self.line}: `{_short(self.text)}`")

    def move(self, before: int) -> Program:
        """The program with this statement moved before statement ``before`` of its block
        (``len(block)``: to the end); ``move(s.index - 1)`` moves it up one, ``move(s.index + 2)``
        down one."""
        n = len(self.block.stmts)
        if not _is(before, int) or not 0 <= before <= n or before in (self.index, self.index + 1):
            raise EditError(f"cannot move statement {self.index} before {before!r} in a block of {n}")
        where = f"before line {self.block.stmts[before].first}" if before < n else "to the end of its block"
        node = cast(cst.BaseStatement, self.node)
        return self._block_edit({self.index}, {before: [node]},
                                f"move line {self.line} `{_short(self.text, 30)}` {where}")

    def insert_before(self, code: str) -> Program:
        """The program with ``code`` (statements) inserted before this statement (comment lines of
        ``code`` are dropped; comments at the end of a line stay)."""
        return self._block_edit(set(), {self.index: self.program._statements(code)},
                                f"insert `{_short(code)}` before line {self.line}")

    def insert_after(self, code: str) -> Program:
        """The program with ``code`` (statements) inserted after this statement."""
        return self._block_edit(set(), {self.index + 1: self.program._statements(code)},
                                f"insert `{_short(code)}` after line {self.stmt.last}")

    def insert_branch(self, condition: str, body: str, orelse: str | None = None, after: bool = False) -> Program:
        """The program with ``if condition: body`` (``else: orelse``) inserted before this statement
        (``after``: after it): a guarded change, e.g. ``insert_branch("item > 50", "score = score * 2")``."""
        _expression(condition)
        code = f"if {condition.strip()}:\n{self.program._indent(body)}\n"
        if orelse is not None:
            code += f"else:\n{self.program._indent(orelse)}\n"
        gap = self.index + 1 if after else self.index
        where = f"after line {self.stmt.last}" if after else f"before line {self.line}"
        return self._block_edit(set(), {gap: self.program._statements(code)},
                                f"insert branch `if {_short(condition, 30)}: {_short(body, 30)}` {where}")

    def guard(self, condition: str) -> Program:
        """The program with this statement run only ``if condition`` (it moves into an ``if``)."""
        test = _expression(condition)
        node = cast("cst.SimpleStatementLine | cst.BaseCompoundStatement", self.node)
        inner = node.with_changes(leading_lines=())
        new = cst.If(test=test, body=cst.IndentedBlock(body=[inner]), leading_lines=node.leading_lines)
        return self._block_edit({self.index}, {self.index + 1: [new]},
                                f"guard line {self.line} `{_short(self.text, 30)}` with `if {_short(condition, 30)}`")


def _edit_block(program: Program, block: h.Block, removes: set[int], inserts: dict[int, list[cst.BaseStatement]],
                change: str) -> Program:
    """``block`` without statements ``removes``, with ``inserts[gap]`` before statement ``gap``."""
    for gap in inserts:
        if not block.gap_ok(gap):
            raise EditError(f"{change}: that position is outside the editable regions")
        if gap == 0 and block.stmts and block.stmts[0].docstring:
            raise EditError(f"{change}: nothing goes before a docstring")
    try:
        new = h.edit_block(block, removes, inserts)
    except _BUILD_ERRORS as exc:
        raise EditError(f"{change}: cannot build the edit ({type(exc).__name__}: {exc})") from None
    return Site._swap(_BlockSite(program, block), new, change)


class _BlockSite(Site):
    """A function body block as a site (what statement edits render through)."""

    def __init__(self, program: Program, block: h.Block):
        super().__init__(program, block.node, block.scope, block.stmts[0].first if block.stmts else 0)


class Branch(Statement):
    """An ``if`` statement: ``condition`` (an Expression), ``has_else``, ``negate()``,
    ``swap_branches()``, and every Statement edit."""

    label = "branch"

    @property
    def _if(self) -> cst.If:
        return cast(cst.If, self.node)

    @property
    def condition(self) -> Expression:
        test = self._if.test
        return Expression(self.program, test, self._scope, self._a.pos[test].start.line)

    @property
    def has_else(self) -> bool:
        return isinstance(self._if.orelse, cst.Else)

    @property
    def has_elif(self) -> bool:
        return isinstance(self._if.orelse, cst.If)

    def _negated(self) -> cst.BaseExpression:
        test = self._if.test
        if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not) and not test.lpar:
            return h.bare(test.expression)
        return h.refit(cst.UnaryOperation(operator=cst.Not(), expression=h.bare(test)))

    def negate(self) -> Program:
        """The program with this ``if``'s condition negated (``not (...)``; ``not x`` becomes ``x``)."""
        new = self._if.with_changes(test=self._negated())
        return Site._swap(self, new, f"negate the condition `{_short(self.condition.text)}` on line {self.line}")

    def swap_branches(self) -> Program:
        """The program with the ``if`` and ``else`` bodies exchanged and the condition negated
        (the same behaviour, a different shape for later edits); needs an ``else``."""
        orelse = self._if.orelse
        if not isinstance(orelse, cst.Else):
            raise EditError(f"the if on line {self.line} has no else to swap with")
        new = self._if.with_changes(test=self._negated(), body=orelse.body,
                                    orelse=orelse.with_changes(body=self._if.body))
        return Site._swap(self, new, f"swap the branches of the if on line {self.line}")


class Function(Site):
    """A ``def``: ``name``, ``params``, ``editable`` (the whole def lies in a region),
    ``statements()``, ``replace_with(other)`` and ``splice(start, stop, statements)``."""

    label = "function"

    def __init__(self, program: Program, scope: h.Scope, stmt: h.Stmt | None, body: h.Block | None):
        node = cast(cst.FunctionDef, scope.node)
        line = stmt.first if stmt is not None else program._analysis().pos[node].start.line
        super().__init__(program, node, scope, line)
        self.stmt = stmt
        self.body = body

    @property
    def name(self) -> str:
        return self._scope.name

    @property
    def function(self) -> str | None:
        return self.name

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(self._scope.params)

    @property
    def editable(self) -> bool:
        return self.stmt is not None and self.stmt.region is not None

    @property
    def text(self) -> str:
        if self.stmt is None:
            return self._a.code(self.node).strip()
        lines = self.program.source.splitlines()
        return "\n".join(lines[self.stmt.first - 1: self.stmt.last])

    def replace(self, code: str) -> Program:
        """This program with the whole function replaced by ``code`` (one ``def``, any name)."""
        if not self.editable or self.stmt is None:
            raise EditError(f"function {self.name} is not wholly inside an EVOLVE-BLOCK")
        nodes = self.program._statements(code)
        if len(nodes) != 1:
            raise EditError(f"a function is replaced by one statement, not {len(nodes)}")
        new = nodes[0].with_changes(leading_lines=cast(cst.FunctionDef, self.node).leading_lines)
        try:
            source = self._a.render(self.stmt.node, new)
        except _BUILD_ERRORS as exc:
            raise EditError(f"cannot replace function {self.name}: {type(exc).__name__}: {exc}") from None
        return self.program._derive(source, f"replace function {self.name} with `{_short(code)}`")

    def statements(self) -> list[Statement]:
        """The editable statements at the top level of its body, in order."""
        return [s for s in self.program.statements() if self.body is not None and s.block is self.body]

    def replace_with(self, other: Function) -> Program:
        """This program with this function replaced by ``other`` (from any program, e.g. an
        inspiration; renamed to this function's name): a whole-function crossover."""
        if not isinstance(other, Function):
            raise EditError(f"replace_with takes a Function, not {type(other).__name__}")
        if not self.editable or self.stmt is None:
            raise EditError(f"function {self.name} is not wholly inside an EVOLVE-BLOCK")
        if not other.editable:
            raise EditError(f"function {other.name} of the other program is not wholly inside an EVOLVE-BLOCK")
        node = cast(cst.FunctionDef, other.node)
        if node.name.value != self.name:
            node = node.with_changes(name=node.name.with_changes(value=self.name))
        new = node.with_changes(leading_lines=cast(cst.FunctionDef, self.node).leading_lines)
        try:
            source = self._a.render(self.stmt.node, new)
        except _BUILD_ERRORS as exc:
            raise EditError(f"cannot replace function {self.name}: {type(exc).__name__}: {exc}") from None
        return self.program._derive(source, f"replace function {self.name} with {other.name} of another program")

    def splice(self, start: int, stop: int, statements: Sequence[Statement]) -> Program:
        """This program with body statements ``start..stop-1`` (block indices, as ``Statement.index``)
        replaced by ``statements`` (Statement sites of any program, e.g. an inspiration's):
        a range crossover. ``start == stop`` inserts; an empty ``statements`` deletes."""
        body = self.body
        if body is None:
            raise EditError(f"function {self.name} has no body block")
        n = len(body.stmts)
        if not (_is(start, int) and _is(stop, int) and 0 <= start <= stop <= n):
            raise EditError(f"splice range {start!r}..{stop!r} is not within 0..{n}")
        if any(body.stmts[i].region is None for i in range(start, stop)):
            raise EditError(f"statements {start}..{stop - 1} of {self.name} are not all inside an EVOLVE-BLOCK")
        if any(not isinstance(s, Statement) for s in statements):
            raise EditError("splice takes Statement sites (from program.statements() or function.statements())")
        if stop == start and not statements:
            raise EditError("an empty splice changes nothing")
        nodes = [cast(cst.BaseStatement, s.node) for s in statements]
        change = f"splice {self.name}: statements {start + 1}..{stop} <- {len(nodes)} statements"
        return _edit_block(self.program, body, set(range(start, stop)), {stop: nodes} if nodes else {}, change)
