"""The audit trail: a hash-chained, tamper-evident event log inside the run's SQLite database.

Every event is a row ``(seq, ts, kind, actor, payload, prev_hash, hash)``. ``seq`` counts from 1
without gaps, ``prev_hash`` is the previous event's ``hash`` (64 zeros for event #1) and ``hash``
is the SHA-256 of the canonical JSON of ``[seq, ts, kind, actor, payload, prev_hash]``, where
``payload`` is the event's payload as canonical JSON text (sorted keys, no spaces, floats as
``repr``). Changing any field of any event therefore changes its hash, and every later link.

The chain alone cannot show that its tail was cut off, so ``append`` also keeps an anchor: the
one-row table ``audit_head(count, hash)``, updated in the same transaction as the event.

What ``verify`` catches, and what it does not:

- an event edited in place (its hash no longer matches its content), deleted (a gap in ``seq``),
  inserted, renumbered or reordered (a hash that belongs to another position, or a broken link),
  an event edited *and* re-hashed (the next event's ``prev_hash`` no longer links to it), the
  tail truncated or events appended behind the store's back (the head disagrees with the chain);
- not: someone with write access who rewrites the whole chain from some point on *and* the head
  consistently. The hash function is public, so that rewrite is self-consistent. Only a copy of
  the head hash kept elsewhere catches it: ``verify`` returns ``head_hash`` so that the CLI can
  print it for the user to note, and ``verify(conn, known=...)`` checks that a hash noted
  earlier is still in the chain (events appended since are fine; a rewritten history is not).

``append`` and ``ensure_schema`` never commit: the store calls them inside its own transaction
and commits the event together with the change it records.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

GENESIS = "0" * 64

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL,
    hash TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    ts: str
    kind: str
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditReport:
    """The result of ``verify``: ``ok``, how many events, the first bad one and why."""

    ok: bool
    events: int
    first_bad_seq: int | None
    problem: str | None
    head_hash: str

    def summary(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.events} events, head {self.head_hash[:16]}"
        return f"audit trail NOT intact: {self.problem}"


# ----------------------------------------------------------------------------- canonical form


def _normalise(value: Any, where: str) -> Any:
    """The payload as plain JSON values: numpy scalars/arrays, tuples, sets and paths converted.

    Non-finite floats become the strings "nan", "inf" and "-inf", so the stored text is strict
    JSON that any tool reads.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(key): _normalise(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted((_normalise(item, where) for item in value), key=_canonical)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _normalise(value.tolist(), where)
    raise TypeError(
        f"audit payload {where} is a {type(value).__name__}, which has no JSON form; "
        "pass numbers, strings, booleans, None, lists or dicts"
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_payload(payload: dict[str, Any]) -> str:
    """The payload as the canonical JSON text that is stored and hashed."""
    if not isinstance(payload, dict):
        raise TypeError(f"audit payload must be a dict, not {type(payload).__name__}")
    return _canonical(_normalise(payload, "payload"))


def event_hash(seq: int, ts: str, kind: str, actor: str, payload_text: str, prev_hash: str) -> str:
    """SHA-256 (hex) of the canonical JSON of one event's fields."""
    material = _canonical([seq, ts, kind, actor, payload_text, prev_hash])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# ----------------------------------------------------------------------------- writing


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the audit tables if missing. Does not commit.

    The head row is created only for an empty trail: a trail whose head was deleted stays
    without one, so ``verify`` keeps reporting it.
    """
    for statement in AUDIT_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    has_head = conn.execute("SELECT 1 FROM audit_head WHERE id = 1").fetchone()
    has_events = conn.execute("SELECT 1 FROM audit LIMIT 1").fetchone()
    if not has_head and not has_events:
        conn.execute("INSERT INTO audit_head (id, count, hash) VALUES (1, 0, ?)", (GENESIS,))


def append(
    conn: sqlite3.Connection,
    kind: str,
    payload: dict[str, Any],
    actor: str = "rsi",
    ts: str | None = None,
) -> int:
    """Add one event and move the head to it; return its ``seq``. Does not commit.

    The new event links to the head (not merely to the last row), so a trail whose tail was cut
    off stays visibly broken after later appends. Call inside the transaction that makes the
    change the event records (with ``isolation_level=None``, open it with BEGIN yourself).
    """
    if not kind:
        raise ValueError("audit event kind must be a non-empty string")
    payload_text = canonical_payload(payload)
    ts = ts or _now()
    head = conn.execute("SELECT count, hash FROM audit_head WHERE id = 1").fetchone()
    if head is not None:
        last_seq, prev_hash = int(head[0]), str(head[1])
    else:  # head deleted: link to the last row; verify keeps reporting the missing head
        row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        last_seq, prev_hash = (int(row[0]), str(row[1])) if row else (0, GENESIS)
    seq = last_seq + 1
    digest = event_hash(seq, ts, kind, actor, payload_text, prev_hash)
    conn.execute(
        "INSERT INTO audit (seq, ts, kind, actor, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, ts, kind, actor, payload_text, prev_hash, digest),
    )
    conn.execute("UPDATE audit_head SET count = ?, hash = ? WHERE id = 1", (seq, digest))
    return seq


# ----------------------------------------------------------------------------- reading


def _parse_payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"_unparseable": text}
    return value if isinstance(value, dict) else {"_value": value}


_ROWS = "SELECT seq, ts, kind, actor, payload, prev_hash, hash FROM audit"


def events(conn: sqlite3.Connection, kinds: list[str] | None = None) -> list[AuditEvent]:
    """All events in ``seq`` order, or only those of the given kinds."""
    if kinds is not None and not kinds:
        return []
    if kinds:
        marks = ",".join("?" for _ in kinds)
        rows = conn.execute(f"{_ROWS} WHERE kind IN ({marks}) ORDER BY seq", list(kinds))
    else:
        rows = conn.execute(f"{_ROWS} ORDER BY seq")
    return [
        AuditEvent(int(s), str(t), str(k), str(a), _parse_payload(p), str(ph), str(h))
        for s, t, k, a, p, ph, h in rows
    ]


def export_jsonl(conn: sqlite3.Connection, out: TextIO) -> int:
    """Write every event as one JSON object per line; return how many.

    The export can be verified on its own with ``read_jsonl`` and ``check_chain``.
    """
    count = 0
    for event in events(conn):
        record = {
            "seq": event.seq,
            "ts": event.ts,
            "kind": event.kind,
            "actor": event.actor,
            "payload": event.payload,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        }
        out.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        count += 1
    return count


def read_jsonl(lines: Iterable[str]) -> list[AuditEvent]:
    """Events from an ``export_jsonl`` file (blank lines skipped)."""
    result = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            result.append(
                AuditEvent(
                    int(r["seq"]), r["ts"], r["kind"], r["actor"], r["payload"], r["prev_hash"], r["hash"]
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number} is not an audit event: {exc}") from exc
    return result


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        text = format(value, ".6g")
    elif isinstance(value, str):
        text = value if value and not any(c.isspace() or c in "\"'=" for c in value) else json.dumps(value)
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def format_event(event: AuditEvent) -> str:
    """One readable line: ``#12 2026-11-25T22:31:02Z rsi candidate.evaluated id=7 status=ok``."""
    keys = sorted(event.payload, key=lambda k: (k != "id", k))
    fields = " ".join(f"{key}={_format_value(event.payload[key])}" for key in keys)
    line = f"#{event.seq} {event.ts} {event.actor} {event.kind}"
    return f"{line} {fields}" if fields else line


# ----------------------------------------------------------------------------- verifying


def _raw_rows(conn: sqlite3.Connection) -> list[tuple[AuditEvent, str]]:
    """(event, stored payload text) in seq order: the hash is checked over the stored text."""
    out = []
    for s, t, k, a, p, ph, h in conn.execute(f"{_ROWS} ORDER BY seq"):
        out.append((AuditEvent(int(s), str(t), str(k), str(a), _parse_payload(p), str(ph), str(h)), str(p)))
    return out


def _diagnose_misfit(chain: Sequence[AuditEvent], index: int, hash_at: Any) -> tuple[int, str]:
    """The event at ``index`` fails its hash at its own seq: moved, inserted or edited?"""
    seq = chain[index].seq
    for other_index, other in enumerate(chain):
        if other.seq == seq or hash_at(index, other.seq) != chain[index].hash:
            continue
        # the row now at ``seq`` holds what was written as ``other.seq``
        if hash_at(other_index, seq) == other.hash:
            low, high = sorted((seq, other.seq))
            return low, f"events #{low} and #{high} were reordered: each holds the content of the other"
        if other.seq == seq - 1:
            return other.seq, (
                f"an event was inserted at #{other.seq}: the events after it were renumbered "
                f"(#{seq} holds what was #{other.seq})"
            )
        if other.seq == seq + 1:
            return seq, (
                f"event #{seq} was deleted and the events after it renumbered (#{seq} holds what was #{other.seq})"
            )
        return seq, f"event #{seq} holds the content of event #{other.seq}: events were reordered"
    if index + 1 < len(chain) and hash_at(index + 1, seq) == chain[index + 1].hash:
        return seq, (
            f"event #{seq} was inserted (forged): the events after it were renumbered "
            f"(#{seq + 1} holds what was #{seq})"
        )
    return seq, f"event #{seq} was edited: its hash does not match its content"


def check_chain(
    chain: Sequence[AuditEvent],
    head: tuple[int, str] | None = None,
    known: str | None = None,
    *,
    payload_texts: Sequence[str] | None = None,
) -> AuditReport:
    """Verify a list of events in ``seq`` order (from the database or from ``read_jsonl``).

    ``head``: the ``audit_head`` row ``(count, hash)``, or None to check the chain alone (an
    export carries no head, so a cut-off tail of an export is not visible).
    ``known``: a hash (or a prefix of at least 8 hex digits) noted earlier that must still be in
    the chain. ``payload_texts``: the stored payload texts, to hash exactly what is stored.
    """
    texts = list(payload_texts) if payload_texts is not None else [_canonical(e.payload) for e in chain]
    head_hash = chain[-1].hash if chain else GENESIS

    def fail(seq: int | None, problem: str) -> AuditReport:
        return AuditReport(False, len(chain), seq, problem, head_hash)

    def hash_at(index: int, seq: int) -> str:
        e = chain[index]
        return event_hash(seq, e.ts, e.kind, e.actor, texts[index], e.prev_hash)

    expected_seq, expected_prev = 1, GENESIS
    for index, event in enumerate(chain):
        seq = event.seq
        if head is not None and seq > head[0]:
            return fail(
                seq,
                f"event #{seq} was added behind the store's back (forged?): "
                f"the head records only {head[0]} events",
            )
        if hash_at(index, seq) != event.hash:
            return fail(*_diagnose_misfit(chain, index, hash_at))
        if seq != expected_seq:
            if seq < expected_seq:
                return fail(seq, f"event #{seq} is out of order (it follows #{expected_seq - 1})")
            missing = (
                f"event #{expected_seq} is missing (deleted?)"
                if seq == expected_seq + 1
                else f"events #{expected_seq}..#{seq - 1} are missing (deleted?)"
            )
            after = f"#{seq} follows #{expected_seq - 1}" if expected_seq > 1 else f"the trail starts at #{seq}"
            return fail(expected_seq, f"{missing}: {after}")
        if event.prev_hash != expected_prev:
            if seq == 1:
                return fail(1, "event #1 does not start the chain: its prev_hash is not the genesis value")
            return fail(
                seq - 1,
                f"event #{seq - 1} was replaced, or edited and re-hashed: "
                f"#{seq} links to a different #{seq - 1}",
            )
        expected_seq, expected_prev = seq + 1, event.hash

    last = chain[-1].seq if chain else 0
    if head is not None:
        count, anchored = head
        if count > last:
            cut = count - last
            what = "event is" if cut == 1 else f"{cut} events are"
            return fail(
                last + 1,
                f"the last {what} missing (truncated?): the head records {count} events, "
                f"the trail ends at #{last}",
            )
        if anchored != head_hash:
            return fail(last, f"event #{last} does not match the head: it was replaced")

    if known:
        needle = known.strip().lower()
        if len(needle) < 8:
            raise ValueError("a noted audit hash needs at least 8 hex digits")
        if not any(e.hash.startswith(needle) for e in chain) and not GENESIS.startswith(needle):
            return fail(None, f"the noted hash {needle[:16]} is no longer in the trail: its history was rewritten")
    return AuditReport(True, len(chain), None, None, head_hash)


def verify(conn: sqlite3.Connection, known: str | None = None) -> AuditReport:
    """Check the whole trail and its head; report the first event that was tampered with.

    ``known``: a head hash the user noted earlier (e.g. printed by a previous ``rsi audit``);
    it must still be in the chain. See the module docstring for what this does not catch.
    """
    try:
        rows = _raw_rows(conn)
    except sqlite3.OperationalError:
        return AuditReport(False, 0, None, "this database has no audit table", GENESIS)
    try:
        head_row = conn.execute("SELECT count, hash FROM audit_head WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        head_row = None
    chain = [event for event, _ in rows]
    head = (int(head_row[0]), str(head_row[1])) if head_row else None
    report = check_chain(chain, head=head, known=known, payload_texts=[text for _, text in rows])
    if report.ok and head is None and chain:
        return AuditReport(
            False, len(chain), None,
            "the audit head is missing (deleted?): a cut-off tail cannot be ruled out", report.head_hash,
        )
    return report
