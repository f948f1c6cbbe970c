"""Problem files for another machine: folders packed into one archive, unpacked there, paths remapped.

An evaluation on a Ray worker node cannot assume that the driver's file system is mounted there.
The driver packs the folders an evaluator needs (``pack``: a gzipped tar held in memory, which
the caller puts in Ray's object store once); each worker unpacks it into a scratch folder of its
own (``unpack``) and translates the driver's paths into its own (``Remap``). Paths inside rsi's own
package (the meta-utility's evaluators and suite problems) are not shipped: every node has rsi
installed, and they map to the node's copy of the package.

Only regular files and folders are packed: no symbolic links, devices or files above
``MAX_FILE_BYTES``, and at most ``MAX_BUNDLE_BYTES`` in all (an evaluator that needs more data
should fetch it itself, or the data should be installed on the nodes).
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ProblemError

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
SKIP = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
ENGINE = Path(__file__).resolve().parents[1]  # the rsi package folder, on whichever machine this runs


def needs_shipping(folder: Path) -> bool:
    """Whether ``folder`` must travel (False: it is part of rsi's package, present on every node)."""
    return not Path(folder).resolve().is_relative_to(ENGINE)


def pack(folders: Iterable[Path]) -> bytes:
    """The folders (each with everything beneath it) as one gzipped tar; member ``i/...`` is folder i."""
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for index, folder in enumerate(folders):
            folder = Path(folder).resolve()
            if not folder.is_dir():
                raise ProblemError(f"{folder}: not a folder, cannot be shipped to the cluster")
            tar.add(folder, arcname=str(index), recursive=False)
            for path in _files(folder):
                size = path.stat().st_size
                if size > MAX_FILE_BYTES:
                    raise ProblemError(f"{path}: {size / 1e6:.0f} MB, above the {MAX_FILE_BYTES / 1e6:.0f} MB that "
                                       "rsi ships to a Ray cluster per file; install such data on the nodes instead")
                total += size
                if total > MAX_BUNDLE_BYTES:
                    raise ProblemError(f"{folder}: more than {MAX_BUNDLE_BYTES / 1e6:.0f} MB of problem files to ship "
                                       "to the cluster; install large data on the nodes instead")
                tar.add(path, arcname=f"{index}/{path.relative_to(folder).as_posix()}", recursive=False)
    return buf.getvalue()


def _files(folder: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not (Path(root) / d).is_symlink())
        for name in sorted(files):
            path = Path(root) / name
            if path.is_file() and not path.is_symlink() and not name.endswith(".pyc"):
                out.append(path)
    return out


def unpack(data: bytes, into: Path) -> list[Path]:
    """Unpack ``pack``'s archive under ``into``; the folders, in the order they were packed."""
    into = Path(into)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(into, filter="data")  # regular files and folders only, never outside ``into``
    count = len({name.split("/", 1)[0] for name in _names(data)})
    return [into / str(i) for i in range(count)]


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


@dataclass(frozen=True)
class Remap:
    """The driver's paths as this node sees them: shipped folders to where they were unpacked,
    rsi's package (``engine``, the driver's) to this node's, anything else unchanged."""

    folders: tuple[tuple[str, str], ...]  # (driver folder, local folder)
    engine: str  # the driver's rsi package folder

    def path(self, path: str | Path) -> str:
        p = Path(path)
        for theirs, ours in self.folders:
            if p.is_relative_to(theirs):
                return str(Path(ours) / p.relative_to(theirs))
        if p.is_relative_to(self.engine):
            return str(ENGINE / p.relative_to(self.engine))
        return str(p)

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """Every absolute path in the values (lists joined by ``os.pathsep`` too) remapped."""
        return {name: os.pathsep.join(self.path(part) if os.path.isabs(part) else part
                                      for part in value.split(os.pathsep))
                for name, value in env.items()}
