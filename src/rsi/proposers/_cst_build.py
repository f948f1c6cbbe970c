"""Building replacement nodes: operator precedence and parentheses, and statement-block edits.

``fit`` / ``fit_slot`` / ``refit`` parenthesise a new expression exactly where Python's grammar
needs it (and ``bare`` drops parentheses it does not need); ``edit_block`` removes and inserts
statements in a function body without moving text outside the editable regions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import libcst as cst

from ._cst_model import Analysis, Block

# Operator precedence, low to high (Python's grammar).
LAMBDA, IFEXP, OR, AND, NOT, COMPARE, BOR, BXOR, BAND, SHIFT, ARITH, TERM, UNARY, POWER, AWAIT, \
    ATOM = range(16)
BINPREC = {
    cst.BitOr: BOR, cst.BitXor: BXOR, cst.BitAnd: BAND, cst.LeftShift: SHIFT, cst.RightShift: SHIFT,
    cst.Add: ARITH, cst.Subtract: ARITH, cst.Multiply: TERM, cst.Divide: TERM,
    cst.FloorDivide: TERM, cst.Modulo: TERM, cst.MatrixMultiply: TERM, cst.Power: POWER,
}


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
    body = cast("Sequence[cst.SimpleStatementLine | cst.BaseCompoundStatement]", block.node.body)
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
