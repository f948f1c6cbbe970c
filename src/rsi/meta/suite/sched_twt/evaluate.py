"""Single-machine scheduling, total weighted tardiness: 5 instances of 40 jobs.

Due dates with tardiness factor T = 0.4 and range R = 0.6. The instances, the program, the
schedule and the score: see ``rsi/meta/suite/_families/scheduling.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import scheduling

DATA = scheduling.instances(3601, jobs=40, tardiness=0.4, spread=0.6)


def evaluate(program_path) -> dict[str, float]:
    return scheduling.evaluate(program_path, DATA)
