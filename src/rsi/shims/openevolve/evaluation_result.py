"""``EvaluationResult`` as OpenEvolve evaluators return it: metrics, and artifacts on the side.

rsi reads any object with ``metrics`` and ``artifacts`` (``rsi.sandbox.protocol.split_result``);
this class exists so that ``from openevolve.evaluation_result import EvaluationResult`` works
without OpenEvolve installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EvaluationResult:
    """``metrics``: name -> value (``combined_score`` the objective); ``artifacts``: name -> text or
    bytes, kept with the candidate for feedback."""

    metrics: dict[str, Any]
    artifacts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, metrics: dict[str, Any]) -> EvaluationResult:
        return cls(metrics=dict(metrics))

    def to_dict(self) -> dict[str, Any]:
        return self.metrics

    def has_artifacts(self) -> bool:
        return bool(self.artifacts)

    def get_artifact_keys(self) -> list[str]:
        return list(self.artifacts)

    def get_artifact_size(self, key: str) -> int:
        value = self.artifacts.get(key)
        if value is None:
            return 0
        return len(value) if isinstance(value, bytes) else len(str(value).encode())

    def get_total_artifact_size(self) -> int:
        return sum(self.get_artifact_size(key) for key in self.artifacts)
