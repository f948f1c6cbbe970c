"""Evaluations on a Ray cluster: ``RayPool``, the ``ray`` executor.

Each of ``workers`` Ray actors holds an ``EvaluatorPool`` of one warm sandboxed worker on the node
Ray placed it on: the same zygote, fork and sandbox as the local pool (``worker.py``), so a
candidate is isolated on a worker node exactly as it is on this machine. The driver keeps the
search and the run database (the only writer); actors only evaluate and hand back ``EvalResult``s.

- Problem files travel through Ray's object store (``shipping.pack``, put once), never through a
  shared file system: each actor unpacks them into a scratch folder of its own on its node.
- An actor whose process or node dies mid-evaluation is replaced, and the evaluation is run again
  on the new one, up to ``retries`` times; then the candidate gets an error result that says so,
  and the run goes on. An evaluation that outlives its wall limit by ``WATCHDOG_SLACK`` (a node cut
  off from the network) counts as lost the same way.
- ``cancel`` kills the actors that are busy (their sandboxed workers see their pipe close, kill
  the evaluation and exit); fresh ones take their place.

    pool = RayPool(problem / "evaluate.py", workers=8, limits=Limits(), address="auto")

rsi and the evaluator's Python packages must be installed on every node (as Ray itself is), at
the same version as on the driver.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ProblemError, RsiError
from ..version import __version__
from .integrity import hash_files, loaded_files
from .pool import EvaluatorPool, sandbox_warning
from .shipping import ENGINE, Remap, needs_shipping, pack, unpack
from .types import EvalResult, EvalTask, Kind, Limits

INSTALL = "pip install 'rsi[ray]'"
START_TIMEOUT = 300.0  # seconds the actors may take to start (a worker process, the evaluator's import)
WATCHDOG_SLACK = 60.0  # past the wall limit (and the scoring time): the evaluation is given up as lost
CONNECT_TIMEOUT = 5.0  # seconds to reach a cluster's address before saying it is unreachable


def import_ray() -> Any:
    """The ``ray`` module, or an error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise RsiError(f"the 'ray' executor needs Ray, which is not installed here: {INSTALL} "
                       "(on this machine and on every node of the cluster)") from None
    return ray


CLIENT_ATTEMPTS = 3  # Ray Client sessions that fail to start on the server's side are tried again this often


def connect(address: str | None) -> bool:
    """Connect this process to a Ray cluster; True if it did (and should disconnect when done).

    ``address``: "auto" (the cluster running on this machine, or RAY_ADDRESS), "HOST:PORT" (a
    cluster's GCS, as ``ray start --head`` prints it), "ray://HOST:PORT" (Ray Client), or None:
    RAY_ADDRESS or a running local cluster if there is one, else a new single-machine Ray.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS")
    if target and target not in ("auto", "local"):
        _reachable(target)
    options: dict[str, Any] = {"namespace": "rsi", "logging_level": "WARNING", "log_to_driver": False}
    if target is None:
        options["include_dashboard"] = False
    try:
        for attempt in range(CLIENT_ATTEMPTS):
            try:
                ray.init(address=address, **options)
                break
            except ConnectionError as exc:
                # Ray Client's proxier can fail to start a session when a process it scans exits under it
                # (psutil's ZombieProcess, seen after workers were killed): the server is there, try again
                if "Initialization failure from server" not in str(exc) or attempt == CLIENT_ATTEMPTS - 1:
                    raise
                time.sleep(2.0)
    except ConnectionError as exc:
        raise RsiError(f"no Ray cluster at {address or 'this machine'}: {exc}. Start one with "
                       "`ray start --head`, or give --address HOST:PORT of a running cluster") from None
    except (ImportError, ModuleNotFoundError) as exc:  # ray:// needs Ray Client (grpcio)
        raise RsiError(f"connecting to {address} needs Ray Client ({exc}): {INSTALL}") from None
    except Exception as exc:  # Ray's own errors: show what it said, and where it was asked to go
        raise RsiError(f"cannot connect to the Ray cluster at {address or 'this machine'}: "
                       f"{type(exc).__name__}: {exc}") from None
    return True


def _reachable(address: str) -> None:
    """RsiError unless something listens at ``address``'s host and port (Ray would retry for minutes)."""
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise RsiError(f"Ray address {address!r}: write auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise RsiError(f"the Ray cluster at {address} is unreachable ({exc.strerror or exc}): check the address "
                       f"(`ray status` on the head node prints it) and that port {port} is open from here") from None


class NodeEvaluator:
    """The actor: one warm sandboxed worker (``EvaluatorPool`` of 1) on a Ray node, fed the
    problem files from the object store. Errors at start are kept and reported by ``info``."""

    def __init__(self, spec: dict, bundle: bytes) -> None:
        from .scratch import new_scratch

        self.root = new_scratch()
        self.pool: EvaluatorPool | None = None
        self.error: str | None = None
        try:
            folders = unpack(bundle, self.root / "files")
            remap = Remap(tuple(zip(spec["shipped"], (str(f) for f in folders), strict=True)), spec["engine"])
            self.pool = EvaluatorPool(Path(remap.path(spec["evaluator"])), 1, Limits(**spec["limits"]),
                                      self.root / "scratch", env=remap.env(spec["env"]), isolation=spec["isolation"])
        except Exception as exc:  # the driver shows it
            self.error = f"{type(exc).__name__}: {exc}"

    def info(self) -> dict:
        import ray

        pool = self.pool
        return {"error": self.error, "pid": os.getpid(), "host": socket.gethostname(), "rsi": __version__,
                "node": ray.get_runtime_context().get_node_id(),
                "has_holdout": pool.has_holdout if pool else False, "modes": pool.modes if pool else {},
                "sandbox": pool.sandbox if pool else {}, "zygote_mb": pool.zygote_mb if pool else 0.0}

    def evaluate(self, task: EvalTask) -> tuple[EvalResult, str | None]:
        """Run ``task`` to its end; its result, and what changed in the evaluator's files (or None)."""
        if self.pool is None:
            raise RuntimeError(f"this evaluation actor did not start: {self.error}")
        self.pool.submit(task)
        while True:
            results = self.pool.collect(timeout=1.0)
            if results:
                return results[0], self.pool.verify_evaluator()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclasses.dataclass(eq=False)
class _Slot:
    actor: Any
    ref: Any = None  # the running evaluate() call
    task: EvalTask | None = None
    attempt: int = 0  # 0: the first run of this task; k: its k-th retry
    sent_at: float = 0.0


class RayPool:
    """``workers`` evaluation actors on a Ray cluster (the Executor protocol).

    ``cpus``: the CPUs Ray reserves for each actor (fractions allowed: an evaluator that waits on
    something else); ``retries``: how many times an evaluation lost with its worker or node runs
    again before its candidate is marked as failed. ``env`` and ``isolation`` are the local pool's.
    ``retried`` counts the re-runs so far, ``lost`` the evaluations given up.
    """

    def __init__(self, evaluator_path: Path, workers: int, limits: Limits, *, address: str | None = None,
                 cpus: float = 1.0, retries: int = 2, env: dict[str, str] | None = None,
                 isolation: str = "full") -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        self.evaluator_path = Path(evaluator_path).resolve()
        if not self.evaluator_path.is_file():
            raise ProblemError(f"evaluator {self.evaluator_path} not found")
        self.limits, self.retries, self.cpus = limits, retries, cpus
        self.retried = 0
        self.lost = 0
        self._slots: list[_Slot] = []
        self._done: list[EvalResult] = []
        self._changed: str | None = None
        self._closed = False
        self._ray = import_ray()
        self._owns_connection = connect(address)
        try:
            self._start(workers, env or {}, isolation)
        except BaseException:
            self.close()
            raise

    def _start(self, workers: int, env: dict[str, str], isolation: str) -> None:
        ray = self._ray
        total = ray.cluster_resources().get("CPU", 0.0)
        if total < workers * self.cpus:
            raise RsiError(f"{workers} evaluation workers x {self.cpus:g} CPUs each need {workers * self.cpus:g} CPUs; "
                           f"the Ray cluster has {total:g}. Lower --workers (or [ray] cpus), or add nodes")
        shipped = [self.evaluator_path.parent] if needs_shipping(self.evaluator_path.parent) else []
        for value in env.values():
            for part in value.split(os.pathsep):
                if os.path.isabs(part) and Path(part).is_dir() and needs_shipping(Path(part)):
                    shipped.append(Path(part).resolve())
        self._files = loaded_files(self.evaluator_path, [])
        self._hash = hash_files(self._files)
        spec = {"evaluator": str(self.evaluator_path), "shipped": [str(f) for f in shipped], "engine": str(ENGINE),
                "env": env, "limits": dataclasses.asdict(self.limits), "isolation": isolation}
        bundle = ray.put(pack(shipped))  # once, in the object store; every actor fetches it from there
        self._actor = ray.remote(NodeEvaluator).options(
            num_cpus=self.cpus, max_restarts=0, max_task_retries=0, scheduling_strategy="SPREAD")
        self._new_actor = lambda: self._actor.remote(spec, bundle)
        self._slots = [_Slot(self._new_actor()) for _ in range(workers)]
        try:
            infos = ray.get([s.actor.info.remote() for s in self._slots], timeout=START_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            raise RsiError(f"the Ray cluster did not start {workers} evaluation actors within {START_TIMEOUT:g}s "
                           "(`ray status` shows what it lacks)") from None
        except ray.exceptions.RayError as exc:
            raise RsiError(f"an evaluation actor failed to start on the Ray cluster: {_short(exc)}") from None
        for info in infos:
            if info["error"]:
                raise ProblemError(f"cannot use evaluator {self.evaluator_path} on Ray node {info['host']}:\n"
                                   f"{info['error']}")
            if info["rsi"] != __version__:
                raise RsiError(f"Ray node {info['host']} has rsi {info['rsi']}, this driver {__version__}: install "
                               "the same rsi on every node")
        self.infos = infos
        first = infos[0]
        self.has_holdout, self.modes, self.sandbox = first["has_holdout"], first["modes"], first["sandbox"]
        self.zygote_mb = first["zygote_mb"]
        weakest = min(infos, key=lambda i: ("none", "partial", "full").index(i["sandbox"].get("level", "none")))
        if weakest["sandbox"].get("level") != "full":
            self.sandbox = weakest["sandbox"]
            sys.stderr.write(f"rsi: Ray node {weakest['host']}: " + sandbox_warning(weakest["sandbox"]))
            sys.stderr.flush()

    # ------------------------------------------------------------------ the Executor protocol

    @property
    def workers(self) -> int:
        return len(self._slots)

    @property
    def in_flight(self) -> int:
        return sum(1 for s in self._slots if s.task is not None)

    @property
    def score_mode(self) -> str:
        return self.modes.get("train", "beside")

    @property
    def sandbox_level(self) -> str:
        return self.sandbox.get("level", "none")

    @property
    def nodes(self) -> list[str]:
        """The Ray node ids the actors started on."""
        return sorted({i["node"] for i in self.infos})

    def submit(self, task: EvalTask) -> None:
        if self._closed:
            raise RuntimeError("the Ray pool is closed")
        if task.kind not in ("train", "holdout"):
            raise ValueError(f"unknown evaluation kind {task.kind!r}")
        slot = next((s for s in self._slots if s.task is None), None)
        if slot is None:
            raise RuntimeError(f"no idle worker: {self.in_flight} of {self.workers} busy")
        self._send(slot, task, 0)

    def _send(self, slot: _Slot, task: EvalTask, attempt: int) -> None:
        slot.task, slot.attempt, slot.sent_at = task, attempt, time.monotonic()
        slot.ref = slot.actor.evaluate.remote(task)

    def collect(self, timeout: float) -> list[EvalResult]:
        """Finished results; waits up to ``timeout`` seconds for at least one."""
        ray = self._ray
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            running = {s.ref: s for s in self._slots if s.ref is not None}
            if running:
                wait = 0.0 if self._done else max(0.0, min(deadline - time.monotonic(), self._watchdog()))
                ready, _ = ray.wait(list(running), num_returns=1, timeout=wait)
                if ready:
                    ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
                for ref in ready:
                    self._finish(running[ref])
            if self._done or not running or time.monotonic() >= deadline:
                done, self._done = self._done, []
                return done

    def _finish(self, slot: _Slot) -> None:
        ray = self._ray
        try:
            result, changed = ray.get(slot.ref)
        except ray.exceptions.RayError as exc:
            self._lose(slot, _short(exc))
            return
        task = slot.task
        assert task is not None
        slot.ref, slot.task = None, None
        self._changed = self._changed or changed
        self._done.append(dataclasses.replace(result, ticket=task.ticket, candidate_id=task.candidate_id))

    def _lose(self, slot: _Slot, why: str) -> None:
        """The evaluation in ``slot`` died with its worker: a fresh actor, and the task again or marked."""
        task, attempt = slot.task, slot.attempt
        assert task is not None
        self._replace(slot)
        if attempt < self.retries:
            self.retried += 1
            self._send(slot, task, attempt + 1)
            return
        self.lost += 1
        self._done.append(EvalResult(
            candidate_id=task.candidate_id, kind=task.kind, status="error", ticket=task.ticket,
            wall_seconds=time.monotonic() - slot.sent_at,
            error=f"the evaluation was lost {attempt + 1} time(s) with its Ray worker or node ({why}); "
                  f"not run again ([ray] retries = {self.retries})"))

    def _replace(self, slot: _Slot) -> None:
        try:
            self._ray.kill(slot.actor, no_restart=True)
        except Exception:  # already gone
            pass
        slot.actor, slot.ref, slot.task = self._new_actor(), None, None

    def _watchdog(self) -> float:
        """Give up evaluations far past their wall limit; seconds until the next one is due."""
        limit = self.limits.wall_seconds + WATCHDOG_SLACK
        if "split" in self.modes.values():
            limit += self.limits.score_seconds
        now, wait = time.monotonic(), 3600.0
        for slot in self._slots:
            if slot.task is not None:
                late = now - slot.sent_at - limit
                if late >= 0:
                    self._lose(slot, f"no answer {limit:g}s after it started")
                else:
                    wait = min(wait, -late)
        return wait

    def cancel(self) -> None:
        """Kill the busy actors (their evaluations with them); fresh ones take their place."""
        for slot in self._slots:
            if slot.task is not None:
                self._replace(slot)

    cancel_all = cancel  # the local pool's name for it

    def evaluate_fresh(self, source: str, seed: int, kind: Kind = "train") -> EvalResult:
        """Evaluate one program on a new actor no other candidate shared (the best's re-check)."""
        ray = self._ray
        actor = self._new_actor()
        wait = self.limits.wall_seconds + self.limits.score_seconds + START_TIMEOUT
        try:
            result, _ = ray.get(actor.evaluate.remote(EvalTask(0, source, seed, kind)), timeout=wait)
            return result
        except ray.exceptions.GetTimeoutError:
            return EvalResult(0, kind, "timeout", error=f"no result from a fresh Ray worker within {wait:g}s")
        except ray.exceptions.RayError as exc:
            return EvalResult(0, kind, "error", error=f"the fresh Ray worker failed: {_short(exc)}")
        finally:
            try:
                ray.get(actor.close.remote(), timeout=10.0)
            except ray.exceptions.RayError:
                pass
            ray.kill(actor, no_restart=True)

    def verify_evaluator(self) -> str | None:
        """What changed in the evaluator's files, here (the driver's copy) or on a node, or None."""
        if self._changed:
            return f"on a Ray node: {self._changed}"
        now = hash_files(self._files)
        if now != self._hash:
            return (f"the evaluator's files changed while the Ray pool ran (sha256 {self._hash[:12]} at start, "
                    f"{now[:12]} now): scores after the change are not comparable")
        return None

    def close(self) -> None:
        """Stop the actors (each removes its scratch folder); disconnect if this pool connected."""
        if self._closed:
            return
        self._closed = True
        ray = self._ray
        slots, self._slots = self._slots, []
        try:
            if ray.is_initialized():
                idle = [s.actor.close.remote() for s in slots if s.task is None]
                ray.wait(idle, num_returns=len(idle), timeout=10.0)
                for slot in slots:
                    try:
                        ray.kill(slot.actor, no_restart=True)
                    except Exception:  # already gone
                        pass
        finally:
            if self._owns_connection and ray.is_initialized():
                ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _short(exc: BaseException) -> str:
    """Ray's error in one or two lines (its messages carry whole tracebacks)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    head = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    return head[:300]


__all__ = ["RayPool", "connect", "import_ray"]
