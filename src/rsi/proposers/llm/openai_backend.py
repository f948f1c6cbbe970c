"""The ``openai`` backend: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's
server, LM Studio, ...), through the ``openai`` client.

The API key is read from the environment variable named by ``api_key_env``; when that is set and
the variable is empty, construction fails (at the start of a run, not at its first call). Local
servers need no key: leave ``api_key_env`` out. The client's own retries are off; ours
(``RetryPolicy``) retry connection errors, timeouts, 429 and 5xx with backoff and jitter.
At most ``concurrency`` calls are in flight at once, whatever the number of threads calling.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from ...errors import RsiError
from .backend import BackendError, Message, Reply, RetryPolicy, Sampling, Transient

NO_KEY = "sk-no-key-needed"  # what the client sends to a local server that wants none


class OpenAIBackend:
    """Chat completions from ``base_url`` with ``model``. ``grammar``: "gbnf" sends a llama.cpp
    grammar as the request's ``grammar`` field (llama.cpp's servers read it); None sends none."""

    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = None, timeout: float = 60.0,
                 concurrency: int = 2, retry: RetryPolicy | None = None, grammar: str | None = None,
                 extra_body: dict[str, Any] | None = None):
        try:
            import openai
        except ImportError:
            raise RsiError("the llm proposer's openai backend needs the `openai` package: "
                           "pip install 'rsi[llm]' (or pip install openai)") from None
        key = NO_KEY
        if api_key_env:
            key = os.environ.get(api_key_env, "")
            if not key:
                raise RsiError(f"[proposer.llm] api_key_env = {api_key_env!r}, but the environment variable "
                               f"{api_key_env} is not set: export {api_key_env}=... before the run (or remove "
                               "api_key_env for a local server that needs no key)")
        self._openai = openai
        self.base_url = base_url
        self.model = model
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.supports_grammar = grammar == "gbnf"
        self.extra_body = dict(extra_body or {})
        self._slots = threading.BoundedSemaphore(concurrency)
        self._client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)

    def complete(self, messages: Sequence[Message], sampling: Sampling) -> Reply:
        body = dict(self.extra_body)
        if sampling.grammar and self.supports_grammar:
            body["grammar"] = sampling.grammar
        kwargs: dict[str, Any] = {
            "model": self.model, "messages": list(messages), "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens, "top_p": sampling.top_p, "seed": sampling.seed,
        }
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)
        if body:
            kwargs["extra_body"] = body
        started = time.monotonic()
        try:
            with self._slots:
                response, attempts, notes = self.retry.call(lambda: self._once(kwargs), seed=sampling.seed)
        except BackendError as exc:
            exc.seconds = time.monotonic() - started
            raise
        choice = response.choices[0] if response.choices else None
        usage = response.usage
        return Reply(
            text=(choice.message.content or "") if choice is not None else "",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            seconds=time.monotonic() - started, finish_reason=choice.finish_reason if choice is not None else None,
            attempts=attempts, notes=tuple(notes))

    def _once(self, kwargs: dict[str, Any]) -> Any:
        openai = self._openai
        try:
            return self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise Transient(f"no answer within {self.timeout:g} s (timeout) from {self.base_url}") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise Transient(f"cannot connect to {self.base_url} ({type(cause).__name__}: {cause})") from None
        except openai.APIStatusError as exc:
            status = exc.status_code
            detail = _detail(exc)
            if status == 429 or status >= 500:
                raise Transient(f"HTTP {status} from {self.base_url}: {detail}", _retry_after(exc)) from None
            if status == 400 and _is_overflow(detail):
                raise BackendError(f"context overflow: the prompt does not fit the model's context ({detail})"
                                   ) from None
            raise BackendError(f"HTTP {status} from {self.base_url}: {detail}") from None

    def close(self) -> None:
        self._client.close()


def _detail(exc: Any) -> str:
    """The server's error message, short."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        message = inner.get("message") if isinstance(inner, dict) else body.get("message") or inner
        if message:
            return str(message)[:300]
    return str(getattr(exc, "message", exc))[:300]


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _is_overflow(detail: str) -> bool:
    text = detail.lower()
    return any(k in text for k in ("context", "too long", "exceed", "maximum context", "n_ctx"))
