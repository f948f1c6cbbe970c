"""The trusted scorer: ``score(data)`` in a process that no candidate ever touched.

For an evaluator with the split contract (``produce`` / ``score``), each worker starts one
scorer (``python -m rsi.sandbox.scorer --req FD --resp FD``, a fresh interpreter, never a fork of
the zygote), which imports the evaluator once and then, for every task, decodes the data that the
candidate's process produced (``codec.decode``: plain types only) and calls ``score`` or
``score_holdout`` on it. It never runs candidate code; the worker kills and replaces it when it
takes longer than ``Limits.score_seconds``.

    worker -> scorer   init {evaluator, data_bytes}     score {kind, seed, size} + data bytes
    scorer -> worker   ready {kinds}  | init_error {error}      result {metrics} | {error}

``Scorer`` is the worker's handle on its scorer.
"""

from __future__ import annotations

import ast
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

from .protocol import TRACEBACK_CHARS, check_metrics, read_exact, recv, send, send_blob

if TYPE_CHECKING:
    from .types import Limits

START_TIMEOUT = 300.0  # seconds a scorer may take to import the evaluator

SCORE_FUNCTIONS = {"train": "score", "holdout": "score_holdout"}


def split_by_syntax(path: str) -> bool:
    """Whether the evaluator defines ``produce`` and ``score`` at top level (read, not run)."""
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, ValueError):
        return False
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return {"produce", "score"} <= names


class Scorer:
    """A scorer process started by a worker, and the pipes to it."""

    def __init__(self, evaluator: str, data_bytes: int, score_seconds: float) -> None:
        self.evaluator = evaluator
        self.data_bytes = data_bytes
        self.score_seconds = score_seconds
        req_r, self.req = os.pipe()
        self.resp, resp_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rsi.sandbox.scorer", "--req", str(req_r),
                 "--resp", str(resp_w)],
                pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL,
                cwd=os.path.dirname(evaluator) or ".",
            )
        finally:
            os.close(req_r)
            os.close(resp_w)
        send(self.req, {"op": "init", "evaluator": evaluator, "data_bytes": data_bytes})
        self.kinds: set[str] = set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def fds(self) -> tuple[int, int]:
        return self.req, self.resp

    def ready(self, timeout: float) -> str | None:
        """Wait for the scorer's import; None when ready, else what went wrong."""
        if not select.select([self.resp], [], [], timeout)[0]:
            return f"the scorer took more than {timeout:g}s to import the evaluator"
        msg = recv(self.resp)
        if msg is None:
            return f"the scorer exited while importing the evaluator (exit code {self.proc.poll()})"
        if msg.get("op") == "init_error":
            return msg["error"]
        self.kinds = set(msg["kinds"])
        return None

    def request(self, kind: str, seed: int, blob: bytes) -> None:
        send_blob(self.req, {"op": "score", "kind": kind, "seed": seed}, blob)

    def wait(self, deadline: float, watch: int) -> tuple[str, Any]:
        """Wait for the answer to ``request`` until ``deadline`` (monotonic), or until ``watch``
        (the worker's pipe from the pool) has something: ("answer", reply), ("control", None),
        ("again", None) when woken early, ("timeout", message) or ("dead", message)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout", f"score() took more than {self.score_seconds:g}s"
        poller = select.poll()
        poller.register(self.resp, select.POLLIN)
        poller.register(watch, select.POLLIN)
        events = [fd for fd, _ in poller.poll(int(remaining * 1000) + 1)]
        if self.resp in events:
            answer = recv(self.resp)
            if answer is None:
                return "dead", f"the scorer died (exit code {self.proc.wait()}) while scoring"
            return "answer", answer
        return ("control", None) if watch in events else ("again", None)

    def close(self) -> None:
        for fd in (self.req, self.resp):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()


class Scoring:
    """The worker's side of the split contract (a mixin of ``worker.Worker``): start, check,
    use and replace its scorer. Uses the worker's ``evaluator``, ``limits``, ``functions``,
    ``private``, ``req`` and ``_control``."""

    scorer: Scorer | None = None
    # the worker's (declared here for the type checker)
    evaluator: str
    limits: Limits
    functions: dict[str, tuple]
    private: set[int]
    req: int

    if TYPE_CHECKING:
        def _control(self, cid: int) -> str | None: ...

    def _start_scorer(self) -> Scorer:
        self.scorer = scorer = Scorer(self.evaluator, self.limits.data_bytes, self.limits.score_seconds)
        self.private.update(scorer.fds)
        return scorer

    def _scorer_ready(self) -> str | None:
        scorer = self.scorer if self.scorer is not None else self._start_scorer()
        error = scorer.ready(START_TIMEOUT)
        missing = {k for k, (mode, _) in self.functions.items() if mode == "split"}
        missing -= scorer.kinds
        if error is None and missing:
            error = f"the scorer finds no score function for {', '.join(sorted(missing))}"
        if error is not None:
            self._stop_scorer()
        return error

    def _stop_scorer(self) -> None:
        if self.scorer is not None:
            self.private.difference_update(self.scorer.fds)
            self.scorer.close()
            self.scorer = None

    def _score(self, msg: dict, blob: bytes, reply: dict) -> str | None:
        """Have the trusted scorer score ``blob``; fills ``reply``. "shutdown" if the pool went."""
        if self.scorer is None or self.scorer.proc.poll() is not None:
            self._stop_scorer()
            error = self._scorer_ready()
            if error:
                reply["error"] = f"the scorer could not be restarted: {error}"
                return None
        scorer = self.scorer
        assert scorer is not None  # running, or restarted just above
        try:
            scorer.request(msg["kind"], msg["seed"], blob)
        except OSError:
            self._stop_scorer()
            reply["error"] = "the scorer died; it is restarted for the next task"
            return None
        deadline = time.monotonic() + self.limits.score_seconds
        while True:
            event, answer = scorer.wait(deadline, self.req)
            if event == "again":
                continue
            if event == "control":
                outcome = self._control(msg["id"])
                if outcome is None:
                    continue
                self._stop_scorer()  # it may be busy: a fresh one for the next task
                reply["error"] = "cancelled"
                return outcome if outcome == "shutdown" else None
            if event != "answer":
                self._stop_scorer()
                if event == "timeout":
                    reply["status"] = "timeout"
                reply["error"] = answer
                return None
            if "metrics" in answer:
                metrics, error = check_metrics(answer["metrics"])
            else:
                metrics, error = None, str(answer.get("error"))
            if metrics is not None:
                reply["status"], reply["metrics"] = "ok", metrics
            else:
                reply["error"] = error
            return None


def _score(module, msg: dict, blob: bytes, data_bytes: int) -> dict:
    from .codec import DataError, decode

    try:
        data = decode(blob, data_bytes)
    except DataError as exc:
        return {"error": f"the candidate's data was refused: {exc}"}
    except Exception as exc:  # noqa: BLE001 - any failure on hostile bytes is a refusal
        return {"error": f"the candidate's data was refused: {type(exc).__name__}: {exc}"}
    import random

    random.seed(msg["seed"])
    try:
        import numpy

        numpy.random.seed(msg["seed"] % 2**32)
    except ImportError:
        pass
    name = SCORE_FUNCTIONS[msg["kind"]]
    try:
        value = getattr(module, name)(data)
    except BaseException:  # noqa: BLE001 - an invalid output is the candidate's failure
        return {"error": f"{name}() rejected the candidate's data:\n"
                + traceback.format_exc()[-TRACEBACK_CHARS:]}
    metrics, error = check_metrics(value)
    return {"metrics": metrics} if error is None else {"error": error.replace("evaluate", name, 1)}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rsi.sandbox.scorer")
    parser.add_argument("--req", type=int, required=True)
    parser.add_argument("--resp", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the run loop, which stops us
    init = recv(args.req)
    if init is None:
        return 0
    from .procs import load_module

    try:
        module = load_module(init["evaluator"])
    except BaseException:  # noqa: BLE001 - reported whole to the worker
        send(args.resp, {"op": "init_error", "error": traceback.format_exc()[-8000:]})
        return 1
    kinds = [k for k, name in SCORE_FUNCTIONS.items() if callable(getattr(module, name, None))]
    send(args.resp, {"op": "ready", "kinds": kinds})
    sys.dont_write_bytecode = True
    while True:
        msg = recv(args.req)
        if msg is None:
            return 0
        blob = read_exact(args.req, msg["size"]) if msg.get("size") else b""
        if blob is None:
            return 0
        t0 = time.monotonic()
        reply = _score(module, msg, blob, init["data_bytes"])
        reply.update(op="result", seconds=time.monotonic() - t0)
        send(args.resp, reply)


if __name__ == "__main__":
    sys.exit(main())
