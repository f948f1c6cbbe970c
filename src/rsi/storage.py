"""The run store: one SQLite database per run (WAL), and the only code that writes it.

Every change is committed as it happens, together with the loop state it leads to, so a run killed
at any moment (kill -9 included) resumes with no evaluated candidate lost. Every event is also
appended to the hash-chained audit trail in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RunError
from .oversight import audit

DB_NAME = "rsi.db"
FORMAT = "rsi-run"
FORMAT_VERSION = "1"

FINAL_STATUSES = ("ok", "error", "timeout", "invalid", "duplicate", "rejected")
EVALUATED_STATUSES = ("ok", "error", "timeout")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES candidates(id),
    inspiration_ids TEXT NOT NULL DEFAULT '[]',
    island INTEGER NOT NULL DEFAULT 0,
    proposer TEXT NOT NULL,
    operator TEXT,
    rationale TEXT,
    source TEXT,
    diff TEXT,
    fingerprint TEXT,
    status TEXT NOT NULL,
    error TEXT,
    score REAL,
    metrics TEXT,
    holdout TEXT,
    features TEXT,
    duplicate_of INTEGER,
    eval_seed INTEGER,
    stdout TEXT,
    stderr TEXT,
    proposed_at REAL NOT NULL,
    evaluated_at REAL,
    wall_seconds REAL,
    cpu_seconds REAL,
    flags TEXT,
    prompt TEXT,
    reply TEXT,
    tokens INTEGER,
    cost REAL,
    propose_seconds REAL,
    artifacts TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    propose_seed INTEGER,
    resolved_after INTEGER
);
CREATE INDEX IF NOT EXISTS candidates_status ON candidates(status);
CREATE INDEX IF NOT EXISTS candidates_fingerprint ON candidates(fingerprint);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS promotions (
    id INTEGER PRIMARY KEY,
    candidate_id INTEGER NOT NULL REFERENCES candidates(id),
    status TEXT NOT NULL,
    evidence TEXT NOT NULL,
    requested_at REAL NOT NULL,
    decided_at REAL,
    actor TEXT,
    note TEXT
);
"""


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just added (sqlite3 leaves ``lastrowid`` None only before any)."""
    rowid = cursor.lastrowid
    assert rowid is not None
    return int(rowid)


@dataclass
class Candidate:
    id: int
    parent_id: int | None
    inspiration_ids: list[int]
    island: int
    proposer: str
    operator: str | None
    rationale: str | None
    source: str | None
    diff: str | None
    fingerprint: str | None
    status: str
    error: str | None
    score: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    holdout: dict[str, float] | None = None
    features: dict[str, float] | None = None
    duplicate_of: int | None = None
    eval_seed: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    proposed_at: float = 0.0
    evaluated_at: float | None = None
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    flags: list[dict] | None = None
    prompt: str | None = None  # what a model was asked (model proposers)
    reply: str | None = None  # what it answered
    tokens: int | None = None
    cost: float | None = None
    propose_seconds: float | None = None
    artifacts: Any = None  # what the evaluator handed back beside the metrics (plain JSON data)
    prompt_tokens: int | None = None  # of ``tokens``: what the model read ...
    completion_tokens: int | None = None  # ... and what it wrote
    propose_seed: int | None = None  # the seed its proposer was given (a model call's seed)
    resolved_after: int | None = None  # proposals chosen when it was resolved (its place in the run's order)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.score is not None


_JSON_COLUMNS = {"inspiration_ids", "metrics", "holdout", "features", "flags", "artifacts"}


def _row_to_candidate(row: sqlite3.Row) -> Candidate:
    values = dict(row)
    for key in _JSON_COLUMNS:
        if values[key] is not None:
            values[key] = json.loads(values[key])
    if values["metrics"] is None:
        values["metrics"] = {}
    return Candidate(**values)


STATE_COLUMNS = ("parent_id", "proposer", "status", "score", "duplicate_of", "eval_seed")
DIGESTED_COLUMNS = ("source", "metrics", "holdout", "flags", "features")


def state_of_row(row: sqlite3.Row) -> dict[str, Any]:
    """What the trail records of a candidate row: its state columns as they are, and a sha256 of
    each bulky one (source, metrics, held-out metrics, flags, features; None when empty)."""
    values = dict(row)
    out: dict[str, Any] = {key: values.get(key) for key in STATE_COLUMNS}
    for key in DIGESTED_COLUMNS:
        text = values.get(key)
        out[f"{key}_sha256"] = hashlib.sha256(text.encode()).hexdigest() if text is not None else None
    return out


def promotion_of_row(row: sqlite3.Row) -> dict[str, Any]:
    """What the trail records of a promotion row."""
    return {key: row[key] for key in ("id", "candidate_id", "status", "actor", "note")}


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (json.dumps(v) if k in _JSON_COLUMNS and v is not None else v) for k, v in fields.items()}


class Store:
    """A run's database. Open with :meth:`create` or :meth:`open`."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn

    # --- opening -------------------------------------------------------------------------
    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @classmethod
    def create(cls, run_dir: Path, meta: dict[str, Any]) -> Store:
        run_dir = Path(run_dir)
        db = run_dir / DB_NAME
        if db.exists():
            raise RunError(f"{run_dir}: already holds a run; continue it with `rsi run --resume {run_dir}`"
                           " or pass another --out")
        run_dir.mkdir(parents=True, exist_ok=True)
        conn = cls._connect(db)
        store = cls(db, conn)
        with store.transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            audit.ensure_schema(conn)
            rows = {"format": FORMAT, "format_version": FORMAT_VERSION, "created_at": str(time.time())}
            rows.update({k: json.dumps(v) for k, v in meta.items()})
            conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", rows.items())
        return store

    @classmethod
    def open(cls, run_dir: Path) -> Store:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RunError(f"{run_dir}: no such run folder; pass the --out folder of an earlier `rsi run`")
        db = run_dir / DB_NAME
        if not db.is_file():
            raise RunError(f"{run_dir}: not an rsi run folder (no {DB_NAME}); pass the folder an `rsi run` created")
        try:
            conn = cls._connect(db)
            fmt = conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise RunError(f"{db}: unreadable ({exc}); it is not an rsi run database or it is damaged") from None
        if fmt is None or fmt[0] != FORMAT:
            raise RunError(f"{db}: not an rsi run database (no rsi format marker); pass a folder made by `rsi run`")
        version = conn.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
        if version is None or version[0] != FORMAT_VERSION:
            raise RunError(f"{db}: run format {version and version[0]} is not supported by this rsi"
                           f" (wants {FORMAT_VERSION})")
        store = cls(db, conn)
        store._upgrade()
        return store

    def _upgrade(self) -> list[str]:
        """Bring a run made by an earlier rsi of the same format up to this schema: tables,
        indexes and nullable columns added since are created; nothing is changed or removed.
        Returns what was added (``table.column``)."""
        wanted = sqlite3.connect(":memory:")
        wanted.executescript(SCHEMA)
        missing = []
        for (table,) in wanted.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            have = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            if have:  # a missing table is created whole by the schema below
                missing += [(table, name, kind) for _, name, kind, notnull, _, _ in
                            wanted.execute(f"PRAGMA table_info({table})") if name not in have and not notnull]
        wanted.close()
        tables = {row[0] for row in
                  self.conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        expected = set(re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA))
        if not missing and expected <= tables:
            return []
        with self.transaction():
            for table, name, kind in missing:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
        return [f"{table}.{name}" for table, name, _ in missing]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    # --- meta and loop state -------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.conn.execute("SELECT key, value FROM meta"):
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                out[key] = value
        return out

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(value)),
            )

    def load_state(self) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT value FROM state WHERE key='loop'").fetchone()
        return json.loads(row[0]) if row else None

    def _save_state(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            self.conn.execute(
                "INSERT INTO state(key, value) VALUES ('loop', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (json.dumps(state),),
            )

    # --- writing -------------------------------------------------------------------------
    def log(self, kind: str, payload: dict[str, Any], actor: str = "rsi") -> None:
        """Append one audit event in its own transaction."""
        with self.transaction():
            audit.append(self.conn, kind, payload, actor=actor)

    def insert_candidate(
        self,
        fields: dict[str, Any],
        state: dict[str, Any] | None = None,
        events: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> int:
        fields = {"proposed_at": time.time(), **fields}
        encoded = _encode(fields)
        columns = ", ".join(encoded)
        marks = ", ".join("?" for _ in encoded)
        with self.transaction():
            cursor = self.conn.execute(f"INSERT INTO candidates({columns}) VALUES ({marks})", list(encoded.values()))
            cid = _inserted_id(cursor)
            self._save_state(state)
            self._record(cid, events or [("candidate.inserted", {"fields": sorted(fields)})])
        return cid

    def update_candidate(
        self,
        cid: int,
        fields: dict[str, Any],
        state: dict[str, Any] | None = None,
        events: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> None:
        encoded = _encode(fields)
        assignments = ", ".join(f"{k}=?" for k in encoded)
        with self.transaction():
            self.conn.execute(f"UPDATE candidates SET {assignments} WHERE id=?", [*encoded.values(), cid])
            self._save_state(state)
            self._record(cid, events or [("candidate.updated", {"fields": sorted(fields)})])

    def _record(self, cid: int, events: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Append ``events`` for candidate ``cid``; the last one carries the row as it now is
        (``row``: its state fields, ``state_of_row``), so that ``rsi audit verify`` can check the
        table against the trail, not only the trail against itself."""
        row = self.conn.execute("SELECT * FROM candidates WHERE id=?", (cid,)).fetchone()
        for i, (kind, payload) in enumerate(events):
            extra = {"row": state_of_row(row)} if i == len(events) - 1 and row is not None else {}
            audit.append(self.conn, kind, {"id": cid, **payload, **extra})

    # --- reading -------------------------------------------------------------------------
    def get(self, cid: int) -> Candidate:
        row = self.conn.execute("SELECT * FROM candidates WHERE id=?", (cid,)).fetchone()
        if row is None:
            last = self.conn.execute("SELECT MAX(id) FROM candidates").fetchone()[0]
            raise RunError(f"no candidate {cid} in {self.path.parent} (ids run from 1 to {last or 0})")
        return _row_to_candidate(row)

    def candidates(self, statuses: tuple[str, ...] | None = None) -> list[Candidate]:
        if statuses:
            marks = ",".join("?" for _ in statuses)
            rows = self.conn.execute(f"SELECT * FROM candidates WHERE status IN ({marks}) ORDER BY id", statuses)
        else:
            rows = self.conn.execute("SELECT * FROM candidates ORDER BY id")
        return [_row_to_candidate(r) for r in rows]

    def best(self) -> Candidate | None:
        """The best valid candidate. Failed candidates never rank, whatever the sign of scores."""
        row = self.conn.execute(
            "SELECT * FROM candidates WHERE status='ok' AND score IS NOT NULL ORDER BY score DESC, id ASC LIMIT 1"
        ).fetchone()
        return _row_to_candidate(row) if row else None

    def top(self, n: int) -> list[Candidate]:
        rows = self.conn.execute(
            "SELECT * FROM candidates WHERE status='ok' AND score IS NOT NULL ORDER BY score DESC, id ASC LIMIT ?", (n,)
        )
        return [_row_to_candidate(r) for r in rows]

    def counts(self) -> dict[str, int]:
        return {s: n for s, n in self.conn.execute("SELECT status, COUNT(*) FROM candidates GROUP BY status")}

    def next_id(self) -> int:
        """The id the next candidate gets (one more than the largest stored)."""
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM candidates").fetchone()[0]) + 1

    def first_with_fingerprint(self, fp: str) -> int | None:
        """The first candidate (not itself a duplicate) whose program has fingerprint ``fp``."""
        row = self.conn.execute("SELECT id FROM candidates WHERE fingerprint=? AND status!='duplicate' ORDER BY id "
                                "LIMIT 1", (fp,)).fetchone()
        return int(row[0]) if row else None

    def fingerprints(self) -> dict[str, int]:
        """Fingerprint -> first candidate id that had it (every proposed child, whatever its status)."""
        out: dict[str, int] = {}
        for fp, cid in self.conn.execute(
            "SELECT fingerprint, id FROM candidates WHERE fingerprint IS NOT NULL AND status != 'duplicate' ORDER BY id"
        ):
            out.setdefault(fp, cid)
        return out

    # --- promotions (the adoption gate) --------------------------------------------------------
    def add_promotion(self, cid: int, status: str, evidence: dict[str, Any], kind: str,
                      actor: str = "rsi", note: str | None = None) -> int:
        """Record a gate decision (promoted, refused, pending) and its audit event, in one transaction."""
        now = time.time()
        decided = None if status == "pending" else now
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO promotions(candidate_id, status, evidence, requested_at, decided_at, actor, note) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (cid, status, json.dumps(evidence), now, decided, actor, note))
            pid = _inserted_id(cursor)
            audit.append(self.conn, kind, {"id": cid, "status": status, "note": note, **evidence,
                                           "promotion": self._promotion_state(pid)}, actor=actor)
        return pid

    def decide_promotion(self, promotion_id: int, status: str, actor: str, note: str | None) -> None:
        kind = {"promoted": "approval.approved", "rejected": "approval.rejected"}[status]
        with self.transaction():
            row = self.conn.execute("SELECT candidate_id, status FROM promotions WHERE id=?",
                                    (promotion_id,)).fetchone()
            if row is None or row["status"] != "pending":
                raise RunError(f"promotion request {promotion_id} is not pending")
            self.conn.execute("UPDATE promotions SET status=?, decided_at=?, actor=?, note=? WHERE id=?",
                              (status, time.time(), actor, note, promotion_id))
            audit.append(self.conn, kind, {"id": row["candidate_id"], "note": note,
                                           "promotion": self._promotion_state(promotion_id)}, actor=actor)
            if status == "promoted":
                audit.append(self.conn, "candidate.promoted", {"id": row["candidate_id"], "by": actor}, actor=actor)

    def _promotion_state(self, promotion_id: int) -> dict[str, Any]:
        return promotion_of_row(self.conn.execute("SELECT * FROM promotions WHERE id=?", (promotion_id,)).fetchone())

    def promotions(self, status: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM promotions" + (" WHERE status=?" if status else "") + " ORDER BY id"
        rows = self.conn.execute(query, (status,) if status else ())
        return [{**dict(r), "evidence": json.loads(r["evidence"])} for r in rows]

    def promoted(self) -> Candidate | None:
        """The program currently promoted for use (the last one promoted), if any."""
        row = self.conn.execute(
            "SELECT candidate_id FROM promotions WHERE status='promoted' ORDER BY decided_at DESC, id DESC LIMIT 1"
        ).fetchone()
        return self.get(row[0]) if row else None

    def score_history(self) -> list[tuple[int, float, float]]:
        """(evaluation number, wall time since start, best score so far) at every improvement."""
        history: list[tuple[int, float, float]] = []
        best = None
        n = 0
        start = None
        for status, score, at in self.conn.execute(
            "SELECT status, score, COALESCE(evaluated_at, proposed_at) FROM candidates "
            "WHERE status IN ('ok','error','timeout') ORDER BY evaluated_at, id"
        ):
            n += 1
            start = at if start is None else start
            if status == "ok" and score is not None and (best is None or score > best):
                best = score
                history.append((n, at - start, score))
        return history
