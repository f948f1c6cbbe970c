"""The ``replay`` backend: a stored run answers again, offline.

Every prompt and reply of a run is in its database. Replaying reads the ``llm`` candidates of a run
folder and answers each call with the reply stored for the same prompt text and seed (runs stored
before seeds were: the k-th time a prompt comes, the k-th reply it got), whatever the order in which
calls written ahead arrive, with the same token count, and a stored failure
(connection refused, timeout...) fails again with its reason. With the same problem, settings, seed
and workers, the new run proposes exactly what the first one did, with no model running:
``[proposer.llm] replay = "runs/bp1"`` (or ``--llm-set replay=runs/bp1``). A run whose proposals
were resolved as they were written (``[run] proposal_order = "written"``) depends on timing; its
``schedule`` (where each model proposal was resolved) lets the replaying search resolve each one
at the same point, so that run is reproduced too.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from ...errors import RsiError
from .backend import BackendError, Message, Reply, Sampling
from .prompt import render_prompt

FAILED = "proposal failed: llm: "  # how the search records a proposal whose model call failed


class ReplayBackend:
    name = "replay"
    supports_grammar = True  # as the replayed model's backend did or not: the reply is the stored one either way

    def __init__(self, run_dir: Path):
        from ...results import open_run

        if not (Path(run_dir) / "rsi.db").is_file():
            raise RsiError(f"[proposer.llm] replay: {run_dir} is not a run folder (no rsi.db)")
        self.model = f"replay of {run_dir}"
        self._answers: dict[tuple[str, int | None], deque[tuple[str | None, int, str | None]]] = {}
        self._lock = threading.Lock()
        # the proposal's seed -> (proposals chosen when the run resolved it, its candidate id)
        self.schedule: dict[int, tuple[int, int]] = {}
        with open_run(run_dir) as results:
            for cand in results.candidates():
                if cand.proposer == "llm" and cand.prompt is not None:
                    self._answers.setdefault((cand.prompt, cand.propose_seed), deque()).append(
                        (cand.reply, cand.tokens or 0, cand.error))
                if cand.proposer == "llm" and cand.propose_seed is not None and cand.resolved_after is not None:
                    self.schedule[cand.propose_seed] = (cand.resolved_after, cand.id)

    def complete(self, messages: Sequence[Message], sampling: Sampling) -> Reply:
        prompt = render_prompt(list(messages))
        with self._lock:
            answers = self._answers.get((prompt, sampling.seed)) or self._answers.get((prompt, None))
            answer = answers.popleft() if answers else None
        if answer is None:
            raise BackendError("replay: the replayed run has no (further) reply to this prompt: it asked something "
                               "else here (another seed, setting, problem or rsi version)")
        reply, tokens, error = answer
        if reply is None:
            reason = (error or "the replayed call failed").removeprefix(FAILED)
            raise BackendError(reason, completion_tokens=tokens)
        return Reply(text=reply, completion_tokens=tokens, finish_reason="replay")

    def close(self) -> None:
        self._answers.clear()
