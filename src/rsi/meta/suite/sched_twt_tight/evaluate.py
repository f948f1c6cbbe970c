"""Single-machine scheduling, total weighted tardiness: 5 instances of 50 jobs
with tight due dates.

Due dates with tardiness factor T = 0.7 and range R = 0.3. The instances, the program, the
schedule and the score: see ``rsi/meta/suite/_families/scheduling.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import scheduling

DATA = scheduling.instances(3602, jobs=50, tardiness=0.7, spread=0.3)


def evaluate(program_path) -> dict[str, float]:
    return scheduling.evaluate(program_path, DATA)
