"""Operators an improver writes itself: ``OPERATORS = {"name": function}`` in the improver module.

An improver decides *which* child to make (``next_step``); with ``OPERATORS`` it also decides
*how* the child is written::

    from rsi import toolkit as tk

    def nudge(ctx):                                 # ctx: an OperatorContext
        sites = ctx.parent.constants()              # ctx.parent: a toolkit.Program
        if not sites:
            return None                             # no child this time
        site = ctx.rng.choice(sites)
        return site.set(site.value * ctx.rng.choice((0.5, 2.0)))   # a Program, or source text

    OPERATORS = {"nudge": nudge}

The search then has a proposer named ``"improver"`` whose operators are those names:
``Step(parent=..., proposer="improver", operator="nudge")`` runs ``nudge``, and the seed
improver's bandit (``ctx.operators`` in ``next_step``) sees ``improver:nudge`` beside mutate's arms.

**What an operator gets** (``OperatorContext``): the parent and the inspirations as toolkit
``Program``s (``.source`` is the text), their ids, scores and metrics; ``rng``, seeded per call
(the only randomness to use: a seeded run stays reproducible); ``settings``, the improver's
``DEFAULTS`` overlaid with ``[improver]``; ``state``, the improver's own ``ctx.state`` (the same
dict ``next_step`` and ``observe`` see, persisted with the run); ``options`` (``Step.options``),
``feedback`` (why recent children of this proposer failed), ``problem`` (its description) and
``toolkit`` (``rsi.toolkit``, so that a machine-written operator needs no import).

**What it returns**: the child's source (``str``) or a ``toolkit.Program`` (its ``changes`` become
the rationale), or None for "no child this time". Anything else, an exception, a crash, or running
out of time costs that one proposal: it is recorded as invalid, with the reason, and the search
goes on. Changes to ``ctx.state`` are kept when the operator returns (a child or None) and the
state is still JSON data; they are dropped when it fails.

**The guard.** Each call runs in a child process forked from the engine, which before running the
operator: closes every file descriptor it inherited (the run's database among them) and unmaps
shared memory; sends its output to /dev/null; gets Landlock rules (read the system, Python and rsi
files only, so *not* the problem's evaluator or held-out data; write nothing; no TCP; signals only
inside its own domain), the sandbox's seccomp filter and one more that refuses new processes
(threads are allowed), where the kernel has them (the mechanisms ``RSI_SANDBOX_DISABLE`` names stay
off); and caps its CPU time (``cpu_seconds``, SIGXCPU then SIGKILL), address space (``memory_mb``
above what it inherited) and file writes. The engine kills it (and its process group) at
``wall_seconds``. Only the reply crosses back: JSON on a pipe, capped at ``REPLY_BYTES``.

Why a fork and not a timer in the engine's process: ``setitimer(ITIMER_PROF)`` costs about a
microsecond, but needs a signal handler (the engine installs none, and runs off the main thread),
is caught by an operator's ``except BaseException``, cannot stop a loop inside C code, and leaves
the engine's memory, files and database within reach of the operator. The fork costs about 10 ms
of CPU per proposal for an 83 MB engine on the 2-core development machine at a load of 8 (it grows
with the engine's size: 29 ms at 533 MB; Landlock and seccomp add under a millisecond), against
0.2 ms in-process (``benchmarks/improver_ops.py``); an evaluation costs tens of milliseconds and
more. The parent is parsed before the fork (and cached), so the child inherits the parse.
``guard="none"`` runs operators in-process with no protection at all, for debugging an operator
with a debugger.
"""

from __future__ import annotations

import ctypes
import gc
import json
import math
import os
import random
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any

from .. import toolkit
from ..errors import ProposalFailed, RsiError
from ..improvers import Improver
from ..sandbox.procs import read_child
from ..sandbox.protocol import write_all
from .base import Proposal, ProposalRequest

REPLY_BYTES = 16 << 20  # the most an operator's reply (child source and state) may take
PR_SET_NO_NEW_PRIVS = 38
MIB = 1 << 20
Operator = Callable[["OperatorContext"], Any]


@dataclass(frozen=True)
class OperatorContext:
    """What one call of an improver's operator gets (see the module docstring)."""

    name: str  # the operator's own name
    parent: toolkit.Program
    rng: random.Random
    state: dict[str, Any]
    settings: Mapping[str, Any]
    parent_id: int = 0
    parent_score: float | None = None
    parent_metrics: Mapping[str, float] = field(default_factory=dict)
    inspirations: tuple[toolkit.Program, ...] = ()
    inspiration_ids: tuple[int, ...] = ()
    inspiration_scores: tuple[float | None, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    feedback: tuple[str, ...] = ()
    problem: str = ""
    toolkit: ModuleType = toolkit


def operators_of(improver: Improver) -> dict[str, Operator]:
    """The improver's ``OPERATORS`` ({} if it defines none); RsiError naming the fix if malformed."""
    table = getattr(improver.module, "OPERATORS", None)
    if table is None:
        return {}
    where = f"{improver.path}: OPERATORS"
    if not isinstance(table, Mapping) or not table:
        raise RsiError(f"{where} must be a non-empty dict {{name: function(ctx)}}, not {type(table).__name__}")
    for name, function in table.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise RsiError(f"{where}: operator names are Python identifiers; not {name!r}")
        if not callable(function):
            raise RsiError(f"{where}[{name!r}] is {type(function).__name__}, not a function(ctx)")
    return dict(table)


def improver_operators(improver: Improver, settings: Mapping[str, Any] | None = None,
                       state: Callable[[], dict[str, Any]] | None = None, **limits: Any) -> dict[str, Any]:
    """``{"improver": ImproverOperators(...)}`` if the improver defines ``OPERATORS``, else ``{}``:
    what ``Search`` adds to its proposers (one line there). A sandboxed improver
    (``rsi.sandbox.improver_host``) runs its operators in its own host: no fork here."""
    if getattr(improver, "hosted", False):
        limits = {**limits, "guard": "none"}
    return {"improver": ImproverOperators(improver, settings, state, **limits)} if operators_of(improver) else {}


class ImproverOperators:
    """The ``Proposer`` named "improver": runs the operator functions an improver defines, each
    call in a confined, CPU-capped child process (``guard="fork"``, the default) or in-process
    (``guard="none"``: no protection, for debugging).

    ``settings``: the ``[improver]`` table (over the improver's ``DEFAULTS``); ``state``: returns
    the improver's state dict (the search's), which operators share with ``next_step``.
    """

    name = "improver"

    def __init__(self, improver: Improver, settings: Mapping[str, Any] | None = None,
                 state: Callable[[], dict[str, Any]] | None = None, *, cpu_seconds: float = 1.0,
                 wall_seconds: float = 10.0, memory_mb: int = 1024, guard: str = "fork", confine: bool = True):
        if guard not in ("fork", "none"):
            raise RsiError(f"guard must be 'fork' or 'none', not {guard!r}")
        self.improver = improver
        self._functions = operators_of(improver)
        if not self._functions:
            raise RsiError(f"{improver.path}: defines no OPERATORS, so there is no 'improver' proposer to make")
        self._settings = MappingProxyType({**improver.defaults, **dict(settings or {})})
        own: dict[str, Any] = {}
        self._state = state or (lambda: own)
        self.cpu_seconds, self.wall_seconds, self.memory_mb = cpu_seconds, wall_seconds, memory_mb
        self.guard = guard
        self.confine = confine
        self._jail: _Jail | None = None

    @property
    def operators(self) -> list[str]:
        return list(self._functions)

    @property
    def protections(self) -> list[str]:
        """What confines each call here (e.g. ["fork", "rlimits", "landlock", "seccomp"])."""
        if self.guard == "none":
            return []
        return ["fork", "rlimits", *self._prepared().mechanisms]

    def propose(self, request: ProposalRequest) -> Proposal:
        rng = random.Random(request.seed)
        name = request.operator if request.operator is not None else rng.choice(self.operators)
        if name not in self._functions:
            raise ProposalFailed(f"the improver has no operator {name!r}; it has: {', '.join(self.operators)}")
        started = time.monotonic()
        ctx = self._context(name, request, rng)
        if self.guard == "fork":
            reply = self._call_forked(name, ctx, request.seed)
        elif hasattr(self.improver, "operate"):  # a sandboxed improver: its own host runs the call
            reply = self.improver.operate(name, ctx)
        else:
            reply = call_operator(self._functions[name], ctx)
        seconds = time.monotonic() - started
        what = f"improver operator {name!r}"
        if reply.get("error") is not None:
            raise ProposalFailed(f"{what} {reply['error']}", seconds=seconds)
        state = reply.get("state")
        if state is not None:
            live = self._state()
            live.clear()
            live.update(state)
        if reply.get("source") is None:
            raise ProposalFailed(f"{what} returned None: no child this time", seconds=seconds)
        rationale = " ".join(str(reply.get("rationale") or f"improver operator {name}").split())[:500]
        return Proposal(source=reply["source"], operator=name, rationale=rationale, seconds=seconds)

    # -- the context ---------------------------------------------------------------------------------
    def _context(self, name: str, request: ProposalRequest, rng: random.Random) -> OperatorContext:
        parent = as_program(request.parent.source)
        inspirations = tuple(as_program(p.source) for p in request.inspirations)
        state = self._state()
        if self.guard == "none":
            state = json.loads(json.dumps(state))  # the operator's changes apply only if it returns
        return OperatorContext(
            name=name, parent=parent, rng=rng, state=state, settings=self._settings,
            parent_id=request.parent.id, parent_score=request.parent.score,
            parent_metrics=MappingProxyType(dict(request.parent.metrics)), inspirations=inspirations,
            inspiration_ids=tuple(p.id for p in request.inspirations),
            inspiration_scores=tuple(p.score for p in request.inspirations), options=request.options,
            feedback=request.feedback, problem=request.problem)

    # -- the forked call -----------------------------------------------------------------------------
    def _prepared(self) -> _Jail:
        if self._jail is None:
            self._jail = _Jail(self.confine)
        return self._jail

    def _call_forked(self, name: str, ctx: OperatorContext, seed: int) -> dict[str, Any]:
        jail = self._prepared()
        try:
            read_end, write_end = os.pipe()
        except OSError as exc:
            return {"error": f"could not be started: {exc}"}
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(read_end)
            os.close(write_end)
            return {"error": f"could not be started (fork: {exc})"}
        if pid == 0:  # ---------------------------------------------------------------- the child
            code = 0
            try:
                os.close(read_end)
                jail.enter(write_end, self.cpu_seconds, self.memory_mb, seed)
                _reply(write_end, call_operator(self._functions[name], ctx))
            except BaseException:  # noqa: BLE001 - nothing may escape a forked child
                code = 70
            finally:
                os._exit(code)
        os.close(write_end)
        data, timed_out = _read(pid, read_end, self.wall_seconds)
        _kill_group(pid)  # before reaping: until then its pid (and group id) cannot be reused
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0
        if timed_out:
            return {"error": f"ran past its wall time limit of {self.wall_seconds:g}s (killed)"}
        try:
            reply = json.loads(data) if data else None
        except ValueError:
            reply = None
        if isinstance(reply, dict):
            return reply
        if len(data) > REPLY_BYTES:
            return {"error": f"sent a reply over {REPLY_BYTES >> 20} MiB (killed)"}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig in (signal.SIGXCPU, signal.SIGKILL):
                return {"error": f"used up its CPU time limit of {self.cpu_seconds:g}s (killed)"}
            return {"error": f"crashed ({signal.Signals(sig).name}) without a reply"}
        return {"error": f"ended (exit status {os.waitstatus_to_exitcode(status)}) without a reply"}


def as_program(source: str) -> toolkit.Program:
    """A toolkit Program, parsed here when it parses (so a forked call inherits the parse)."""
    try:
        return toolkit.Program.parse(source)
    except toolkit.ToolkitError:
        return toolkit.Program(source)  # the operator sees the ParseError if it looks for sites


def call_operator(function: Operator, ctx: OperatorContext) -> dict[str, Any]:
    """Run one operator and describe the outcome as a reply (what crosses the pipe)."""
    before = _json(ctx.state)
    try:
        value = function(ctx)
    except BaseException as exc:  # noqa: BLE001 - an operator may raise anything, SystemExit included
        return {"error": f"raised {type(exc).__name__}: {str(exc)[:300]}{_where(exc)}"}
    rationale: str | None = None
    source: str | None
    if isinstance(value, toolkit.Program):
        source, rationale = value.source, "; ".join(value.changes)
    elif isinstance(value, str) or value is None:
        source = value
    else:
        return {"error": f"returned {type(value).__name__}, not the child's source (a str or a toolkit.Program) "
                         "or None"}
    after = _json(ctx.state)
    if after is None:
        return {"error": "left ctx.state holding something that is not JSON data (dict, list, str, number, "
                         "bool, None)"}
    return {"source": source, "rationale": rationale, "state": json.loads(after) if after != before else None}


def _json(value: Any) -> str | None:
    try:
        return json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return None


def _where(exc: BaseException) -> str:
    """`` (file, line N, in f)`` of the innermost frame, to show an operator's author where."""
    frames = list(traceback.walk_tb(exc.__traceback__))
    if not frames:
        return ""
    frame, line = frames[-1]
    return f" ({os.path.basename(frame.f_code.co_filename)}, line {line}, in {frame.f_code.co_name})"


def _reply(fd: int, reply: dict[str, Any]) -> None:
    try:
        data = json.dumps(reply).encode()
    except (TypeError, ValueError) as exc:
        data = json.dumps({"error": f"gave a reply that is not JSON data: {exc}"}).encode()
    write_all(fd, data)


def _read(pid: int, fd: int, wall_seconds: float) -> tuple[bytes, bool]:
    """Everything the child writes on ``fd`` (killing it past the cap), or (b"", True) at the wall limit."""
    data, outcome = read_child(fd, wall_seconds, REPLY_BYTES, lambda: _kill_group(pid))
    return data, outcome == "timeout"


def _kill_group(pid: int) -> None:
    """SIGKILL the child's process group (the child and whatever it forked)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class _Jail:
    """What confines a forked operator call: prepared once in the engine, entered in each child."""

    def __init__(self, confine: bool):
        from ..sandbox import isolation, landlock, namespaces, seccomp

        self.mechanisms: list[str] = []
        self.ruleset: landlock.Ruleset | None = None
        self.rule_fds: list[int] = []
        self.filter: seccomp.Filter | None = None
        self.no_fork: seccomp.Filter | None = None
        self.libc: Any = None
        numpy = sys.modules.get("numpy")
        if numpy is not None:  # its first seeding costs ~20 ms: pay it here once, not in every child
            numpy.random.seed(0)
        off = isolation.disabled_mechanisms()
        if not confine:
            return
        self.libc = namespaces.libc()
        abi = 0 if "landlock" in off else landlock.abi_version()
        if abi:
            rules = landlock.open_rule_paths(_read_rules() + list(isolation.DEVICES))
            self.rule_fds = [fd for fd, _ in rules]
            self.ruleset = landlock.Ruleset(rules, abi)
            self.mechanisms.append("landlock")
        if "seccomp" not in off and seccomp.supported():
            self.filter = seccomp.Filter(seccomp.build(allow_inet=False), self.libc)
            program = no_fork_program()
            self.no_fork = seccomp.Filter(program, self.libc) if program else None
            self.mechanisms.append("seccomp")

    def enter(self, keep: int, cpu_seconds: float, memory_mb: int, seed: int) -> None:
        """In the child, before the operator runs: (see the module docstring) in this order."""
        gc.freeze()  # the collector leaves the inherited objects alone: fewer pages copied
        os.setpgid(0, 0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        _close_all_but({0, 1, 2, keep, *self.rule_fds})
        _unmap_shared(self.libc or ctypes.CDLL(None, use_errno=True))
        vm = _vm_bytes()
        if self.ruleset is not None or self.filter is not None:
            if self.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl no_new_privs")
        if self.ruleset is not None:
            from ..sandbox import landlock

            own = landlock.open_rule_paths([("/proc/self", landlock.READ)])
            self.ruleset.restrict(own)
            for fd, _ in own:
                os.close(fd)
        for fd in self.rule_fds:
            os.close(fd)
        if self.filter is not None:
            self.filter.install()
        if self.no_fork is not None:
            self.no_fork.install()
        cpu = max(1, math.ceil(cpu_seconds))
        _cap(resource.RLIMIT_CPU, cpu, cpu + 1)
        _cap(resource.RLIMIT_AS, vm + memory_mb * MIB)
        _cap(resource.RLIMIT_FSIZE, 0)
        _cap(resource.RLIMIT_CORE, 0)
        random.seed(seed)
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed(seed % 2**32)


def _read_rules() -> list[tuple[str, int]]:
    """What a confined operator may read: the system and Python folders and rsi's own modules,
    without the problem folders inside rsi: the same rules the sandbox gives a candidate."""
    from ..sandbox import isolation

    engine = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the rsi package
    return isolation.code_read_rules(engine)


def _close_all_but(keep: set[int]) -> None:
    """Close every open file descriptor but ``keep`` (the engine's database, pipes, sockets...)."""
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        open_fds = list(range(3, 1 << 16))
    for fd in open_fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own descriptor, closed already


# clone without CLONE_THREAD (a new process), fork and vfork fail with EPERM; threads are allowed.
# clone3 fails with ENOSYS, so that the C library falls back to clone, whose flags a filter can see.
_FORKS = {"x86_64": (0xC000003E, {"clone": 56, "fork": 57, "vfork": 58, "clone3": 435}),
          "aarch64": (0xC00000B7, {"clone": 220, "clone3": 435})}
CLONE_THREAD = 0x00010000


def no_fork_program() -> bytes | None:
    """A seccomp filter program: an operator may not start processes (they could outlive it)."""
    import errno
    import platform
    import struct

    found = _FORKS.get(platform.machine())
    if found is None:
        return None
    arch, table = found

    def insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
        return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)

    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    prog = [insn(ld, 4), insn(jeq, arch, jt=1), insn(ret, eperm), insn(ld, 0)]
    for name in ("fork", "vfork"):
        if name in table:
            prog += [insn(jeq, table[name], jf=1), insn(ret, eperm)]
    prog += [insn(jeq, table["clone3"], jf=1), insn(ret, enosys)]
    prog += [insn(jeq, table["clone"], jf=4), insn(ld, 16), insn(jset, CLONE_THREAD, jf=1), insn(ret, allow),
             insn(ret, eperm)]
    prog.append(insn(ret, allow))
    return b"".join(prog)


def _unmap_shared(libc: Any) -> None:
    """Unmap every shared mapping inherited from the engine (SQLite's WAL index among them)."""
    try:
        with open("/proc/self/maps") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return
    munmap = libc.munmap
    munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and len(fields[1]) == 4 and fields[1][3] == "s":
            start, end = (int(x, 16) for x in fields[0].split("-"))
            munmap(start, end - start)


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cap(which: int, soft: int, hard: int | None = None) -> None:
    """Lower a limit (never above the hard limit already in place)."""
    _, old_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if old_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, old_hard), min(hard, old_hard)
    resource.setrlimit(which, (soft, hard))
