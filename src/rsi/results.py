"""Reading a run's results: the best program, the candidates, a lineage, a diff, the audit trail.

    results = rsi.open_run("runs/bp")
    best = results.best()
    print(best.score, results.diff(best.id, against=1))
    for cand in results.lineage(best.id):
        print(cand.id, cand.operator, cand.score)
    assert results.verify_audit().ok

Read-only (the store stays the only writer); safe while the run is going on.
"""

from __future__ import annotations

from pathlib import Path

from .errors import RunError
from .oversight import audit
from .oversight.state import StateReport, verify_state
from .program import unified_diff
from .status import Status
from .storage import Candidate, Store


class Results:
    """A run folder, opened for reading. Use as a context manager, or call ``close``."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.store = Store.open(self.run_dir)

    def best(self) -> Candidate | None:
        """The best valid candidate (failed candidates never rank), or None."""
        return self.store.best()

    def get(self, candidate_id: int) -> Candidate:
        return self.store.get(candidate_id)

    def candidates(self, *statuses: Status | str) -> list[Candidate]:
        """Every candidate in id order, or only those with one of ``statuses``."""
        return self.store.candidates(tuple(str(s) for s in statuses) or None)

    def top(self, n: int = 10) -> list[Candidate]:
        return self.store.top(n)

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    def lineage(self, candidate_id: int) -> list[Candidate]:
        """The candidate and its ancestors, the seed first."""
        chain: list[Candidate] = []
        current: int | None = candidate_id
        seen: set[int] = set()
        while current is not None and current not in seen:
            seen.add(current)
            cand = self.store.get(current)
            chain.append(cand)
            current = cand.parent_id
        return list(reversed(chain))

    def diff(self, candidate_id: int, against: int | None = None) -> str:
        """What a candidate changed against its parent (or ``against``), as a unified diff."""
        cand = self.store.get(candidate_id)
        if cand.source is None:
            raise RunError(f"candidate {cand.id} has no source ({cand.status}: {cand.error})")
        other_id = against if against is not None else cand.parent_id
        if other_id is None:
            return ""
        return unified_diff(self.store.get(other_id).source or "", cand.source, f"candidate-{cand.id}.py")

    def events(self, *kinds: str) -> list[audit.AuditEvent]:
        """The audit trail (only events of ``kinds`` if given), oldest first."""
        return audit.events(self.store.conn, list(kinds) or None)

    def verify_audit(self, known: str | None = None) -> audit.AuditReport:
        """Recompute the hash chain (the trail against itself; ``verify_state``: the tables against it)."""
        return audit.verify(self.store.conn, known=known)

    def verify_state(self) -> StateReport:
        """Compare every candidate and promotion row with what the trail last recorded of it."""
        return verify_state(self.store.conn)

    def check(self) -> None:
        """RunError unless the trail is intact and the tables agree with it (a hand edit of the
        database, for instance): the run's results cannot be trusted as they are."""
        chain = self.verify_audit()
        if not chain.ok:
            raise RunError(f"{self.run_dir}: its audit trail is broken ({chain.summary()}); its results cannot be "
                           "trusted. Inspect with `rsi audit verify` or pass --inspect")
        state = self.verify_state()
        if not state.ok:
            raise RunError(f"{self.run_dir}: {state.summary()}\nIts results cannot be trusted. See `rsi audit verify "
                           f"{self.run_dir}`, or pass --inspect to look anyway")

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_run(run_dir: str | Path) -> Results:
    """Open a run folder for reading (``Results``)."""
    return Results(run_dir)
