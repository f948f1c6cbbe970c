"""The population: MAP-Elites cells over feature descriptors, split into islands.

Each island keeps, per cell of the feature grid, the best candidate that landed there. Feature
ranges grow as values are seen; when they do, elites are re-binned (the best per cell survives).
Migration copies each island's best into the next island (a ring). The archive holds ids, scores
and features only; sources live in the store. It serialises to plain JSON for the loop state.

``min_improvement`` is a noise margin: a candidate displaces the elite of an occupied cell only
when its score is higher by more than the margin (an evaluator whose repeats of one program
spread by 0.02 should not let a lucky repeat of the same idea pass for progress). Empty cells
take any valid candidate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Elite:
    id: int
    score: float
    features: tuple[float, ...]
    size: float = 0.0  # code size: on equal scores the shorter program wins (pressure against bloat)

    def beats(self, other: Elite) -> bool:
        return (self.score, -self.size, -self.id) > (other.score, -other.size, -other.id)


Cell = tuple[int, ...]


class Archive:
    def __init__(self, features: list[str], bins: int = 6, islands: int = 4, min_improvement: float = 0.0):
        if not features:
            raise ValueError("the archive needs at least one feature")
        if not (math.isfinite(min_improvement) and min_improvement >= 0):
            raise ValueError(f"min_improvement must be a finite number >= 0, not {min_improvement!r}")
        self.min_improvement = float(min_improvement)
        self.features = list(features)
        self.bins = bins
        self.n_islands = islands
        self.lo: list[float | None] = [None] * len(features)
        self.hi: list[float | None] = [None] * len(features)
        self.cells: list[dict[Cell, Elite]] = [{} for _ in range(islands)]

    # --- binning ---------------------------------------------------------------------------
    def _grow_ranges(self, values: tuple[float, ...]) -> bool:
        grew = False
        for i, v in enumerate(values):
            lo, hi = self.lo[i], self.hi[i]
            if lo is None or v < lo:
                self.lo[i] = v
                grew = True
            if hi is None or v > hi:
                self.hi[i] = v
                grew = True
        return grew

    def cell_of(self, values: tuple[float, ...]) -> Cell:
        cell = []
        for i, v in enumerate(values):
            lo, hi = self.lo[i], self.hi[i]
            if lo is None or hi is None or hi <= lo:
                cell.append(0)
            else:
                cell.append(min(self.bins - 1, int((v - lo) / (hi - lo) * self.bins)))
        return tuple(cell)

    def _rebin(self) -> None:
        for island in range(self.n_islands):
            old = sorted(self.cells[island].values(), key=lambda e: (-e.score, e.size, e.id))
            self.cells[island] = {}
            for elite in old:
                self.cells[island].setdefault(self.cell_of(elite.features), elite)

    def _displaces(self, elite: Elite, current: Elite) -> bool:
        """Whether ``elite`` takes the cell of ``current``: better beyond the noise margin."""
        if self.min_improvement > 0:
            return elite.score > current.score + self.min_improvement
        return elite.beats(current)

    # --- adding ----------------------------------------------------------------------------
    def add(self, cid: int, island: int, score: float, features: tuple[float, ...], size: float = 0.0) -> bool:
        """Offer a valid candidate to an island. True if it became the elite of its cell."""
        if not math.isfinite(score):
            return False
        features = tuple(float(f) if math.isfinite(f) else 0.0 for f in features)
        if self._grow_ranges(features):
            self._rebin()
        return self._place(Elite(cid, score, features, size), island % self.n_islands)

    def _place(self, elite: Elite, island: int) -> bool:
        cell = self.cell_of(elite.features)
        current = self.cells[island].get(cell)
        if current is not None and (current.id == elite.id or not self._displaces(elite, current)):
            return False
        self.cells[island][cell] = elite
        return True

    def migrate(self) -> list[tuple[int, int, int]]:
        """Copy each island's best into the next island. Returns (id, from, to) for each move made."""
        if self.n_islands < 2:
            return []
        bests = [self.best(i) for i in range(self.n_islands)]
        moves = []
        for source, elite in enumerate(bests):
            if elite is None:
                continue
            target = (source + 1) % self.n_islands
            if self._place(elite, target):
                moves.append((elite.id, source, target))
        return moves

    # --- selection primitives ---------------------------------------------------------------
    def elites(self, island: int | None = None) -> list[Elite]:
        """Elites of one island (or all islands, deduplicated), best first."""
        pools = self.cells if island is None else [self.cells[island % self.n_islands]]
        seen: dict[int, Elite] = {}
        for pool in pools:
            for elite in pool.values():
                seen.setdefault(elite.id, elite)
        return sorted(seen.values(), key=lambda e: (-e.score, e.size, e.id))

    def best(self, island: int | None = None) -> Elite | None:
        elites = self.elites(island)
        return elites[0] if elites else None

    def size(self, island: int | None = None) -> int:
        return len(self.elites(island))

    def coverage(self) -> float:
        """Share of the grid's cells filled, over all islands."""
        total = self.n_islands * self.bins ** len(self.features)
        return sum(len(c) for c in self.cells) / total

    def copy(self) -> Archive:
        """An independent copy (elites are frozen, so copying the cell maps is enough)."""
        other = Archive(self.features, self.bins, self.n_islands, self.min_improvement)
        other.lo, other.hi = list(self.lo), list(self.hi)
        other.cells = [dict(pool) for pool in self.cells]
        return other

    # --- persistence ------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "features": self.features,
            "bins": self.bins,
            "islands": self.n_islands,
            "min_improvement": self.min_improvement,
            "lo": self.lo,
            "hi": self.hi,
            "cells": [[[list(cell), asdict(e)] for cell, e in sorted(pool.items())] for pool in self.cells],
        }

    @classmethod
    def from_json(cls, data: dict) -> Archive:
        archive = cls(data["features"], data["bins"], data["islands"], data.get("min_improvement", 0.0))
        archive.lo, archive.hi = data["lo"], data["hi"]
        for island, pool in enumerate(data["cells"]):
            for cell, e in pool:
                archive.cells[island][tuple(cell)] = Elite(e["id"], e["score"], tuple(e["features"]),
                                                           e.get("size", 0.0))
        return archive
