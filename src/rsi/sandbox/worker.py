"""The evaluation worker: a warm zygote that forks one child per candidate.

``EvaluatorPool`` starts it as ``python -m rsi.sandbox.worker --req FD --resp FD``. The worker
isolates itself (``limits.prepare_worker``: namespaces, scratch tmpfs), imports the evaluator
(and numpy) once, and keeps children forked in advance, each in its own process group and
already in the sandbox (``limits.enter_sandbox``: uid, Landlock, seccomp, rlimits). For every
task it renames such a child's folder to ``<scratch>/<candidate_id>-<kind>``, writes
``program.py`` in it and hands the task over; the child seeds ``random`` and numpy and calls
the evaluator:

- plain contract ("beside"): ``evaluate(program_path)``; the child checks the metrics and sends
  them back. The score is computed beside the candidate, in its process.
- split contract: ``produce(program_path)`` in the child, whose data (``codec``) the worker
  hands to its trusted scorer process (``scorer.py``), which runs ``score(data)``. Metrics that
  come from the child's process are never accepted then.
- OpenEvolve's ``evaluator.py`` (``limits.evaluator_format``, or a cascade in ``limits.cascade``):
  as the plain contract, through ``rsi.compat.openevolve_function`` (the cascade's stages run in
  the child, so a candidate that fails stage 1 costs only stage 1).
- ShinkaEvolve's ``evaluate.py`` ("shinka"): the child runs it as ``__main__`` with
  ``--program_path`` and ``--results_dir <task folder>/results``; after the child has ended, the
  worker itself reads ``metrics.json`` and ``correct.json`` back (``rsi.compat.read_shinka_results``).

The worker kills the child at the wall time, kills whatever it left running (its process group,
and any escapee: the worker is a child subreaper), reads back its captured output, answers the
pool, and removes the task folder.

Protocol (``protocol.py``), on two dedicated pipes (stdout is left to evaluators that print):

    pool -> worker   init {evaluator, scratch, limits, isolation}   run {id, kind, seed, source}
                     cancel {id}                                     (EOF: stop)
    worker -> pool   ready {holdout, zygote_mb, modes, sandbox}  | init_error {error}
                     started {id, pid}           result {id, status, metrics, error, stdout,
                                                         stderr, wall, cpu}
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import sys
import time
import traceback
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

from .outcome import call_evaluate, call_produce, judge, read_result
from .procs import kill_group, load_module, output_file, remove_tree, sweep, vm_size_mb
from .protocol import MAX_RESULT, THREAD_VARS, read_capped, recv, send, takes_context, write_all
from .scorer import Scoring, split_by_syntax

if TYPE_CHECKING:
    import ctypes

    from .isolation import Plan

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_GET_NO_NEW_PRIVS = 39
SPARES = 2  # children kept ready: one may still be entering its sandbox when a task comes
SPLIT = {"train": ("produce", "score"), "holdout": ("produce_holdout", "score_holdout")}
PLAIN = {"train": "evaluate", "holdout": "evaluate_holdout"}


class Spare(NamedTuple):
    """A child forked in advance, blocked until it is given a task, and the worker's ends."""

    pid: int
    ctl: int  # write end: the task goes here
    result: int  # read end: the child's result comes back here
    out: int  # the child's stdout and stderr: unnamed files (O_TMPFILE) in the scratch folder,
    err: int  # bounded by RLIMIT_FSIZE, which no candidate can swap for a symlink
    folder: str  # its scratch folder, renamed to the task's folder when it gets a task
    kind: str  # the task kind whose sandbox rules it entered


class Worker(Scoring):
    """The zygote. Between tasks it keeps one *spare*: a child forked in advance, which enters
    the sandbox at once (uid, Landlock rules for a scratch folder of its own, seccomp) and then
    blocks on a pipe. A task renames that folder to the task's (Landlock rules follow the folder,
    not its name), writes the program in it and hands the task over. So the fork (about a
    millisecond with numpy loaded, more to get the child running) and the sandbox (about as much
    again) are paid while the previous candidate runs, not on the critical path. Likewise the
    clean-up of a task (unlinking its folder, closing its output files) is deferred until the
    next candidate runs or the worker is idle."""

    def __init__(self, req: int, resp: int) -> None:
        self.req = req
        self.resp = resp
        self.pid = os.getpid()
        self.scratch = ""
        # self.limits (Limits): set by start(), from the pool's init message
        self.evaluator = ""
        self.functions: dict[str, tuple] = {}  # kind -> ("beside", fn) | ("split", produce)
        self.contexts: dict[str, bool] = {}  # kind -> whether its function takes a context
        self.plan: Plan | None = None
        self.scorer = None
        self.libc: ctypes.CDLL | None = None
        self.numpy: ModuleType | None = None
        self.spares: list[Spare] = []  # children forked in advance, in the sandbox, waiting
        self.private: set[int] = set()  # the worker's ends of every child's fds: no child keeps them
        self.trash: list[int | str] = []  # fds to close and task folders to remove
        self.outputs: list[tuple[int, int]] = []  # emptied output files, for the next spares
        self.forked = 0  # spares forked so far: names their folders

    # --- start-up

    def start(self) -> bool:
        init = recv(self.req)
        if init is None:
            return False
        from .limits import prepare_worker
        from .types import Limits

        self.limits = Limits(**init["limits"])
        self.scratch = init["scratch"]
        self.evaluator = init["evaluator"]
        os.makedirs(self.scratch, exist_ok=True)
        for entry in os.listdir(self.scratch):  # task folders left by a worker that was killed
            if entry.endswith(("-train", "-holdout")):
                remove_tree(os.path.join(self.scratch, entry))
        if split_by_syntax(self.evaluator):  # outside the namespaces, importing in parallel
            self._start_scorer()
        self.plan = plan = prepare_worker(self.scratch, self.limits, isolation=init["isolation"],
                                          evaluator=self.evaluator)
        before = set(sys.modules)
        try:
            from .. import compat

            compat.install_shims()  # OpenEvolve's and ShinkaEvolve's imports work without them
            module = load_module(self.evaluator)
            self._find_functions(module)
            if any(mode == "split" for mode, _ in self.functions.values()):
                error = self._scorer_ready()
                if error:
                    send(self.resp, {"op": "init_error", "error": "the scorer process cannot "
                                     f"use {self.evaluator}:\n{error}"})
                    return False
            elif self.scorer is not None:
                self.scorer.close()
                self.scorer = None
        except BaseException as exc:  # noqa: BLE001 - the evaluator's own failure, reported whole
            text = traceback.format_exc()
            if isinstance(exc, AttributeError) and "defines no function" in str(exc):
                text = str(exc)
            send(self.resp, {"op": "init_error", "error": text[-8000:]})
            return False
        from .isolation import finish

        files = [getattr(sys.modules[m], "__file__", None) for m in set(sys.modules) - before]
        code_kinds = {k for k, (mode, _) in self.functions.items() if mode in ("beside", "shinka")}
        if self.limits.holdout_reads_folder:  # else a split produce_holdout is confined like produce
            code_kinds.add("holdout")
        finish(plan, self.evaluator, [f for f in files if f], code_kinds)
        self._warm()
        send(self.resp, {
            "op": "ready", "holdout": "holdout" in self.functions, "zygote_mb": vm_size_mb(),
            # a ShinkaEvolve script scores beside the candidate too: its files are the candidate's process's
            "modes": {k: self._reported_mode(mode) for k, (mode, _) in self.functions.items()},
            "sandbox": {"level": plan.level, "protections": plan.protections,
                        "code_folders": plan.code_folders},
        })
        return True

    def _reported_mode(self, mode: str) -> str:
        """"split", "guarded" (a plain evaluator behind rsi.sandbox.guard) or "beside"."""
        if mode == "split":
            return mode
        return "guarded" if self.limits.guard else "beside"

    def _find_functions(self, module) -> None:
        from .. import compat

        fmt, cascade = self.limits.evaluator_format, self.limits.cascade
        if fmt == "shinka":  # a script: run in the child, its files read back here
            self.functions["train"] = ("shinka", self.evaluator)
            self.contexts["train"] = False
            return
        for kind in ("train", "holdout"):
            produce, score = (getattr(module, name, None) for name in SPLIT[kind])
            plain = getattr(module, PLAIN[kind], None)
            if callable(produce) and callable(score):
                self.functions[kind] = ("split", produce)
            elif callable(plain):
                self.functions[kind] = ("beside", plain)
            if kind == "train" and self.functions.get(kind, ("", None))[0] != "split":
                wrapped = compat.evaluator_function(module, self.evaluator, fmt, cascade)
                if wrapped is not None:
                    self.functions[kind] = ("beside", wrapped)
            if kind in self.functions:
                self.contexts[kind] = takes_context(self.functions[kind][1])
        if "train" not in self.functions:
            raise AttributeError(f"{self.evaluator} defines no function evaluate(program_path) "
                                 "(nor produce(program_path) and score(data))")
        if not self.limits.holdout_reads_folder and self.functions.get("holdout", ("split",))[0] != "split":
            raise ValueError(f"[evaluator] holdout_reads_folder = false confines produce_holdout, but {self.evaluator} "
                             "has evaluate_holdout, which scores beside the candidate and must read its data: "
                             "define produce_holdout and score_holdout, or remove the setting")

    def _warm(self) -> None:
        """Import here what every child would otherwise import, and freeze the heap."""
        import ctypes
        import gc
        import random

        from . import codec
        from .isolation import settle
        from .limits import enter_sandbox

        self.random = random
        self.codec = codec
        try:
            import numpy

            numpy.random.seed(0)  # the first call costs ~25 ms: pay it once, here
            self.numpy = numpy
        except ImportError:
            self.numpy = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of a task come back to us
            self.libc = libc
            if self.plan is not None and self.plan.libc is not None:  # resolve the symbols once
                self.plan.libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
                self.plan.libc.syscall.restype = ctypes.c_long
        except (OSError, AttributeError):
            self.libc = None
        self.enter_sandbox = enter_sandbox
        self.settle = settle
        sys.dont_write_bytecode = True  # no __pycache__ of candidates in scratch
        gc.collect()
        gc.freeze()  # keep the zygote's objects out of the children's collections (fewer COW faults)

    def serve(self) -> None:
        idle = select.poll()
        idle.register(self.req, select.POLLIN)
        try:
            while True:
                if not self.spares:  # the next candidate's child, before its task comes
                    self._fork_spare()
                if (self.trash or len(self.spares) < SPARES) and not idle.poll(20):
                    self._chores()  # idle for 20 ms: catch up now
                msg = recv(self.req)
                if msg is None:
                    return
                if msg["op"] == "run" and not self.run(msg):
                    return  # the pool went away mid-task
                # a "cancel" that arrives when idle is for a task already answered: ignore it
        finally:
            self._drop_spare()
            self._clean()
            self._stop_scorer()
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

    def _profile(self, kind: str) -> bool:
        """Whether a task of ``kind`` may read the evaluator's folders (its sandbox differs)."""
        return self.plan is not None and kind in self.plan.code_kinds

    def _fork_spare(self, kind: str = "train") -> Spare:
        ctl_r, ctl_w = os.pipe()
        res_r, res_w = os.pipe()
        if self.outputs:  # reused: creating files costs more than emptying them
            out, err = self.outputs.pop()
        else:
            out, err = output_file(self.scratch), output_file(self.scratch)
        self.forked += 1
        folder = os.path.join(self.scratch, f".spare-{self.forked}")
        remove_tree(folder)
        os.mkdir(folder, 0o700)
        if self.plan is not None and self.plan.uid is not None:
            os.chown(folder, self.plan.uid, self.plan.uid)
        handle = os.open(folder, os.O_PATH | os.O_CLOEXEC)  # not its name: it is renamed soon
        private = [fd for fd in (self.req, self.resp, ctl_w, res_r, *self.private)
                   if fd not in (out, err)]
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # ------------------------------------------------ the evaluation child
            try:
                self._child(ctl_r, res_w, out, err, private, handle, kind)
            finally:
                os._exit(70)
        os.close(handle)
        os.close(ctl_r)
        os.close(res_w)
        try:
            os.setpgid(pid, pid)  # the child does it too: whichever runs first
        except OSError:
            pass
        spare = Spare(pid, ctl_w, res_r, out, err, folder, kind)
        self.spares.append(spare)
        self.private.update((ctl_w, res_r, out, err))
        return spare

    def _chores(self) -> None:
        """Keep SPARES children ready (for the usual kind of task) and clean up after the last."""
        usual = self._profile("train")
        while sum(self._profile(s.kind) == usual for s in self.spares) < SPARES \
                and len(self.spares) <= SPARES:
            self._fork_spare()
        self._clean()

    def _drop_spare(self, which: Spare | None = None) -> None:
        """Kill ``which`` spare (all of them if None)."""
        for spare in [which] if which is not None else list(self.spares):
            self.spares.remove(spare)
            for fd in (spare.ctl, spare.result, spare.out, spare.err):
                self._close(fd)
            kill_group(spare.pid)
            try:
                os.waitpid(spare.pid, 0)
            except ChildProcessError:
                pass
            remove_tree(spare.folder)

    def _spare_for(self, kind: str) -> Spare:
        """A spare that entered the sandbox rules of ``kind``, forked now if there is none."""
        for spare in self.spares:
            if self._profile(spare.kind) == self._profile(kind):
                return spare
        return self._fork_spare(kind)

    def _dispatch(self, spare: Spare, task: dict) -> Spare:
        """Hand ``task`` to ``spare``, which becomes the child running it."""
        for attempt in (1, 2):
            try:
                send(spare.ctl, task)
            except BrokenPipeError:  # the spare died while waiting (killed from outside)
                if attempt == 2:
                    raise
                self._drop_spare(spare)
                spare = self._fork_spare(task["kind"])
                # its rules hold for its own folder: move the program in, and rename that
                os.rename(os.path.join(task["dir"], "program.py"),
                          os.path.join(spare.folder, "program.py"))
                remove_tree(task["dir"])
                os.rename(spare.folder, task["dir"])
                continue
            self._close(spare.ctl)
            self.spares.remove(spare)
            return spare
        raise AssertionError("unreachable")

    # --- one task

    def run(self, msg: dict) -> bool:
        """Evaluate one candidate and answer the pool; False if the pool has gone."""
        cid, kind = msg["id"], msg["kind"]
        reply = {"op": "result", "id": cid, "status": "error", "metrics": {}, "error": None,
                 "stdout": "", "stderr": "", "wall": 0.0, "cpu": 0.0, "data": None}
        if kind not in self.functions:
            name = "evaluate_holdout" if kind == "holdout" else f"an evaluation of kind {kind!r}"
            reply["error"] = f"the evaluator has no {name}(program_path)"
            send(self.resp, reply)
            return True
        if msg.get("context") is not None and not self.contexts.get(kind):
            reply["error"] = (f"the task has a context, but the evaluator's function for {kind} takes only "
                              "program_path; define it as f(program_path, context)")
            send(self.resp, reply)
            return True
        task_dir = os.path.join(self.scratch, f"{cid}-{kind}")
        if task_dir in self.trash:
            self._clean()  # the same candidate again, before its folder was removed
        spare = self._spare_for(kind)
        try:
            error = None
            for attempt in (1, 2):
                if attempt == 2:
                    self._clean()  # e.g. the last candidate filled the scratch tmpfs: free it
                try:
                    self._write_program(spare.folder, task_dir, msg["source"])
                    error = None
                    break
                except UnicodeEncodeError as exc:
                    error = f"program source is not valid UTF-8: {exc}"
                    break
                except OSError as exc:
                    error = f"cannot write the program into the scratch folder: {exc}"
            if error is not None:
                reply["error"] = error
                self._drop_spare(spare)  # its folder is gone or holds a program it will not run
            elif self._run_in_child(msg, spare, task_dir, reply) is None:
                return False
            send(self.resp, reply)
            return True
        finally:
            self.trash.append(task_dir)  # removed while the next candidate runs, or when idle

    @staticmethod
    def _write_program(folder: str, task_dir: str, source: str) -> None:
        """Rename the spare's ``folder`` to ``task_dir`` (once) and write the program in it."""
        if os.path.lexists(folder):
            remove_tree(task_dir)
            os.rename(folder, task_dir)
        with open(os.path.join(task_dir, "program.py"), "w", encoding="utf-8") as f:
            f.write(source)

    def _run_in_child(self, msg: dict, spare: Spare, task_dir: str, reply: dict) -> dict | None:
        start = time.monotonic()
        child = self._dispatch(spare, {"dir": task_dir, "kind": msg["kind"], "seed": msg["seed"],
                                       "context": msg.get("context")})
        try:
            send(self.resp, {"op": "started", "id": msg["id"], "pid": child.pid})
            outcome, status, usage, data = self._wait(child.pid, child.result, msg["id"], start)
        except BaseException:
            self.trash.extend((child.out, child.err))
            raise
        finally:
            self._close(child.result)
        reply["cpu"] = usage.ru_utime + usage.ru_stime if usage else 0.0
        reply["stdout"] = read_capped(child.out, self.limits.output_bytes)
        reply["stderr"] = read_capped(child.err, self.limits.output_bytes)
        self._recycle(child.out, child.err)
        if outcome == "shutdown":
            return None
        mode = self.functions[msg["kind"]][0]
        if mode == "shinka" and outcome == "exit":
            self._read_shinka(task_dir, data, reply, self.limits.guard)
            reply["wall"] = time.monotonic() - start
            return reply
        blob = judge(reply, outcome, status, data, mode, self.limits)
        if blob is not None and self._score(msg, blob, reply) == "shutdown":
            return None
        reply["wall"] = time.monotonic() - start
        return reply

    @staticmethod
    def _read_shinka(task_dir: str, data: bytes, reply: dict, guarded: bool = False) -> None:
        """Trusted: what the ShinkaEvolve script wrote in the task's results folder, read now that
        the child and everything it started are dead (``data``: the child's note of how the
        script ended, untrusted, used only in the error message)."""
        from ..compat import SHINKA_RESULTS, read_shinka_results

        note = None
        if data[:1] == b"J" and len(data) <= MAX_RESULT:
            try:
                note = json.loads(data[1:]).get("shinka")
            except (ValueError, AttributeError, RecursionError):
                note = None
        if guarded and not (isinstance(note, dict) and note.get("guarded") is True):
            reply["error"] = ("the evaluation process ended without reporting how evaluate.py ended (killed?); "
                              "the files in its results folder are not trusted")
            return
        outcome = read_shinka_results(os.path.join(task_dir, SHINKA_RESULTS), note if isinstance(note, dict) else None)
        if "error" in outcome:
            reply["error"] = outcome["error"]
            return
        from .protocol import check_metrics

        metrics, error = check_metrics(outcome["metrics"])
        if metrics is None:
            reply["error"] = error
            return
        reply["status"], reply["metrics"], reply["data"] = "ok", metrics, outcome.get("data")

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
            self.private.add(pidfd)  # not for the spare that may be forked meanwhile
        except (AttributeError, OSError):
            pidfd = None  # old kernel: poll wait4 every 10 ms
        poller = select.poll()
        poller.register(rfd, select.POLLIN)
        poller.register(self.req, select.POLLIN)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        deadline = start + self.limits.wall_seconds
        cap = max(MAX_RESULT, self.limits.data_bytes) + 16
        data = bytearray()
        outcome, status, usage = None, 0, None
        chores = True  # the next spares and the last task's clean-up, while this child runs
        try:
            while outcome is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    outcome = "timeout"
                    break
                wait_ms = math.ceil(remaining * 1000)
                if pidfd is None:
                    wait_ms = min(10, wait_ms)
                if chores:
                    chores = False
                    self._chores()
                events = poller.poll(wait_ms)
                for fd, _ in events:
                    if fd == rfd:
                        if not read_result(rfd, data, cap):
                            poller.unregister(rfd)
                    elif fd == self.req:
                        outcome = self._control(cid) or outcome
                if outcome is None:
                    done, status, usage = os.wait4(pid, os.WNOHANG)
                    if done:
                        outcome = "exit"
        finally:
            if pidfd is not None:
                self._close(pidfd)
        if outcome != "exit":
            kill_group(pid)
            _, status, usage = os.wait4(pid, 0)
        os.set_blocking(rfd, False)
        try:
            while read_result(rfd, data, cap):
                pass
        except BlockingIOError:
            pass
        self._sweep(pid)
        return outcome, status, usage, bytes(data)

    def _control(self, cid: int) -> str | None:
        """A message from the pool while a task runs: "shutdown", "cancel" or None."""
        msg = recv(self.req)
        if msg is None:
            return "shutdown"
        if msg["op"] == "cancel" and msg["id"] == cid:
            return "cancel"
        return None

    def _sweep(self, pgid: int) -> None:
        """Kill and reap everything the task left behind (``procs.sweep``)."""
        keep = {s.pid for s in self.spares} | ({self.scorer.pid} if self.scorer else set())
        sweep(self.pid, pgid, keep=keep)

    # --- in the child

    def _child(self, ctl_r: int, res_w: int, out: int, err: int, private: list[int],
               folder: int, kind: str) -> None:
        """A spare: enter the sandbox, wait for a task, then run it. Never returns (the caller
        ``_exit``s)."""
        # Own process group, so that the worker can kill the candidate and all it starts. Not
        # setsid(): with autogroup scheduling a new session costs milliseconds.
        os.setpgid(0, 0)
        if self.libc is not None:
            self.libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != self.pid:  # the worker died before the prctl
                os._exit(71)
        for fd in private:  # the pool's pipes and other tasks' files are not for candidates
            os.close(fd)
        limits, failed = self.limits, None
        try:
            self.enter_sandbox(folder, limits, kind, self.pid)
        except BaseException as exc:  # noqa: BLE001 - reported as the task's error: fail closed
            failed = f"the sandbox could not be entered: {type(exc).__name__}: {exc}"
        task = recv(ctl_r)
        if task is None:  # the worker no longer needs this spare
            os._exit(0)
        os.close(ctl_r)
        task_dir, kind = task["dir"], task["kind"]
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        mode, fn = self.functions[kind]
        guard = None
        try:
            if failed:
                raise RuntimeError(failed)
            os.chdir(task_dir)
            self.settle(task_dir)
            self.random.seed(task["seed"])
            if self.numpy is not None:
                self.numpy.random.seed(task["seed"] % 2**32)
            program = os.path.join(task_dir, "program.py")
            if limits.guard and mode in ("beside", "shinka"):  # the evaluator here, the candidate apart
                from .guard import Guard

                guard = Guard(program, limits.data_bytes)
                guard.install()
            if mode == "shinka":
                from ..compat import SHINKA_RESULTS, run_script

                note = run_script(fn, program, os.path.join(task_dir, SHINKA_RESULTS))
                if guard is not None:
                    guard.close()  # before the worker reads the files: no candidate process writes on
                    note["guarded"] = True
                data = b"J" + json.dumps({"shinka": note}).encode()
            elif mode == "split":
                data = call_produce(fn, program, limits, self.codec, task.get("context"))
            else:
                data = b"J" + json.dumps(call_evaluate(fn, program, limits.memory_mb, task.get("context"))).encode()
        except BaseException as exc:  # noqa: BLE001 - setup failure or an unencodable result
            data = b"J" + json.dumps({"error": f"evaluation failed: {type(exc).__name__}: {exc}"}).encode()
        if guard is not None:
            guard.close()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - e.g. "File too large" after a flood
                pass
        write_all(res_w, data)
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rsi.sandbox.worker")
    parser.add_argument("--req", type=int, required=True, help="fd to read requests from")
    parser.add_argument("--resp", type=int, required=True, help="fd to write replies to")
    parser.add_argument("--no-pid-namespace", action="store_true", help="stay in the caller's PID namespace")
    args = parser.parse_args(argv)
    if not args.no_pid_namespace:  # first, while single-threaded: this process forks, the child goes on
        from .isolation import disabled_mechanisms
        from .namespaces import pid_namespace

        pid_namespace(disabled_mechanisms())
    for name in THREAD_VARS:  # before anything can import numpy: forking after BLAS threads is unsafe
        os.environ.setdefault(name, "1")
    worker = Worker(args.req, args.resp)
    if worker.start():
        worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
