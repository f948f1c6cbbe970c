"""Program source text: EVOLVE-BLOCK regions, edit enforcement, fingerprints, diffs.

A program is plain source text. ``# EVOLVE-BLOCK-START`` / ``# EVOLVE-BLOCK-END`` comment lines
mark the only regions an edit may touch; with no markers the whole file is editable.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
from dataclasses import dataclass

from .errors import ProgramError

BLOCK_START = "# EVOLVE-BLOCK-START"
BLOCK_END = "# EVOLVE-BLOCK-END"


@dataclass(frozen=True)
class Region:
    """Editable lines ``first..last`` (1-based, inclusive) strictly between two markers.

    ``first > last`` means an empty block (markers on consecutive lines).
    """

    first: int
    last: int

    def contains(self, line: int) -> bool:
        return self.first <= line <= self.last


def _marker(line: str) -> str | None:
    stripped = line.strip()
    if stripped.startswith(BLOCK_START):
        return "start"
    if stripped.startswith(BLOCK_END):
        return "end"
    return None


def editable_regions(source: str) -> list[Region]:
    """Regions an edit may touch. Without markers: one region covering every line."""
    lines = source.splitlines()
    regions: list[Region] = []
    open_at: int | None = None
    for number, line in enumerate(lines, start=1):
        kind = _marker(line)
        if kind == "start":
            if open_at is not None:
                raise ProgramError(
                    f"line {number}: {BLOCK_START} inside a block opened on line {open_at}; "
                    f"close the first block with {BLOCK_END} before opening another"
                )
            open_at = number
        elif kind == "end":
            if open_at is None:
                raise ProgramError(
                    f"line {number}: {BLOCK_END} without a matching {BLOCK_START}; "
                    "add the start marker above it or delete this line"
                )
            regions.append(Region(open_at + 1, number - 1))
            open_at = None
    if open_at is not None:
        raise ProgramError(
            f"line {open_at}: {BLOCK_START} is never closed; add {BLOCK_END} after the block"
        )
    if not regions:
        return [Region(1, max(len(lines), 1))]
    return regions


def has_markers(source: str) -> bool:
    return any(_marker(line) for line in source.splitlines())


def _frozen_parts(source: str) -> list[str]:
    """The text outside editable regions, as a list of chunks (markers included)."""
    lines = source.splitlines()
    if not has_markers(source):
        return []
    parts: list[str] = []
    current: list[str] = []
    inside = False
    for line in lines:
        kind = _marker(line)
        if kind == "start":
            current.append(line)
            parts.append("\n".join(current))
            current = []
            inside = True
        elif kind == "end":
            current = [line]
            inside = False
        elif not inside:
            current.append(line)
    parts.append("\n".join(current))
    return parts


def edit_violation(parent: str, child: str) -> str | None:
    """Why ``child`` is not a legal edit of ``parent`` (text outside the blocks changed), or None."""
    if not has_markers(parent):
        return None
    try:
        child_regions = editable_regions(child)
    except ProgramError as exc:
        return f"EVOLVE-BLOCK markers broken by the edit: {exc}"
    if not has_markers(child) or len(child_regions) != len(editable_regions(parent)):
        return "the edit added or removed EVOLVE-BLOCK markers"
    before, after = _frozen_parts(parent), _frozen_parts(child)
    for index, (a, b) in enumerate(zip(before, after, strict=False)):
        if a != b:
            where = "before the first block" if index == 0 else f"after block {index}"
            return f"the edit changed text outside the EVOLVE-BLOCK regions ({where})"
    return None


def fingerprint(source: str) -> str:
    """Hash of the normalised AST: formatting and comments do not change it.

    Source that does not parse is fingerprinted by its text.
    """
    try:
        tree = ast.parse(source)
        normal = ast.dump(tree, annotate_fields=False, include_attributes=False)
    except (SyntaxError, ValueError):
        normal = "unparsed:" + source
    return hashlib.sha256(normal.encode()).hexdigest()[:32]


def syntax_error(source: str) -> str | None:
    """A one-line description of the first syntax error, or None if the source parses."""
    try:
        compile(source, "<candidate>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"syntax error on line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # e.g. null bytes
        return f"invalid source: {exc}"
    return None


def unified_diff(before: str, after: str, name: str = "program.py") -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
    )


def code_size(source: str) -> int:
    """Number of non-blank, non-comment lines: the default 'code size' feature."""
    return sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))
