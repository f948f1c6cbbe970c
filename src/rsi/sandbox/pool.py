"""A pool of warm evaluation workers: submit candidates, collect their results.

Each worker (``rsi.sandbox.worker``) is a fresh interpreter that isolates itself (namespaces,
``isolation.py``), imports the evaluator once and forks one child per candidate, which enters
the sandbox (uid, Landlock, seccomp) before it is given its task, so a candidate costs a fork,
not an interpreter start. With the split contract (``produce``/``score``) each worker also keeps
a trusted scorer process (``scorer.py``). Workers run in their own session: a Ctrl-C in the
terminal reaches only the main process, which is expected
to call ``cancel_all`` / ``close``. If the main process dies, the workers see their request pipe
close, kill their running evaluation and exit.

    with EvaluatorPool(problem / "evaluate.py", workers=4, limits=Limits(), scratch_root=tmp) as pool:
        pool.submit(EvalTask(candidate_id=1, source=src, seed=0))
        results = pool.collect(timeout=1.0)

Not thread-safe: one thread drives a pool.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import ProblemError
from . import cgroups
from .environment import worker_environment
from .integrity import hash_files, loaded_files
from .procs import kill_group
from .protocol import HEADER, MAX_MESSAGE, THREAD_VARS, recv, send, signal_name
from .types import EvalResult, EvalTask, Kind, Limits

START_TIMEOUT = 300.0  # seconds a worker may take to import the evaluator
CANCEL_TIMEOUT = 5.0  # seconds a worker may take to answer a cancel before it is killed
WATCHDOG_SLACK = 30.0  # a task in flight this long past its wall limit means a stuck worker


@dataclasses.dataclass(eq=False)
class _Worker:
    index: int
    proc: subprocess.Popen
    req: int  # write end: requests to the worker
    resp: int  # read end: replies from the worker
    buf: bytearray = dataclasses.field(default_factory=bytearray)
    task: EvalTask | None = None
    sent_at: float = 0.0
    child_pid: int | None = None  # the running evaluation child (its process group id)
    cancelled: bool = False
    dead: bool = False
    tree: cgroups.Tree | None = None  # the worker's cgroup, where the machine allows one


class EvaluatorPool:
    """``workers`` warm processes, each evaluating one candidate at a time in a forked child.

    ``scratch_root`` must belong to this pool alone: worker ``i`` works in ``scratch_root/w<i>``
    (made searchable by all, so that a candidate running under its own uid reaches its folder).
    ``env`` adds to an allow-list of this process's environment for the workers: no other
    variable reaches them (``environment.py``: API keys and tokens stay out of the sandbox).
    ``isolation``: "full" (default) isolates every candidate as strongly as this machine allows
    (``isolation.py``) and warns on stderr when that is less than full; "none" applies the
    resource limits only (for trusted code, benchmarks, debugging).

    ``has_holdout`` tells whether the evaluator defines ``evaluate_holdout`` (or
    ``produce_holdout`` and ``score_holdout``); ``score_mode`` whether scores are computed by a
    separate trusted process ("split") or beside the candidate ("beside"); ``sandbox`` what
    isolation is in force (level "full", "partial" or "none", and each protection); ``zygote_mb``
    is the address space a worker has mapped before any candidate runs, which counts in
    ``memory_mb``.
    """

    def __init__(
        self,
        evaluator_path: Path,
        workers: int,
        limits: Limits,
        scratch_root: Path,
        env: dict[str, str] | None = None,
        isolation: str = "full",
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.evaluator_path = Path(evaluator_path).resolve()
        if not self.evaluator_path.is_file():
            raise ProblemError(f"evaluator {self.evaluator_path} not found")
        if isolation not in ("full", "none"):
            raise ValueError(f"isolation must be 'full' or 'none', got {isolation!r}")
        self.limits = limits
        self.isolation = isolation
        self.scratch_root = Path(scratch_root).resolve()
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        _searchable(self.scratch_root)
        self._env = self._make_env(env)
        self._workers: list[_Worker] = []
        self._done: list[EvalResult] = []  # finished results not yet collected
        self._closed = False
        self.has_holdout = False
        self.zygote_mb = 0.0
        self.modes: dict[str, str] = {}
        self.sandbox: dict = {}
        self._hash = ""
        try:
            started = [self._spawn(i) for i in range(workers)]
            self._workers = started
            for w in started:  # all import in parallel; wait for each in turn
                self._handshake(w)
        except BaseException:
            self.close()
            raise
        self._hash = hash_files(self.evaluator_files())
        if self.sandbox.get("level") != "full":
            sys.stderr.write(sandbox_warning(self.sandbox))
            sys.stderr.flush()
        elif self.isolation != "none" and any(w.tree is None for w in self._workers):
            sys.stderr.write(tree_note(cgroups.support()))
            sys.stderr.flush()

    # ------------------------------------------------------------------ public API

    @property
    def workers(self) -> int:
        return len(self._workers)

    @property
    def in_flight(self) -> int:
        return sum(1 for w in self._workers if w.task is not None)

    @property
    def score_mode(self) -> str:
        """"split": ``score(data)`` runs in a trusted process the candidate never touched;
        "beside": the plain ``evaluate`` computes the score in the candidate's own process."""
        return self.modes.get("train", "beside")

    @property
    def sandbox_level(self) -> str:
        return self.sandbox.get("level", "none")

    def evaluator_files(self) -> list[Path]:
        """The evaluator's trusted files: its folder (but ``initial.py``) and every other file
        of the code folders its import loaded (e.g. a shared module in a sibling folder)."""
        folders = [Path(f) for f in self.sandbox.get("code_folders", [])]
        return loaded_files(self.evaluator_path, folders)

    def evaluator_hash(self) -> str:
        """sha256 over ``evaluator_files()`` as they are now."""
        return hash_files(self.evaluator_files())

    def verify_evaluator(self) -> str | None:
        """None if the evaluator's files are as they were when the pool started, else what
        changed (to be called after each batch: a candidate should never be able to)."""
        now = self.evaluator_hash()
        if now == self._hash:
            return None
        return (f"the evaluator's files changed while the pool ran (sha256 {self._hash[:12]} "
                f"at start, {now[:12]} now): scores after the change are not comparable")

    def submit(self, task: EvalTask) -> None:
        """Start evaluating ``task`` on an idle worker; RuntimeError if none is idle."""
        if self._closed:
            raise RuntimeError("the evaluator pool is closed")
        if task.kind not in ("train", "holdout"):
            raise ValueError(f"unknown evaluation kind {task.kind!r}")
        worker = next((w for w in self._workers if w.task is None), None)
        if worker is None:
            raise RuntimeError(f"no idle worker: {self.in_flight} of {self.workers} busy")
        msg = {"op": "run", "id": task.candidate_id, "kind": task.kind, "seed": task.seed,
               "source": task.source, "context": task.context}
        try:
            send(worker.req, msg)
        except OSError:  # the worker died while idle: replace it and try once more
            self._replace(worker)
            worker = self._workers[worker.index]
            send(worker.req, msg)
        worker.task, worker.sent_at, worker.child_pid, worker.cancelled = task, time.monotonic(), None, False

    def collect(self, timeout: float) -> list[EvalResult]:
        """Finished results; waits up to ``timeout`` seconds for at least one (returns at once
        when nothing is in flight). A worker that died is replaced here, its task failed."""
        deadline = time.monotonic() + max(0.0, timeout)
        self._pump(0.0)
        if not self._done and self.in_flight == 0:
            return []  # nothing will arrive
        while True:
            self._pump(0.0 if self._done else max(0.0, deadline - time.monotonic()))
            if self._done or time.monotonic() >= deadline:
                done, self._done = self._done, []
                return done

    def cancel(self) -> None:
        """Kill every running evaluation now; their results are dropped (the Executor protocol)."""
        self.cancel_all()

    def cancel_all(self) -> None:
        """Kill every running evaluation now; their results are dropped."""
        busy = [w for w in self._workers if w.task is not None]
        for w in busy:
            w.cancelled = True
            task = w.task
            try:
                send(w.req, {"op": "cancel", "id": task.candidate_id if task is not None else None})
            except OSError:
                pass  # a dead worker: _pump sees EOF and replaces it
        deadline = time.monotonic() + CANCEL_TIMEOUT
        while any(w.task is not None for w in busy) and time.monotonic() < deadline:
            self._pump(deadline - time.monotonic())
        for w in busy:
            if w.task is not None:  # unresponsive: kill it, a fresh one takes its place
                self._kill_worker(w)
                self._on_worker_exit(w)

    def close(self) -> None:
        """Kill running evaluations and stop the workers. Idempotent. Leaves scratch_root's
        files in place (``w<i>/worker.log`` holds what the evaluator printed on import)."""
        if self._closed:
            return
        self._closed = True
        for w in self._workers:
            if w.task is not None and w.child_pid is not None:
                kill_group(w.child_pid)
            _close_fd(w.req)  # EOF: the worker kills its child, if any, and exits
        deadline = time.monotonic() + 2.0
        for w in self._workers:
            try:
                w.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill_worker(w)
            if w.tree is not None:
                w.tree.kill()
                w.tree.remove()
            _close_fd(w.resp)
            w.task = None
        self._workers = []

    def __enter__(self) -> EvaluatorPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ workers

    def _make_env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = worker_environment(os.environ)
        env.update({name: "1" for name in THREAD_VARS})
        env.update(extra or {})
        src = str(Path(__file__).resolve().parents[2])  # the folder holding the rsi package
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(paths + ([src] if src not in paths else []))
        return env

    def _spawn(self, index: int) -> _Worker:
        folder = self.scratch_root / f"w{index}"
        folder.mkdir(exist_ok=True)
        _searchable(folder)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        try:
            with open(folder / "worker.log", "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "rsi.sandbox.worker", "--req", str(req_r),
                     "--resp", str(resp_w), *(["--no-pid-namespace"] if self.isolation == "none" else [])],
                    pass_fds=(req_r, resp_w),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.evaluator_path.parent,
                    env=self._env,
                    start_new_session=True,
                )
        except BaseException:
            for fd in (req_r, req_w, resp_r, resp_w):
                _close_fd(fd)
            raise
        os.close(req_r)
        os.close(resp_w)
        # joined before the init message: the worker forks no candidate before it
        worker = _Worker(index, proc, req_w, resp_r, tree=cgroups.joined(self._tree(f"w{index}-{proc.pid}"), proc.pid))
        send(req_w, {"op": "init", "evaluator": str(self.evaluator_path),
                     "scratch": str(folder), "limits": dataclasses.asdict(self.limits),
                     "isolation": self.isolation})
        return worker

    def _tree(self, name: str) -> cgroups.Tree | None:
        """A cgroup for one worker's tree: memory ``memory_mb`` + 256 MiB (the zygote's share), processes
        ``processes`` + 16 (the zygote, its spares, the scorer), one CPU."""
        if self.isolation == "none":
            return None
        return cgroups.tree_for(name, memory_mb=self.limits.memory_mb + 256, processes=self.limits.processes + 16,
                                cpus=1.0)

    def _handshake(self, w: _Worker) -> None:
        """Wait for the worker's "ready"; ProblemError with the evaluator's traceback if not."""
        poller = select.poll()
        poller.register(w.resp, select.POLLIN)
        ready = bool(poller.poll(int(START_TIMEOUT * 1000)))
        msg = recv(w.resp) if ready else None
        if msg is not None and msg.get("op") == "ready":
            self.has_holdout = msg["holdout"]
            self.zygote_mb = msg["zygote_mb"]
            self.modes = msg["modes"]
            self.sandbox = msg["sandbox"]
            found = cgroups.support()
            self.sandbox["protections"] = [*msg["sandbox"]["protections"], {
                "name": "process tree", "on": w.tree is not None,
                "detail": found.describe() if w.tree is not None or not found.available
                else "a cgroup could not be made for the worker"}]
            if self.zygote_mb >= self.limits.memory_mb:
                raise ProblemError(
                    f"after importing {self.evaluator_path.name} a worker already uses "
                    f"{self.zygote_mb:.0f} MB of address space, at or above memory_mb="
                    f"{self.limits.memory_mb}: raise the memory limit"
                )
            return
        if msg is not None and msg.get("op") == "init_error":
            raise ProblemError(f"cannot use evaluator {self.evaluator_path}:\n{msg['error']}")
        if not ready:
            self._kill_worker(w)
            raise ProblemError(
                f"importing evaluator {self.evaluator_path} took more than {START_TIMEOUT:g}s"
            )
        self._kill_worker(w)
        log = self.scratch_root / f"w{w.index}" / "worker.log"
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        raise ProblemError(
            f"evaluation worker for {self.evaluator_path} exited during start-up:\n{tail}"
        )

    def _replace(self, w: _Worker) -> None:
        """Stand a fresh worker in the place of ``w`` (which is dead or killed)."""
        self._kill_worker(w)
        _close_fd(w.req)
        _close_fd(w.resp)
        fresh = self._spawn(w.index)
        self._workers[w.index] = fresh
        try:
            self._handshake(fresh)
        except BaseException:
            self._kill_worker(fresh)
            fresh.dead = True
            raise

    def _kill_worker(self, w: _Worker) -> None:
        if w.child_pid is not None and w.task is not None:
            kill_group(w.child_pid)
        try:
            os.killpg(w.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if w.tree is not None:
            w.tree.kill()  # what left the process group too
        try:
            w.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            pass
        if w.tree is not None:
            w.tree.remove()

    def _on_worker_exit(self, w: _Worker) -> None:
        """A worker is gone: fail its task (unless cancelled) and replace it."""
        if w.dead:
            return
        w.dead = True
        self._kill_worker(w)
        if w.task is not None and not w.cancelled:
            code = w.proc.returncode
            how = signal_name(-code) if code is not None and code < 0 else f"exit code {code}"
            log = self.scratch_root / f"w{w.index}" / "worker.log"
            self._done.append(EvalResult(
                candidate_id=w.task.candidate_id, kind=w.task.kind, status="error", ticket=w.task.ticket,
                error=f"evaluation worker died ({how}) during the evaluation; it was restarted"
                + (f" (its log: {log})" if code is not None and code > 0 else ""),
                wall_seconds=time.monotonic() - w.sent_at,
            ))
        w.task = None
        if not self._closed:
            self._replace(w)

    # ------------------------------------------------------------------ messages

    def _pump(self, timeout: float) -> None:
        """Read whatever the workers have sent within ``timeout`` seconds and act on it."""
        timeout = min(timeout, self._watchdog())
        by_fd = {w.resp: w for w in self._workers if not w.dead}
        if not by_fd:
            return
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll(max(0, int(timeout * 1000 + 0.999))):
            w = by_fd[fd]
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self._on_worker_exit(w)
                continue
            w.buf += chunk
            for msg in self._messages(w):
                self._handle(w, msg)

    def _watchdog(self) -> float:
        """Kill workers stuck far past their task's wall limit; seconds until the next check."""
        now, wait = time.monotonic(), 3600.0
        limit = self.limits.wall_seconds + WATCHDOG_SLACK
        if "split" in self.modes.values():
            limit += self.limits.score_seconds
        for w in list(self._workers):
            if w.task is not None and not w.dead:
                late = now - w.sent_at - limit
                if late >= 0:
                    self._on_worker_exit(w)
                else:
                    wait = min(wait, -late)
        return wait

    @staticmethod
    def _messages(w: _Worker):
        while len(w.buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(w.buf)
            if size > MAX_MESSAGE:
                raise RuntimeError(f"evaluation worker {w.index} sent a {size}-byte message")
            end = HEADER.size + size
            if len(w.buf) < end:
                return
            body = bytes(w.buf[HEADER.size:end])
            del w.buf[:end]
            yield json.loads(body)

    def _handle(self, w: _Worker, msg: dict) -> None:
        op = msg.get("op")
        if w.task is None or msg.get("id") != w.task.candidate_id:
            return  # stale (an answer to a task already given up)
        if op == "started":
            w.child_pid = msg["pid"]
        elif op == "result":
            task, cancelled = w.task, w.cancelled
            w.task, w.child_pid, w.cancelled = None, None, False
            if not cancelled:
                self._done.append(EvalResult(
                    candidate_id=task.candidate_id, kind=task.kind, status=msg["status"], ticket=task.ticket,
                    metrics=msg["metrics"], error=msg["error"], stdout=msg["stdout"], data=msg.get("data"),
                    stderr=msg["stderr"], wall_seconds=msg["wall"], cpu_seconds=msg["cpu"],
                ))


def evaluate_fresh(evaluator_path: Path, source: str, *, kind: Kind = "train", seed: int = 0,
                   limits: Limits | None = None, isolation: str = "full",
                   timeout: float | None = None) -> EvalResult:
    """Evaluate one program in a pool of its own: a fresh worker (and scorer) that no earlier
    candidate shared, for re-checking the best candidates before they are reported."""
    import tempfile

    limits = limits or Limits()
    wait = timeout if timeout is not None else limits.wall_seconds + limits.score_seconds + 60
    with tempfile.TemporaryDirectory(prefix="rsi-fresh-") as scratch:
        with EvaluatorPool(evaluator_path, 1, limits, Path(scratch), isolation=isolation) as pool:
            pool.submit(EvalTask(candidate_id=0, source=source, seed=seed, kind=kind))
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                results = pool.collect(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                if results:
                    return results[0]
    return EvalResult(candidate_id=0, kind=kind, status="timeout",
                      error=f"no result from a fresh worker within {wait:g}s")


def sandbox_warning(sandbox: dict) -> str:
    """The loud message for a pool whose candidates are not fully isolated."""
    level = sandbox.get("level", "none")
    if level == "none":
        return ("rsi: WARNING: isolation='none': candidates run without a sandbox, under resource "
                "limits only; use it for trusted code alone.\n")
    lines = [f"rsi: WARNING: candidates run with {level.upper()} isolation on this machine; "
             "generated code is untrusted. Not in force:"]
    for p in sandbox.get("protections", []):
        if not p["on"]:
            lines.append(f"rsi:   - {p['name']}: {p['detail']}")
    lines.append("rsi: `rsi doctor` explains each protection and what would enable it.")
    return "\n".join(lines) + "\n"


def tree_note(found: cgroups.Support) -> str:
    """The warning for a fully isolated pool whose limits hold per process, not per tree."""
    return (f"rsi: note: memory, CPU and processes are capped per process, not per process tree ("
            f"{found.why or 'a cgroup could not be made'}); `rsi doctor` says more.\n")


def _searchable(folder: Path) -> None:
    """Let any uid pass through ``folder`` (not list it): a candidate may run under its own."""
    try:
        os.chmod(folder, 0o711)
    except OSError:
        pass  # not ours: a candidate under its own uid may then lack access, and says so


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


__all__ = ["EvaluatorPool", "evaluate_fresh", "sandbox_warning", "tree_note"]
