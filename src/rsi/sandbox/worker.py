"""The evaluation worker: a warm zygote that forks one child per candidate.

``EvaluatorPool`` starts it as ``python -m rsi.sandbox.worker --req FD --resp FD``. The worker
imports the evaluator (and numpy) once, then for every task: writes the program to
``<scratch>/<candidate_id>-<kind>/program.py`` and hands the task to a child forked in advance.
The child, in its own process group, enters the sandbox (``limits.enter_sandbox``), seeds
``random`` and numpy, calls the evaluator, checks what it returned and sends it back over a pipe.
The worker kills the child at the wall time, kills whatever it left running (its process group,
and any escapee: the worker is a child subreaper), reads back its captured output, answers the
pool, and removes the task folder.

Protocol, on two dedicated pipes (stdout is left to evaluators that print): each message is a
4-byte big-endian length and a UTF-8 JSON object with an ``op``.

    pool -> worker   init {evaluator, scratch, limits}      run {id, kind, seed, source}
                     cancel {id}                            (EOF: stop)
    worker -> pool   ready {holdout, zygote_mb}  | init_error {error}
                     started {id, pid}           result {id, status, metrics, error, stdout,
                                                         stderr, wall, cpu}

Importing this module has no side effects: the pool imports the framing and the result checks
from here.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import select
import signal
import struct
import sys
import time
import traceback
from typing import NamedTuple

HEADER = struct.Struct(">I")
MAX_MESSAGE = 256 * 1024 * 1024  # a sanity bound on one protocol message
MAX_RESULT = 1024 * 1024  # the child's result (metrics or error) as JSON
TRACEBACK_CHARS = 2000
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


# ---------------------------------------------------------------- framing (shared with the pool)


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
            return math.inf if value > 0 else -math.inf
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        if getattr(getattr(value, "dtype", None), "kind", "") in "biuf":  # numpy bool, 0-d array
            return float(value)
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


# ---------------------------------------------------------------- the worker


class Spare(NamedTuple):
    """A child forked in advance, blocked until it is given a task, and the worker's ends."""

    pid: int
    ctl: int  # write end: the task goes here
    result: int  # read end: the child's result comes back here
    out: int  # the child's stdout and stderr: unnamed files (O_TMPFILE) in the scratch folder,
    err: int  # bounded by RLIMIT_FSIZE, which no candidate can swap for a symlink


class Worker:
    """The zygote. Between tasks it keeps one *spare*: a child forked in advance and blocked on
    a pipe, so that the fork (about a millisecond with numpy loaded, more to get the child
    running) is paid while the previous candidate runs, not on the critical path. Likewise the
    clean-up of a task (unlinking its folder, closing its output files) is deferred until the
    next candidate runs or the worker is idle."""

    def __init__(self, req: int, resp: int) -> None:
        self.req = req
        self.resp = resp
        self.pid = os.getpid()
        self.scratch = ""
        self.limits = None
        self.functions: dict[str, object] = {}
        self.libc = None
        self.numpy = None
        self.spare: Spare | None = None
        self.private: set[int] = set()  # the worker's ends of every child's fds: no child keeps them
        self.trash: list[int | str] = []  # fds to close and task folders to remove
        self.outputs: list[tuple[int, int]] = []  # emptied output files, for the next spares

    # --- start-up

    def start(self) -> bool:
        init = recv(self.req)
        if init is None:
            return False
        from .limits import prepare_worker
        from .types import Limits

        self.limits = Limits(**init["limits"])
        self.scratch = init["scratch"]
        os.makedirs(self.scratch, exist_ok=True)
        for entry in os.listdir(self.scratch):  # task folders left by a worker that was killed
            if entry.endswith(("-train", "-holdout")):
                remove_tree(os.path.join(self.scratch, entry))
        prepare_worker(self.scratch, self.limits)
        try:
            module = load_module(init["evaluator"])
            evaluate = getattr(module, "evaluate", None)
            if not callable(evaluate):
                raise AttributeError(
                    f"{init['evaluator']} defines no function evaluate(program_path)"
                )
        except BaseException as exc:  # noqa: BLE001 - the evaluator's own failure, reported whole
            text = traceback.format_exc()
            if isinstance(exc, AttributeError) and "defines no function" in str(exc):
                text = str(exc)
            send(self.resp, {"op": "init_error", "error": text[-8000:]})
            return False
        self.functions["train"] = evaluate
        holdout = getattr(module, "evaluate_holdout", None)
        if callable(holdout):
            self.functions["holdout"] = holdout
        self._warm()
        send(self.resp, {"op": "ready", "holdout": callable(holdout), "zygote_mb": vm_size_mb()})
        return True

    def _warm(self) -> None:
        """Import here what every child would otherwise import, and freeze the heap."""
        import gc
        import random

        self.random = random
        try:
            import numpy

            numpy.random.seed(0)  # the first call costs ~25 ms: pay it once, here
            self.numpy = numpy
        except ImportError:
            self.numpy = None
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of a task come back to us
            self.libc = libc
        except (OSError, AttributeError):
            self.libc = None
        from .limits import enter_sandbox

        self.enter_sandbox = enter_sandbox
        sys.dont_write_bytecode = True  # no __pycache__ of candidates in scratch
        gc.collect()
        gc.freeze()  # keep the zygote's objects out of the children's collections (fewer COW faults)

    def serve(self) -> None:
        idle = select.poll()
        idle.register(self.req, select.POLLIN)
        try:
            self._fork_spare()
            while True:
                if self.trash and not idle.poll(20):  # idle for 20 ms: clean up now
                    self._clean()
                msg = recv(self.req)
                if msg is None:
                    return
                if msg["op"] == "run" and not self.run(msg):
                    return  # the pool went away mid-task
                # a "cancel" that arrives when idle is for a task already answered: ignore it
        finally:
            self._drop_spare()
            self._clean()
            for out, err in self.outputs:
                self._close(out)
                self._close(err)

    def _clean(self) -> None:
        trash, self.trash = self.trash, []
        for item in trash:
            if isinstance(item, str):
                remove_tree(item)
            else:
                self._close(item)

    def _close(self, fd: int) -> None:
        os.close(fd)
        self.private.discard(fd)

    # --- the spare child

    def _fork_spare(self) -> None:
        ctl_r, ctl_w = os.pipe()
        res_r, res_w = os.pipe()
        if self.outputs:  # reused: creating files costs more than emptying them
            out, err = self.outputs.pop()
        else:
            out, err = output_file(self.scratch), output_file(self.scratch)
        private = [fd for fd in (self.req, self.resp, ctl_w, res_r, *self.private)
                   if fd not in (out, err)]
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # ------------------------------------------------ the evaluation child
            try:
                self._child(ctl_r, res_w, out, err, private)
            finally:
                os._exit(70)
        os.close(ctl_r)
        os.close(res_w)
        try:
            os.setpgid(pid, pid)  # the child does it too: whichever runs first
        except OSError:
            pass
        self.spare = Spare(pid, ctl_w, res_r, out, err)
        self.private.update((ctl_w, res_r, out, err))

    def _drop_spare(self) -> None:
        spare, self.spare = self.spare, None
        if spare is not None:
            for fd in (spare.ctl, spare.result, spare.out, spare.err):
                self._close(fd)
            kill_group(spare.pid)
            try:
                os.waitpid(spare.pid, 0)
            except ChildProcessError:
                pass

    def _dispatch(self, task: dict) -> Spare:
        """Hand ``task`` to the spare, which becomes the child running it."""
        for attempt in (1, 2):
            spare = self.spare
            try:
                send(spare.ctl, task)
            except BrokenPipeError:  # the spare died while waiting (killed from outside)
                if attempt == 2:
                    raise
                self._drop_spare()
                self._fork_spare()
                continue
            self._close(spare.ctl)
            self.spare = None
            return spare
        raise AssertionError("unreachable")

    # --- one task

    def run(self, msg: dict) -> bool:
        """Evaluate one candidate and answer the pool; False if the pool has gone."""
        cid, kind = msg["id"], msg["kind"]
        reply = {"op": "result", "id": cid, "status": "error", "metrics": {}, "error": None,
                 "stdout": "", "stderr": "", "wall": 0.0, "cpu": 0.0}
        if kind not in self.functions:
            name = "evaluate_holdout" if kind == "holdout" else f"an evaluation of kind {kind!r}"
            reply["error"] = f"the evaluator has no {name}(program_path)"
            send(self.resp, reply)
            return True
        task_dir = os.path.join(self.scratch, f"{cid}-{kind}")
        if task_dir in self.trash:
            self._clean()  # the same candidate again, before its folder was removed
        remove_tree(task_dir)
        os.mkdir(task_dir, 0o700)
        try:
            try:
                with open(os.path.join(task_dir, "program.py"), "w", encoding="utf-8") as f:
                    f.write(msg["source"])
            except UnicodeEncodeError as exc:
                reply["error"] = f"program source is not valid UTF-8: {exc}"
            else:
                if self._run_in_child(msg, task_dir, reply) is None:
                    return False
            send(self.resp, reply)
            return True
        finally:
            self.trash.append(task_dir)  # removed while the next candidate runs, or when idle

    def _run_in_child(self, msg: dict, task_dir: str, reply: dict) -> dict | None:
        start = time.monotonic()
        child = self._dispatch({"dir": task_dir, "kind": msg["kind"], "seed": msg["seed"]})
        try:
            send(self.resp, {"op": "started", "id": msg["id"], "pid": child.pid})
            self._fork_spare()  # the next candidate's child, forked while this one runs
            self._clean()  # the last candidate's files, while this one runs
            outcome, status, usage, data = self._wait(child.pid, child.result, msg["id"], start)
        except BaseException:
            self.trash.extend((child.out, child.err))
            raise
        finally:
            self._close(child.result)
        reply["wall"] = time.monotonic() - start
        reply["cpu"] = usage.ru_utime + usage.ru_stime if usage else 0.0
        reply["stdout"] = read_capped(child.out, self.limits.output_bytes)
        reply["stderr"] = read_capped(child.err, self.limits.output_bytes)
        self._recycle(child.out, child.err)
        if outcome == "shutdown":
            return None
        self._judge(reply, outcome, status, data)
        return reply

    def _recycle(self, out: int, err: int) -> None:
        """Keep a task's output files for a later spare (the task and all it started are dead,
        so nothing else holds them), unless they are big: those are closed later."""
        if len(self.outputs) < 2 and os.fstat(out).st_size + os.fstat(err).st_size <= 1 << 20:
            for fd in (out, err):
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)  # the offset was shared with the child
            self.outputs.append((out, err))
        else:
            self.trash.extend((out, err))  # freeing a big file takes time

    def _wait(self, pid: int, rfd: int, cid: int, start: float):
        """Wait for the child: its exit, the wall time, or a cancel from the pool.

        Returns (outcome, wait status, rusage, result bytes); the child and everything it
        started are dead and reaped when this returns.
        """
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None  # old kernel: poll wait4 every 10 ms
        poller = select.poll()
        poller.register(rfd, select.POLLIN)
        poller.register(self.req, select.POLLIN)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        deadline = start + self.limits.wall_seconds
        data = bytearray()
        outcome, status, usage = None, 0, None
        try:
            while outcome is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    outcome = "timeout"
                    break
                wait_ms = math.ceil(remaining * 1000)
                for fd, _ in poller.poll(wait_ms if pidfd is not None else min(10, wait_ms)):
                    if fd == rfd:
                        if not self._read_result(rfd, data):
                            poller.unregister(rfd)
                    elif fd == self.req:
                        msg = recv(self.req)
                        if msg is None:
                            outcome = "shutdown"
                        elif msg["op"] == "cancel" and msg["id"] == cid:
                            outcome = "cancel"
                if outcome is None:
                    done, status, usage = os.wait4(pid, os.WNOHANG)
                    if done:
                        outcome = "exit"
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if outcome != "exit":
            kill_group(pid)
            _, status, usage = os.wait4(pid, 0)
        os.set_blocking(rfd, False)
        try:
            while self._read_result(rfd, data):
                pass
        except BlockingIOError:
            pass
        self._sweep(pid)
        return outcome, status, usage, bytes(data)

    @staticmethod
    def _read_result(rfd: int, data: bytearray) -> bool:
        chunk = os.read(rfd, 65536)
        if len(data) <= MAX_RESULT:
            data += chunk
        return bool(chunk)

    def _sweep(self, pgid: int) -> None:
        """Kill and reap everything the task left behind: its process group, and any process
        that escaped the group (orphans are reparented to this worker, a child subreaper)."""
        kill_group(pgid)
        spare = self.spare.pid if self.spare else None
        for _ in range(10_000):
            pids = [p for p in children(self.pid) if p != spare]
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for p in pids:
                try:
                    os.waitpid(p, 0)
                except ChildProcessError:
                    pass

    def _judge(self, reply: dict, outcome: str, status: int, data: bytes) -> None:
        limits = self.limits
        if outcome == "cancel":
            reply["error"] = "cancelled"
            return
        payload = None
        if data and len(data) <= MAX_RESULT:
            try:
                payload = json.loads(data)
            except (ValueError, RecursionError):
                payload = None
        if isinstance(payload, dict) and ("metrics" in payload or "error" in payload):
            if "metrics" in payload:  # checked again here: the child ran untrusted code
                metrics, error = check_metrics(payload["metrics"])
            else:
                metrics, error = None, str(payload["error"])[-(TRACEBACK_CHARS + 200) :]
            if metrics is not None:
                reply["status"], reply["metrics"] = "ok", metrics
            else:
                reply["error"] = error
            return
        if outcome == "timeout":
            reply["status"] = "timeout"
            reply["error"] = f"wall time limit of {limits.wall_seconds:g}s exceeded"
            return
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            cpu_limit = max(1, math.ceil(limits.cpu_seconds))
            if sig == signal.SIGXCPU or (sig == signal.SIGKILL and reply["cpu"] >= cpu_limit - 0.05):
                reply["status"] = "timeout"
                reply["error"] = f"CPU time limit of {limits.cpu_seconds:g}s exceeded"
                return
        if len(data) > MAX_RESULT:
            reply["error"] = f"evaluation result larger than {MAX_RESULT} bytes"
            return
        reply["error"] = f"evaluation process died ({describe_exit(status)}) without a result"

    # --- in the child

    def _child(self, ctl_r: int, res_w: int, out: int, err: int, private: list[int]) -> None:
        """A spare: wait for a task, then run it. Never returns (the caller ``_exit``s)."""
        # Own process group, so that the worker can kill the candidate and all it starts. Not
        # setsid(): with autogroup scheduling a new session costs milliseconds.
        os.setpgid(0, 0)
        if self.libc is not None:
            self.libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != self.pid:  # the worker died before the prctl
                os._exit(71)
        for fd in private:  # the pool's pipes and other tasks' files are not for candidates
            os.close(fd)
        task = recv(ctl_r)
        if task is None:  # the worker no longer needs this spare
            os._exit(0)
        os.close(ctl_r)
        task_dir, limits = task["dir"], self.limits
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        os.chdir(task_dir)
        try:
            self.enter_sandbox(task_dir, limits)
            self.random.seed(task["seed"])
            if self.numpy is not None:
                self.numpy.random.seed(task["seed"] % 2**32)
            fn = self.functions[task["kind"]]
            payload = _evaluate(fn, os.path.join(task_dir, "program.py"), limits.memory_mb)
            data = json.dumps(payload).encode()
        except BaseException as exc:  # noqa: BLE001 - setup failure or an unencodable result
            data = json.dumps({"error": f"evaluation failed: {type(exc).__name__}: {exc}"}).encode()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - e.g. "File too large" after a flood
                pass
        write_all(res_w, data)
        os._exit(0)


def _evaluate(fn, program: str, memory_mb: int) -> dict:
    """Call the evaluator in the child; a JSON-ready payload: {"metrics"} or {"error"}."""
    try:
        value = fn(program)
    except MemoryError:
        tb = traceback.format_exc()[-TRACEBACK_CHARS:]
        return {"error": f"MemoryError: out of memory (memory limit of {memory_mb} MB)\n{tb}"}
    except BaseException:  # noqa: BLE001 - candidates may raise anything, SystemExit included
        return {"error": traceback.format_exc()[-TRACEBACK_CHARS:]}
    try:
        metrics, error = check_metrics(value)
    except BaseException:  # noqa: BLE001 - e.g. a hostile __float__
        return {"error": "checking the evaluator's result failed:\n" + traceback.format_exc()[-TRACEBACK_CHARS:]}
    return {"metrics": metrics} if error is None else {"error": error}


# ---------------------------------------------------------------- helpers


def load_module(path: str):
    import importlib.util

    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the evaluator can import its neighbours
    spec = importlib.util.spec_from_file_location("rsi_evaluator", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rsi_evaluator"] = module
    spec.loader.exec_module(module)
    return module


def output_file(folder: str) -> int:
    """An unnamed file in ``folder`` (a named one, unlinked at once, where O_TMPFILE fails)."""
    try:
        return os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):
        import tempfile

        fd, path = tempfile.mkstemp(dir=folder)
        os.unlink(path)
        return fd


def kill_group(pgid: int) -> None:
    """SIGKILL the process group ``pgid``, or the process alone if it never made one."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads)."""
    pids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            fd = os.open(f"/proc/{pid}/task/{tid}/children", os.O_RDONLY)
            try:
                text = b"".join(iter(lambda: os.read(fd, 1 << 16), b""))
            finally:
                os.close(fd)
            pids.extend(int(p) for p in text.split())
    except FileNotFoundError:  # no CONFIG_PROC_CHILDREN: scan every process's parent
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        stat = f.read()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(entry))
    return pids


def remove_tree(path: str) -> None:
    import shutil

    def retry(func, failed, _exc):  # a candidate may have made its files read-only
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            os.chmod(failed, 0o700)
            func(failed)
        except OSError:
            pass

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=retry)


def vm_size_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rsi.sandbox.worker")
    parser.add_argument("--req", type=int, required=True, help="fd to read requests from")
    parser.add_argument("--resp", type=int, required=True, help="fd to write replies to")
    args = parser.parse_args(argv)
    for name in THREAD_VARS:  # before anything can import numpy: forking after BLAS threads is unsafe
        os.environ.setdefault(name, "1")
    worker = Worker(args.req, args.resp)
    if worker.start():
        worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
