"""Edit formats: how a model's reply becomes a child program.

- ``diff``: SEARCH/REPLACE blocks (``<<<<<<< SEARCH`` / ``=======`` / ``>>>>>>> REPLACE``), each
  applied to the parent in turn; a SEARCH text is matched exactly, then ignoring trailing spaces,
  then ignoring indentation (the replacement is re-indented to fit).
- ``rewrite``: the whole EVOLVE-BLOCK in a fenced code block (markers optional; a copy of the
  frozen text around the block is dropped).
- ``fill``: for small models, one slot of the parent: the expression of a ``return`` statement
  (with a GBNF grammar that only admits expressions over the names in scope, so a grammar-
  constrained reply parses by construction), or the body of a function.

Every failure raises ``EditFailed`` with a reason written for the model's next prompt.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from typing import Literal

from ...errors import ProgramError
from ...program import BLOCK_END, BLOCK_START, Region, editable_regions, has_markers

Format = Literal["diff", "rewrite", "fill"]
FORMATS: tuple[Format, ...] = ("diff", "rewrite", "fill")


class EditFailed(Exception):
    """The reply cannot be turned into a child; the message says why."""


@dataclass(frozen=True)
class Slot:
    """A place the ``fill`` format writes: ``kind`` "expression" (lines/cols of the expression,
    1-based lines, 0-based columns) or "body" (the statements of ``function``)."""

    kind: str
    function: str
    start: tuple[int, int]
    end: tuple[int, int]
    text: str  # what is there now
    names: tuple[str, ...]  # names in scope (parameters and locals assigned before the slot)
    indent: str = ""  # the body's indentation (body slots)
    arrays: tuple[str, ...] = ()  # parameters annotated as arrays (np.ndarray): the grammar starts from one


# --- reading a reply ------------------------------------------------------------------------------
_FENCE = re.compile(r"^\s*```")


def code_blocks(text: str) -> list[str]:
    """Fenced code blocks of a reply, in order; an unterminated last fence (a reply cut by its
    token limit) counts up to the end."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if _FENCE.match(line):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def rationale(text: str, limit: int = 600) -> str:
    """The model's explanation: the reply without its code and edit blocks, on one line."""
    prose: list[str] = []
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if _FENCE.match(line):
            inside = not inside
            continue
        if _SEARCH.match(stripped):
            inside = True
            continue
        if _REPLACE.match(stripped):
            inside = False
            continue
        if not inside and stripped:
            prose.append(stripped)
    joined = " ".join(prose)
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


# --- diff -----------------------------------------------------------------------------------------
_SEARCH = re.compile(r"^<{5,}\s*SEARCH\b")
_DIVIDER = re.compile(r"^={5,}$")
_REPLACE = re.compile(r"^>{5,}\s*REPLACE\b")


def parse_diff(reply: str) -> list[tuple[str, str]]:
    """The (search, replace) pairs of a reply."""
    pairs: list[tuple[str, str]] = []
    state, search, replace = "out", [], []  # type: tuple[str, list[str], list[str]]
    for line in reply.splitlines():
        stripped = line.strip()
        if state == "out":
            if _SEARCH.match(stripped):
                state, search, replace = "search", [], []
        elif state == "search":
            if _DIVIDER.match(stripped):
                state = "replace"
            elif _SEARCH.match(stripped):
                search = []
            else:
                search.append(line)
        elif _REPLACE.match(stripped):
            pairs.append(("\n".join(search), "\n".join(replace)))
            state = "out"
        else:
            replace.append(line)
    if state == "replace" and replace:
        raise EditFailed("the last SEARCH/REPLACE block is not closed with >>>>>>> REPLACE (the reply may have "
                         "been cut by its token limit)")
    if not pairs:
        if "SEARCH" in reply or "REPLACE" in reply:
            raise EditFailed("no complete SEARCH/REPLACE block: write <<<<<<< SEARCH, the exact lines to change, "
                             "=======, the new lines, >>>>>>> REPLACE, each marker on its own line")
        raise EditFailed("the reply has no SEARCH/REPLACE block" + (" (it has a code block: use the "
                                                                       "SEARCH/REPLACE format)" if code_blocks(reply)
                                                                      else ""))
    return pairs


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _find(lines: list[str], wanted: list[str]) -> tuple[int, str] | None:
    """Where ``wanted`` occurs in ``lines``: (index, indentation to add to the replacement)."""
    n = len(wanted)
    spans = range(len(lines) - n + 1)
    for i in spans:
        if lines[i:i + n] == wanted:
            return i, ""
    for i in spans:
        if [x.rstrip() for x in lines[i:i + n]] == [x.rstrip() for x in wanted]:
            return i, ""
    for i in spans:
        if [x.strip() for x in lines[i:i + n]] == [x.strip() for x in wanted]:
            first = next((k for k, w in enumerate(wanted) if w.strip()), 0)
            have, want = _indent(lines[i + first]), _indent(wanted[first])
            if have.startswith(want):
                return i, have[len(want):]
            return i, ""
    return None


def apply_diff(parent: str, pairs: list[tuple[str, str]]) -> str:
    """``parent`` with each SEARCH text replaced in turn."""
    lines = parent.splitlines()
    for number, (search, replace) in enumerate(pairs, start=1):
        wanted = search.splitlines()
        while wanted and not wanted[0].strip():
            wanted.pop(0)
        while wanted and not wanted[-1].strip():
            wanted.pop()
        if not wanted:
            raise EditFailed(f"SEARCH/REPLACE block {number} has an empty SEARCH part: copy the lines to change "
                             "from the current program")
        found = _find(lines, wanted)
        if found is None:
            missing = next((w.strip() for w in wanted if w.strip() not in {x.strip() for x in lines}), None)
            detail = f"the line {missing!r} is not in it" if missing else "its lines are not consecutive there"
            raise EditFailed(f"SEARCH/REPLACE block {number} does not match the current program ({detail}); "
                             "the SEARCH part must copy existing lines exactly")
        at, extra = found
        new = [extra + x if x.strip() else x for x in replace.splitlines()]
        lines[at:at + len(wanted)] = new
    child = "\n".join(lines) + ("\n" if parent.endswith("\n") else "")
    if child == parent:
        raise EditFailed("the SEARCH/REPLACE blocks change nothing (REPLACE equals SEARCH)")
    return child


# --- rewrite --------------------------------------------------------------------------------------
def block_text(source: str, region: Region) -> str:
    lines = source.splitlines()
    return "\n".join(lines[region.first - 1:region.last])


def pick_region(source: str, index: int = 0) -> Region:
    try:
        regions = editable_regions(source)
    except ProgramError as exc:
        raise EditFailed(f"the parent's EVOLVE-BLOCK markers are broken: {exc}") from None
    return regions[min(max(index, 0), len(regions) - 1)]


def _between_markers(code: str) -> list[str] | None:
    """The text inside each EVOLVE-BLOCK of ``code`` (None: it has no markers)."""
    if not has_markers(code):
        return None
    try:
        regions = editable_regions(code)
    except ProgramError as exc:
        raise EditFailed(f"the rewritten code has broken EVOLVE-BLOCK markers: {exc}") from None
    return [block_text(code, r) for r in regions]


def apply_rewrite(parent: str, reply: str, region_index: int = 0) -> str:
    """``parent`` with one EVOLVE-BLOCK (or the whole program, without markers) replaced by the
    code of the reply."""
    blocks = [b for b in code_blocks(reply) if b.strip()]
    if not blocks:
        try:
            ast.parse(reply)
            looks_like_code = bool(re.search(r"^\s*(def |return |import |[A-Za-z_]\w* = )", reply, re.M))
        except SyntaxError:
            looks_like_code = False
        if not looks_like_code:
            raise EditFailed("the reply has no code block: put the new code in a ```python fenced block")
        blocks = [reply]
    code = max(blocks, key=len)
    if not has_markers(parent):
        return _changed(parent, code.strip("\n") + "\n")
    lines = parent.splitlines()
    inner = _between_markers(code)
    regions = editable_regions(parent)
    if inner is not None:
        if len(inner) == len(regions) and len(regions) > 1:
            for region, text in sorted(zip(regions, inner, strict=True), key=lambda p: -p[0].first):
                lines[region.first - 1:region.last] = text.splitlines()
            return _changed(parent, "\n".join(lines) + "\n")
        new = inner[0].splitlines()
    else:
        new = _drop_frozen(code.strip("\n").splitlines(), parent, regions)
    region = regions[min(max(region_index, 0), len(regions) - 1)]
    lines[region.first - 1:region.last] = new
    return _changed(parent, "\n".join(lines) + ("\n" if parent.endswith("\n") else ""))


def _drop_frozen(code: list[str], parent: str, regions: list[Region]) -> list[str]:
    """Leading and trailing lines of ``code`` that copy the parent's text outside its blocks
    (imports, a module docstring), which a model often repeats."""
    inside = {n for r in regions for n in range(r.first, r.last + 1)}
    frozen = {line.strip() for n, line in enumerate(parent.splitlines(), start=1) if n not in inside and line.strip()}
    start, end = 0, len(code)
    while start < end and (not code[start].strip() or code[start].strip() in frozen):
        start += 1
    while end > start and (not code[end - 1].strip() or code[end - 1].strip() in frozen):
        end -= 1
    return code[start:end]


def _changed(parent: str, child: str) -> str:
    if child.strip() == parent.strip():
        raise EditFailed("the rewritten code is the current program unchanged")
    return child


# --- fill -----------------------------------------------------------------------------------------
def _functions(tree: ast.Module, regions: list[Region]) -> list[ast.FunctionDef]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(r.contains(node.lineno) and r.contains(node.end_lineno or 0)
                                                     for r in regions):
            found.append(node)
    return found


def _array_params(fn: ast.FunctionDef) -> tuple[str, ...]:
    """Parameters annotated as arrays: an expression over them keeps the output's shape."""
    return tuple(a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
                 if a.annotation is not None and "array" in ast.unparse(a.annotation).lower())


def _scope_names(fn: ast.FunctionDef, before_line: int) -> tuple[str, ...]:
    names = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]]
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.lineno < before_line:
            names.append(node.id)
    return tuple(dict.fromkeys(names))


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return body[1:]
    return body


def slots(parent: str) -> list[Slot]:
    """The places ``fill`` can write in the parent's editable regions: every ``return <expr>``,
    then every function body."""
    try:
        tree = ast.parse(parent)
    except SyntaxError as exc:
        raise EditFailed(f"the parent does not parse ({exc.msg}, line {exc.lineno})") from None
    regions = editable_regions(parent)
    found: list[Slot] = []
    bodies: list[Slot] = []
    lines = parent.splitlines()
    for fn in _functions(tree, regions):
        for node in ast.walk(fn):
            if isinstance(node, ast.Return) and node.value is not None and node.value.end_lineno is not None:
                value = node.value
                text = ast.get_source_segment(parent, value) or ""
                found.append(Slot("expression", fn.name, (value.lineno, value.col_offset),
                                  (value.end_lineno or value.lineno, value.end_col_offset or 0), text,
                                  _scope_names(fn, node.lineno), arrays=_array_params(fn)))
        body = _without_docstring(fn.body)  # the docstring stays
        if body:
            first, last = body[0].lineno, fn.end_lineno or body[-1].lineno
            text = "\n".join(lines[first - 1:last])
            bodies.append(Slot("body", fn.name, (first, 0), (last, len(lines[last - 1])), text,
                               _scope_names(fn, 0), indent=_indent(lines[first - 1])))
    return found + bodies


def apply_fill(parent: str, slot: Slot, reply: str) -> str:
    """``parent`` with ``slot`` filled by the reply (an expression, or statements for a body)."""
    lines = parent.splitlines()
    if slot.kind == "expression":
        expr = _expression(reply)
        (l1, c1), (l2, c2) = slot.start, slot.end
        head, tail = lines[l1 - 1][:c1], lines[l2 - 1][c2:]
        lines[l1 - 1:l2] = [head + expr + tail]
    else:
        body = _body(reply, slot)
        lines[slot.start[0] - 1:slot.end[0]] = [slot.indent + x if x.strip() else x for x in body]
    child = "\n".join(lines) + ("\n" if parent.endswith("\n") else "")
    if child == parent:
        raise EditFailed(f"the reply repeats the current {slot.kind} unchanged")
    return child


def _expression(reply: str) -> str:
    blocks = code_blocks(reply)
    text = (blocks[0] if blocks else reply).strip().strip("`").strip()
    line = next((x.strip() for x in text.splitlines() if x.strip()), "")
    line = re.sub(r"^(return|python)\s+", "", line).rstrip(";").strip()
    if not line:
        raise EditFailed("the reply has no expression: answer with one Python expression")
    try:
        ast.parse(line, mode="eval")
    except SyntaxError as exc:
        raise EditFailed(f"the reply is not one Python expression ({exc.msg}): {line[:120]!r}") from None
    return line


def _body(reply: str, slot: Slot) -> list[str]:
    blocks = code_blocks(reply)
    code = textwrap.dedent((max(blocks, key=len) if blocks else reply).strip("\n"))
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise EditFailed(f"the reply's code does not parse ({exc.msg}, line {exc.lineno})") from None
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == slot.function), None)
    lines = code.splitlines()
    if fn is not None:  # a whole function: keep its body
        body = _without_docstring(fn.body)
        if not body:
            raise EditFailed(f"the reply's {slot.function} has no statements besides its docstring")
        lines = textwrap.dedent("\n".join(lines[body[0].lineno - 1:fn.end_lineno])).splitlines()
    if not any(re.match(r"\s*return\b", x) for x in lines):
        raise EditFailed(f"the new body of {slot.function} has no return statement")
    return lines


# --- the grammar for ``fill`` expressions -----------------------------------------------------------
NUMPY_UNARY = ("np.log", "np.log1p", "np.exp", "np.sqrt", "np.abs", "np.square", "np.tanh", "np.sin", "np.cos")
NUMPY_BINARY = ("np.maximum", "np.minimum", "np.power")
MATH_UNARY = ("math.log", "math.exp", "math.sqrt", "math.tanh", "math.sin", "math.cos", "abs")
DEPTH = 3  # nesting levels of parentheses and calls


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def expression_grammar(names: tuple[str, ...], source: str, heads: tuple[str, ...] = ()) -> str:
    """A GBNF grammar of Python expressions over ``names``, numbers, + - * / **, and the functions
    of the modules ``source`` imports (numpy as np, math), at most ``DEPTH`` levels deep, starting
    from a name (one of ``heads`` if given: array parameters, so the result keeps their shape), so the
    reply is one expression that parses and uses the inputs, whatever the model."""
    uses_numpy = re.search(r"^\s*import numpy as np\b", source, re.M) is not None
    uses_math = re.search(r"^\s*import math\b", source, re.M) is not None
    unary = (NUMPY_UNARY if uses_numpy else ()) + (MATH_UNARY if uses_math and not uses_numpy else ())
    binary = NUMPY_BINARY if uses_numpy else ()
    atoms = [_literal(n) for n in names] or ['"1.0"']
    head = ["lead", '"(" lead (op a1){0,3} ")"']  # the expression starts from a name in scope, so it
    if unary:                                       # depends on the inputs (tiny models write constants)
        head.append('f1 "(" lead (op a1){0,2} ")"')
    if binary:
        head.append('f2 "(" lead (op a1){0,2} ", " e1 ")"')
    rules = [
        'root ::= "-"? head (op a0){0,3}',
        "head ::= " + " | ".join(head),
        "name ::= " + " | ".join(atoms),
        "lead ::= " + (" | ".join(_literal(n) for n in heads if n in names) or "name"),
        'number ::= [0-9] ([0-9])? ("." [0-9] ([0-9] ([0-9])?)?)?',
        'op ::= " + " | " - " | " * " | " / " | " ** "',
    ]
    if uses_numpy:
        rules.append('cmp ::= " < " | " > " | " <= " | " >= "')
    if unary:
        rules.append("f1 ::= " + " | ".join(_literal(f) for f in unary))
    if binary:
        rules.append("f2 ::= " + " | ".join(_literal(f) for f in binary))
    for level in range(DEPTH + 1):
        inner = f"e{level + 1}"
        choices = ["name", "number"]
        if level < DEPTH:
            choices.append(f'"(" {inner} ")"')
            if unary:
                choices.append(f'f1 "(" {inner} ")"')
            if binary:
                choices.append(f'f2 "(" {inner} ", " {inner} ")"')
            if uses_numpy:
                choices.append(f'"np.where(" {inner} cmp {inner} ", " {inner} ", " {inner} ")"')
        rules.append(f"a{level} ::= " + " | ".join(choices))
        rules.append(f'e{level} ::= "-"? a{level} (op a{level}){{0,3}}')
    return "\n".join(rules) + "\n"


def markers_note(source: str) -> str:
    return (f"Only the code between {BLOCK_START} and {BLOCK_END} may change." if has_markers(source)
            else "The whole program may change.")
