"""Proposals written ahead ([run] lookahead): a proposer that calls out writes the next children in
threads while the workers evaluate; the same seed still gives the same run; a stop stores what was
paid for; the model calls' figures reach `rsi show`. With ``[run] proposal_order = "written"`` a slow
call no longer holds up the children chosen after it, and the stops behave the same.

The proposer here is real code that is slow on purpose: the built-in ``mutate`` edits, behind a
random sleep (the latency of a model) and with token counts, declaring a ``concurrency`` as model
proposers do. The test against a real model server is in test_llm.py.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from conftest import TARGET_EVALUATE, TARGET_INITIAL, TimedExecutor, covered, write_problem

import rsi
from rsi.cli import main
from rsi.errors import ProposalFailed
from rsi.proposers.base import Proposal, ProposalRequest
from rsi.proposers.mutate import MutateProposer
from rsi.run import drive
from rsi.status import StopReason

# an evaluator that takes its time, different per candidate (results arrive out of order)
SLOW_EVALUATE = TARGET_EVALUATE.replace("def evaluate(program_path):\n", '''def evaluate(program_path):
    import hashlib, time
    text = open(program_path).read()
    time.sleep(0.05 + hashlib.sha256(text.encode()).digest()[0] / 255 * 0.05)
''')


class SlowWriter:
    """``mutate``'s edits, written slowly (a random sleep, not seeded: only the timing varies), with
    the token counts and latency a model proposer reports."""

    name = "writer"
    concurrency = 2
    delay = (0.02, 0.08)
    late: tuple[int, float] | None = None  # (n, seconds): calls after the n-th take that long
    calls: list[tuple[float, float]] = []  # (start, end) of every call, wall clock
    started = 0
    lock = threading.Lock()

    def __init__(self) -> None:
        self.inner = MutateProposer()

    @property
    def operators(self) -> list[str]:
        return self.inner.operators

    def propose(self, request: ProposalRequest) -> Proposal:
        start, calls = time.time(), self.calls  # a call left running by an earlier test adds to its own list
        with self.lock:
            SlowWriter.started += 1
            late = self.late is not None and SlowWriter.started > self.late[0]
        time.sleep(self.late[1] if late and self.late else random.uniform(*self.delay))
        prompt, completion = 100 + request.seed % 50, 20 + request.seed % 7
        try:
            proposal = self.inner.propose(request)
        except ProposalFailed as exc:  # a reply that made no child: paid for all the same
            raise ProposalFailed(str(exc), tokens=prompt + completion, seconds=time.time() - start,
                                 prompt_tokens=prompt, completion_tokens=completion) from None
        finally:
            with self.lock:
                calls.append((start, time.time()))
        return Proposal(proposal.source, proposal.operator, proposal.rationale, tokens=prompt + completion,
                        cost=completion * 1e-5, prompt="(the parent)", reply=proposal.rationale,
                        seconds=time.time() - start, prompt_tokens=prompt, completion_tokens=completion)


@pytest.fixture(autouse=True)
def writer():
    rsi.proposers.register("writer", SlowWriter, replace=True)
    SlowWriter.calls = []
    SlowWriter.started = 0
    SlowWriter.delay = (0.02, 0.08)
    SlowWriter.late = None
    yield SlowWriter


def _problem(tmp_path: Path, run: str) -> Path:
    return write_problem(tmp_path / "p", initial=TARGET_INITIAL, evaluate=SLOW_EVALUATE,
                         toml=f'[run]\nproposers = ["writer"]\n{run}\n[oversight]\npromote_every = false\n')


def _candidates(out: Path) -> list[tuple]:
    with rsi.open_run(out) as results:
        return [(c.id, c.parent_id, c.proposer, c.operator, c.fingerprint, c.status, c.score, c.tokens)
                for c in results.candidates()]


def _drive(problem: Path, out: Path, lookahead: int, budget: int, improver: Path | None = None,
           order: str | None = None) -> tuple[TimedExecutor, rsi.Summary]:
    search = rsi.Search.create(problem, out, rsi.Overrides(budget=budget, seed=3, workers=1, lookahead=lookahead,
                                                          proposal_order=order), improver)
    executor = TimedExecutor(rsi.executors.create("local", search.problem, search.settings, out.parent / "scr"))
    try:
        summary = drive(search, executor)
    finally:
        executor.close()
        search.close()
    assert summary is not None
    return executor, summary


def test_proposals_are_written_while_the_worker_evaluates_and_not_without_lookahead(tmp_path, writer):
    """One worker: without lookahead the model waits for the evaluation and the evaluation for the
    model (their intervals never overlap); with it, the model writes while the worker evaluates."""
    problem = _problem(tmp_path, "")
    writer.delay = (0.08, 0.12)
    serial, summary = _drive(problem, tmp_path / "serial", lookahead=0, budget=10)
    assert summary.evaluations == 10
    assert writer.calls and covered(serial.intervals, writer.calls) < 0.005 * len(writer.calls)

    writer.calls = []
    ahead, summary = _drive(problem, tmp_path / "ahead", lookahead=2, budget=10)
    assert summary.evaluations == 10 and summary.stop_reason is StopReason.BUDGET
    evaluating = sum(e - s for s, e in ahead.intervals)
    # the seed's evaluation and the last two have no proposal to overlap: at best 7/10 of the time; measured
    # 0.5 to 0.6 on an idle machine and 0.30 with both cores busy with other searches (the threads wait longer
    # for the CPU there), so the floor is half that: far from the serial run's nothing
    assert covered(ahead.intervals, writer.calls) > 0.15 * evaluating, (writer.calls, ahead.intervals)


@pytest.mark.parametrize("workers", [1, 3])
def test_same_seed_same_candidates_with_proposals_written_ahead(tmp_path, workers):
    problem = _problem(tmp_path, "lookahead = 2")
    runs = []
    for name in ("a", "b"):
        summary = rsi.improve(problem, tmp_path / name, budget=16, seed=7, workers=workers)
        assert summary.evaluations == 16
        runs.append(_candidates(tmp_path / name))
    assert runs[0] == runs[1]
    assert sum(1 for c in runs[0] if c[5] == "ok") > 5


def test_unordered_runs_with_lookahead_finish(tmp_path):
    problem = _problem(tmp_path, "lookahead = 3\nordered = false")
    summary = rsi.improve(problem, tmp_path / "r", budget=12, seed=1, workers=2)
    assert summary.evaluations == 12 and summary.stop_reason is StopReason.BUDGET


def test_lookahead_defaults_to_the_model_proposers_concurrency(tmp_path):
    search = rsi.Search.create(_problem(tmp_path, ""), tmp_path / "r")
    assert search.lookahead == SlowWriter.concurrency
    search.close()
    mutate_only = write_problem(tmp_path / "m")
    search = rsi.Search.create(mutate_only, tmp_path / "m-run")
    assert search.lookahead == 0
    search.close()


@pytest.mark.parametrize("order", ["chosen", "written"])
def test_a_token_budget_stops_new_proposals_and_keeps_those_in_flight(tmp_path, order):
    """The stop comes while proposals are being written: they are awaited and stored (their tokens
    counted; a valid child stays pending, unevaluated), and a resumed run evaluates them first."""
    problem = _problem(tmp_path, f"lookahead = 3\nmax_tokens = 1500\nproposal_order = \"{order}\"")
    out = tmp_path / "r"
    summary = rsi.improve(problem, out, budget=100, seed=2, workers=2)
    assert summary.stop_reason is StopReason.TOKENS
    with rsi.open_run(out) as results:
        cands = results.candidates()
        usage = results.store.load_state()["usage"]
    spent = sum(c.tokens or 0 for c in cands)
    assert usage["tokens"] == spent >= 1500  # every call paid for is counted and stored
    assert spent < 1500 + 5 * 200  # ... and no more than the proposals in flight at the stop (4, written: 5)
    pending = [c.id for c in cands if c.status == "pending"]
    assert all(c.status in ("ok", "error", "timeout", "pending", "invalid", "rejected", "duplicate") for c in cands)

    search = rsi.Search.resume(out, rsi.Overrides(max_tokens=10**6, budget=summary.evaluations + len(pending)))
    asked = []
    while (task := search.ask()) is not None and task.candidate_id in pending:
        asked.append(task.candidate_id)
    assert asked == pending  # evaluated first on resume, not proposed again
    search.stop(StopReason.INTERRUPTED)
    search.finish()
    search.close()


@pytest.mark.parametrize("order", ["chosen", "written"])
def test_a_time_limit_is_not_held_up_by_proposals_being_written(tmp_path, writer, order):
    """At the time limit the proposals still being written are dropped, not awaited (here every
    call after the fourth takes 30 s: those are still being written at the limit)."""
    writer.delay, writer.late = (0.3, 0.5), (4, 30.0)
    problem = _problem(tmp_path, f"lookahead = 3\nproposal_order = \"{order}\"")
    summary = rsi.improve(problem, tmp_path / "r", budget=1000, time=5.0, seed=1, workers=1)
    assert summary.stop_reason is StopReason.TIME
    with rsi.open_run(tmp_path / "r") as results:
        stored = [c for c in results.candidates() if c.proposer == "writer"]
    assert 0 < len(stored) < writer.started  # some were dropped, half-written
    assert all(c.status != "pending" or c.source for c in stored)


@pytest.mark.parametrize("order", ["chosen", "written"])
def test_the_time_limit_is_checked_while_a_model_writes(tmp_path, writer, order):
    """A call far longer than the time limit: the run stops at the limit, not after the call."""
    writer.delay = (60.0, 60.0)
    problem = _problem(tmp_path, f"lookahead = 1\nproposal_order = \"{order}\"")
    summary = rsi.improve(problem, tmp_path / "r", budget=1000, time=10.0, seed=1, workers=1)
    assert summary.stop_reason is StopReason.TIME and writer.started >= 1
    with rsi.open_run(tmp_path / "r") as results:
        assert [c.id for c in results.candidates()] == [1]  # nothing written in time, nothing stored


@pytest.mark.parametrize(("order", "writing"), [("chosen", 3), ("written", 4)])
def test_an_interrupt_drops_the_proposals_being_written(tmp_path, writer, order, writing):
    """Three proposals written ahead (chosen order: lookahead + 1); resolved as written, the choosing
    waits only once the model has more than lookahead + 1 unwritten: four."""
    writer.delay = (0.5, 0.6)
    search = rsi.Search.create(_problem(tmp_path, "lookahead = 2"), tmp_path / "r",
                               rsi.Overrides(budget=20, proposal_order=order))
    executor = rsi.executors.create("local", search.problem, search.settings, tmp_path / "scr")
    try:
        seed = search.ask()
        assert seed is not None
        executor.submit(seed)
        results: list = []
        while not results:
            results = executor.collect(0.2)
        search.tell(results[0])
    finally:
        executor.close()
    assert search.ask() is None and search.writing == writing  # proposals being written, none ready
    search.stop(StopReason.INTERRUPTED)
    assert search.done and search.writing == 0
    search.finish()
    with rsi.open_run(tmp_path / "r") as results_:
        assert [c.id for c in results_.candidates()] == [1]  # nothing half-written was stored
    search.close()


def test_rsi_show_has_the_model_calls_and_a_candidates_call(tmp_path, capsys):
    problem = _problem(tmp_path, "lookahead = 1")
    rsi.improve(problem, tmp_path / "r", budget=8, seed=4, workers=2)
    assert main(["show", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "model calls" in out and "latency median" in out
    line = next(li for li in out.splitlines() if li.startswith("writer"))
    with rsi.open_run(tmp_path / "r") as results:
        calls = [c for c in results.candidates() if c.proposer == "writer"]
        child = next(c for c in calls if c.status == "ok")
    prompt_total = sum(c.prompt_tokens or 0 for c in calls)
    assert line.split()[1] == str(len(calls)) and f"{prompt_total:,}" in line
    assert main(["show", str(tmp_path / "r"), "--candidate", str(child.id)]) == 0
    view = capsys.readouterr().out
    assert f"#{child.id} ok" in view and f"({child.prompt_tokens} in, {child.completion_tokens} out)" in view
    assert "latency" in view and "evaluation" in view
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Model calls" in html and "latency median" in html


# --- proposals resolved as they are written ([run] proposal_order = "written") ---------------------------
RARE_WRITER = """
from rsi.improvers import Step


def start(ctx):
    ctx.state.setdefault("n", 0)


def next_step(ctx):
    ctx.state["n"] += 1
    proposer = "writer" if ctx.state["n"] == 2 else "mutate"
    return Step(parent=ctx.archive.best().id, proposer=proposer)
"""


def _mixed(tmp_path: Path) -> tuple[Path, Path]:
    problem = write_problem(tmp_path / "mixed", initial=TARGET_INITIAL, evaluate=SLOW_EVALUATE,
                            toml='[run]\nproposers = ["mutate", "writer"]\n[oversight]\npromote_every = false\n')
    improver = tmp_path / "rare.py"
    improver.write_text(RARE_WRITER)
    return problem, improver


def _during(executor: TimedExecutor, call: tuple[float, float], ids: set[int]) -> list[int]:
    """Candidates among ``ids`` whose evaluation was submitted and collected while ``call`` ran."""
    start, end = call
    return [cid for cid, s, e in executor.evaluated if cid in ids and start < s and e < end]


def test_written_order_a_slow_call_does_not_hold_up_the_children_chosen_after_it(tmp_path, writer):
    """One worker, mutate and a slow writer (4 s a call), chosen second: resolved in the order they
    were chosen, the children chosen after the call wait for it (the worker evaluates nothing new
    while it runs); resolved as written, mutate's children go on being written and evaluated, and
    the writer's child joins the run later (timestamps of the calls and of the executor)."""
    problem, improver = _mixed(tmp_path)
    writer.delay = (4.0, 4.0)
    runs = {}
    for order in ("chosen", "written"):
        writer.calls = []
        executor, summary = _drive(problem, tmp_path / order, lookahead=2, budget=14, improver=improver, order=order)
        assert summary.evaluations == 14 and len(writer.calls) == 1
        with rsi.open_run(tmp_path / order) as results:
            cands = results.candidates()
        # mutate's children chosen after the writer's proposal (the second); chosen order: candidate k + 1 is
        # proposal k; written: a mutation is resolved as soon as it is chosen
        index = {c.id: (c.id - 1 if order == "chosen" else c.resolved_after) for c in cands}
        mutated = {c.id for c in cands if c.proposer == "mutate" and index[c.id] > 2}
        runs[order] = (_during(executor, writer.calls[0], mutated), cands)
    held, cands = runs["chosen"]
    assert held == [], held  # nothing chosen after the call was evaluated while it ran
    flowed, cands = runs["written"]
    assert len(flowed) >= 4, (flowed, writer.calls)
    model = next(c for c in cands if c.proposer == "writer")
    later = [c for c in cands if c.proposer == "mutate" and c.id < model.id and c.resolved_after > 2]
    assert model.resolved_after > 2 and len(later) >= 4  # chosen after it (proposal 2), stored before it


def test_written_order_the_choosing_waits_only_when_a_model_has_too_many_unwritten(tmp_path, writer):
    """The writer alone, calls of 0.3 s, lookahead 1: at most lookahead + 2 = 3 calls run at once."""
    writer.delay = (0.3, 0.3)
    problem = _problem(tmp_path, 'lookahead = 1\nproposal_order = "written"')
    summary = rsi.improve(problem, tmp_path / "r", budget=8, seed=5, workers=2)
    assert summary.evaluations == 8
    starts = sorted(writer.calls)
    most = max(sum(1 for s, e in starts if s <= t < e) for t, _ in starts)
    assert most == 3, starts


def test_written_order_rsi_stop_stores_what_is_written_and_drops_the_rest(tmp_path, writer):
    """A person's stop while the writer's calls run: nothing unwritten is waited for or stored, the
    search is done at once (nothing was handed out), and the stored run is intact."""
    writer.delay = (0.5, 0.6)
    search = rsi.Search.create(_problem(tmp_path, 'lookahead = 2\nproposal_order = "written"'), tmp_path / "r",
                               rsi.Overrides(budget=20))
    executor = rsi.executors.create("local", search.problem, search.settings, tmp_path / "scr")
    try:
        seed = search.ask()
        assert seed is not None
        executor.submit(seed)
        results: list = []
        while not results:
            results = executor.collect(0.2)
        search.tell(results[0])
    finally:
        executor.close()
    assert search.ask() is None and search.writing == 4
    search.stop(StopReason.STOP_REQUESTED)
    assert search.ask() is None and search.writing == 0 and search.done
    assert search.finish().stop_reason is StopReason.STOP_REQUESTED
    search.close()
    with rsi.open_run(tmp_path / "r") as stored:
        assert [c.id for c in stored.candidates()] == [1] and stored.verify_audit().ok


WATCHER = '''from rsi.improvers import Step

def next_step(ctx):
    ctx.state.setdefault("writing", []).append([list(w) for w in ctx.writing])
    return Step(parent=ctx.archive.best().id, proposer="writer", operator=ctx.operators["writer"][0])
'''


@pytest.mark.parametrize("order", ["chosen", "written"])
def test_the_improver_sees_the_proposals_being_written(tmp_path, writer, order):
    """ctx.writing: the (proposer, operator) of each proposal chosen and not resolved yet, as the
    improver sees it in its sandboxed host; none without lookahead."""
    problem = _problem(tmp_path, "")
    improver = tmp_path / "watcher.py"
    improver.write_text(WATCHER)
    op = MutateProposer().operators[0]
    seen = {}
    for lookahead in (0, 2):
        out = tmp_path / f"{order}-{lookahead}"
        _drive(problem, out, lookahead=lookahead, budget=10, improver=improver, order=order)
        with rsi.open_run(out) as results:
            seen[lookahead] = results.store.load_state()["improver"]["writing"]
    assert seen[0] and all(w == [] for w in seen[0])
    assert max(len(w) for w in seen[2]) >= 2, seen[2]
    assert all(entry == ["writer", op] for w in seen[2] for entry in w)
