"""`rsi self-improve`: parse, call the API, print. Wired into rsi's CLI by ``add_self_improve_parser``.

Approvals of improvers use the run's promotion table, so ``rsi pending / approve / reject OUT``
work on a self-improvement folder as on any run; ``pending``, ``approve`` and ``reject`` here are
the same calls, for code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """\
Improve the improver: an rsi run whose program is the search policy, scored by its meta-utility
(mean normalised gain of rsi searches it drives on the training problems of rsi's suite), driven
by the best improver so far. A candidate is adopted only if it stays ahead of the incumbent on
fresh training seeds (--confirm-seeds), beats it on the validation problems by more than noise
(paired sign test and bootstrap interval; the run's k-th test at level/(k(k+1)), so that the
whole run's chance of a false adoption stays below --level), passes diff review and, with
--approval manual, a person's approval. Test problems are measured for the report only.

examples:
  rsi self-improve --out runs/si                       # the short setting: under 30 min on 2 cores
  rsi self-improve --generations 12 --budget 200 --seeds 2 --validation-seeds 16 \\
                   --meta-budget 12 --challengers 2 --out runs/si-long   # for real use (5-6 hours)
  rsi self-improve --resume runs/si                    # continue after Ctrl-C, `rsi stop` or a crash
  rsi self-improve --resume runs/si --generations 8    # ... and extend it to 8 generations
  rsi self-improve --executor ray --address auto --workers 16 --out runs/si   # inner searches on a Ray cluster
  rsi pending runs/si; rsi approve runs/si 17 --note "read the diff"   # with --approval manual

Writes to --out: generations.md / .json (the table), curves.svg, best_improver.py (use it with
`rsi run --improver`), improvers/ (every adopted version), measurements/ (every search's result)."""


def add_self_improve_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("self-improve", help="improve the improver (recursive self-improvement)",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", metavar="DIR", help="folder of the self-improvement run (default runs/self-improve-<time>)")
    p.add_argument("--resume", metavar="DIR", help="continue an earlier self-improvement run")
    p.add_argument("--generations", type=int,
                   help="generations (default 4; with --resume: extend the run to this many)")
    p.add_argument("--budget", type=int, default=100, help="evaluations per inner search (default 100)")
    p.add_argument("--seeds", type=int, default=2, help="training seeds per problem (default 2)")
    p.add_argument("--validation-seeds", type=int, default=12, help="validation seeds per problem (default 12)")
    p.add_argument("--confirm-seeds", type=int, default=1,
                   help="fresh training seeds per problem to confirm a training win before validating "
                        "(default 1; 0: off)")
    p.add_argument("--neutral-after", type=int, default=4,
                   help="searches identical to its parent's after which a candidate is taken to behave as the parent "
                        "and its other searches are skipped (default 4; 0: measure every candidate fully)")
    p.add_argument("--test-seeds", type=int, default=4, help="test seeds per problem, report only; 0: no test report")
    p.add_argument("--meta-budget", type=int, default=10, help="candidate improvers per generation (default 10)")
    p.add_argument("--challengers", type=int, default=1, help="best training candidates validated per generation")
    p.add_argument("--approval", choices=("auto", "manual"), default="auto",
                   help="manual: every adoption waits for `rsi approve` (default auto)")
    p.add_argument("--level", type=float, default=0.05,
                   help="bound on the run's chance of ever adopting an improver that is not better (default 0.05)")
    p.add_argument("--workers", type=int, default=2, help="inner searches run at a time (default 2)")
    p.add_argument("--executor", choices=("local", "ray"), default=None,
                   help="where the inner searches run: local (default) or ray (a Ray cluster, pip install 'rsi[ray]')")
    p.add_argument("--address", metavar="ADDR", help="with --executor ray: the cluster, auto | HOST:PORT | "
                   "ray://HOST:PORT (default: RAY_ADDRESS, a running local cluster, else a new local Ray)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--improver", metavar="FILE", help="starting improver (default: rsi's seed improver)")
    p.add_argument("--start", choices=("seed", "composed"),
                   help="starting improver shipped with rsi: seed (rsi/improvers/seed.py, edited by mutate) or "
                        "composed (rsi/improvers/composed.py, the same policy as a SPEC of components, edited by the "
                        "grammar proposer); default seed")
    p.add_argument("--memory", metavar="FILE|learn|offer",
                   help="a memory every inner search hands its improver (ctx.memory): a file from `rsi memory learn "
                        "--suite train`, or 'learn' to learn it first from the training problems (rsi's seed "
                        "improver); the run keeps a copy, OUT/memory.json. 'offer': learned so, but handed to no "
                        "search: the remember move writes it into candidate improvers (MEMORY), and the gate "
                        "adopts one that carries it only if it beats the incumbent (default: none)")
    from ..llm_flags import add_llm_arguments

    add_llm_arguments(p)  # a language model also writes candidate improvers (rewrites of the improver's code)
    p.add_argument("--proposers", metavar="NAMES",
                   help="comma-separated proposers of candidate improvers (default: grammar for a composed "
                        "starting improver, mutate otherwise; grammar,mutate adds libcst edits)")
    p.set_defaults(func=cmd_self_improve)
    return p


def cmd_self_improve(args: argparse.Namespace) -> int:
    import time

    from ..errors import RsiError
    from ..interrupts import interrupts_stop
    from ..memory import carried
    from .selfimprove import BEST_FILE, MEMORY_FILE, SelfImproveConfig, SelfImproveRun

    if args.address and args.executor == "local":
        raise RsiError("--address is the Ray cluster's, for --executor ray")
    if args.resume:
        if args.memory:
            raise RsiError("--memory is given to a new run; a resumed run keeps the memory it recorded "
                           "(OUT/memory.json)")
        if _llm(args):
            raise RsiError("--llm-* choose the proposers of a new run; a resumed run keeps its own "
                           "(OUT/selfimprove.json)")
        run = SelfImproveRun.reopen(args.resume, args.generations)
    else:
        config = SelfImproveConfig(
            generations=args.generations or 4, budget=args.budget, seeds=args.seeds,
            validation_seeds=args.validation_seeds, confirm_seeds=args.confirm_seeds, test_seeds=args.test_seeds,
            meta_budget=args.meta_budget, neutral_after=args.neutral_after,
            challengers=args.challengers, workers=args.workers, approval=args.approval, level=args.level,
            seed=args.seed, report_test=args.test_seeds > 0,
            proposers=[name.strip() for name in args.proposers.split(",") if name.strip()] if args.proposers else None,
            llm=_llm(args),
            memory=None if args.memory in (None, "none") else
            args.memory if args.memory in ("learn", "offer") else str(Path(args.memory).resolve()),
        )
        out = Path(args.out) if args.out else Path("runs") / f"self-improve-{time.strftime('%Y%m%d-%H%M%S')}"
        run = SelfImproveRun.start(out, config, starting_improver(args.improver, args.start))
    run.executor = args.executor or ("ray" if args.address else "local")
    run.address = args.address
    print(f"self-improvement run: {run.out}", file=sys.stderr)
    run.log = lambda line: print(line, file=sys.stderr, flush=True)
    with interrupts_stop(run.search):
        summary = run.execute()
    print((run.out / "generations.md").read_text() if (run.out / "generations.md").exists() else "")
    print(f"stopped: {summary.stop_reason}")
    pending_requests = run.store.promotions("pending")
    for request in pending_requests:
        print(f"waiting for a person: improver #{request['candidate_id']} ({request['evidence'].get('summary')}); "
              f"rsi approve {run.out} {request['candidate_id']}, then rsi self-improve --resume {run.out}")
    if summary.stop_reason not in ("all generations done",):
        print(f"continue with: rsi self-improve --resume {run.out}")
    print(f"adopted improver: {run.out / BEST_FILE} (#{run.incumbent_id}); curves: {run.out / 'curves.svg'}")
    if carried((run.out / BEST_FILE).read_text(), str(run.out / BEST_FILE)) is not None:
        print("it carries its memory (MEMORY): rsi run PROBLEM --improver ... uses it unless given another")
    if run.memory is not None:
        print(f"its memory: {run.out / MEMORY_FILE} (use both: rsi run PROBLEM --improver {run.out / BEST_FILE} "
              f"--memory {run.out / MEMORY_FILE})")
    return 0


def _llm(args: argparse.Namespace) -> dict | None:
    """The ``[proposer.llm]`` table the --llm-* flags give (a model also writes candidate improvers), or None."""
    from ..llm_flags import llm_table

    data: dict = {}
    return data["proposer"]["llm"] if llm_table(args, data) else None


def starting_improver(improver: str | None, start: str | None) -> str | Path | None:
    """The file ``--improver`` names, or the shipped improver ``--start`` names (None: the seed)."""
    from ..errors import RsiError
    from ..improvers.components import COMPOSED_IMPROVER

    if improver and start:
        raise RsiError("--improver and --start both name the starting improver; pass one of them")
    return COMPOSED_IMPROVER if start == "composed" else improver


def pending(out_dir: str | Path) -> list[dict]:
    """Adoption requests of a self-improvement run that wait for a person."""
    from ..storage import Store

    return Store.open(Path(out_dir)).promotions("pending")


def approve(out_dir: str | Path, candidate_id: int, note: str | None = None):
    """Approve a pending improver: the run adopts it at its next generation (or on --resume)."""
    from ..oversight import adoption

    return adoption.approve(Path(out_dir), candidate_id, note)


def reject(out_dir: str | Path, candidate_id: int, note: str | None = None) -> None:
    from ..oversight import adoption

    adoption.reject(Path(out_dir), candidate_id, note)


def main(argv: list[str] | None = None) -> int:
    """`python -m rsi.meta.cli self-improve ...`: the same command, before it is wired into `rsi`."""
    from ..errors import RsiError

    parser = argparse.ArgumentParser(prog="rsi")
    add_self_improve_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RsiError as exc:
        print(f"rsi: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
