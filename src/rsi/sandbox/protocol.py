"""What crosses a pipe between rsi's processes, and the checks on what an evaluation returns.

Messages between the pool, its workers and their scorers: a 4-byte big-endian length and a UTF-8
JSON object with an ``op``; a message may be followed by a raw byte payload whose size it names
(``send_blob`` / ``read_exact``). Shared by the pool, the worker and the scorer; importing it has
no side effects.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import signal
import struct
from typing import SupportsFloat, cast

HEADER = struct.Struct(">I")
MAX_MESSAGE = 256 * 1024 * 1024  # a sanity bound on one protocol message
MAX_RESULT = 1024 * 1024  # the child's result (metrics or error) as JSON
TRACEBACK_CHARS = 2000
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------- what an evaluator takes and gives


def takes_context(fn: object) -> bool:
    """Whether an evaluator function accepts the task's context: ``f(program_path, context)``."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params) or any(p.name == "context" for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


def split_result(value: object) -> tuple[object, object]:
    """(metrics, artifacts) of what an evaluator returned: a dict of metrics, or an object with
    ``metrics`` and ``artifacts`` (``rsi.sandbox.types.Evaluation``, OpenEvolve's
    ``EvaluationResult``); artifacts are plain JSON data handed back as ``EvalResult.data``."""
    if not isinstance(value, dict) and hasattr(value, "metrics") and hasattr(value, "artifacts"):
        return value.metrics, value.artifacts
    return value, None


# ---------------------------------------------------------------- framing


def encode(msg: dict) -> bytes:
    data = json.dumps(msg, separators=(",", ":")).encode()
    return HEADER.pack(len(data)) + data


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def send(fd: int, msg: dict) -> None:
    write_all(fd, encode(msg))


def read_exact(fd: int, n: int) -> bytes | None:
    """Read exactly ``n`` bytes from a blocking fd; None at EOF."""
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv(fd: int) -> dict | None:
    """One message from a blocking fd; None at EOF."""
    head = read_exact(fd, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_MESSAGE:
        raise ValueError(f"protocol message of {size} bytes")
    body = read_exact(fd, size)
    return None if body is None else json.loads(body)


# ---------------------------------------------------------------- result checks (child and worker)


def as_number(value: object) -> float | None:
    """``float(value)`` for a real number (bool, int, float, numpy scalar); None otherwise."""
    if isinstance(value, numbers.Real):  # bool, int, float, numpy integer/floating scalars
        try:
            return float(value)
        except OverflowError:  # an int too large for a float
            return -math.inf if value < 0 else math.inf
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        if getattr(getattr(value, "dtype", None), "kind", "") in "biuf":  # numpy bool, 0-d array
            return float(cast("SupportsFloat", value))
    return None


def check_metrics(value: object) -> tuple[dict[str, float] | None, str | None]:
    """(metrics, None) for a valid evaluator result, (None, reason) otherwise.

    Valid: a dict with a finite real ``combined_score``. Other entries that are finite real
    numbers are kept as floats; anything else (strings, lists, NaN in a secondary metric...) is
    dropped without a word, so that metrics are always finite floats.
    """
    if not isinstance(value, dict):
        return None, f"evaluate returned {type(value).__name__}, expected dict with 'combined_score'"
    if "combined_score" not in value:
        keys = ", ".join(sorted(repr(k) for k in value)[:10]) or "none"
        return None, f"evaluate returned a dict without 'combined_score' (keys: {keys})"
    metrics: dict[str, float] = {}
    for key, raw in value.items():
        number = as_number(raw)
        if key == "combined_score":
            if number is None:
                return None, (
                    f"evaluate returned combined_score={_short_repr(raw)} "
                    f"({type(raw).__name__}), expected a finite number"
                )
            if not math.isfinite(number):
                return None, f"evaluate returned combined_score={number}"
        if isinstance(key, str) and number is not None and math.isfinite(number):
            metrics[key] = number
    return metrics, None


def _short_repr(value: object, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_capped(fd: int, limit: int) -> str:
    """The text in file ``fd``: all of it if it fits in ``limit`` bytes, else head and tail
    around a marker saying how much was cut, the whole at most ``limit`` characters."""
    size = os.fstat(fd).st_size
    if size <= limit:
        data = os.pread(fd, size, 0)
        return data.decode(errors="replace")
    marker = f"\n[... rsi: output cut, {size} bytes in all ...]\n"
    room = max(0, limit - len(marker))
    head_n = room // 2
    tail_n = room - head_n
    head = os.pread(fd, head_n, 0).decode(errors="replace")
    tail = os.pread(fd, tail_n, size - tail_n).decode(errors="replace") if tail_n else ""
    return (head + marker + tail)[: max(limit, 0)]


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return signal_name(os.WTERMSIG(status))
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def send_blob(fd: int, msg: dict, blob: bytes) -> None:
    """``msg`` with ``size`` set, followed by ``blob`` itself (read it with ``read_exact``)."""
    write_all(fd, encode({**msg, "size": len(blob)}) + blob)
