"""Does the loop close? The seed improver against the self-improved one, on the TEST problems.

Both improvers drive rsi searches of the same budget on every test problem of the suite (problems
no decision of the self-improvement run ever saw) with the same seeds, >= 10 per problem, and the
normalised gains of the best programs are compared unit by unit (problem, seed): mean difference,
relative difference, and their 95% bootstrap intervals. Goal: >= 20% higher gain with the interval
of the difference above zero, or the seed's final gain reached with half the evaluations (the
self-improved improver is also run at budget / 2). Then the curve of the run itself: the best
training meta-utility per generation, and how fast it rose under each driving improver.

    .venv/bin/python benchmarks/selfimprove.py --from runs/si          # a finished self-improve run
    .venv/bin/python benchmarks/selfimprove.py                         # runs the short setting first

Measurements go through the same trusted meta-evaluator as the loop (sandboxed searches, re-scored
outside). Whatever comes out is printed, a null result included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import rsi  # noqa: E402
from rsi.improvers import SEED_IMPROVER  # noqa: E402
from rsi.interrupts import interrupts_stop  # noqa: E402
from rsi.meta.metautil import MetaEvaluator  # noqa: E402
from rsi.meta.selfimprove import BEST_FILE, SelfImproveConfig, SelfImproveRun  # noqa: E402
from rsi.meta.suite import load_suite  # noqa: E402

SHORT = SelfImproveConfig()  # `rsi self-improve` defaults: the short setting of the README


def bootstrap(challenger: np.ndarray, seed: np.ndarray, n_boot: int = 20000, rng_seed: int = 0):
    """95% percentile intervals of the mean paired difference and of the relative difference."""
    rng = np.random.default_rng(rng_seed)
    index = rng.integers(0, len(seed), size=(n_boot, len(seed)))
    diffs = (challenger - seed)[index].mean(axis=1)
    base = seed[index].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(base > 0, (challenger[index].mean(axis=1) - base) / base, np.nan)
    relative = relative[np.isfinite(relative)]
    return np.quantile(diffs, [0.025, 0.975]), (np.quantile(relative, [0.025, 0.975]) if relative.size else None)


def sign_test(diffs: np.ndarray) -> tuple[int, int, float]:
    from rsi.oversight.gate import binomial_sf

    wins, losses = int((diffs > 0).sum()), int((diffs < 0).sum())
    return wins, losses, binomial_sf(wins, wins + losses) if wins + losses else 1.0


def self_improve(run_dir: Path, resume: bool = False) -> None:
    """Run `rsi self-improve` (the SHORT setting) into ``run_dir``, or continue the run there; print
    what the command prints. Ctrl-C stops it cleanly: continue with ``--from run_dir``."""
    run = SelfImproveRun.reopen(run_dir) if resume else SelfImproveRun.start(run_dir, SHORT)
    print(f"{'continuing' if resume else 'running'} self-improvement: {run.out}", file=sys.stderr)
    run.log = lambda line: print(line, file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        with interrupts_stop(run.search):
            summary = run.execute()
        generations = run.out / "generations.md"
        print(generations.read_text() if generations.exists() else "")
        print(f"stopped: {summary.stop_reason}")
        for request in run.store.promotions("pending"):
            print(f"waiting for a person: improver #{request['candidate_id']} "
                  f"({request['evidence'].get('summary')}); rsi approve {run.out} {request['candidate_id']}")
        print(f"adopted improver: {run.out / BEST_FILE} (#{run.incumbent_id}); curves: {run.out / 'curves.svg'}")
    finally:
        run.search.close()
    print(f"self-improve took {time.monotonic() - started:.0f} s", file=sys.stderr)
    if summary.stop_reason in (rsi.StopReason.INTERRUPTED, rsi.StopReason.STOP_REQUESTED):
        raise SystemExit(f"self-improvement stopped ({summary.stop_reason}); continue it and measure with: "
                         f"{sys.argv[0]} --from {run_dir}")


def _stopped_early(run_dir: Path) -> bool:
    """Whether the self-improvement run in ``run_dir`` was stopped before its end (Ctrl-C, `rsi stop`):
    its last start, resume or stop event is a stop for one of those reasons (so no process runs it)."""
    if not (run_dir / "rsi.db").is_file():
        return False
    with rsi.open_run(run_dir) as results:
        events = results.events("run.started", "run.resumed", "run.stopped")
    return bool(events) and events[-1].kind == "run.stopped" and events[-1].payload.get("reason") in (
        rsi.StopReason.INTERRUPTED, rsi.StopReason.STOP_REQUESTED)


def measure(improvers: dict[str, str], budget: int, seeds: list[int], workers: int, label: str):
    start = time.monotonic()
    with MetaEvaluator(load_suite("test"), budget, workers, allow_test=True) as meta:
        units = meta.units("test", seeds)
        found = meta.measure(improvers, units, on_result=lambda r: print(f"  {label} {r.key}: {r.summary()}",
                                                                          file=sys.stderr, flush=True))
    return found, time.monotonic() - start


def curve(run_dir: Path) -> list[str]:
    """The run's own progress: best training meta-utility per generation, by driving improver."""
    path = run_dir / "generations.json"
    if not path.is_file():
        return ["(no generations.json)"]
    rows = json.loads(path.read_text())
    lines = ["| gen | driven by | best train this gen | best train so far | Δ best so far | incumbent val | "
             "incumbent test | decision |", "|---|---|---|---|---|---|---|---|"]
    previous = None
    slopes: dict[str, list[float]] = {}
    for row in rows:
        so_far = row.get("best_train_so_far")
        delta = None if previous is None or so_far is None else so_far - previous
        driver = "—" if row.get("driver") is None else f"#{row['driver']}"
        if delta is not None:
            slopes.setdefault(driver, []).append(delta)
        decision = row.get("decision") or {}
        outcome = decision.get("outcome", "start")
        fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {row['generation']} | {driver} | {fmt(row.get('best_train_this_generation'))} | "
                     f"{fmt(so_far)} | {fmt(delta)} | {fmt(row.get('validation'))} | {fmt(row.get('test'))} | "
                     f"{outcome} |")
        previous = so_far if so_far is not None else previous
    lines.append("")
    for driver, deltas in slopes.items():
        lines.append(f"gain in best training meta-utility per generation driven by {driver}: "
                     f"{statistics.fmean(deltas):+.4f} over {len(deltas)} generation(s)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="run_dir", help="a finished `rsi self-improve` folder (default: run one)")
    parser.add_argument("--improver", help="compare this improver file instead of the run's best_improver.py")
    parser.add_argument("--budget", type=int, help="evaluations per search (default: the run's budget)")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per test problem (default 20)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip the random-search and hill-climbing improvers (benchmarks/improvers/)")
    args = parser.parse_args()

    if args.run_dir:
        run_dir = Path(args.run_dir)
        if _stopped_early(run_dir):  # an interrupted run (e.g. this benchmark's): finish it first
            self_improve(run_dir, resume=True)
    else:
        run_dir = Path(tempfile.mkdtemp(prefix="rsi-si-bench-")) / "si"
        self_improve(run_dir)
    config = json.loads((run_dir / "selfimprove.json").read_text()) if (run_dir / "selfimprove.json").exists() else {}
    budget = args.budget or config.get("budget", 100)
    challenger_file = Path(args.improver) if args.improver else run_dir / "best_improver.py"
    challenger = challenger_file.read_text()
    seed = SEED_IMPROVER.read_text()
    improvers = {"seed improver": seed}
    unchanged = _same_code(challenger, seed)
    if unchanged:
        print("\nnote: no improver was adopted: the self-improved improver is the seed improver", flush=True)
    else:
        improvers["self-improved"] = challenger
    best_train = _best_training_candidate(run_dir)
    if best_train is not None and not _same_code(best_train[1], challenger):
        improvers[f"best on training (#{best_train[0]}, not adopted)"] = best_train[1]

    if not args.no_baselines:  # how much room is there? the simplest policies, at the same budget
        for name in ("hill_climb", "random_search"):
            improvers[name.replace("_", " ")] = (ROOT / "benchmarks" / "improvers" / f"{name}.py").read_text()

    seeds = list(range(5001, 5001 + args.seeds))
    full, seconds = measure(improvers, budget, seeds, args.workers, f"budget {budget}")
    if unchanged:
        full["self-improved"] = full["seed improver"]
    half, half_seconds = measure({"self-improved": challenger}, max(1, budget // 2), seeds, args.workers,
                                 f"budget {budget // 2}")

    base = np.array(full["seed improver"].gains)
    units = len(base)
    print(f"\n## Test problems: {', '.join(p.name for p in load_suite('test'))}; {args.seeds} seeds each "
          f"({units} paired units), {budget} evaluations per search\n")
    print("| improver | budget | mean gain | Δ vs seed (95% CI) | relative (95% CI) | wins/losses (sign p) | "
          "CPU s per meta-eval |")
    print("|---|---|---|---|---|---|---|")
    rows = [(name, budget, result) for name, result in full.items()] + [
        ("self-improved", budget // 2, half["self-improved"])]
    for name, b, result in rows:
        gains = np.array(result.gains)
        if name == "seed improver":
            print(f"| {name} | {b} | {gains.mean():.4f} | — | — | — | {result.cpu_seconds:.0f} |")
            continue
        (lo, hi), rel = bootstrap(gains, base)
        wins, losses, p = sign_test(gains - base)
        relative = (gains.mean() - base.mean()) / base.mean() if base.mean() > 0 else float("nan")
        rel_text = f"{relative:+.1%} ({rel[0]:+.1%}..{rel[1]:+.1%})" if rel is not None else f"{relative:+.1%}"
        print(f"| {name} | {b} | {gains.mean():.4f} | {gains.mean() - base.mean():+.4f} ({lo:+.4f}..{hi:+.4f}) | "
              f"{rel_text} | {wins}/{losses} (p={p:.2g}) | {result.cpu_seconds:.0f} |")
    print("\nper problem (mean gain over seeds):")
    names = sorted(full["seed improver"].per_problem())
    print("| improver | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for name, b, result in rows:
        per = result.per_problem()
        print(f"| {name} @{b} | " + " | ".join(f"{per[n]:.3f}" for n in names) + " |")
    goal_gain = base.mean() > 0 and full["self-improved"].utility >= 1.2 * base.mean()
    goal_half = half["self-improved"].utility >= base.mean()
    (lo, _), _ = bootstrap(np.array(full["self-improved"].gains), base)
    print(f"\ngoal (>= 20% higher at equal budget, CI above 0): {'met' if goal_gain and lo > 0 else 'not met'}; "
          f"goal (seed's gain in half the evaluations): {'met' if goal_half else 'not met'}")
    print(f"time: {seconds:.0f} s for {len(improvers)} improvers x {units} units at budget {budget} "
          f"({seconds / len(improvers):.0f} s wall per test meta-evaluation on {args.workers} workers), "
          f"{half_seconds:.0f} s at budget {budget // 2}")
    train = [json.loads(p.read_text()) for p in (run_dir / "measurements").glob("*-train.json")]
    ok = [m for m in train if m["status"] == "ok"]
    if ok:
        walls = [m["wall_seconds"] for m in ok]
        cpus = [sum(u["cpu_seconds"] for u in m["units"]) for m in ok]
        print(f"self-improve run: {len(train)} training meta-evaluations ({len(train) - len(ok)} failed); "
              f"each {statistics.fmean(walls):.0f} s wall (median {statistics.median(walls):.0f}), "
              f"{statistics.fmean(cpus):.0f} CPU s, {len(ok[0]['units'])} searches of {config.get('budget')} "
              f"evaluations")
    print("\n## The run's curve: best training meta-utility per generation\n")
    print("\n".join(curve(run_dir)))
    return 0


def _same_code(a: str, b: str) -> bool:
    import ast

    def norm(text: str) -> str:
        lines = [line for line in text.splitlines() if "EVOLVE-BLOCK" not in line]
        try:
            return ast.dump(ast.parse("\n".join(lines)))
        except SyntaxError:
            return text

    return norm(a) == norm(b)


def _best_training_candidate(run_dir: Path) -> tuple[int, str] | None:
    if not (run_dir / "rsi.db").is_file():
        return None
    with rsi.open_run(run_dir) as results:
        best = results.best()
    return (best.id, best.source) if best is not None and best.id != 1 else None


if __name__ == "__main__":
    sys.exit(main())
