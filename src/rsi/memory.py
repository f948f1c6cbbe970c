"""Memory across problems: which operators paid in earlier searches, as a file improvers read at start.

A memory file is JSON::

    {"version": 1, "searches": 42, "problems": ["binpack_online", ...],
     "arms": {"mutate:perturb_constant": {"tries": 812, "improved": 95, "new_best": 31}, ...}}

``arms`` counts, per ``proposer:operator``, the children it made (every attempt: invalid and
duplicate ones cost a proposal too), those better than their parent and those that were a new
best of their search. ``rsi memory learn RUN_DIR...`` builds one from stored runs;
``rsi memory learn --suite train`` (``rsi.meta.memory``) from fresh searches of the self-improvement suite's training
problems (so that its effect can be measured on the test problems, which it never saw).

A run given a memory (``rsi run --memory FILE`` or ``[run] memory``) hands it to its improver as
``ctx.memory``, read-only, and records it in the run (a resumed run uses the recorded copy). An
improver may also carry its own: a module-level ``MEMORY`` holding the same JSON in a triple-quoted
string (a string, so that code edits of the improver's numbers leave it alone; a dict literal works too),
read without running the improver (``carried``) and used when the run gives none (``carry``
writes one into an improver's source: the self-improvement loop's ``remember`` move). The
seed improver (and the composed one's ``bandit``) turn it into a prior: every arm starts with
``memory_weight`` pseudo-tries at its remembered credit rate instead of none, so the operators
that paid before are tried more from the first child on; an arm the memory never saw starts as
before. A memory is a prior, not a rule: the bandit's own counts outweigh it after a few dozen
children.

What the statistics of a search learned inside the self-improvement sandbox are worth: they are
counted by engine code in the sandboxed process that also ran the improver, so a hostile improver
could forge them. ``learn --suite`` therefore runs rsi's own seed improver only; a memory is
advisory (a bandit prior) and never reaches a score.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import RsiError

VERSION = 1
MAX_ARMS = 1000
EMPTY: Mapping[str, Any] = MappingProxyType({})


def run_stats(run_dir: str | Path) -> dict[str, dict[str, int]]:
    """Per ``proposer:operator`` of a stored run: tries, children better than their parent, new bests."""
    from .results import open_run

    arms: dict[str, dict[str, int]] = {}
    scores: dict[int, float | None] = {}
    best: float | None = None
    with open_run(run_dir) as results:
        for cand in results.candidates():
            scores[cand.id] = cand.score if cand.status == "ok" else None
            if cand.proposer == "seed" or cand.parent_id is None:
                best = cand.score if cand.score is not None and (best is None or cand.score > best) else best
                continue
            arm = f"{cand.proposer}:{cand.operator}"
            stats = arms.setdefault(arm, {"tries": 0, "improved": 0, "new_best": 0})
            stats["tries"] += 1
            score, parent = scores[cand.id], scores.get(cand.parent_id)
            if score is None:
                continue
            if parent is not None and score > parent:
                stats["improved"] += 1
            if best is None or score > best:
                stats["new_best"] += 1
                best = score
    return arms


def merge(stats: Iterable[Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Counts of several searches added up, arm by arm."""
    out: dict[str, dict[str, int]] = {}
    for one in stats:
        for arm, counts in one.items():
            into = out.setdefault(arm, {"tries": 0, "improved": 0, "new_best": 0})
            for key in into:
                into[key] += int(counts.get(key, 0))
    return out


def memory(arms: Mapping[str, Mapping[str, int]], searches: int, problems: Iterable[str]) -> dict[str, Any]:
    return {"version": VERSION, "searches": searches, "problems": sorted(set(problems)),
            "arms": {arm: dict(counts) for arm, counts in sorted(arms.items())}}


def learn(run_dirs: Iterable[str | Path]) -> dict[str, Any]:
    """A memory from stored runs (rsi run folders)."""
    dirs = [Path(d) for d in run_dirs]
    problems = []
    for folder in dirs:
        from .storage import Store

        store = Store.open(folder)
        try:
            problems.append(Path(store.meta().get("problem_dir") or folder.name).name)
        finally:
            store.close()
    return memory(merge(run_stats(d) for d in dirs), len(dirs), problems)


def check(data: Any, where: str) -> Mapping[str, Any]:
    """``data`` if it is a valid memory (read-only from here on); RsiError naming what is wrong."""
    fix = "rebuild it with `rsi memory learn`"
    if not isinstance(data, Mapping) or data.get("version") != VERSION or not isinstance(data.get("arms"), Mapping):
        raise RsiError(f"{where}: not an rsi memory file (a JSON object with version {VERSION} and arms); {fix}")
    if len(data["arms"]) > MAX_ARMS:
        raise RsiError(f"{where}: {len(data['arms'])} arms, more than {MAX_ARMS}; {fix}")
    arms = {}
    for arm, counts in data["arms"].items():
        if not isinstance(arm, str) or ":" not in arm or not isinstance(counts, Mapping):
            raise RsiError(f"{where}: arm {arm!r} is not 'proposer:operator' with counts; {fix}")
        values = {key: counts.get(key, 0) for key in ("tries", "improved", "new_best")}
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values.values()) or \
                values["improved"] > values["tries"] or values["new_best"] > values["tries"]:
            raise RsiError(f"{where}: arm {arm!r} has counts {counts!r}: tries, improved and new_best must be "
                           f"counts, improved and new_best at most tries; {fix}")
        arms[arm] = MappingProxyType(values)
    problems = data.get("problems", [])
    return MappingProxyType({"version": VERSION, "searches": int(data.get("searches", 0)),
                             "problems": tuple(str(p) for p in problems) if isinstance(problems, (list, tuple)) else (),
                             "arms": MappingProxyType(arms)})


def load_memory(path: str | Path) -> Mapping[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise RsiError(f"{file}: no such memory file; build one with `rsi memory learn RUN_DIR... --out {file}`")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RsiError(f"{file}: not JSON ({exc}); rebuild it with `rsi memory learn`") from None
    return check(data, str(file))


def plain(mem: Mapping[str, Any]) -> dict[str, Any]:
    """A memory as plain JSON data (to store in a run's record)."""
    return json.loads(json.dumps(mem, default=lambda m: dict(m) if isinstance(m, Mapping) else list(m)))


def save_memory(mem: Mapping[str, Any], path: str | Path) -> Path:
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(plain(mem), indent=1) + "\n")
    return file


def credit_rates(mem: Mapping[str, Any], improved: float = 1.0, new_best: float = 3.0) -> dict[str, float]:
    """Each remembered arm's credit per try, as the bandits count credit (``improved`` for a child
    better than its parent, ``new_best`` for a new best)."""
    rates = {}
    for arm, counts in mem.get("arms", {}).items():
        tries = counts["tries"]
        if tries > 0:
            plain_improved = max(counts["improved"] - counts["new_best"], 0)  # a new best counts once, as new_best
            rates[arm] = (plain_improved * improved + counts["new_best"] * new_best) / tries
    return rates


def describe(mem: Mapping[str, Any], top: int = 15) -> str:
    """The memory as text: arms by credit rate."""
    rates = credit_rates(mem)
    lines = [f"memory of {mem.get('searches', 0)} searches on {len(mem.get('problems', ()))} problems",
             f"{'arm':40s} {'tries':>7s} {'improved':>9s} {'new best':>9s} {'credit/try':>10s}"]
    for arm in sorted(rates, key=lambda a: -rates[a])[:top]:
        c = mem["arms"][arm]
        lines.append(f"{arm:40s} {c['tries']:7d} {c['improved']:9d} {c['new_best']:9d} {rates[arm]:10.3f}")
    return "\n".join(lines)



CARRIED = "MEMORY"  # the module-level name of an improver's own memory


def _carried_node(tree: ast.Module) -> ast.Assign | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == CARRIED for t in node.targets):
            return node
    return None


def carried(source: str, where: str) -> Mapping[str, Any] | None:
    """The memory an improver's source carries (``MEMORY = "<json>"`` or a dict literal at module
    level), read without running it; None if it carries none; RsiError naming what is wrong."""
    try:
        node = _carried_node(ast.parse(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # nesting too deep for the parser too
        return None  # loading the improver names that error
    if node is None:
        return None
    fix = f"make {CARRIED} a memory (rsi memory learn) as a JSON string or a dict literal, or remove it"
    try:
        value = ast.literal_eval(node.value)
        data = json.loads(value) if isinstance(value, str) else value
    except (ValueError, TypeError, SyntaxError, RecursionError, json.JSONDecodeError) as exc:
        raise RsiError(f"{where}: {CARRIED} (line {node.lineno}) is not a literal memory ({exc}); {fix}") from None
    return check(data, f"{where}: {CARRIED} (line {node.lineno})")


def carries(source: str, mem: Mapping[str, Any], where: str) -> bool:
    """Whether ``source`` carries a memory with the same counts as ``mem`` (RsiError if its own is broken)."""
    held = carried(source, where)
    return held is not None and plain(held)["arms"] == plain(mem)["arms"]


def carry(source: str, mem: Mapping[str, Any]) -> str:
    """``source`` with its ``MEMORY`` set to ``mem`` (replaced where it is; else inserted at the start
    of the first EVOLVE-BLOCK, or after the imports): one arm a line, as a JSON string."""
    from .program import BLOCK_START

    data = plain(check(mem, "the memory to carry"))
    head = {k: v for k, v in data.items() if k != "arms"}
    arms = ",\n".join(f"  {json.dumps(arm)}: {json.dumps(counts)}" for arm, counts in data["arms"].items())
    text = json.dumps(head)[:-1] + ', "arms": {\n' + arms + "\n}}"
    block = ('# what paid in earlier searches (rsi.memory): the bandit\'s prior when a run gives no memory\n'
             f'{CARRIED} = """\n{text}\n"""\n')
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    node = _carried_node(tree)
    if node is not None:
        start, end = node.lineno - 1, node.end_lineno or node.lineno
        if start > 0 and lines[start - 1].startswith("# what paid in earlier searches"):
            start -= 1
        return "".join(lines[:start]) + block + "".join(lines[end:])
    at = next((i + 1 for i, line in enumerate(lines) if line.strip() == BLOCK_START), None)
    if at is None:
        at = 0
        for stmt in tree.body:
            is_doc = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and at == 0
            if isinstance(stmt, (ast.Import, ast.ImportFrom)) or is_doc:
                at = stmt.end_lineno or at
            else:
                break
    before = "".join(lines[:at])
    return before + ("\n" if before and not before.endswith("\n") else "") + block + "".join(lines[at:])
