"""Credit assignment for choices (operators, proposers): improvement per try, decayed.

Each arm keeps a decayed count of tries (in units of cost) and of credit. Choice is proportional to the estimated
credit rate (with a prior so untried arms are tried), mixed with a uniform floor so no arm starves.
Plain JSON state, so it lives in the loop state and survives a resume.
"""

from __future__ import annotations

import random


class CreditBandit:
    def __init__(self, arms: list[str], floor: float = 0.15, decay: float = 0.995, prior: float = 1.0):
        if not arms:
            raise ValueError("a bandit needs at least one arm")
        self.arms = list(arms)
        self.floor = floor
        self.decay = decay
        self.prior = prior
        self.tries = {a: 0.0 for a in self.arms}
        self.credit = {a: 0.0 for a in self.arms}

    def rate(self, arm: str) -> float:
        """Estimated credit per try (prior: one try, half a credit's worth of optimism)."""
        return (self.credit[arm] + 0.5 * self.prior) / (self.tries[arm] + self.prior)

    def probabilities(self, allowed: list[str] | None = None) -> dict[str, float]:
        arms = [a for a in self.arms if allowed is None or a in allowed] or self.arms
        rates = [self.rate(a) for a in arms]
        total = sum(rates)
        uniform = 1.0 / len(arms)
        return {
            a: self.floor * uniform + (1 - self.floor) * (r / total if total > 0 else uniform)
            for a, r in zip(arms, rates, strict=True)
        }

    def choose(self, rng: random.Random, allowed: list[str] | None = None) -> str:
        probs = self.probabilities(allowed)
        x = rng.random()
        acc = 0.0
        for arm, p in probs.items():
            acc += p
            if x < acc:
                return arm
        return next(reversed(probs))

    def update(self, arm: str, credit: float, spent: float = 1.0) -> None:
        """One outcome of ``arm``: ``credit`` earned for ``spent`` tries' worth of cost (a child that
        cost ten evaluations counts as ten tries, so one that earned nothing outweighs the prior at
        once; the arm's rate is then credit per unit spent)."""
        if arm not in self.tries:  # an arm added later (e.g. a new operator)
            self.arms.append(arm)
            self.tries[arm] = self.credit[arm] = 0.0
        for a in self.arms:
            self.tries[a] *= self.decay
            self.credit[a] *= self.decay
        self.tries[arm] += spent
        self.credit[arm] += credit

    def expect(self, arm: str, spent: float) -> None:
        """Count ``spent`` tries of ``arm`` whose outcome is not known yet as if they earned nothing
        (a choice still being written); apply to a copy used for one choice, not to the saved state."""
        if arm in self.tries:
            self.tries[arm] += spent

    def prime(self, rates: dict[str, float], weight: float) -> None:
        """Start each arm in ``rates`` with ``weight`` pseudo-tries at that credit rate (a prior from
        earlier searches: ``rsi.memory``); other arms start untried as usual."""
        if weight <= 0:
            return
        for arm in self.arms:
            if arm in rates:
                self.tries[arm] = float(weight)
                self.credit[arm] = float(weight) * rates[arm]

    def to_json(self) -> dict:
        return {"arms": self.arms, "floor": self.floor, "decay": self.decay, "prior": self.prior,
                "tries": self.tries, "credit": self.credit}

    @classmethod
    def from_json(cls, data: dict) -> CreditBandit:
        bandit = cls(data["arms"], data["floor"], data["decay"], data["prior"])
        bandit.tries = dict(data["tries"])
        bandit.credit = dict(data["credit"])
        return bandit
