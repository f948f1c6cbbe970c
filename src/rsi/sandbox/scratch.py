"""Scratch folders for evaluator pools: named after the process that owns them, swept when it is gone.

A run's pool works in a fresh folder under the system's temporary directory, removed when the run
ends. A run killed with SIGKILL cannot remove it, so the folder's name carries the owner's pid
(``rsi-scratch-<pid>-<random>``) and every new scratch folder first removes those whose owner no
longer exists. Only folders of this naming scheme, owned by the current user, are touched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "rsi-scratch"
_NAME = re.compile(rf"^{PREFIX}-(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def sweep_stale(root: str | Path | None = None) -> list[Path]:
    """Remove scratch folders in ``root`` (default: the temporary directory) left by dead processes."""
    root = Path(root or tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _NAME.match(entry.name)
        if not match or not entry.is_dir() or entry.is_symlink():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def new_scratch(root: str | Path | None = None) -> Path:
    """A fresh scratch folder owned by this process (after sweeping those of dead ones)."""
    sweep_stale(root)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{os.getpid()}-", dir=root))
