"""The improver host process: what runs inside it (``python -m rsi.sandbox.improver_host_process``).

The engine side, ``rsi.sandbox.improver_host``, starts this process and talks to it; its docstring
says what the host is for, how it is isolated and the protocol. Here, in order: the host reads the
``init`` message (the improver's source and limits), isolates itself (``_confine``) and only then
executes the improver's module, then answers each ``hook`` (``start``, ``next_step``,
``observe``: a frozen context rebuilt from plain data) and each ``operate`` (one of the
improver's ``OPERATORS``) until the engine closes the pipe. Its imports are kept light: the
host's start is part of every sandboxed improver's start.
"""

from __future__ import annotations

import errno
import json
import os
import random
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import RsiError
from ..improvers import Improver, ImproverFailed, Outcome, Step
from .protocol import HEADER

# ---------------------------------------------------------------- plain data both ways (the engine imports these)


def rng_as_data(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_from(data: list[Any]) -> random.Random:
    rng = random.Random()
    rng.setstate((data[0], tuple(data[1]), data[2]))
    return rng


def step_as_data(step: Step) -> dict[str, Any]:
    return {"parent": step.parent, "inspirations": list(step.inspirations), "island": step.island,
            "proposer": step.proposer, "operator": step.operator, "children": step.children,
            "options": dict(step.options)}


# ---------------------------------------------------------------- the host process


def _confine(scratch: str, memory_mb: int, enabled: bool) -> list[str]:
    """Isolate this process before the improver's module runs (``rsi.sandbox.improver_host``, point 2);
    what is in force."""
    import resource

    from . import isolation
    from .procs import vm_size_mb
    from .types import Limits

    limits = Limits(memory_mb=memory_mb, scratch_bytes=16 << 20, processes=1)
    marker = os.path.join(scratch, "improver.py")  # no evaluator: a name in its own empty scratch folder
    plan = isolation.prepare(scratch, limits, enabled, marker)
    isolation.finish(plan, marker, [], set())
    if plan.uid is not None:
        os.chown(scratch, plan.uid, plan.uid)
    isolation.enter(plan, scratch, "improver", os.getppid())
    isolation.settle(scratch)
    on = [p["name"] for p in plan.protections if p["on"]]
    if enabled and plan.filter is not None and "seccomp" not in isolation.disabled_mechanisms():
        from ..proposers.improver_ops import no_fork_program
        from .seccomp import Filter

        program = no_fork_program()
        if program:
            Filter(program, plan.libc).install()
            on.append("no new processes")
    for which, value in ((resource.RLIMIT_AS, int((vm_size_mb() + memory_mb) * (1 << 20))),
                         (resource.RLIMIT_FSIZE, 1 << 20), (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0)):
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))
    return on + ["rlimits"]


def _module(source: str, path: str):
    import types

    name = f"rsi_hosted_improver_{abs(hash(path))}"
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - the sandboxed host's one job
    return module


def _serve(req: int, resp: int) -> int:
    from ..archive import Archive
    from ..improvers import ImproverContext
    from ..proposers import bandit, improver_ops  # noqa: F401 - imported before the sandbox closes
    from .protocol import recv, send

    init = recv(req)
    if init is None or init.get("op") != "init":
        return 2
    try:
        protections = _confine(init["scratch"], int(init["memory_mb"]), init.get("isolation") != "none")
    except Exception as exc:  # noqa: BLE001 - the sandbox could not be set up: say so, run nothing
        send(resp, {"op": "error", "error": f"the improver host could not isolate itself: {exc}"})
        return 3
    path = init["path"]
    try:
        improver = Improver(_module(init["source"], path), Path(path))
        operators = improver_ops.operators_of(improver)
        json.dumps(improver.defaults)
    except BaseException as exc:  # noqa: BLE001 - the improver's own failure, reported
        send(resp, {"op": "error", "error": f"failed to import: {type(exc).__name__}: {str(exc)[:2000]}"})
        return 4
    send(resp, {"op": "ready", "defaults": improver.defaults, "operators": sorted(operators),
                "protections": protections})
    while True:
        msg = recv(req)
        if msg is None:
            return 0
        try:
            if msg.get("op") == "operate":
                reply = _operate(operators, improver, msg)
            else:
                reply = _hook(improver, msg, Archive, ImproverContext)
            data = json.dumps(reply)
        except BaseException as exc:  # noqa: BLE001 - the improver's failure (SystemExit too) is an answer
            data = json.dumps({"error": f"the improver {path} failed: {type(exc).__name__}: {str(exc)[:1000]}"})
        from .protocol import write_all

        body = data.encode()
        write_all(resp, HEADER.pack(len(body)) + body)


def _hook(improver: Improver, msg: dict, archive_type: Any, context_type: Any) -> dict[str, Any]:
    data = msg["ctx"]
    rng = _rng_from(data["rng"])
    ctx = context_type(
        archive=archive_type.from_json(data["archive"]), rng=rng, state=data["state"],
        operators=MappingProxyType({k: tuple(v) for k, v in data["operators"].items()}),
        settings=MappingProxyType(data["settings"]), budget=data["budget"], evaluations=data["evaluations"],
        population=_population(data["population"], data["population_from"]), **_memory_of(data.get("memory")),
        writing=_writing(data.get("writing")))
    hook = msg["hook"]
    try:
        if hook == "start":
            improver.start(ctx)
            step_data = None
        elif hook == "next_step":
            step_data = step_as_data(improver.next_step(ctx))
        else:
            outcome = dict(msg["outcome"])
            improver.observe(ctx, Step(**msg["step"]), Outcome(**outcome))
            step_data = None
    except ImproverFailed as exc:
        return {"error": str(exc)}
    return {"state": ctx.state, "rng": rng_as_data(ctx.rng), "step": step_data}


def _writing(data: Any) -> tuple[tuple[str, str | None], ...]:
    if not isinstance(data, list):
        return ()
    return tuple((str(w[0]), None if w[1] is None else str(w[1])) for w in data
                 if isinstance(w, list) and len(w) == 2)


def _memory_of(data: Any) -> dict[str, Any]:
    if not data:
        return {}
    from ..memory import check

    return {"memory": check(data, "the run's memory")}


_POPULATION: list[tuple[int, float]] = []  # the host's copy of ctx.population, extended call by call


def _population(tail: list, start: int) -> tuple[tuple[int, float], ...]:
    if start != (len(_POPULATION) if start else 0):
        raise RsiError(f"the engine sent the population from {start}, the host holds {len(_POPULATION)}")
    if not start:
        _POPULATION.clear()
    _POPULATION.extend((int(i), float(s)) for i, s in tail)
    return tuple(_POPULATION)


def _operate(operators: Mapping[str, Any], improver: Improver, msg: dict) -> dict[str, Any]:
    from .. import toolkit
    from ..proposers.improver_ops import OperatorContext, as_program, call_operator

    name = msg["name"]
    if name not in operators:
        return {"error": f"has no operator {name!r}"}
    ctx = OperatorContext(
        name=name, parent=as_program(msg["parent"]), rng=_rng_from(msg["rng"]), state=msg["state"],
        settings=MappingProxyType({**improver.defaults, **msg["settings"]}), parent_id=msg["parent_id"],
        parent_score=msg["parent_score"], parent_metrics=MappingProxyType(msg["parent_metrics"]),
        inspirations=tuple(as_program(s) for s in msg["inspirations"]),
        inspiration_ids=tuple(msg["inspiration_ids"]), inspiration_scores=tuple(msg["inspiration_scores"]),
        options=MappingProxyType(msg["options"]), feedback=tuple(msg["feedback"]), problem=msg["problem"],
        toolkit=toolkit)
    return call_operator(operators[name], ctx)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rsi.sandbox.improver_host_process")
    parser.add_argument("--req", type=int, required=True, help="fd to read requests from")
    parser.add_argument("--resp", type=int, required=True, help="fd to write replies to")
    args = parser.parse_args(argv)
    try:
        return _serve(args.req, args.resp)
    except BrokenPipeError:
        return 0
    except OSError as exc:
        return 5 if exc.errno != errno.EPIPE else 0


if __name__ == "__main__":
    sys.exit(main())
