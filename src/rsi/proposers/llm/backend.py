"""What every model backend shares: the reply, the errors, and bounded retries with backoff.

A backend turns chat ``messages`` into a ``Reply`` (text and token counts). Transient failures
(connection refused or reset, timeouts, HTTP 429 and 5xx) are retried a bounded number of times,
with exponential backoff and jitter (a server's ``Retry-After`` is honoured, capped); anything else,
or the last failure, becomes ``BackendError``, which the proposer turns into a failed proposal with
the reason, so the run goes on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


@dataclass(frozen=True)
class Sampling:
    """How to sample one reply."""

    temperature: float = 0.8
    max_tokens: int = 512
    top_p: float = 0.95
    seed: int = 0
    stop: tuple[str, ...] = ()
    grammar: str | None = None  # a llama.cpp GBNF grammar (used where the backend supports it)


@dataclass(frozen=True)
class Reply:
    """A model's answer and what it cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str | None = None  # "stop", "length", ...
    attempts: int = 1
    notes: tuple[str, ...] = field(default=())  # retried failures, oldest first

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class BackendError(Exception):
    """A model call that failed for good (after its retries, or at once when retrying cannot help)."""

    def __init__(self, reason: str, *, seconds: float = 0.0, attempts: int = 1, prompt_tokens: int = 0,
                 completion_tokens: int = 0):
        super().__init__(reason)
        self.seconds, self.attempts = seconds, attempts
        self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens


class Transient(Exception):
    """Raised inside a backend for a failure worth retrying (``retry_after``: the server's hint)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class Backend(Protocol):
    """A chat model. ``supports_grammar``: GBNF-constrained decoding is available."""

    name: str
    supports_grammar: bool

    def complete(self, messages: Sequence[Message], sampling: Sampling) -> Reply: ...

    def close(self) -> None: ...


T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` further attempts after the first; delay ``backoff * 2**k``, times a jitter factor
    in [0.5, 1.5), at most ``max_delay`` seconds (a server's Retry-After too)."""

    retries: int = 3
    backoff: float = 0.5
    max_delay: float = 20.0

    def call(self, attempt: Callable[[], T], *, seed: int = 0, sleep: Callable[[float], None] = time.sleep
             ) -> tuple[T, int, list[str]]:
        """``attempt()`` until it returns or raises something that is not ``Transient``, at most
        ``retries + 1`` times. Returns (result, attempts, the retried failures' reasons)."""
        jitter = random.Random(seed)  # jitter only shifts timing, never results; seeded anyway
        notes: list[str] = []
        for k in range(self.retries + 1):
            try:
                return attempt(), k + 1, notes
            except Transient as exc:
                notes.append(str(exc))
                if k == self.retries:
                    break
                delay = min(self.max_delay, self.backoff * 2**k * (0.5 + jitter.random()))
                if exc.retry_after is not None:
                    delay = min(self.max_delay, max(delay, exc.retry_after))
                sleep(delay)
        tried = self.retries + 1
        raise BackendError(f"the model endpoint failed {tried} time{'s' * (tried > 1)}: {notes[-1]}"
                           + (f" (earlier: {'; '.join(dict.fromkeys(notes[:-1]))})" if len(notes) > 1 else ""),
                           attempts=tried)
