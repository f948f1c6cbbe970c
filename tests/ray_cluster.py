"""A real Ray cluster on loopback for the tests: a head node and worker nodes, each a `ray start --block`
process in a session of its own, so that stopping one (or killing it, to test a node's death) ends every
process it started. Small: 2 logical CPUs and 80 MB of object store per node, no dashboard."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rsi

RAY = Path(sys.executable).with_name("ray")
SRC = str(Path(rsi.__file__).resolve().parents[1])  # this rsi, on every node's path
OBJECT_STORE = str(80 * 1024 * 1024)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """``LocalCluster(nodes=2)``: a head and ``nodes - 1`` workers; ``address`` is its GCS (HOST:PORT)."""

    def __init__(self, nodes: int = 2, cpus: int = 2):
        self.temp = tempfile.mkdtemp(prefix="rsi-rt-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        self.port = free_port()
        self.client_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.cpus = cpus
        self.procs: list[subprocess.Popen] = []
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC] + [p for p in paths if p != SRC]),
                        RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled",
                        # a dead node is noticed within ~5 s, not Ray's default ~15 s (the node-death test)
                        RAY_health_check_period_ms="1000", RAY_health_check_timeout_ms="2000")
        self.env.pop("RAY_ADDRESS", None)
        try:
            self._start(["--head", "--port", str(self.port), "--ray-client-server-port", str(self.client_port),
                         "--include-dashboard=false"])
            self._wait_port(self.port)
            for _ in range(nodes - 1):
                self.add_node()
            self.wait_nodes(nodes)
        except BaseException:
            self.stop()
            raise

    def _start(self, args: list[str]) -> subprocess.Popen:
        log = open(Path(self.temp) / f"node{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(
            [str(RAY), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus),
             "--object-store-memory", OBJECT_STORE, "--temp-dir", self.temp, "--disable-usage-stats", *args],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def add_node(self) -> subprocess.Popen:
        return self._start(["--address", self.address])

    def _wait_port(self, port: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the Ray head did not open port {port} in {timeout:g}s: {self.logs()}")

    def wait_nodes(self, count: int, timeout: float = 240.0) -> None:
        """Until ``count`` nodes are alive (asked here if this process is connected, else from another)."""
        import ray

        deadline = time.monotonic() + timeout
        while ray.is_initialized() and time.monotonic() < deadline:
            if sum(1 for n in ray.nodes() if n["Alive"]) == count:
                return
            time.sleep(0.3)
        code = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
                "print(sum(1 for n in ray.nodes() if n['Alive']))")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run([sys.executable, "-c", code, self.address], capture_output=True, text=True,
                                 env=self.env, timeout=timeout)
            if out.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the Ray cluster did not reach {count} nodes in {timeout:g}s: {self.logs()}")

    def kill_node(self, proc: subprocess.Popen) -> None:
        """Kill a node and every process it started, at once (SIGKILL): a machine that dies. Its Ray
        workers (and their sandboxed evaluation workers) have sessions of their own, so they are found
        as descendants of the node's process, not by its process group."""
        doomed = _descendants(proc.pid)
        _killpg(proc.pid, signal.SIGKILL)
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        proc.wait(10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(Path(self.temp).glob("node*.log")))

    def stop(self) -> None:
        """Stop every node, then kill whatever any of them started that is still there."""
        started = [pid for proc in self.procs for pid in _descendants(proc.pid)]
        for proc in reversed(self.procs):
            _killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _killpg(proc.pid, signal.SIGKILL)  # whatever is left of its session
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for pid in started:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.procs = []
        shutil.rmtree(self.temp, ignore_errors=True)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
