"""The improver host: a machine-written improver runs in a sandboxed process of its own.

An improver is a program the engine follows at every step; one that the machine wrote (an adopted
``best_improver.py``, a candidate, any file a person has not vouched for) is untrusted code, so it
never runs in the engine's process. ``open_improver(path)`` starts a *host*
(``python -m rsi.sandbox.improver_host_process``): one long-lived process per improver, which

1. reads the improver's source and its limits from the engine (it never opens the file itself);
2. isolates itself the way an evaluation child is isolated (``isolation.prepare`` /
   ``finish`` / ``enter``): network, mount, IPC and UTS namespaces, as root a uid of its own,
   Landlock (read the system, Python and rsi files only: not the run folder, not the problem or
   its evaluator; write only an empty scratch folder of its own, a size-capped tmpfs), the
   sandbox's seccomp filter plus one that refuses new processes, RLIMIT_AS (what it had mapped
   plus ``memory_mb``), RLIMIT_FSIZE, RLIMIT_NOFILE, no core dumps; the parent-death signal;
   where the machine allows it, a cgroup of its own (``cgroups.py``); only the allow-listed
   environment (no secrets);
3. only then executes the improver's module, and answers the engine over a pipe.

**The protocol** (``protocol.send``/``recv`` frames, JSON): the engine sends copies of what a
hook needs (the ``ImproverContext`` snapshot: archive, the search's random state, the improver's
``state``, operators, settings, budget, counts, population; for ``observe`` the step and the
outcome), the host rebuilds a frozen context, calls the hook and answers with the new ``state``,
the new random state and, for ``next_step``, the step as plain data. The engine checks every field
(types, sizes; the search then checks the step against the run) before anything reaches the
search: the host holds no reference to anything of the engine. Operators the improver defines
(``OPERATORS``) run in the host too (``operate``): a failing operator costs one proposal.

**Limits per call**: ``call_seconds`` of wall time (the engine kills the host's process group,
and its cgroup, past it), ``memory_mb`` of address space. An improver that raises, hangs, crashes,
exits, answers garbage or more than ``REPLY_BYTES`` ends the run with ``ImproverFailed`` naming
what happened (``rsi run`` then stops with ``StopReason.IMPROVER_FAILED``); the engine and
everything stored are untouched.

The improvers shipped with rsi (byte for byte: the seed and the composed one) run in the
engine's process, and so does any improver when a person opts out (``rsi run --improver FILE
--trust-improver``; recorded in the audit trail as ``improver.trusted``). The cost per step is in
``benchmarks/improver_host.py``.
"""

from __future__ import annotations

import json
import math
import os
import random
import select
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..errors import ProposalFailed, RsiError
from ..improvers import SEED_IMPROVER, Improver, ImproverContext, ImproverFailed, Outcome, Step, load_improver
from .improver_host_process import rng_as_data, step_as_data
from .protocol import HEADER, encode

REPLY_BYTES = 32 << 20  # the most one answer of the host may take
CALL_SECONDS = 10.0  # wall time of one hook call
START_SECONDS = 60.0  # wall time to start the host and import the improver
MEMORY_MB = 1024  # address space the improver may add to what the host had mapped
OPERATOR_CPU_SECONDS = 1.0  # CPU time of one operator call (as the fork guard gives: improver_ops)
CPU_POLL = 0.05  # how often the engine looks at the host's CPU time while it waits
STEP_FIELDS = {"parent", "inspirations", "island", "proposer", "operator", "children", "options"}


def is_shipped(path: Path) -> bool:
    """Whether ``path`` holds, byte for byte, an improver shipped with rsi (a module of the
    ``rsi.improvers`` package: the seed improver, the composed one): rsi's own code, as trusted as
    the engine."""
    try:
        data = path.read_bytes()
        return any(data == own.read_bytes() for own in SEED_IMPROVER.parent.glob("*.py"))
    except OSError:
        return False


def open_improver(path: str | Path | None = None, *, trusted: bool = False, **limits: Any) -> Improver:
    """The improver in ``path`` (None: the seed improver): in the engine's process if it is one
    shipped with rsi (``is_shipped``) or ``trusted`` (a person vouched for it), else in a sandboxed host."""
    file = Path(path).resolve() if path else SEED_IMPROVER
    if not file.is_file():
        raise RsiError(f"{file}: no such improver file; pass a .py file defining next_step(ctx)")
    if trusted or is_shipped(file):
        return load_improver(file)
    return HostedImprover(file, **limits)


def close_improver(improver: object) -> None:
    """Stop an improver's host, if it has one."""
    close = getattr(improver, "close", None)
    if callable(close):
        close()


class HostedImprover(Improver):
    """An ``Improver`` whose hooks run in a sandboxed host process (see the module docstring)."""

    hosted = True

    def __init__(self, path: str | Path, *, call_seconds: float = CALL_SECONDS, memory_mb: int = MEMORY_MB,
                 start_seconds: float = START_SECONDS, isolation: str = "full"):
        self.path = Path(path).resolve()
        self._source = self.path.read_text()
        self.call_seconds = call_seconds
        self.memory_mb = memory_mb
        self.isolation = isolation
        self.operator_cpu_seconds = OPERATOR_CPU_SECONDS
        self.protections: list[str] = []
        self.calls = 0
        self._proc: subprocess.Popen | None = None
        self._dead: str | None = None  # why the host is gone
        self._tree: Any = None
        self._scratch = ""
        ready = self._launch(start_seconds)
        defaults = ready.get("defaults")
        self.defaults = dict(defaults) if isinstance(defaults, dict) else {}
        names = ready.get("operators") or []
        if not isinstance(names, list) or not all(isinstance(n, str) and n.isidentifier() for n in names):
            self.close()
            raise RsiError(f"{self.path}: OPERATORS must map Python identifiers to functions")
        self.protections = [str(p) for p in ready.get("protections") or []][:20]
        self.module = SimpleNamespace(  # type: ignore[assignment]  # what ImproverOperators reads: each operator calls the host
            OPERATORS={name: _RemoteOperator(self, name) for name in names} or None, DEFAULTS=self.defaults)

    @property
    def source(self) -> str:
        return self._source

    # -- the hooks ---------------------------------------------------------------------------------
    def start(self, ctx: ImproverContext) -> None:
        self._hook("start", ctx)

    def next_step(self, ctx: ImproverContext) -> Step:
        reply = self._hook("next_step", ctx)
        return self._step(reply.get("step"))

    def observe(self, ctx: ImproverContext, step: Step, outcome: Outcome) -> None:
        self._hook("observe", ctx, step=step_as_data(step), outcome=_outcome_data(outcome))

    def operate(self, name: str, ctx: Any) -> dict[str, Any]:
        """One call of the improver's operator ``name`` (``ctx``: its ``OperatorContext``, sent as plain
        data): ``{"source", "rationale", "state"}`` or ``{"error"}``, as ``ImproverOperators`` takes it. An
        operator that runs out of time kills the host: the proposal fails and a fresh host (module
        globals reset; ``ctx.state`` is the engine's) is started for what comes next."""
        msg = {
            "op": "operate", "name": name, "parent": ctx.parent.source,
            "inspirations": [p.source for p in ctx.inspirations], "rng": rng_as_data(ctx.rng),
            "state": ctx.state, "settings": dict(ctx.settings), "parent_id": ctx.parent_id,
            "parent_score": ctx.parent_score, "parent_metrics": dict(ctx.parent_metrics),
            "inspiration_ids": list(ctx.inspiration_ids), "inspiration_scores": list(ctx.inspiration_scores),
            "options": dict(ctx.options), "feedback": list(ctx.feedback), "problem": ctx.problem,
        }
        try:
            reply = self._ask(msg, f"operator {name!r}", ProposalFailed, cpu_seconds=self.operator_cpu_seconds)
        except ProposalFailed:  # the host was killed: this proposal fails, a fresh host takes the next call
            why = self._dead or "failed"
            self._relaunch()
            return {"error": why}
        source, rationale, state = reply.get("source"), reply.get("rationale"), reply.get("state")
        if reply.get("error") is not None:
            return {"error": str(reply["error"])[:2000]}
        if not (source is None or isinstance(source, str)) or not (rationale is None or isinstance(rationale, str)):
            return {"error": "answered something that is not a child's source"}
        if state is not None and not isinstance(state, dict):
            return {"error": "left ctx.state as something that is not a dict"}
        return {"source": source, "rationale": rationale, "state": state}

    # -- the host ------------------------------------------------------------------------------------
    def _launch(self, start_seconds: float) -> dict[str, Any]:
        from . import cgroups
        from .environment import worker_environment
        from .scratch import new_scratch

        self._scratch = str(new_scratch())
        self._population_sent: tuple = ()  # what this host holds of ctx.population
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        env = worker_environment(os.environ)
        src = str(Path(__file__).resolve().parents[2])  # this rsi, first on the host's path
        env["PYTHONPATH"] = os.pathsep.join([src, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "rsi.sandbox.improver_host_process", "--req", str(req_r), "--resp", str(resp_w)],
                pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=env, start_new_session=True, cwd="/")
        finally:
            os.close(req_r)
            os.close(resp_w)
        self._req, self._resp = req_w, resp_r
        os.set_blocking(self._req, False)
        self._tree = cgroups.joined(cgroups.tree_for(f"improver-{self._proc.pid}", memory_mb=self.memory_mb + 512,
                                                     processes=8, cpus=1.0), self._proc.pid)
        weakref.finalize(self, _kill, self._proc, self._tree, self._scratch)
        init = {"op": "init", "source": self._source, "path": str(self.path), "scratch": self._scratch,
                "memory_mb": self.memory_mb, "isolation": self.isolation}
        try:
            reply = self._exchange(init, start_seconds, "start")
        except ImproverFailed as exc:
            self.close()
            raise RsiError(str(exc)) from None
        if reply.get("op") != "ready":
            self.close()
            raise RsiError(f"{self.path}: {str(reply.get('error') or 'the improver host did not start')[:4000]}")
        return reply

    def _hook(self, hook: str, ctx: ImproverContext, **extra: Any) -> dict[str, Any]:
        data = _context_data(ctx)
        population = ctx.population  # append-only in a search: send what the host has not seen yet
        seen = len(self._population_sent)
        if seen and len(population) >= seen and population[:seen] == self._population_sent:
            data["population"], data["population_from"] = [list(p) for p in population[seen:]], seen
        else:
            data["population"], data["population_from"] = [list(p) for p in population], 0
        self._population_sent = population
        msg = {"op": "hook", "hook": hook, "ctx": data, **extra}
        reply = self._ask(msg, hook, ImproverFailed)
        if reply.get("error") is not None:
            raise ImproverFailed(str(reply["error"])[:4000])
        state, rng = reply.get("state"), reply.get("rng")
        restored = _rng_state(rng)
        if not isinstance(state, dict) or restored is None:
            self._fail(f"answered {hook} with a state that is not a dict or a random state that is not one",
                       ImproverFailed)
            raise AssertionError  # _fail raised
        ctx.state.clear()  # the search's own dict and random generator: the improver's changes apply
        ctx.state.update(state)
        ctx.rng.setstate(restored)
        return reply

    def _ask(self, msg: dict[str, Any], what: str, error: type[Exception],
             cpu_seconds: float | None = None) -> dict[str, Any]:
        if self._dead is not None:
            raise error(f"the improver {self.path} is not running ({self._dead})")
        self.calls += 1
        try:
            return self._exchange(msg, self.call_seconds, what, cpu_seconds)
        except ImproverFailed as exc:
            raise error(str(exc)) from None

    def _relaunch(self) -> None:
        self.close()
        self._dead = None
        try:
            self._launch(START_SECONDS)
        except RsiError as exc:
            self._dead = f"could not be restarted: {exc}"

    def _exchange(self, msg: dict[str, Any], seconds: float, what: str,
                  cpu_seconds: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        assert self._proc is not None
        over_cpu = _cpu_watch(self._proc.pid, cpu_seconds)
        try:
            data = encode(msg)
        except (TypeError, ValueError) as exc:
            raise ImproverFailed(f"the improver {self.path}: {what}: what it would be sent is not JSON data "
                                 f"({exc}); keep ctx.state to dicts, lists, str, numbers, bool, None") from None
        outcome = _write(self._req, data, deadline)
        if outcome == "done":
            body, outcome = _read_frame(self._resp, deadline, over_cpu)
        if outcome == "done":
            try:
                reply = json.loads(body)
            except ValueError:
                reply = None
            if isinstance(reply, dict):
                return reply
            outcome = "garbage"
        self._fail({"timeout": f"did not answer {what} within {seconds:g}s (killed)",
                    "cpu": f"used up its CPU time limit of {cpu_seconds or 0:g}s in {what} (killed)",
                    "too big": f"answered {what} with more than {REPLY_BYTES >> 20} MiB (killed)",
                    "garbage": f"answered {what} with something that is not a protocol message (killed)",
                    "closed": f"ended during {what}: {{exit}}"}[outcome], ImproverFailed)
        raise AssertionError  # _fail raised

    def _fail(self, why: str, error: type[Exception]) -> None:
        status = self._stop()
        self._dead = why.replace("{exit}", status)
        raise error(f"the improver {self.path} {self._dead}")

    def _stop(self) -> str:
        """Kill the host and its tree; how it ended."""
        proc = self._proc
        if proc is None:
            return "not started"
        _kill(proc, self._tree, None)
        code = proc.wait()
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            return f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        return f"exit status {code}"

    def close(self) -> None:
        if self._proc is not None and self._dead is None:
            self._dead = "closed"
        if self._proc is not None:
            _kill(self._proc, self._tree, self._scratch)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for fd in (getattr(self, "_req", -1), getattr(self, "_resp", -1)):
            try:
                os.close(fd)
            except OSError:
                pass
        self._req = self._resp = -1

    def _step(self, data: object) -> Step:
        where = f"the improver {self.path}: next_step"
        if not isinstance(data, dict) or not set(data) <= STEP_FIELDS or "parent" not in data:
            raise ImproverFailed(f"{where} returned {type(data).__name__ if not isinstance(data, dict) else data!r}, "
                                 "not a Step")
        fields = dict(data)
        if not isinstance(fields.get("inspirations", []), list) or not isinstance(fields.get("options", {}), dict):
            raise ImproverFailed(f"{where} returned a Step whose inspirations or options have the wrong type")
        if not isinstance(fields.get("proposer", "mutate"), str) or not (
                fields.get("operator") is None or isinstance(fields.get("operator"), str)):
            raise ImproverFailed(f"{where} returned a Step whose proposer or operator is not a name")
        return Step(**fields)  # numbers and ids are checked by the search (Search._check_step)


class _RemoteOperator:
    """An improver operator as the engine's ``ImproverOperators`` sees it: a call to the host."""

    def __init__(self, host: HostedImprover, name: str):
        self._host = weakref.proxy(host)
        self.name = name

    def __call__(self, ctx: Any) -> Any:
        from .. import toolkit

        reply = self._host.operate(self.name, ctx)
        if reply.get("error") is not None:
            raise ProposalFailed(f"(in its sandboxed host) {reply['error']}")
        if reply.get("state") is not None:
            ctx.state.clear()
            ctx.state.update(reply["state"])
        source = reply.get("source")
        if source is None:
            return None
        return toolkit.Program(source, [reply["rationale"]] if reply.get("rationale") else [])


# ---------------------------------------------------------------- plain data both ways


def _context_data(ctx: ImproverContext) -> dict[str, Any]:
    return {"archive": _archive_data(ctx.archive), "rng": rng_as_data(ctx.rng), "state": ctx.state,
            "operators": {k: list(v) for k, v in ctx.operators.items()}, "settings": dict(ctx.settings),
            "budget": ctx.budget, "evaluations": ctx.evaluations, "memory": _memory_data(ctx),
            "writing": [list(w) for w in getattr(ctx, "writing", ())]}


def _memory_data(ctx: ImproverContext) -> dict[str, Any] | None:
    memory = getattr(ctx, "memory", None)
    if not memory:
        return None
    from ..memory import plain

    return plain(memory)


def _archive_data(archive: Any) -> dict[str, Any]:
    """``Archive.to_json`` without ``dataclasses.asdict`` (a deep copy per elite: most of a step's cost)."""
    return {"features": list(archive.features), "bins": archive.bins, "islands": archive.n_islands,
            "lo": list(archive.lo), "hi": list(archive.hi),
            "cells": [[[list(cell), {"id": e.id, "score": e.score, "features": list(e.features), "size": e.size}]
                       for cell, e in sorted(pool.items())] for pool in archive.cells]}


def _outcome_data(outcome: Outcome) -> dict[str, Any]:
    return {"candidate_id": outcome.candidate_id, "status": str(outcome.status), "score": outcome.score,
            "parent_score": outcome.parent_score, "best_before": outcome.best_before, "tokens": outcome.tokens,
            "cost": outcome.cost, "seconds": outcome.seconds}


def _rng_state(value: object) -> tuple | None:
    """A Mersenne Twister state from plain data (as ``random.Random.getstate`` gives), or None."""
    if not isinstance(value, list) or len(value) != 3 or value[0] != 3 or not isinstance(value[1], list):
        return None
    internal, gauss = value[1], value[2]
    if len(internal) != 625 or not all(type(x) is int and 0 <= x < 2**32 for x in internal):
        return None
    if not 0 <= internal[-1] <= 624 or not (gauss is None or (type(gauss) is float and math.isfinite(gauss))):
        return None
    state = (3, tuple(internal), gauss)
    try:
        random.Random().setstate(state)
    except (TypeError, ValueError, OverflowError):
        return None
    return state


# ---------------------------------------------------------------- pipes with deadlines (engine side)


def _write(fd: int, data: bytes, deadline: float) -> str:
    view = memoryview(data)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        if not poller.poll(int(left * 1000) + 1):
            continue
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            continue
        except BrokenPipeError:
            return "closed"
    return "done"


def _read_frame(fd: int, deadline: float, over_cpu: Callable[[], bool]) -> tuple[bytes, str]:
    """One length-prefixed message from ``fd`` by ``deadline``: (body, "done"), or (b"", why not)."""
    head, outcome = _read_n(fd, HEADER.size, deadline, over_cpu)
    if outcome != "done":
        return b"", outcome
    (size,) = HEADER.unpack(head)
    if size > REPLY_BYTES:
        return b"", "too big"
    return _read_n(fd, size, deadline, over_cpu)


def _read_n(fd: int, n: int, deadline: float, over_cpu: Callable[[], bool]) -> tuple[bytes, str]:
    chunks: list[bytes] = []
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    while n:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"", "timeout"
        if not poller.poll(int(min(left, CPU_POLL) * 1000) + 1):
            if over_cpu():
                return b"", "cpu"
            continue
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return b"", "closed"
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks), "done"


def _cpu_watch(pid: int, limit: float | None) -> Callable[[], bool]:
    """A check: has process ``pid`` used more than ``limit`` CPU seconds since now? (None: never.)"""
    if limit is None:
        return lambda: False
    start = _cpu_of(pid)
    return lambda: _cpu_of(pid) - start > limit


def _cpu_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError):
        return 0.0


def _kill(proc: subprocess.Popen, tree: Any, scratch: str | None) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if tree is not None:
        tree.kill()
        if proc.poll() is not None or _reaped(proc):
            tree.remove()
    if scratch:
        from .procs import remove_tree

        remove_tree(scratch)


def _reaped(proc: subprocess.Popen) -> bool:
    try:
        proc.wait(timeout=5)
        return True
    except subprocess.TimeoutExpired:
        return False
