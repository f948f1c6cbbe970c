"""The proposer interface: make one child program from a request (a parent, inspirations, choices).

A proposer has a ``name``, a list of ``operators`` and ``propose(request) -> Proposal``. The
search builds the ``ProposalRequest``: the parent and inspirations with their scores, metrics and
errors, the improver's choices for this step (``Step.options``: for a model, the prompt template,
instructions, temperature, edit format...), the problem's description, why this proposer's recent
children failed, and a seed of the call's own (a function of the run seed and the proposal's
index, so that no two calls share a reply and a deterministic model reproduces a run).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Program:
    """A stored program as a proposer sees it."""

    id: int
    source: str
    score: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None  # why its evaluation failed, if it did
    stderr: str = ""  # what its evaluation printed on stderr (capped)
    artifacts: Any = None  # what its evaluator handed back beside the metrics (EvaluationResult artifacts)


@dataclass(frozen=True)
class ProposalRequest:
    """Everything a proposer gets for one child."""

    parent: Program
    inspirations: tuple[Program, ...] = ()
    operator: str | None = None
    rng: random.Random = field(default_factory=random.Random)
    seed: int = 0  # this call's own seed
    options: Mapping[str, Any] = field(default_factory=dict)  # the improver's choices (Step.options)
    problem: str = ""  # the problem's description
    feedback: tuple[str, ...] = ()  # why this proposer's recent children failed, oldest first


@dataclass(frozen=True)
class Proposal:
    """A proposed child: its full source, the operator used and a one-line rationale; for a model,
    the prompt it was given and its reply (stored with the candidate, so a run can be replayed)."""

    source: str
    operator: str
    rationale: str
    tokens: int = 0  # LLM tokens spent on this proposal (budgeted by [run] max_tokens)
    cost: float = 0.0  # dollars spent on this proposal (budgeted by [run] max_cost)
    prompt: str | None = None
    reply: str | None = None
    seconds: float = 0.0  # time spent making it (a model call's latency)
    prompt_tokens: int = 0  # of ``tokens``: read by the model ...
    completion_tokens: int = 0  # ... and written by it
    key: str | None = None  # the proposer's own name for this child: handed back to its ``observe``


class Proposer(Protocol):
    """Anything with a name, a list of operator names and ``propose``.

    ``propose`` raises ``rsi.errors.ProposalFailed`` when it cannot make a child (the search records
    the attempt as invalid with that reason, and counts the tokens and cost the exception carries).
    It must only use ``request.rng`` and ``request.seed`` for randomness, so that a seeded run is
    reproducible.

    A proposer that waits on something outside the process (a model endpoint) may have an int
    attribute ``concurrency``: the search then calls it in threads, up to ``[run] lookahead``
    proposals ahead, while evaluations run (each such call gets its own ``request.rng``, seeded
    from ``request.seed``), so ``propose`` must be safe to call from several threads at once.

    Optional: ``observe(key, score)``. A proposer that learns from its children (a multi-evaluation
    move such as ``rsi.proposers.tune``) returns proposals with a ``key``; the search calls
    ``observe(key, score)`` when that child's result is applied (in ticket order: deterministic),
    with its score, None if it failed, or for a child that repeats an earlier program that
    program's score.
    """

    name: str

    @property
    def operators(self) -> list[str]: ...

    def propose(self, request: ProposalRequest) -> Proposal: ...
