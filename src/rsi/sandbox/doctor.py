"""``rsi doctor``: which protections isolate candidates on this machine, and why others do not.

``doctor_report()`` starts a real pool (one worker, isolation "full"), prints what it reached,
and runs a probe candidate that tries what a hostile one would (network, secrets, writes,
ptrace, signals), so that each line is checked here, not assumed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .capabilities import capabilities

PROBE_EVALUATOR = '''\
import importlib.util


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("probe", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run()
'''

PROBE = '''\
import ctypes, json, os, socket

def attempt(action):
    try:
        action()
        return "ALLOWED"
    except OSError as exc:
        return "blocked (%s)" % (exc.strerror or exc)

def connect(host):
    socket.create_connection((host, 80), timeout=1).close()

def read(path):
    open(path, "rb").read(1)

def write(path):
    open(path, "w").close()

def ptrace():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, os.getppid(), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

def run():
    status = open("/proc/self/status").read()
    caps = [l.split()[1] for l in status.splitlines() if l.startswith("CapEff")]
    found = {
        "TCP to 127.0.0.1": attempt(lambda: connect("127.0.0.1")),
        "TCP to 1.1.1.1": attempt(lambda: connect("1.1.1.1")),
        "read /etc/shadow": attempt(lambda: read("/etc/shadow")),
        "read a file beside the evaluator's folder": attempt(lambda: read(@@SECRET@@)),
        "write outside the task folder": attempt(lambda: write(@@OUTSIDE@@)),
        "write /tmp": attempt(lambda: write("/tmp/rsi-doctor-probe")),
        "ptrace the worker": attempt(ptrace),
        "signal the worker": attempt(lambda: os.kill(os.getppid(), 0)),
        "unix socket": attempt(lambda: socket.socket(socket.AF_UNIX)),
        "uid": str(os.getuid()),
        "capabilities": caps[0] if caps else "?",
    }
    print(json.dumps(found))
    return {"combined_score": 0.0}
'''


def _probe(folder: Path) -> tuple[dict, dict, float]:
    from .pool import EvaluatorPool
    from .types import EvalResult, EvalTask, Limits

    (folder / "problem").mkdir()
    (folder / "problem" / "evaluate.py").write_text(PROBE_EVALUATOR)
    (folder / "secret.txt").write_text("not for candidates")
    (folder / "outside").mkdir()
    for path in (folder, folder / "problem", folder / "outside"):
        os.chmod(path, 0o777 if path.name == "outside" else 0o755)
    source = PROBE.replace("@@SECRET@@", repr(str(folder / "secret.txt"))).replace(
        "@@OUTSIDE@@", repr(str(folder / "outside" / "x")))
    t0 = time.monotonic()
    err, sys.stderr = sys.stderr, open(os.devnull, "w")  # the pool's warning: shown below instead
    try:
        with EvaluatorPool(folder / "problem" / "evaluate.py", 1, Limits(wall_seconds=20),
                           folder / "scratch") as pool:
            started = time.monotonic() - t0
            pool.submit(EvalTask(candidate_id=1, source=source, seed=0))
            results: list[EvalResult] = []
            while not results:
                results = pool.collect(timeout=5.0)
            sandbox = pool.sandbox
    finally:
        sys.stderr.close()
        sys.stderr = err
    try:
        found = json.loads(results[0].stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        found = {"probe": f"failed: {results[0].status} {results[0].error}"}
    return sandbox, found, started


def doctor_report() -> str:
    """Which protections are active on this machine, checked, and why others are not."""
    caps = capabilities()
    who = "root" if caps["root"] else f"uid {caps['uid']} (not root)"
    lines = ["rsi doctor: how candidate programs are isolated on this machine",
             f"  Linux {caps['kernel']} {caps['arch']}, Python {caps['python']}, running as {who}",
             ""]
    with tempfile.TemporaryDirectory(prefix="rsi-doctor-") as tmp:
        try:
            sandbox, found, started = _probe(Path(tmp))
        except Exception as exc:  # noqa: BLE001 - a doctor reports, it does not crash
            return "\n".join(lines + [f"  could not start an evaluation worker: {exc}"])
    from .cgroups import support

    trees = support()
    lines.append(f"level: {sandbox['level'].upper()}  (a worker started in {started:.2f}s)")
    for p in sandbox["protections"]:
        lines.append(f"  [{'x' if p['on'] else ' '}] {p['name']:<14} {p['detail']}")
    lines += ["", "checked by a probe candidate (what it tried, what happened):"]
    for what, outcome in found.items():
        bad = outcome.startswith("ALLOWED") and what not in ("uid", "capabilities")
        lines.append(f"  {'!!' if bad else 'ok'} {what:<42} {outcome}")
    lines += ["", "mechanisms:"]
    abi = caps["landlock_abi"]
    lines.append("  Landlock        " + (f"ABI {abi}: " + ", ".join(caps["landlock_features"])
                                         if abi else "not available (Linux 5.13+ with Landlock "
                                         "in the lsm= list); files are then protected by "
                                         "read-only mounts, which do not stop reading"))
    ns = caps["namespaces_error"]
    lines.append("  namespaces      " + ("network, mount, IPC, UTS" + (
        "" if caps["root"] else " inside a user namespace") if ns is None else f"refused: {ns}"))
    if caps["root"]:
        userns = caps["user_namespaces_error"]
        lines.append("  as a user       " + (
            "user namespaces are allowed: an ordinary user gets the same isolation, with a "
            "user namespace in place of an unprivileged uid" if userns is None else
            f"user namespaces refused ({userns}): an ordinary user would get no network or "
            "mount namespace"))
    for name, value in caps["sysctl"].items():
        lines.append(f"    {name} = {value}")
    lines.append("  cgroups         " + trees.describe())
    lines.append("  pid namespace   " + ("one per worker (as root)" if caps["root"] else
                                         "not for an ordinary user in this version"))
    lines.append("  seccomp         " + ("filter available" if caps["seccomp"] else
                                         f"not available for {caps['arch']}"))
    lines.append("  yama ptrace     " + (f"ptrace_scope = {caps['ptrace_scope']}"
                                         if caps["ptrace_scope"] is not None else "not loaded"))
    lines.append("  bubblewrap      " + (f"{caps['bubblewrap']} (not used: rsi sets up the same "
                                         "mechanisms itself, once per worker)" if caps["bubblewrap"]
                                         else "not installed (not needed)"))
    lines += ["", "not protected, whatever the level:",
              "  - a candidate reads everything in its own process: its inputs, the evaluator "
              "module's memory; with the plain evaluate() contract it can forge its score "
              "(produce/score computes it in another process)",
              *(["  - memory and CPU are capped per process (RLIMIT_AS, RLIMIT_CPU) and by the process "
                 "count, not per tree (no cgroup here): a tree may map processes x memory_mb and take CPU "
                 "from other workers until its wall timeout"] if not trees.available else
                ["  - CPU time is capped per process (RLIMIT_CPU); the tree's cgroup caps its share of the "
                 "CPUs (one), not its total: the wall timeout ends it"]),
              "  - the kernel is shared (no virtual machine); seccomp narrows, does not remove, "
              "its attack surface"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(doctor_report())
