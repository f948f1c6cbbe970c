"""Proposals written ahead: the proposals a search has chosen and not yet resolved, the threads that
write them, and the order in which they join the run.

A search's events are C (choose a proposal: the improver's step and the proposer's request), R
(resolve a written proposal: record it, and hand it out if it is a child to evaluate) and A (apply
an evaluation's result). Without lookahead (``[run] lookahead = 0``) a proposal is chosen, written
and resolved at once, when a worker asks for a child. With lookahead ``n`` > 0 (by default the
concurrency of a model proposer) a proposer that calls out (it has a ``concurrency``) writes in a
thread while ``ask`` answers None and the driver goes on telling results; ``Pipeline.ask`` decides
the order of the C and R events, in one of two orders (``[run] proposal_order``):

- **chosen** (the default): up to ``n + 1`` proposals are chosen and not yet resolved. Proposal
  ``p`` is chosen right after proposal ``p - n - 1`` is resolved, proposals are resolved in the
  order they were chosen, and results are applied only just before a proposal is chosen, up to
  child ``T + 1 - parallel`` (``T``: children handed out by then; unordered results apply as they
  arrive). So the same seed gives the same candidates, whatever the timing; each proposal is chosen
  without the outcomes of the ``n`` before it; a model call far slower than an evaluation holds up
  the children chosen after it.
- **written**: a proposal written in a thread joins the run as soon as its call returns (before the
  next choice, in the order they were chosen), any other proposal as soon as it is chosen, so a slow
  model call never holds up the children chosen after it; the choosing waits only while a model has
  more than ``n + 1`` proposals unwritten. Results are applied as in the chosen order. Which calls
  have returned by each choice is a matter of timing, so the run depends on it; each candidate
  stores ``resolved_after`` (the proposals chosen when it was resolved), and a replay of the run's
  replies (``replay_schedule``) resolves each model proposal at that same point, making the same
  candidates.

A stop ends the choosing. At a spent token or money budget (or STUCK) the proposals in flight are
awaited and stored, their tokens counted and a valid child left pending (evaluated first when the run
is resumed): what was paid for is kept. At a time or CPU limit, ``rsi stop`` or a changed evaluator
the run is not held up by a model: proposals already written are stored so, those still being
written are dropped unstored (the calls finish unread in their threads; their tokens are not
counted); an interrupt drops them all.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import Counter, deque
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Protocol

from .errors import ProposalFailed
from .improvers import Step
from .proposers.base import Proposal, ProposalRequest, Proposer
from .sandbox.types import EvalTask
from .status import StopReason
from .storage import Candidate

# stops that wait for the proposals being written (spent budgets, which a seed reproduces: what was
# paid for is stored and counted); at any other stop they are dropped from the first unwritten one on
AWAITED_AT_STOP = (StopReason.TOKENS, StopReason.COST, StopReason.STUCK)


@dataclass
class Pending:
    """A proposal chosen (its step and request made) and not yet resolved into a task or a record:
    written at once (``written``), or being written in a thread (``future``)."""

    step: Step
    parent: Candidate
    seed: int  # the request's
    future: Future[Proposal | ProposalFailed] | None = None
    written: Proposal | ProposalFailed | None = None

    @property
    def ready(self) -> bool:
        return self.future is None or self.future.done()

    def outcome(self) -> Proposal | ProposalFailed:
        if self.future is not None:
            return self.future.result()  # a proposer's bug raises here, in the search's thread
        assert self.written is not None
        return self.written


def begin(step: Step, parent: Candidate, proposer: Proposer, request: ProposalRequest, ahead: bool) -> Pending:
    """A proposal chosen: written now, or, ahead and by a proposer that calls out (``concurrency``),
    in a thread with its own rng (seeded from the request's seed)."""
    if ahead and calls_out(proposer):
        request = dataclasses.replace(request, rng=random.Random(request.seed))
        return Pending(step, parent, request.seed, future=_write_in_thread(proposer, request))
    return Pending(step, parent, request.seed, written=_write(proposer, request))


def calls_out(proposer: Proposer) -> bool:
    """A proposer that waits on something outside the process: it declares an int ``concurrency``."""
    found = getattr(proposer, "concurrency", None)
    return isinstance(found, int) and not isinstance(found, bool)


def _write(proposer: Proposer, request: ProposalRequest) -> Proposal | ProposalFailed:
    try:
        return proposer.propose(request)
    except ProposalFailed as exc:
        return exc


def _write_in_thread(proposer: Proposer, request: ProposalRequest) -> Future[Proposal | ProposalFailed]:
    """``_write`` in a daemon thread of its own (a bounded number at once): a model call still
    running when the program exits (Ctrl-C) does not hold the exit up."""
    future: Future[Proposal | ProposalFailed] = Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(_write(proposer, request))
            except BaseException as exc:  # a proposer's bug: raised by outcome(), in the search's thread
                future.set_exception(exc)

    threading.Thread(target=run, name="rsi-propose", daemon=True).start()
    return future


def default_lookahead(setting: int | None, proposers: Mapping[str, Proposer]) -> int:
    """``[run] lookahead``, or by default the largest ``concurrency`` of the proposers that have one."""
    if setting is not None:
        return setting
    return max([getattr(p, "concurrency", 0) for p in proposers.values() if calls_out(p)], default=0)


def replay_schedule(proposers: Mapping[str, Proposer]) -> dict[int, tuple[int, int]]:
    """Where a replayed run resolved its model proposals, from the proposers that replay one (a
    ``schedule`` attribute): the proposal's seed -> (proposals chosen by then, its candidate id)."""
    merged: dict[int, tuple[int, int]] = {}
    for proposer in proposers.values():
        found = getattr(proposer, "schedule", None)
        if isinstance(found, Mapping):
            merged.update(found)
    return merged


class Events(Protocol):
    """The search's side: the events whose order the pipeline decides (``rsi.search.Search``)."""

    @property
    def stop_reason(self) -> StopReason | None: ...

    def _chosen(self) -> int: ...  # proposals chosen so far

    def _may_choose(self) -> bool: ...  # every result the next choice must know is applied (ordered)

    def _check_budgets(self, reserved: int = 0) -> bool: ...  # a budget is spent (or all in flight)

    def _out_of_time(self) -> bool: ...  # the time limit, checked while a model writes

    def _choose(self, ahead: bool = False) -> Pending: ...  # C

    def _resolve(self, pending: Pending, hand_out: bool = True) -> EvalTask | None: ...  # R


class Drained:
    """``Pipeline.ask``'s answer once nothing is left to choose or resolve."""


DRAINED = Drained()


class Pipeline:
    """The proposals chosen and not yet resolved, oldest first, and the order they join the run in
    (see the module docstring): ``ask(events)`` runs C and R events until a child is handed out
    (its task), something must be waited for (None), or nothing is left to do (``DRAINED``)."""

    def __init__(self, lookahead: int, written: bool, schedule: Mapping[int, tuple[int, int]] | None = None):
        self.lookahead = lookahead
        self.written = written
        self.schedule = dict(schedule or {})
        self.pending: deque[Pending] = deque()
        self._choose_due = True  # chosen order: the next event is choosing a proposal

    def __len__(self) -> int:
        return len(self.pending)

    def clear(self) -> None:
        """An interrupt: proposals being written are dropped (not stored, their tokens not counted;
        a model call under way finishes in its thread, unread)."""
        self.pending.clear()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until the oldest proposal is written (resolved as written:
        any of them). False if it was written already (``ask`` has something to do, or waits for a
        result instead)."""
        if self.written:
            unwritten = [p.future for p in self.pending if p.future is not None and not p.future.done()]
            if not unwritten:
                return False
            wait(unwritten, timeout=timeout, return_when=FIRST_COMPLETED)
            return True
        if not self.pending or self.pending[0].ready:
            return False
        future = self.pending[0].future
        assert future is not None
        wait([future], timeout=timeout)
        return True

    def ask(self, events: Events) -> EvalTask | Drained | None:
        return self._ask_written(events) if self.written else self._ask_chosen(events)

    def _ask_chosen(self, events: Events) -> EvalTask | Drained | None:
        """The chosen order: C right after the R ``lookahead + 1`` proposals before; R in the order of
        C, each waiting for its proposal to be written; A (by ``_may_choose``) just before each C."""
        window = self.lookahead + 1
        while True:
            if not self.pending:
                self._choose_due = True
            if self._choose_due and events.stop_reason is None:
                if not events._may_choose():
                    return None  # an earlier result is due before the next proposal may be chosen
                if events._check_budgets(reserved=len(self.pending)):
                    self._choose_due = False  # stopped, or the evaluation budget is all in flight
                else:
                    self.pending.append(events._choose(ahead=True))
                    self._choose_due = len(self.pending) < window
                    continue
            if not self.pending:
                return DRAINED
            stop = events.stop_reason
            if not self.pending[0].ready:
                if stop is None and events._out_of_time():
                    continue
                if stop is not None and stop not in AWAITED_AT_STOP:
                    self.pending.clear()  # a limit of time or a person's stop: not held up by a model
                    continue
                return None  # being written; results are told meanwhile
            self._choose_due = True
            task = events._resolve(self.pending.popleft(), hand_out=stop is None)
            if task is not None:
                return task

    def _ask_written(self, events: Events) -> EvalTask | Drained | None:
        """The written order: before each C, R of the proposals written by then (in the order of C);
        a proposal written at once is resolved right after its C; A (by ``_may_choose``) just before
        each C, as in the chosen order."""
        while True:
            for pending in self._due(events):
                self.pending.remove(pending)
                task = events._resolve(pending, hand_out=events.stop_reason is None)
                if task is not None:
                    return task
            stop = events.stop_reason
            if stop is not None:
                if stop not in AWAITED_AT_STOP:  # a limit of time or a person's stop: not held up by a model
                    self.pending = deque(p for p in self.pending if p.ready)
                if self.pending:
                    return None  # a spent token or money budget: what is being written is awaited and stored
                return DRAINED
            if self._waiting(events):
                if events._out_of_time():
                    continue
                return None  # a model's calls are all taken (or, replaying, the next one due is being written)
            if not events._may_choose():
                return None  # an earlier result is due before the next proposal may be chosen
            if events._check_budgets(reserved=len(self.pending)):
                if events.stop_reason is None:
                    return None  # the evaluation budget is all in flight or being written
                continue
            pending = events._choose(ahead=True)
            if pending.future is not None:
                self.pending.append(pending)
                continue
            task = events._resolve(pending)
            if task is not None:
                return task

    def _due(self, events: Events) -> list[Pending]:
        """The proposals to resolve now: those written, in the order they were chosen; replaying, a
        model proposal of the replayed run only where that run resolved it (its ``resolved_after``),
        in the order it did."""
        if not self.schedule or events.stop_reason is not None:
            return [p for p in self.pending if p.ready]
        chosen = events._chosen()
        scheduled = sorted((p for p in self.pending if p.seed in self.schedule and self.schedule[p.seed][0] <= chosen),
                           key=lambda p: self.schedule[p.seed])
        due: list[Pending] = []
        for pending in scheduled:
            if not pending.ready:
                break
            due.append(pending)
        return due + [p for p in self.pending if p.seed not in self.schedule and p.ready]

    def _waiting(self, events: Events) -> bool:
        """Whether the next choice waits for a model: one has more than ``lookahead + 1`` proposals
        unwritten, or (replaying) a proposal due here is still being written."""
        chosen = events._chosen()
        if self.schedule and any(p.seed in self.schedule and self.schedule[p.seed][0] <= chosen
                                 for p in self.pending):
            return True
        unwritten = Counter(p.step.proposer for p in self.pending if not p.ready)
        return any(n > self.lookahead + 1 for n in unwritten.values())
