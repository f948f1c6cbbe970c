"""The proposer interface: make one child program from a parent and some inspirations."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Proposal:
    """A proposed child: its full source, the operator used and a one-line rationale."""

    source: str
    operator: str
    rationale: str
    tokens: int = 0  # LLM tokens spent on this proposal (budgeted by [run] max_tokens)
    cost: float = 0.0  # dollars spent on this proposal (budgeted by [run] max_cost)


class Proposer(Protocol):
    """Anything with a name, a list of operator names and ``propose``.

    ``propose`` raises ``rsi.errors.ProposalFailed`` when it cannot make a child (the loop records
    the attempt as invalid with that reason). It must only use ``rng`` for randomness, so that
    a seeded run is reproducible.
    """

    name: str

    @property
    def operators(self) -> list[str]: ...

    def propose(
        self,
        parent: str,
        inspirations: list[str],
        operator: str | None,
        rng: random.Random,
    ) -> Proposal: ...
