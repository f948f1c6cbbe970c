"""What an evaluation child sends back, and what the worker makes of it.

The child (untrusted from the moment the candidate runs) writes one message on its result pipe:
``b"J"`` + JSON (``{"metrics": ...}`` from a plain ``evaluate``, or ``{"error": ...}``), or
``b"D"`` + data (``codec``) from ``produce``. ``judge`` reads it together with how the child
ended, trusting nothing: with the split contract, metrics from the child are refused.
"""

from __future__ import annotations

import json
import math
import os
import signal
import traceback

from .protocol import MAX_RESULT, TRACEBACK_CHARS, check_metrics, describe_exit, split_result


def judge(reply: dict, outcome: str, status: int, data: bytes, mode: str, limits):
    """Fill ``reply`` from how the child ended (``outcome``: "exit", "timeout" or "cancel"; its
    wait ``status`` and what it sent, ``data``); the produced data to score, or None."""
    if outcome == "cancel":
        reply["error"] = "cancelled"
        return None
    cap = MAX_RESULT if mode == "beside" else limits.data_bytes
    if data[:1] == b"D" and len(data) - 1 <= cap:
        if mode == "split":
            return data[1:]
        reply["error"] = "the evaluation process sent data, but this evaluator has no score()"
        return None
    payload = None
    if data[:1] == b"J" and len(data) <= MAX_RESULT:
        try:
            payload = json.loads(data[1:])
        except (ValueError, RecursionError):
            payload = None
    if isinstance(payload, dict) and ("metrics" in payload or "error" in payload):
        metrics: dict[str, float] | None
        error: str | None
        if "error" in payload:
            metrics, error = None, str(payload["error"])[-(TRACEBACK_CHARS + 200) :]
        elif mode == "split":  # forged: the split contract's child sends data, never metrics
            metrics, error = None, ("the candidate's process sent metrics; with produce() "
                                    "and score() only score() may (ignored)")
        else:  # checked again here: the child ran untrusted code
            metrics, error = check_metrics(payload["metrics"])
        if metrics is not None:
            reply["status"], reply["metrics"] = "ok", metrics
            reply["data"] = payload.get("data")  # plain JSON (it came through json.loads)
        else:
            reply["error"] = error
        return None
    if outcome == "timeout":
        reply["status"] = "timeout"
        reply["error"] = f"wall time limit of {limits.wall_seconds:g}s exceeded"
        return None
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        cpu_limit = max(1, math.ceil(limits.cpu_seconds))
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and reply["cpu"] >= cpu_limit - 0.05):
            reply["status"] = "timeout"
            reply["error"] = f"CPU time limit of {limits.cpu_seconds:g}s exceeded"
            return None
    if len(data) > cap:
        reply["error"] = f"evaluation result larger than {cap} bytes"
        return None
    reply["error"] = f"evaluation process died ({describe_exit(status)}) without a result"
    return None


def read_result(rfd: int, data: bytearray, cap: int) -> bool:
    chunk = os.read(rfd, 65536)
    if len(data) <= cap:
        data += chunk
    return bool(chunk)


def call_evaluate(fn, program: str, memory_mb: int, context: dict | None = None) -> dict:
    """Call the evaluator in the child (with the task's ``context`` when there is one); a
    JSON-ready payload: {"metrics"} (and {"data"}: its artifacts) or {"error"}."""
    try:
        value = fn(program) if context is None else fn(program, context)
    except MemoryError:
        tb = traceback.format_exc()[-TRACEBACK_CHARS:]
        return {"error": f"MemoryError: out of memory (memory limit of {memory_mb} MB)\n{tb}"}
    except BaseException:  # noqa: BLE001 - candidates may raise anything, SystemExit included
        return {"error": traceback.format_exc()[-TRACEBACK_CHARS:]}
    try:
        value, artifacts = split_result(value)
        metrics, error = check_metrics(value)
        if metrics is not None and isinstance(value, dict):
            artifacts = _with_other_values(value, artifacts)
        if error is None and artifacts is not None:
            json.dumps(artifacts, allow_nan=False)  # plain JSON data only, or the result is refused
    except (TypeError, ValueError) as exc:
        return {"error": f"the evaluator's artifacts are not plain JSON data: {exc}"}
    except BaseException:  # noqa: BLE001 - e.g. a hostile __float__
        return {"error": "checking the evaluator's result failed:\n" + traceback.format_exc()[-TRACEBACK_CHARS:]}
    if error is not None:
        return {"error": error}
    return {"metrics": metrics} if artifacts is None else {"metrics": metrics, "data": artifacts}


def _with_other_values(value: dict, artifacts: object) -> object:
    """The evaluator's artifacts, plus ``metrics``: the values it returned that are not numbers
    (strings, lists, nested dicts), recorded with the candidate but never scored."""
    from ..compat import plain_data
    from .protocol import as_number

    others = {str(k): plain_data(v) for k, v in value.items() if as_number(v) is None}
    if not others:
        return artifacts
    if artifacts is None:
        return {"metrics": others}
    if isinstance(artifacts, dict):
        return {**artifacts, "metrics": {**others, **(artifacts.get("metrics") or {})}}
    return {"artifacts": artifacts, "metrics": others}


def call_produce(fn, program: str, limits, codec, context: dict | None = None) -> bytes:
    """Call ``produce`` in the child; b"D" + its encoded data, or b"J" + an error."""
    try:
        value = fn(program) if context is None else fn(program, context)
        return b"D" + codec.encode(value, limits.data_bytes)
    except MemoryError:
        tb = traceback.format_exc()[-TRACEBACK_CHARS:]
        error = f"MemoryError: out of memory (memory limit of {limits.memory_mb} MB)\n{tb}"
    except codec.DataError as exc:
        error = f"produce() returned data that cannot be scored: {exc}"
    except BaseException:  # noqa: BLE001 - candidates may raise anything, SystemExit included
        error = traceback.format_exc()[-TRACEBACK_CHARS:]
    return b"J" + json.dumps({"error": error}).encode()
