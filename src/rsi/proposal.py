"""From an improver's step to a judged proposal: what the search checks, shows and records.

The search (``rsi.search``) owns the counts and the store; this module holds the rules, as
functions of their inputs: whether an untrusted improver's ``Step`` may be run (``check_step``),
what the proposer is shown (``request_for``, with a per-call seed that no two calls share), the
fields stored for a proposal (``proposal_fields``, ``failed_fields``) and why a written child is
never evaluated (``defect``: it does not parse, or it edits outside the EVOLVE-BLOCKs).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from .errors import ProposalFailed
from .improvers import MAX_CHILDREN, ImproverFailed, Step
from .program import edit_violation, fingerprint, syntax_error, unified_diff
from .proposers.base import Program, Proposal, ProposalRequest, Proposer
from .status import Status
from .storage import Candidate

STDERR_SHOWN = 2000  # the tail of a candidate's stderr a proposer is shown


def is_int(value: object) -> bool:
    """An int and not a bool (improvers are untrusted: their Steps are checked at run time)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_step(step: Step, where: str, proposers: Mapping[str, Proposer], n_islands: int,
               is_program: Callable[[int], bool]) -> None:
    """Raise ``ImproverFailed`` naming what is wrong with ``step`` (``where``: who returned it):
    children out of range, an unknown proposer or operator, an island that does not exist, or a
    parent or inspiration that ``is_program`` says is not a stored program with a source."""
    if not is_int(step.children) or not 1 <= step.children <= MAX_CHILDREN:
        raise ImproverFailed(f"{where}: children must be an int from 1 to {MAX_CHILDREN}")
    if step.proposer not in proposers:
        raise ImproverFailed(f"{where}: no proposer {step.proposer!r} in this run (it has "
                             f"{', '.join(sorted(proposers))}; add one with [run] proposers)")
    if step.operator is not None and step.operator not in proposers[step.proposer].operators:
        raise ImproverFailed(f"{where}: the proposer {step.proposer!r} has no operator {step.operator!r}")
    if not is_int(step.island) or not 0 <= step.island < n_islands:
        raise ImproverFailed(f"{where}: island must be an int from 0 to {n_islands - 1}")
    for cid in [step.parent, *step.inspirations]:
        if not is_int(cid) or not is_program(cid):
            raise ImproverFailed(f"{where}: candidate {cid!r} is not a stored program with a source "
                                 "(choose parents and inspirations from ctx.archive or ctx.population)")


def request_seed(run_seed: int, index: int) -> int:
    """The seed of a run's ``index``-th proposal: no two calls of a run share one, and the same run
    seed gives the same seeds (a deterministic model server then gives the same replies)."""
    return (run_seed * 1_000_003 + index * 92_821 + 17) % (2**31 - 1)


def shown(cand: Candidate) -> Program:
    """A stored candidate as a proposer sees it."""
    return Program(cand.id, cand.source or "", cand.score, dict(cand.metrics), cand.error,
                   (cand.stderr or "")[-STDERR_SHOWN:], cand.artifacts)


def request_for(step: Step, parent: Candidate, inspirations: Iterable[Candidate], *, rng: random.Random,
                seed: int, problem: str, feedback: Iterable[str]) -> ProposalRequest:
    """What the proposer is shown for this child: parent, inspirations, operator and options from
    the improver's step, the problem's description and why its recent children failed."""
    return ProposalRequest(
        parent=shown(parent), inspirations=tuple(shown(c) for c in inspirations), operator=step.operator,
        rng=rng, seed=seed, options=MappingProxyType(dict(step.options)), problem=problem,
        feedback=tuple(feedback))


def _usage_fields(found: Proposal | ProposalFailed) -> dict[str, Any]:
    return {"prompt": found.prompt, "reply": found.reply, "tokens": found.tokens or None,
            "cost": found.cost or None, "propose_seconds": found.seconds or None,
            "prompt_tokens": found.prompt_tokens or None, "completion_tokens": found.completion_tokens or None}


def failed_fields(exc: ProposalFailed) -> dict[str, Any]:
    """The stored fields of a proposal that wrote no child (the call failed or its reply held none)."""
    return {"status": Status.INVALID, "error": f"proposal failed: {exc}", **_usage_fields(exc)}


def proposal_fields(proposal: Proposal, parent_source: str) -> dict[str, Any]:
    """The stored fields of a written child: its source, diff, fingerprint, rationale and the call's cost."""
    return {"operator": proposal.operator, "rationale": proposal.rationale, "source": proposal.source,
            "diff": unified_diff(parent_source, proposal.source), "fingerprint": fingerprint(proposal.source),
            **_usage_fields(proposal)}


def defect(parent_source: str, source: str) -> tuple[Status, str, str] | None:
    """Why a written child is never evaluated, as (status, error, feedback for the proposer's next
    requests): it does not parse, or it changes code outside the EVOLVE-BLOCKs; None if neither."""
    problem = syntax_error(source)
    if problem:
        return Status.INVALID, problem, f"the child does not parse: {problem}"
    violation = edit_violation(parent_source, source)
    if violation:
        return Status.REJECTED, violation, f"the child was rejected: {violation}"
    return None
