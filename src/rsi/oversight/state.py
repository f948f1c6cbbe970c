"""Does the run's state agree with its audit trail? (The chain check proves the trail; this proves the tables.)

Every write of a candidate row leaves, in the audit event committed with it, the row as it then
was (``storage.state_of_row``: parent, proposer, status, score, duplicate_of, eval_seed, and a
sha256 of its source, metrics, held-out metrics, flags and features); every promotion decision
leaves the promotion row (``storage.promotion_of_row``). ``verify_state`` recomputes both from the
tables and compares them with the last record of each row in the trail: a score edited by hand, a
row inserted or deleted behind the store's back, a changed source, a promotion flipped to
"promoted" — each is named with its row and the event that recorded it.

Runs made before rows were recorded (no ``row`` in any event) can only be checked for rows whose
events exist; that is said in the result. Together with the chain check (``audit.verify``), a
hand edit of any state table is caught unless the whole trail was rewritten consistently from that
point on (which only a head hash noted elsewhere can tell: ``rsi audit verify --known``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..storage import promotion_of_row, state_of_row
from . import audit


@dataclass(frozen=True)
class StateReport:
    ok: bool
    rows: int  # candidate and promotion rows checked
    problems: list[str] = field(default_factory=list)
    note: str | None = None

    def summary(self) -> str:
        if self.ok:
            return f"state agrees with the trail: {self.rows} rows checked" + (f" ({self.note})" if self.note else "")
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        return f"STATE DIFFERS FROM THE TRAIL ({len(self.problems)} problem(s)):\n  {shown}{more}"


def verify_state(conn: sqlite3.Connection) -> StateReport:
    """Compare every candidate and promotion row with what the trail last recorded of it."""
    rows_by_id: dict[int, tuple[int, dict[str, Any]]] = {}
    promotions_by_id: dict[int, tuple[int, dict[str, Any]]] = {}
    seen_ids: dict[int, int] = {}
    for event in audit.events(conn):
        payload = event.payload
        cid = payload.get("id")
        if isinstance(cid, int) and event.kind.startswith("candidate."):
            seen_ids.setdefault(cid, event.seq)
        if isinstance(payload.get("row"), dict) and isinstance(cid, int):
            rows_by_id[cid] = (event.seq, payload["row"])
        if isinstance(payload.get("promotion"), dict):
            promotion = payload["promotion"]
            promotions_by_id[int(promotion["id"])] = (event.seq, promotion)
    recorded = bool(rows_by_id)
    problems: list[str] = []
    checked = 0
    table = {row["id"]: row for row in conn.execute("SELECT * FROM candidates ORDER BY id")}
    for cid, row in table.items():
        checked += 1
        if cid not in rows_by_id:
            if recorded:
                problems.append(f"candidate {cid}: in the table, but no event recorded it (inserted behind the trail)")
            continue
        seq, then = rows_by_id[cid]
        now = state_of_row(row)
        changed = sorted(key for key in set(then) | set(now) if then.get(key) != now.get(key))
        if changed:
            detail = ", ".join(f"{key} {then.get(key)!r} -> {now.get(key)!r}" if not key.endswith("_sha256")
                               else f"{key[:-7]} changed" for key in changed)
            problems.append(f"candidate {cid}: differs from event #{seq} ({detail})")
    for cid, (seq, _) in sorted(rows_by_id.items()):
        if cid not in table:
            problems.append(f"candidate {cid}: recorded by event #{seq}, missing from the table (deleted)")
    promotions = {row["id"]: row for row in conn.execute("SELECT * FROM promotions ORDER BY id")}
    for pid, row in promotions.items():
        checked += 1
        if pid not in promotions_by_id:
            if recorded or promotions_by_id:
                problems.append(f"promotion {pid}: in the table, but no event recorded it (inserted behind the trail)")
            continue
        seq, then = promotions_by_id[pid]
        now = promotion_of_row(row)
        if then != now:
            changed = sorted(key for key in then if then.get(key) != now.get(key))
            problems.append(f"promotion {pid} (candidate {row['candidate_id']}): differs from event #{seq} "
                            f"({', '.join(f'{k} {then.get(k)!r} -> {now.get(k)!r}' for k in changed)})")
    for pid, (seq, _) in sorted(promotions_by_id.items()):
        if pid not in promotions:
            problems.append(f"promotion {pid}: recorded by event #{seq}, missing from the table (deleted)")
    note = None if recorded or not table else "a run from before rows were recorded: only the trail was checked"
    return StateReport(not problems, checked, problems, note)
