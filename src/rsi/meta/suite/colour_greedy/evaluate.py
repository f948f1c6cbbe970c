"""Greedy graph colouring with a dynamic vertex order: 6 fixed random graphs of 70 vertices.

Three graphs are G(70, 0.15) (uniform random edges) and three are random geometric graphs (points
in the unit square, joined when closer than 0.22). The program, the colouring and the score: see
``rsi/meta/suite/_families/colouring.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import colouring

VERTICES = 70
DATA = colouring.graphs(9601, VERTICES, p=0.15, radius=0.22)


def evaluate(program_path) -> dict[str, float]:
    return colouring.evaluate(program_path, DATA, VERTICES)
