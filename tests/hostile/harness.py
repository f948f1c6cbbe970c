"""Run the hostile corpus through the real sandbox; write what happened as JSON.

    python tests/hostile/harness.py --out result.json|- [--only NAME ...] [--wall SECONDS]

Run by tests/test_hostile.py twice: as the user running the tests (root on CI) and, through
``runuser``, as an ordinary user. It builds its own fixture in a fresh temporary folder:

- ``problem/``: a trusted split evaluator (``produce``/``score``: return the list [3, 1, 4, 1,
  5]) whose source, held-out file and a fake run database hold a secret token;
- ``beside/``: the same task as a plain ``evaluate`` (guarded: the candidate in a process of its own);
- ``home/.ssh/id_rsa`` and an environment variable holding the token; ``outside/``, a folder
  writable by everyone, where no candidate may write; a TCP listener on the loopback.

Each ``tests/hostile/*.py`` program is a candidate (``run()`` returns the answer) whose header
states its verdict (``# verdict: ok``, ``error``, ``timeout``, or alternatives: ``error|timeout``),
optionally ``# expect: a|b`` (a substring of the error), ``# score-max:``/``# score-min:``,
``# mode: beside``, ``# kind: holdout``, ``# alone: yes`` (a CPU hog, run with no other candidate
beside it: the sandbox caps a candidate's processes, not its share of the machine's CPUs).
``@@NAME@@`` placeholders are filled in. Every candidate first renames its process (``COMM``,
new for each run), so that a process it leaves behind can be found.

After the corpus: no ``rsi-hostile`` process alive, nothing new in ``outside/`` or ``/tmp``, the
listener saw no connection, the evaluator and the run database unchanged, the token in no
output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN = "RSI-HOSTILE-SECRET-" + hashlib.sha256(os.urandom(16)).hexdigest()[:16]
COMM = "rsih-" + os.urandom(5).hex()  # this run's processes (15 characters, the most a name has)
PROLOGUE = (
    "import ctypes as _c\n"
    f"_c.CDLL(None).prctl(15, b{COMM!r}, 0, 0, 0)  # PR_SET_NAME: forks and threads inherit it\n"
)

SPLIT_EVALUATOR = '''\
"""Trusted evaluator of the hostile corpus. Secret: @@TOKEN@@ (no candidate may read this)."""
import importlib.util
import json
from pathlib import Path

TARGET = [3, 1, 4, 1, 5]


def _load(path):
    spec = importlib.util.spec_from_file_location("candidate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hits(data, target):
    if type(data) is not list or len(data) != len(target):
        raise ValueError("expected a list of %d numbers" % len(target))
    return sum(1 for a, b in zip(data, target) if type(a) in (int, float) and a == b)


def produce(program_path):
    return _load(program_path).run()


def score(data):
    return {"combined_score": _hits(data, TARGET) / len(TARGET)}


def produce_holdout(program_path):
    return _load(program_path).run()


def score_holdout(data):
    held = json.loads((Path(__file__).parent / "heldout.json").read_text())["target"]
    return {"combined_score": _hits(data, held) / len(held)}


def evaluate(program_path):
    return score(produce(program_path))
'''

BESIDE_EVALUATOR = '''\
"""Plain evaluator of the hostile corpus (run guarded: the candidate in its own process). @@TOKEN@@"""
import importlib.util
import json
from pathlib import Path


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = module.run()
    target = json.loads((Path(__file__).parent / "target.json").read_text())  # read lazily
    if type(data) is not list or len(data) != len(target):
        raise ValueError("expected a list of %d numbers" % len(target))
    hits = sum(1 for a, b in zip(data, target) if type(a) in (int, float) and a == b)
    return {"combined_score": hits / len(target)}
'''


def parse_header(text: str) -> dict:
    spec = {"verdict": None, "expect": [], "mode": "split", "kind": "train", "why": "",
            "alone": "no"}
    for line in text.splitlines():
        m = re.match(r"#\s*(verdict|expect|score-max|score-min|mode|kind|why|alone):\s*(.*)", line)
        if not m:
            continue
        key, value = m.group(1), m.group(2).strip()
        if key == "expect":
            spec["expect"] = [v.strip() for v in value.split("|")]
        elif key.startswith("score"):
            spec[key] = float(value)
        else:
            spec[key] = value
    return spec


def corpus(only: list[str] | None = None) -> dict[str, tuple[str, dict]]:
    programs = {}
    for path in sorted(HERE.glob("*.py")):
        if path.name == "harness.py" or path.name.startswith("_"):
            continue
        if only and path.stem not in only:
            continue
        text = path.read_text()
        programs[path.stem] = (text, parse_header(text))
    return programs


class Listener:
    """A TCP server on the loopback that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.sock.close()


def build_fixture(base: Path, port: int) -> dict[str, str]:
    problem, beside, home, outside = (base / n for n in ("problem", "beside", "home", "outside"))
    for folder in (problem, beside, home / ".ssh", outside, base / "runs"):
        folder.mkdir(parents=True)
    (problem / "evaluate.py").write_text(SPLIT_EVALUATOR.replace("@@TOKEN@@", TOKEN))
    (problem / "heldout.json").write_text(json.dumps({"target": [2, 7, 1, 8, 2], "note": TOKEN}))
    (beside / "evaluate.py").write_text(BESIDE_EVALUATOR.replace("@@TOKEN@@", TOKEN))
    (beside / "target.json").write_text("[3, 1, 4, 1, 5]")
    (home / ".ssh" / "id_rsa").write_text(f"-----BEGIN KEY-----\n{TOKEN}\n")
    (base / "runs" / "run.db").write_text(f"SQLite format 3\0{TOKEN}")
    for path in [base, *base.rglob("*")]:  # readable by all: only the sandbox stands in the way
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(outside, 0o1777)
    return {
        "PORT": str(port), "EVALUATOR": str(problem / "evaluate.py"),
        "HELDOUT": str(problem / "heldout.json"), "SSH_KEY": str(home / ".ssh" / "id_rsa"),
        "HOME_DIR": str(home), "RUN_DB": str(base / "runs" / "run.db"), "OUTSIDE": str(outside),
        "BESIDE_EVALUATOR": str(beside / "evaluate.py"), "TOKEN_NAME": "RSI_HOSTILE_API_KEY",
    }


def hostile_processes() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if comm == COMM and state != "Z":
                found.append(int(entry))
    return found


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_corpus(base: Path, only: list[str] | None = None, wall: float = 2.0) -> dict:
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    from rsi.sandbox.pool import EvaluatorPool
    from rsi.sandbox.types import EvalTask, Limits

    programs = corpus(only)
    listener = Listener()
    values = build_fixture(base, listener.port)
    os.environ[values["TOKEN_NAME"]] = TOKEN  # a secret in rsi's environment
    tmp_before = set(os.listdir(tempfile.gettempdir()))
    hashes = {k: digest(values[k]) for k in ("EVALUATOR", "HELDOUT", "RUN_DB", "BESIDE_EVALUATOR")}
    limits = Limits(wall_seconds=wall, cpu_seconds=wall, memory_mb=400, output_bytes=8000,
                    file_bytes=4 * 2**20, processes=32, open_files=64, scratch_bytes=64 * 2**20,
                    data_bytes=2**20, score_seconds=10)
    results: dict[str, dict] = {}
    t0 = time.monotonic()
    pools = {
        "split": EvaluatorPool(base / "problem" / "evaluate.py", 2, limits, base / "scratch-split"),
        "beside": EvaluatorPool(base / "beside" / "evaluate.py", 1, limits, base / "scratch-beside"),
    }
    try:
        sandbox = pools["split"].sandbox
        capped = any(p["name"] == "process count" and p["on"] for p in sandbox["protections"])
        for mode, pool in pools.items():
            queue = [(name, text, spec) for name, (text, spec) in programs.items()
                     if spec["mode"] == mode
                     and (capped or name not in ("fork_bomb", "thread_bomb"))]
            ids, hog = {}, None
            while queue or pool.in_flight:
                while queue and pool.in_flight < pool.workers and hog is None:
                    if queue[0][2]["alone"] == "yes" and pool.in_flight:
                        break  # a CPU hog: no other candidate beside it, to keep timings fair
                    name, text, spec = queue.pop(0)
                    source = PROLOGUE + text
                    for key, value in values.items():
                        source = source.replace(f"@@{key}@@", value)
                    ids[len(ids) + 1] = name
                    pool.submit(EvalTask(len(ids), source, seed=0, kind=spec["kind"]))
                    if spec["alone"] == "yes":
                        hog = len(ids)
                for r in pool.collect(timeout=1.0):
                    hog = None if r.candidate_id == hog else hog
                    results[ids[r.candidate_id]] = {
                        "status": r.status, "error": r.error or "", "metrics": r.metrics,
                        "stdout": r.stdout, "stderr": r.stderr, "wall": r.wall_seconds,
                    }
        integrity = {m: p.verify_evaluator() for m, p in pools.items()}
        score_modes = {m: p.score_mode for m, p in pools.items()}
    finally:
        for pool in pools.values():
            pool.close()
        listener.close()
        os.environ.pop(values["TOKEN_NAME"], None)
    time.sleep(0.2)
    leftovers = sorted(set(os.listdir(tempfile.gettempdir())) - tmp_before)
    return {
        "user": os.geteuid(), "comm": COMM, "seconds": time.monotonic() - t0, "sandbox": sandbox,
        "score_modes": score_modes, "results": results,
        "specs": {name: spec for name, (_, spec) in programs.items() if name in results},
        "checks": {
            "connections": listener.accepted,
            "hostile_processes": hostile_processes(),
            "outside_files": sorted(os.listdir(values["OUTSIDE"])),
            "tmp_leftovers": [n for n in leftovers if "hostile" in n or "pwned" in n],
            "changed_files": [k for k, h in hashes.items() if digest(values[k]) != h],
            "integrity": integrity,
            "token_leaks": sorted(name for name, r in results.items() if TOKEN in json.dumps(r)),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="a file, or - for standard output")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--wall", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rsi-corpus-") as tmp:
        os.chmod(tmp, 0o755)
        report = run_corpus(Path(tmp), args.only, args.wall)
    text = json.dumps(report, indent=1)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
