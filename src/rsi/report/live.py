"""A run's report view kept up to date by reading only what was written since the last look.

``LiveView(run_dir).update(results)`` returns the same ``RunView`` as ``html.collect(results)`` (the full
rebuild), but after the first call it reads only the candidates that may have changed: new ids (ids
only grow), those that were not final yet (a status moves from pending to final) and those named
by audit events newer than the last one seen (every write of the store records the candidate's id, so a
later change such as held-out results of the best is caught too). The charts' rows, the proposer and
operator statistics, failures by kind, review flags and the status counts are kept in memory and
adjusted by the changed candidates; the few single rows the page shows (seed, best, lineage, held-out)
are read again only when they changed. A run folder whose audit trail no longer holds the last event seen
(another database in its place) is read again in full. The dashboard keeps one per run (``rsi.report.dashboard``).
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_left, insort
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..archive import Archive
from ..results import Results
from ..storage import EVALUATED_STATUSES, FINAL_STATUSES, Candidate
from .calls import call_stats
from .html import GENERATIONS_FILE, SELFIMPROVE_FILE, Row, RunView, failure_kind, read_json, sorted_failures
from .text import cascade_counts

FAILED = ("error", "timeout", "invalid", "rejected")  # the statistics' "failed" (html._stats)
NOT_FAILURES = ("ok", "pending", "proposed", "running")  # html._failures leaves these out

COLUMNS = ("id, parent_id, status, score, proposer, operator, COALESCE(evaluated_at, proposed_at), tokens, cost, "
           "evaluated_at, holdout IS NOT NULL, flags, CASE WHEN status IN ('ok', 'pending', 'proposed', 'running') "
           "THEN NULL ELSE error END")


@dataclass(frozen=True)
class Rec:
    """What the view keeps of one candidate."""

    id: int
    parent_id: int | None
    status: str
    score: float | None
    proposer: str
    operator: str | None
    at: float
    tokens: int | None
    cost: float | None
    evaluated_at: float | None
    has_holdout: bool
    flags: str | None
    kind: str | None  # failure kind (failed statuses only)

    def row(self) -> Row:
        return Row(self.id, self.parent_id, self.status, self.score, self.proposer, self.operator, self.at,
                   self.tokens, self.cost)

    def order(self) -> tuple[int, float, int]:
        """Its place among the evaluated rows: ORDER BY evaluated_at, id (NULLs first, as SQLite)."""
        return (0, 0.0, self.id) if self.evaluated_at is None else (1, self.evaluated_at, self.id)


@dataclass
class Group:
    """One (proposer, operator) line of the statistics, as sums that changes can be added to and taken from."""

    tries: int = 0
    ok: int = 0
    failed: int = 0
    improved: int = 0
    tokens: int = 0
    cost: float = 0
    n_tok: int = 0
    n_cost: int = 0


class LiveView:
    """One run's view, updated in place; ``update`` is safe to call from several threads."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.seq = 0  # the last audit event seen, and its hash
        self.head = ""
        self.open: set[int] = set()  # ids not in a final status: they change without a new id
        self.recs: dict[int, Rec] = {}
        self.children: dict[int, list[int]] = {}
        self.order: list[tuple[int, float, int]] = []  # evaluated rows' sort keys, kept sorted
        self.rows: dict[tuple[int, float, int], Row] = {}
        self.groups: dict[tuple[str, str], Group] = {}
        self.failures: Counter[tuple[str, str]] = Counter()
        self.counts: Counter[str] = Counter()
        self.flagged: dict[int, list[dict]] = {}
        self.cands: dict[int, Candidate] = {}  # full rows read for the page (seed, lineage, held-out)
        self.state_text: str | None = None
        self.archive: Archive | None = None
        self.reads = 0  # candidate rows read by the last update (tests and benchmarks look)

    # --- reading ------------------------------------------------------------------------
    def update(self, results: Results) -> RunView:
        """The run as it is now (what ``html.collect`` returns), reading only the rows that changed."""
        with self.lock:
            return self._update(results)

    def _update(self, results: Results) -> RunView:
        conn = results.store.conn
        seq, head = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone() or (0, "")
        if self.seq:  # the event last seen must still be there, unchanged: else this is another run's trail
            seen = conn.execute("SELECT hash FROM audit WHERE seq = ?", (self.seq,)).fetchone()
            if seen is None or seen[0] != self.head:
                self._reset()
        if not self.recs:
            changed = list(conn.execute(f"SELECT {COLUMNS} FROM candidates ORDER BY id"))
        else:
            changed = list(conn.execute(
                f"SELECT {COLUMNS} FROM candidates WHERE id > ? OR id IN (SELECT value FROM json_each(?)) "
                "OR id IN (SELECT json_extract(payload, '$.id') FROM audit WHERE seq > ? AND seq <= ?) ORDER BY id",
                (max(self.recs), json.dumps(sorted(self.open)), self.seq, seq)))
        self.seq, self.head = int(seq), str(head)
        self.reads = len(changed)
        kinds: dict[tuple[str, str | None], str] = {}  # alike errors are named once
        for values in changed:
            cid, parent, status, score, proposer, operator, at, tokens, cost, evaluated_at, held, flags, error = values
            kind = None
            if status not in NOT_FAILURES:
                kind = kinds.get((status, error))
                if kind is None:
                    kind = kinds[(status, error)] = failure_kind(status, error)
            self._apply(Rec(cid, parent, status, score, proposer, operator, at, tokens, cost, evaluated_at, bool(held),
                            flags, kind))
        return self._view(results)

    def _apply(self, new: Rec) -> None:
        self.cands.pop(new.id, None)  # read again when shown: a column not kept here may have changed
        old = self.recs.get(new.id)
        if old == new:
            return
        if old is not None:
            self._count(old, -1)
        self.recs[new.id] = new
        if new.status in FINAL_STATUSES:
            self.open.discard(new.id)
        else:
            self.open.add(new.id)
        self._count(new, +1)
        if old is None and new.parent_id is not None:
            self.children.setdefault(new.parent_id, []).append(new.id)
        if old is None or old.score != new.score:  # its children's "improved" compares with its score
            for child in self.children.get(new.id, []):
                rec = self.recs[child]
                self._stat(rec, -1, old.score if old is not None else None, old is not None)
                self._stat(rec, +1, new.score, True)

    def _count(self, rec: Rec, sign: int) -> None:
        self.counts[rec.status] += sign
        if not self.counts[rec.status]:
            del self.counts[rec.status]
        if rec.status in EVALUATED_STATUSES:
            key = rec.order()
            if sign > 0:
                insort(self.order, key)
                self.rows[key] = rec.row()
            else:
                del self.order[bisect_left(self.order, key)]
                del self.rows[key]
        if rec.kind is not None:
            self.failures[(rec.status, rec.kind)] += sign
            if not self.failures[(rec.status, rec.kind)]:
                del self.failures[(rec.status, rec.kind)]
        if rec.flags is not None and rec.flags != "[]":
            if sign > 0:
                self.flagged[rec.id] = json.loads(rec.flags)
            else:
                self.flagged.pop(rec.id, None)
        parent = self.recs.get(rec.parent_id) if rec.parent_id is not None else None
        self._stat(rec, sign, parent.score if parent is not None else None, parent is not None)

    def _stat(self, rec: Rec, sign: int, parent_score: float | None, parent_known: bool) -> None:
        """Add (sign 1) or take (-1) ``rec``'s share of its (proposer, operator) statistics."""
        if rec.parent_id is None:
            return
        group = self.groups.setdefault((rec.proposer, rec.operator or ""), Group())
        group.tries += sign
        group.ok += sign * (rec.status == "ok")
        group.failed += sign * (rec.status in FAILED)
        group.improved += sign * (rec.status == "ok" and parent_known and parent_score is not None
                                  and rec.score is not None and rec.score > parent_score)
        group.tokens += sign * (rec.tokens or 0)
        group.cost += sign * (rec.cost or 0)
        group.n_tok += sign * (rec.tokens is not None)
        group.n_cost += sign * (rec.cost is not None)
        if not group.tries:
            del self.groups[(rec.proposer, rec.operator or "")]

    # --- the view -----------------------------------------------------------------------
    def _get(self, results: Results, cid: int) -> Candidate:
        if cid not in self.cands:
            self.cands[cid] = results.get(cid)
        return self.cands[cid]

    def _stats(self) -> list[dict[str, Any]]:
        best: dict[tuple[str, str], float | None] = {}
        for rec in self.recs.values():
            if rec.parent_id is not None and rec.score is not None:
                key = (rec.proposer, rec.operator or "")
                held = best.get(key)
                best[key] = rec.score if held is None else max(held, rec.score)
        out = []
        for (prop, op), g in sorted(self.groups.items()):
            out.append({"proposer": prop, "operator": op, "tries": g.tries, "ok": g.ok, "failed": g.failed,
                        "improved": g.improved, "tokens": g.tokens if g.n_tok else None,
                        "cost": g.cost if g.n_cost else None, "best": best.get((prop, op))})
        return out

    def _view(self, results: Results) -> RunView:
        store = results.store
        meta = store.meta()
        ranked = [r for r in self.recs.values() if r.status == "ok" and r.score is not None]
        top = min(ranked, key=lambda r: (-r.score, r.id)) if ranked else None  # type: ignore[operator]
        best = self._get(results, top.id) if top is not None else None
        seed = self._get(results, 1) if 1 in self.recs else None
        lineage: list[Candidate] = []
        seen: set[int] = set()
        current = best.id if best is not None else None
        while current is not None and current not in seen:
            seen.add(current)
            lineage.append(self._get(results, current))
            current = lineage[-1].parent_id
        lineage.reverse()
        held = sorted((r for r in ranked if r.has_holdout), key=lambda r: (-r.score, r.id))[:15]  # type: ignore[operator]
        holdout = [self._get(results, r.id) for r in held]
        settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
        holdout_line = (settings.get("report") or {}).get("holdout_line") if settings else None
        view = RunView(results.run_dir, meta, dict(self.counts), [self.rows[k] for k in self.order], seed, best,
                       lineage, holdout, self._stats(), sorted_failures(self.failures),
                       sorted(self.flagged.items()), store.promotions(), holdout_line)
        row = store.conn.execute("SELECT value FROM state WHERE key='loop'").fetchone()
        text = row[0] if row else None
        if text != self.state_text:
            self.state_text = text
            state = json.loads(text) if text else {}
            try:
                self.archive = (Archive.from_json(state["archive"]) if isinstance(state, dict)
                                and isinstance(state.get("archive"), dict) else None)
            except (KeyError, TypeError, ValueError):  # an improver that keeps another kind of archive
                self.archive = None
        view.archive = self.archive
        view.cascade = cascade_counts(store)  # both read only the rows they count (cascade-scored, model calls)
        view.calls = call_stats(store)
        config = results.run_dir / SELFIMPROVE_FILE
        if config.is_file():
            view.selfimprove = read_json(config)
            rows = read_json(results.run_dir / GENERATIONS_FILE)
            view.generations = rows if isinstance(rows, list) else []
        return view


__all__ = ["LiveView"]
