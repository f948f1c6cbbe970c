"""The evaluator's files, hashed at start and checked after each batch.

``problem.hash_evaluator_files`` (the run loop's hash, stored with the run) covers the problem
folder; ``loaded_files`` adds the code folders the evaluator's import reached outside it (a shared
module in a sibling folder). A candidate cannot write outside its task folder, so a change means
someone else edited the evaluator during the run: its scores before and after do not compare.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

INITIAL = "initial.py"
SKIP_DIRS = {"__pycache__", "node_modules"}
MAX_FILES = 5000


def _files(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if any(p in SKIP_DIRS or p.startswith(".") for p in rel[:-1]) or not path.is_file():
            continue
        out.append(path)
        if len(out) >= MAX_FILES:
            break
    return out


def loaded_files(evaluator: Path, code_folders: list[Path]) -> list[Path]:
    """Every file of the evaluator's folder (but ``initial.py``, the program to improve) and of
    the other ``code_folders`` (theirs too: another problem's ``initial.py`` is code we run)."""
    root = Path(evaluator).resolve().parent
    files = [p for p in _files(root) if p.relative_to(root).parts != (INITIAL,)]
    for folder in code_folders:
        folder = Path(folder).resolve()
        if folder != root and not folder.is_relative_to(root):
            files += [p for p in _files(folder) if p not in files]
    return files


def hash_files(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


def verify_evaluator(problem_root: str | Path, expected_hash: str) -> str | None:
    """None if ``problem.hash_evaluator_files(problem_root)`` still equals ``expected_hash``
    (the hash the run stored at start), else a message for the run's log."""
    from ..problem import hash_evaluator_files

    now = hash_evaluator_files(Path(problem_root))
    if now == expected_hash:
        return None
    return (f"the evaluator's files in {problem_root} changed during the run (sha256 "
            f"{expected_hash[:12]} at start, {now[:12]} now)")
