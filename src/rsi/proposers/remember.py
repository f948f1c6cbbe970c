"""The ``remember`` proposer: a child improver that carries a memory of what paid in earlier searches.

An improver may carry its own memory (``MEMORY``, the JSON of ``rsi.memory`` in a string at module level):
a run that is given none hands it to the improver as ``ctx.memory``, and the seed improver's (or the
composed one's) bandit starts from it. This proposer writes one memory file into the parent
improver, replacing the one it carries, so that the memory becomes part of the improver: measured
by the self-improvement gate like any other edit, and, once adopted, used wherever the improver is.

    [proposer.remember]
    memory = "memory.json"   # the memory to carry (relative to the problem folder); read at each
                             # proposal, so a file written after the run started is found

``rsi self-improve --memory offer`` learns the file from the training problems (rsi's seed
improver) and adds this proposer to the moves on candidate improvers. Operator: ``learned``.
A parent that already carries exactly this memory has no child here (the proposal fails, costing
no evaluation).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ProposalFailed, RsiError
from ..memory import carried, carries, carry, load_memory
from .base import Proposal, ProposalRequest


class RememberProposer:
    name = "remember"
    operators = ["learned"]

    def __init__(self, memory: object = None, problem_dir: Path | None = None):
        if not isinstance(memory, str) or not memory:
            raise RsiError("[proposer.remember] memory: the memory file to carry (rsi memory learn --out FILE)")
        file = Path(memory)
        self.file = file if file.is_absolute() or problem_dir is None else Path(problem_dir) / file

    def propose(self, request: ProposalRequest) -> Proposal:
        parent = request.parent.source
        try:
            mem = load_memory(self.file)
            if carries(parent, mem, "the parent improver"):
                raise ProposalFailed("remember: the parent already carries this memory")
            what = "replaces the memory it carried with" if carried(parent, "the parent") else "now carries"
        except RsiError as exc:
            raise ProposalFailed(f"remember: {exc}") from None
        child = carry(parent, mem)
        return Proposal(source=child, operator="learned",
                        rationale=f"remember: the improver {what} the memory of {mem.get('searches', 0)} searches "
                                  f"({len(mem['arms'])} arms, {self.file.name})")
