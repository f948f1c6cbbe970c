"""What the ``mutate`` operators share: one parse per source, editable sites, scopes, rebuilding.

The operators import this module as ``h``; it gathers the names they use from three parts:

- ``_cst_model``: ``Analysis`` and the records it holds (``Scope``, ``Site``, ``Stmt``,
  ``Block``), value kinds, and rendering an edit back to source text;
- ``_cst_parse``: ``analyze(source)``, which parses a program with libcst once (cached per source
  text) and collects, in source order, every place an operator may edit: constants, operators,
  names, calls, value expressions and statements inside function bodies;
- ``_cst_build``: precedence and parentheses for new expressions, and statement-block edits.

A node is a site only if the whole text it owns lies inside one editable region; a statement's
leading comment lines are never removed, only carried along, so ``# EVOLVE-BLOCK-*`` markers
stay exactly where they are.

Nothing here iterates over a set or a hash-ordered dict to make a choice: lists keep source order
and callers sort names before drawing from them, so a seeded rng gives the same child in every
process.
"""

from __future__ import annotations

from ._cst_build import (
    AND,
    ARITH,
    ATOM,
    AWAIT,
    BAND,
    BINPREC,
    BOR,
    BXOR,
    COMPARE,
    IFEXP,
    LAMBDA,
    NOT,
    OR,
    POWER,
    SHIFT,
    TERM,
    UNARY,
    bare,
    binop,
    edit_block,
    fit,
    fit_slot,
    paren,
    prec,
    refit,
    slot_min,
    stmt_kind,
)
from ._cst_model import (
    ARRAY,
    BUILTINS,
    MATH_UNARY,
    MODULE,
    NOT_SWAPPABLE,
    NP_ARRAY_MAKERS,
    NP_BINARY,
    NP_REDUCE,
    NP_UNARY,
    OTHER,
    SCALAR,
    UNKNOWN,
    VALUE_KINDS,
    Analysis,
    Block,
    Scope,
    Site,
    Stmt,
    call_target,
)
from ._cst_parse import (
    AUG,
    CALLEE,
    DENY_KEYWORDS,
    FIXED,
    LOAD,
    LOCAL,
    PARAM,
    SKIP,
    STORE,
    VALUE_TYPES,
    analyze,
    children,
    names_in,
)

__all__ = [
    "AND", "ARITH", "ATOM", "AWAIT", "BAND", "BINPREC", "BOR", "BXOR", "COMPARE", "IFEXP", "LAMBDA", "NOT", "OR",
    "POWER", "SHIFT", "TERM", "UNARY", "bare", "binop", "edit_block", "fit", "fit_slot", "paren", "prec", "refit",
    "slot_min", "stmt_kind",
    "ARRAY", "BUILTINS", "MATH_UNARY", "MODULE", "NOT_SWAPPABLE", "NP_ARRAY_MAKERS", "NP_BINARY", "NP_REDUCE",
    "NP_UNARY", "OTHER", "SCALAR", "UNKNOWN", "VALUE_KINDS", "Analysis", "Block", "Scope", "Site", "Stmt",
    "call_target",
    "AUG", "CALLEE", "DENY_KEYWORDS", "FIXED", "LOAD", "LOCAL", "PARAM", "SKIP", "STORE", "VALUE_TYPES", "analyze",
    "children", "names_in",
]
