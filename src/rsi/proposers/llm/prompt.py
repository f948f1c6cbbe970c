"""Prompts from template files.

A template is a text file with a ``[system]`` section and a ``[user]`` section (each a line of its
own; without them the whole file is the user message) and ``{{placeholders}}``, filled from the
request:

    {{problem}}       the problem's description (README.md or the evaluator's docstring)
    {{summary}}       its first paragraph, at most 400 characters (for small models' short prompts)
    {{parent}}        the parent program, whole          {{block}}    its EVOLVE-BLOCK
    {{score}}         the parent's score                 {{metrics}}  its other metrics, one a line
    {{errors}}        why the parent's evaluation failed, what it printed on stderr, and its evaluator's
                      feedback (artifacts: OpenEvolve's EvaluationResult artifacts, text_feedback...)
    {{inspirations}}  a few other programs with their scores (their EVOLVE-BLOCKs)
    {{feedback}}      why this proposer's last children failed (put it right next time)
    {{instructions}}  what to aim for (settings ``instructions``, or the improver's options)
    {{format}}        how to write the answer, for the edit format of this call
    {{slot}} {{function}} {{names}}   fill: the expression or body to replace, its function, names in scope
    {{rules}}         which lines may change

rsi's own templates are in this folder (``default.txt``, ``small.txt``, and ``format-*.txt`` for
``{{format}}``). A problem uses its own by naming a file in its folder: ``[proposer.llm] template =
"prompt.txt"``; an improver picks one per step with ``Step.options["template"]`` (a built-in name or
a file in the problem folder). Unknown placeholders are errors when the template is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ...errors import RsiError
from .backend import Message

TEMPLATES = Path(__file__).with_name("templates")
PLACEHOLDERS = ("problem", "summary", "parent", "block", "score", "metrics", "errors", "inspirations", "feedback",
                "instructions", "format", "slot", "function", "names", "rules")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.M)


def summary(description: str, limit: int = 400) -> str:
    """The first paragraph of a description that is not a heading, cut at ``limit`` characters."""
    for paragraph in re.split(r"\n\s*\n", description.strip()):
        text = " ".join(line.strip() for line in paragraph.splitlines() if not line.lstrip().startswith("#"))
        if text.strip():
            return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."
    return ""


@dataclass(frozen=True)
class Template:
    name: str
    system: str
    user: str

    def render(self, values: Mapping[str, str]) -> list[Message]:
        def fill(text: str) -> str:
            out = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text)
            return re.sub(r"\n{3,}", "\n\n", out).strip() + "\n"

        messages = [{"role": "system", "content": fill(self.system)}] if self.system.strip() else []
        return [*messages, {"role": "user", "content": fill(self.user)}]


def parse_template(text: str, name: str) -> Template:
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(PLACEHOLDERS))
    if unknown:
        raise RsiError(f"the prompt template {name} uses unknown placeholders {unknown}; "
                       f"known: {', '.join(PLACEHOLDERS)}")
    parts = _SECTION.split(text)
    if len(parts) == 1:
        return Template(name, "", text)
    sections = {"system": "", "user": ""}
    for role, body in zip(parts[1::2], parts[2::2], strict=True):
        sections[role] += body
    if not sections["user"].strip():
        raise RsiError(f"the prompt template {name} has no [user] section")
    return Template(name, sections["system"], sections["user"])


class Templates:
    """Templates by name: rsi's own (``default``), or a file in the problem folder
    (``prompt.txt``, ``prompts/small.txt``); loaded once each."""

    def __init__(self, problem_dir: Path | None = None):
        self.problem_dir = problem_dir
        self._cache: dict[str, Template] = {}

    def get(self, name: str) -> Template:
        if name not in self._cache:
            path = self._path(name)
            self._cache[name] = parse_template(path.read_text(), str(path))
        return self._cache[name]

    def text(self, name: str) -> str:
        """A built-in text snippet (e.g. ``format-diff``)."""
        return (TEMPLATES / f"{name}.txt").read_text()

    def _path(self, name: str) -> Path:
        if "/" not in name and "." not in name:
            path = TEMPLATES / f"{name}.txt"
            if path.is_file() and not name.startswith("format-"):
                return path
            known = sorted(p.stem for p in TEMPLATES.glob("*.txt") if not p.stem.startswith("format-"))
            raise RsiError(f"no built-in prompt template {name!r} (built-in: {', '.join(known)}); or name a file "
                           "in the problem folder, e.g. template = \"prompt.txt\"")
        path = Path(name).expanduser()
        if not path.is_absolute():
            base = self.problem_dir or Path.cwd()
            path = base / path
        if not path.is_file():
            raise RsiError(f"the prompt template {path} does not exist; a template is a built-in name or a file "
                           f"in the problem folder{f' ({self.problem_dir})' if self.problem_dir else ''}")
        return path


def render_prompt(messages: list[Message]) -> str:
    """The messages as one text (stored with the candidate), in the templates' own layout."""
    return "\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
