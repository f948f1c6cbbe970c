"""The ``llm`` proposer: a language model writes the child.

Settings (``[proposer.llm]`` in problem.toml, or keyword arguments)::

    [proposer.llm]
    url = "http://127.0.0.1:8080/v1"   # an OpenAI-compatible endpoint (backend "openai") ...
    model = "smollm2"
    api_key_env = "OPENAI_API_KEY"      # read from this variable; unset: an error at start (omit for local servers)
    # gguf = "models/qwen.gguf"         # ... or a GGUF file run in process (backend "llama-cpp"; "smollm2":
    # threads = 2                       #     the packaged SmolLM2-135M-Instruct)
    # replay = "runs/bp1"               # ... or a stored run's replies, offline (backend "replay")
    formats = ["diff", "rewrite", "fill"]   # the edit formats (this proposer's operators)
    temperature = 0.8
    max_tokens = 512
    template = "prompt.txt"             # a file in the problem folder, or a built-in: default, small
    price_per_1k = { prompt = 0.00015, completion = 0.0006 }   # dollars, for [run] max_cost

Per step the improver may override, through ``Step.options``: ``template``, ``instructions``,
``temperature``, ``max_tokens``, ``top_p``, ``inspirations`` (how many to show), ``slot`` (fill:
"expression" or "body") and ``grammar`` (fill: false to sample without the grammar). The edit
format is the step's operator. Every call gets the request's own seed.

A reply that cannot become a child (no code, wrong format, a SEARCH block that does not match, an
endpoint that failed after its retries, a context overflow) raises ``ProposalFailed`` with the
reason, the tokens it spent, the prompt and the reply: the search records the attempt, tells the
next prompt why, and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...errors import ProposalFailed, RsiError
from ..base import Program, Proposal, ProposalRequest
from . import edits
from .backend import Backend, BackendError, Message, RetryPolicy, Sampling
from .prompt import Templates, render_prompt, summary

OPTION_KEYS = ("template", "instructions", "temperature", "max_tokens", "top_p", "inspirations", "slot", "grammar")
DEFAULT_INSTRUCTIONS = "Change the program so that it scores higher."


class Prices(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: float = Field(0.0, ge=0, description="dollars per 1,000 prompt tokens")
    completion: float = Field(0.0, ge=0, description="dollars per 1,000 completion tokens")


class LLMSettings(BaseModel):
    """``[proposer.llm]``, validated (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["openai", "llama-cpp", "replay"] | None = Field(
        None, description="openai: an OpenAI-compatible endpoint (url); llama-cpp: a GGUF file (gguf); replay: "
        "a stored run (replay); default: replay if given, else llama-cpp if gguf is given, else openai")
    url: str | None = Field(None, description="base URL of the endpoint, e.g. http://127.0.0.1:8080/v1")
    model: str | None = Field(None, description="model name sent to the endpoint")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    timeout: float = Field(60.0, gt=0, description="seconds per HTTP request")
    concurrency: int = Field(2, ge=1, le=256, description="model calls in flight at once")
    retries: int = Field(3, ge=0, le=20, description="further attempts after a transient failure")
    backoff: float = Field(0.5, ge=0, description="first retry delay in seconds (doubles, with jitter)")
    grammar: Literal["gbnf"] | None = Field(
        None, description="openai backend: 'gbnf' sends llama.cpp grammars (the fill format's) to the server")
    gguf: str | None = Field(None, description="a .gguf file for the llama-cpp backend ('smollm2': the packaged one)")
    replay: str | None = Field(None, description="a run folder whose stored replies answer the same prompts again "
                               "(backend 'replay': a run replayed offline, no model needed)")
    threads: int | None = Field(None, ge=1, le=256, description="llama-cpp: CPU threads")
    context: int = Field(4096, ge=256, description="llama-cpp: context window in tokens")
    formats: list[edits.Format] = Field(
        default_factory=lambda: list(edits.FORMATS), min_length=1, description="edit formats offered as operators")
    temperature: float = Field(0.8, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(512, ge=1, description="completion tokens per call")
    template: str | None = Field(None, description="prompt template: built-in name or a file in the problem folder")
    instructions: str = Field(DEFAULT_INSTRUCTIONS, description="what to aim for ({{instructions}})")
    inspirations: int = Field(2, ge=0, le=10, description="other programs shown in the prompt")
    max_prompt_chars: int = Field(16_000, ge=1000, description="cap on the prompt's length (inspirations go first)")
    price_per_1k: Prices = Field(default_factory=Prices, description="dollars per 1,000 tokens (for max_cost)")

    @model_validator(mode="after")
    def _endpoint(self) -> LLMSettings:
        backend = self.backend or ("replay" if self.replay else "llama-cpp" if self.gguf else "openai")
        if backend == "replay" and not self.replay:
            raise ValueError("the replay backend needs replay = \"RUN_DIR\" (a run folder with the replies)")
        if backend == "openai" and not (self.url and self.model):
            raise ValueError("the openai backend needs url and model (e.g. url = \"http://127.0.0.1:8080/v1\", "
                             "model = \"NAME\"); for a GGUF file set gguf = \"PATH\" instead")
        if backend == "llama-cpp" and not self.gguf:
            raise ValueError("the llama-cpp backend needs gguf = \"PATH\" (a .gguf model file)")
        self.backend = backend
        return self


def make_backend(settings: LLMSettings, problem_dir: Path | None = None) -> Backend:
    """The backend the settings describe (the API key and the model file are checked here)."""
    if settings.backend == "replay":
        from .replay_backend import ReplayBackend

        return ReplayBackend(Path(settings.replay or ""))
    if settings.backend == "llama-cpp":
        from .llamacpp_backend import LlamaCppBackend, resolve_gguf

        return LlamaCppBackend(resolve_gguf(settings.gguf or "", problem_dir), threads=settings.threads,
                               context=settings.context)
    from .openai_backend import OpenAIBackend

    return OpenAIBackend(settings.url or "", settings.model or "", api_key_env=settings.api_key_env,
                         timeout=settings.timeout, concurrency=settings.concurrency,
                         retry=RetryPolicy(settings.retries, settings.backoff), grammar=settings.grammar)


class LLMProposer:
    """A language model as a proposer; its operators are the edit formats (see the module doc)."""

    name = "llm"

    def __init__(self, *, problem_dir: str | Path | None = None, backend: Backend | str | None = None,
                 **settings: Any):
        if backend is not None and not isinstance(backend, str):
            self.backend: Backend = backend  # a ready backend (tests, embedding programs)
            settings.setdefault("url", "given")
            settings.setdefault("model", getattr(backend, "model", "given"))
        elif backend is not None:
            settings["backend"] = backend
        try:
            self.settings = LLMSettings.model_validate(settings)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "settings"
            raise RsiError(f"[proposer.llm] {where}: {first['msg']}") from None
        self.problem_dir = Path(problem_dir) if problem_dir is not None else None
        self.templates = Templates(self.problem_dir)
        if self.settings.template:
            self.templates.get(self.settings.template)  # a missing or broken template fails at start
        if not hasattr(self, "backend"):
            self.backend = make_backend(self.settings, self.problem_dir)

    @property
    def operators(self) -> list[str]:
        return list(self.settings.formats)

    @property
    def concurrency(self) -> int:
        """Calls that may be in flight at once: the search writes this many proposals ahead, in
        threads, while evaluations run (``[run] lookahead``)."""
        return self.settings.concurrency

    @property
    def schedule(self) -> dict[int, tuple[int, int]] | None:
        """Replaying a run (backend "replay"): where that run resolved each of this proposer's
        proposals, for a search that resolves them as written (``[run] proposal_order``)."""
        return getattr(self.backend, "schedule", None)

    def close(self) -> None:
        self.backend.close()

    # --- one proposal ---------------------------------------------------------------------------------
    def propose(self, request: ProposalRequest) -> Proposal:
        options = request.options
        unknown = sorted(set(options) - set(OPTION_KEYS))
        if unknown:
            raise ProposalFailed(f"llm: unknown options {unknown} from the improver; known: {', '.join(OPTION_KEYS)}")
        fmt = request.operator or self.settings.formats[0]
        if fmt not in self.settings.formats:
            raise ProposalFailed(f"llm has no edit format {fmt!r}; it has {', '.join(self.settings.formats)}")
        parent = request.parent.source
        slot = self._slot(parent, request) if fmt == "fill" else None
        messages = self._messages(request, fmt, slot)
        prompt = render_prompt(messages)
        sampling = self._sampling(request, fmt, slot, parent)
        try:
            reply = self.backend.complete(messages, sampling)
        except BackendError as exc:
            tokens = exc.prompt_tokens + exc.completion_tokens
            raise ProposalFailed(f"llm: {exc}", tokens=tokens, cost=self._cost(exc.prompt_tokens,
                                 exc.completion_tokens), prompt=prompt, seconds=exc.seconds,
                                 prompt_tokens=exc.prompt_tokens, completion_tokens=exc.completion_tokens) from None
        cost = self._cost(reply.prompt_tokens, reply.completion_tokens)
        spent: dict[str, Any] = {"tokens": reply.tokens, "cost": cost, "prompt": prompt, "reply": reply.text,
                                 "seconds": reply.seconds, "prompt_tokens": reply.prompt_tokens,
                                 "completion_tokens": reply.completion_tokens}
        try:
            child = self._apply(fmt, parent, reply.text, slot, options)
        except edits.EditFailed as exc:
            cut = " (the reply was cut at max_tokens)" if reply.finish_reason == "length" else ""
            raise ProposalFailed(f"llm {fmt}: {exc}{cut}", **spent) from None
        why = edits.rationale(reply.text) if fmt != "fill" else ""
        what = (f"fill {slot.kind} of {slot.function}" if slot is not None else fmt)
        return Proposal(source=child, operator=fmt, rationale=f"llm {what}: {why}" if why else f"llm {what}",
                        **spent)

    def _apply(self, fmt: str, parent: str, text: str, slot: edits.Slot | None, options: Mapping[str, Any]) -> str:
        if fmt == "diff":
            return edits.apply_diff(parent, edits.parse_diff(text))
        if fmt == "rewrite":
            return edits.apply_rewrite(parent, text)
        assert slot is not None
        return edits.apply_fill(parent, slot, text)

    def _slot(self, parent: str, request: ProposalRequest) -> edits.Slot:
        try:
            found = edits.slots(parent)
        except edits.EditFailed as exc:
            raise ProposalFailed(f"llm fill: {exc}") from None
        kind = request.options.get("slot")
        if kind not in (None, "expression", "body"):
            raise ProposalFailed(f"llm fill: options slot must be 'expression' or 'body', not {kind!r}")
        wanted = [s for s in found if s.kind == (kind or "expression")] or (
            [s for s in found if s.kind == "body"] if kind is None else [])
        if not wanted:
            raise ProposalFailed(f"llm fill: the parent has no {kind or 'expression or function body'} to fill "
                                 "in its editable regions")
        return request.rng.choice(wanted)

    def _sampling(self, request: ProposalRequest, fmt: str, slot: edits.Slot | None, parent: str) -> Sampling:
        options, s = request.options, self.settings
        grammar = None
        if slot is not None and slot.kind == "expression" and options.get("grammar", True) \
                and self.backend.supports_grammar:
            grammar = edits.expression_grammar(slot.names, parent, slot.arrays)
        max_tokens = int(options.get("max_tokens", s.max_tokens))
        if grammar is not None:
            max_tokens = min(max_tokens, 96)  # one expression
        return Sampling(temperature=float(options.get("temperature", s.temperature)),
                        top_p=float(options.get("top_p", s.top_p)), max_tokens=max_tokens,
                        seed=request.seed, grammar=grammar)

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        prices = self.settings.price_per_1k
        return (prompt_tokens * prices.prompt + completion_tokens * prices.completion) / 1000.0

    # --- the prompt -------------------------------------------------------------------------------------
    def _messages(self, request: ProposalRequest, fmt: str, slot: edits.Slot | None) -> list[Message]:
        options, s = request.options, self.settings
        name = str(options.get("template") or s.template or ("small" if fmt == "fill" else "default"))
        try:
            template = self.templates.get(name)
        except RsiError as exc:
            raise ProposalFailed(f"llm: {exc}") from None
        parent = request.parent
        region = edits.pick_region(parent.source) if parent.source else None
        values = {
            "problem": request.problem.strip(),
            "summary": summary(request.problem),
            "parent": parent.source.rstrip(),
            "block": edits.block_text(parent.source, region).rstrip() if region else parent.source,
            "score": _number(parent.score),
            "metrics": _metrics(parent),
            "errors": _errors(parent),
            "feedback": _feedback(request.feedback),
            "instructions": str(options.get("instructions") or s.instructions),
            "rules": edits.markers_note(parent.source),
            "slot": slot.text if slot else "",
            "function": slot.function if slot else "",
            "names": ", ".join(slot.names) if slot else "",
        }
        values["format"] = self._format(fmt, slot, values)
        shown = int(options.get("inspirations", s.inspirations))
        budget = s.max_prompt_chars - sum(len(v) for v in values.values()) - len(template.user) - len(template.system)
        values["inspirations"] = _inspirations(request.inspirations[:shown], max(budget, 0))
        if budget < 0:  # the parent and the description alone are too long: trim the description
            values["problem"] = values["problem"][:max(0, len(values["problem"]) + budget)]
        return template.render(values)

    def _format(self, fmt: str, slot: edits.Slot | None, values: Mapping[str, str]) -> str:
        name = "format-fill-body" if slot is not None and slot.kind == "body" else f"format-{fmt}"
        text = self.templates.text(name)
        for key in ("slot", "function", "names"):
            text = text.replace("{{" + key + "}}", values[key])
        return text.strip()


def _number(value: float | None) -> str:
    return "not scored" if value is None else f"{value:.6g}"


def _metrics(program: Program) -> str:
    shown = [f"- {k} = {_number(v)}" for k, v in sorted(program.metrics.items()) if k != "combined_score"][:12]
    return ("Its metrics:\n" + "\n".join(shown) + "\n") if shown else ""


def _errors(program: Program) -> str:
    parts = []
    if program.error:
        parts.append(f"Its evaluation failed: {program.error.strip()[-1500:]}")
    if program.stderr.strip():
        parts.append(f"It printed on stderr:\n{program.stderr.strip()[-800:]}")
    if program.artifacts:
        parts.append("Its evaluator's feedback (artifacts):\n" + _artifacts(program.artifacts))
    return "\n".join(parts)


def _artifacts(artifacts: object, limit: int = 1500) -> str:
    """The evaluator's artifacts, a line per entry, at most ``limit`` characters."""
    import json

    items = artifacts.items() if isinstance(artifacts, dict) else [("artifacts", artifacts)]
    lines = [f"- {key}: {value if isinstance(value, str) else json.dumps(value)}" for key, value in items]
    text = "\n".join(line if len(line) <= 600 else line[:597] + "..." for line in lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _feedback(reasons: tuple[str, ...]) -> str:
    if not reasons:
        return ""
    return "Your previous attempts failed (avoid this):\n" + "\n".join(f"- {r}" for r in reasons) + "\n"


def _inspirations(programs: tuple[Program, ...], budget: int) -> str:
    parts: list[str] = []
    for program in programs:
        region = edits.pick_region(program.source) if program.source else None
        code = edits.block_text(program.source, region) if region else program.source
        text = f"## Program {program.id} (score {_number(program.score)})\n```python\n{code.rstrip()}\n```\n"
        if len(text) > budget:
            break
        budget -= len(text)
        parts.append(text)
    return ("# Other programs, for ideas\n" + "".join(parts)) if parts else ""

