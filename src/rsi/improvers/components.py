"""Components of search strategies: the parts an improver is assembled from (``composed.py``).

A search policy answers, at each step, the same few questions; each question is a *role*, and
each role has a few interchangeable *components*:

===============  ===============================================================================
role             components (the first is the seed improver's choice)
===============  ===============================================================================
``islands``      ``round_robin`` (islands take turns), ``single`` (one pool: islands unused)
``parent``       ``seed_mix`` (the seed's mixture: tournament / global best / any elite, exploring
                 more on stagnation), ``tournament``, ``fitness_proportional``, ``best``,
                 ``uniform`` (over the archive or every program so far), ``novelty`` (the elite
                 of the least-visited cell)
``acceptance``   ``greedy`` (the archive keeps the best; parents come from it), ``annealing`` (a
                 chain that accepts a worse child as its next parent with probability
                 exp(relative loss / T), T cooling geometrically)
``restart``      ``none``, ``stagnation`` (after ``patience`` evaluations without a new best,
                 hill-climb for ``hold`` steps from a fresh start: the seed, a random elite or
                 the best)
``inspirations`` ``island_elites``, ``global_elites``, ``top``, ``none``
``operator``     ``bandit`` (``rsi.proposers.bandit.CreditBandit``, credit per unit of cost, with
                 floor and decay, primed from ``ctx.memory`` when a run has one), ``uniform``,
                 ``fixed`` (weights by proposer or arm)
``children``     ``fixed`` (children per step), ``burst`` (more children while stagnating)
``tuning``       ``none``, ``cma`` (every so many evaluations, a multi-evaluation move: CMA-ES over
                 the numeric constants of the best program or the step's parent, several
                 evaluations in a row, through the ``tune`` proposer)
===============  ===============================================================================

A *spec* says which component plays each role, with its parameters::

    {"parent": {"use": "tournament", "k": 4}, "operator": {"use": "uniform"}, ...}

``build(spec)`` checks it (every role known, every component known, every parameter declared,
of its type and within its bounds; a missing role or parameter takes its default) and returns a
``Policy`` with the improver hooks ``start / next_step / observe``. Anything else is refused with
a ``SpecError`` naming the role, the component, the parameter and what is allowed.
``build(SEED_SPEC)`` behaves as ``rsi/improvers/seed.py``: it draws the same random numbers in the
same order, so a search with the same seed makes the same candidates.

Each parameter is a typed, bounded, documented ``Param``; the meta-level grammar
(``rsi.meta.grammar``) edits specs through these declarations only, so every improver it writes is
valid by construction. ``Param``, ``Component`` (what a component declares), ``SpecError``,
``entry`` and ``render`` (a spec as source) are in ``rsi.improvers.spec``; this module re-exports
them.

What is not here: re-evaluation of noisy candidates. An improver's ``Step`` only makes children;
evaluations of stored candidates belong to the engine (its hooks), so no component can ask for one.
A multi-evaluation move (``tuning``) is a run of children, each one an evaluation of the budget.

State: everything a component remembers lives in ``ctx.state`` (JSON data, persisted with the
run); its only randomness is ``ctx.rng``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..archive import Elite
from ..errors import RsiError
from ..memory import credit_rates
from ..proposers.bandit import CreditBandit
from . import ImproverContext, Outcome, Step
from .spec import Component, Param, SpecError, entry, render  # noqa: F401 - render: part of this API

SEED_ID = 1  # the initial program of every search
COMPOSED_IMPROVER = Path(__file__).with_name("composed.py")  # the improver made of these components
FAILED = ("ok", "error", "timeout")  # outcomes that count as an evaluation without a new best


# --- components -----------------------------------------------------------------------------------
def _best_of(elites: Sequence[Elite]) -> Elite:
    return max(elites, key=lambda e: (e.score, -e.size, -e.id))


# islands -----------------------------------------------------------------------------------------
class IslandRule(Component):
    role = "islands"

    def island(self, ctx: ImproverContext) -> int:
        raise NotImplementedError

    def elites(self, ctx: ImproverContext, island: int) -> list[Elite]:
        raise NotImplementedError


class RoundRobin(IslandRule):
    """Islands take turns, each evolving its own lineage (the engine migrates bests between them);
    parents and inspirations come from the island's elites."""

    name = "round_robin"

    def start(self, ctx: ImproverContext) -> None:
        ctx.state.setdefault("turn", 0)

    def island(self, ctx: ImproverContext) -> int:
        island = ctx.state["turn"] % ctx.archive.n_islands
        ctx.state["turn"] += 1
        return island

    def elites(self, ctx: ImproverContext, island: int) -> list[Elite]:
        return ctx.archive.elites(island) or ctx.archive.elites()


class SingleIsland(IslandRule):
    """Islands unused: every child is counted on island 0, and parents and inspirations come from
    the elites of all islands together."""

    name = "single"

    def island(self, ctx: ImproverContext) -> int:
        return 0

    def elites(self, ctx: ImproverContext, island: int) -> list[Elite]:
        return ctx.archive.elites()


# parent selection --------------------------------------------------------------------------------
class ParentRule(Component):
    role = "parent"

    def choose(self, ctx: ImproverContext, island: int, elites: list[Elite]) -> int:
        raise NotImplementedError


class SeedMix(ParentRule):
    """The seed improver's rule: the global best with probability ``global_best``, else a
    tournament of ``k`` among the island's elites with probability ``exploit`` (times
    ``stagnation_factor`` after ``stagnation`` evaluations without a new best), else any elite."""

    name = "seed_mix"
    params = (
        Param("exploit", "float", 0.75, "share of parents picked by tournament", 0.0, 1.0),
        Param("global_best", "float", 0.10, "share of parents that are the global best", 0.0, 1.0),
        Param("k", "int", 3, "tournament size", 1, 16),
        Param("stagnation", "int", 150, "evaluations without a new best before exploring more", 5, 5000, log=True),
        Param("stagnation_factor", "float", 0.5, "exploit is multiplied by this while stagnating", 0.0, 1.0),
    )

    def choose(self, ctx: ImproverContext, island: int, elites: list[Elite]) -> int:
        rng = ctx.rng
        stagnating = ctx.state["since_best"] > self.p["stagnation"]
        exploit = self.p["exploit"] * (self.p["stagnation_factor"] if stagnating else 1.0)
        draw = rng.random()
        if draw < self.p["global_best"]:
            best = ctx.archive.best()
            if best is not None:
                return best.id
        if draw < self.p["global_best"] + exploit:
            return _best_of([rng.choice(elites) for _ in range(self.p["k"])]).id
        return rng.choice(elites).id


class Tournament(ParentRule):
    """The best of ``k`` elites of the island drawn at random (with replacement)."""

    name = "tournament"
    params = (Param("k", "int", 3, "tournament size", 1, 16),)

    def choose(self, ctx: ImproverContext, island: int, elites: list[Elite]) -> int:
        return _best_of([ctx.rng.choice(elites) for _ in range(self.p["k"])]).id


class FitnessProportional(ParentRule):
    """An elite of the island drawn with weight exp((score - best) / (temperature x spread)),
    spread being the elites' score range: temperature small is greedy, large is uniform."""

    name = "fitness_proportional"
    params = (Param("temperature", "float", 0.3, "softness of the selection (relative to the score range)",
                    0.01, 100.0, log=True),)

    def choose(self, ctx: ImproverContext, island: int, elites: list[Elite]) -> int:
        scores = [e.score for e in elites]
        hi, lo = max(scores), min(scores)
        if hi <= lo:
            return ctx.rng.choice(elites).id
        scale = self.p["temperature"] * (hi - lo)
        weights = [math.exp((s - hi) / scale) for s in scores]
        return elites[_weighted(ctx.rng, weights)].id


class Best(ParentRule):
    """Always the best: of the island (``scope="island"``) or of the whole archive."""

    name = "best"
    params = (Param("scope", "choice", "island", "whose best", choices=("island", "global")),)

    def choose(self, ctx: ImproverContext, island: int, elites: list[Elite]) -> int:
        best = ctx.archive.best() if self.p["scope"] == "global" else None
        return (best or elites[0]).id


class Uniform(ParentRule):
    """Any elite of the whole archive (``pool="archive"``) or any valid program found so far
    (``pool="population"``), uniformly: random search over what exists."""

    name = "uniform"
    params = (Param("pool", "choice", "archive", "what to draw from", choices=("archive", "population")),)

    def choose(self, ctx: ImproverContext, island: int, elites: list[Elite]) -> int:
        if self.p["pool"] == "population" and ctx.population:
            return ctx.rng.choice(ctx.population)[0]
        return ctx.rng.choice(ctx.archive.elites() or elites).id


class Novelty(ParentRule):
    """The elite of the island's least-visited cell (visits: how often a cell's elite was a parent;
    ties broken at random): spreads the effort over the feature grid."""

    name = "novelty"

    def start(self, ctx: ImproverContext) -> None:
        ctx.state.setdefault("visits", {})

    def choose(self, ctx: ImproverContext, island: int, elites: list[Elite]) -> int:
        visits: dict[str, int] = ctx.state.setdefault("visits", {})

        def key(elite: Elite) -> str:
            return f"{island}:{','.join(map(str, ctx.archive.cell_of(elite.features)))}"

        fewest = min(visits.get(key(e), 0) for e in elites)
        chosen = ctx.rng.choice([e for e in elites if visits.get(key(e), 0) == fewest])
        visits[key(chosen)] = visits.get(key(chosen), 0) + 1
        return chosen.id


# acceptance --------------------------------------------------------------------------------------
class Acceptance(Component):
    role = "acceptance"

    def parent(self, ctx: ImproverContext) -> int | None:
        """A parent this component insists on, or None (the parent rule decides)."""
        return None

    def reset(self, ctx: ImproverContext, anchor: int, score: float | None) -> None:
        """A restart moved the search to ``anchor``."""


class Greedy(Acceptance):
    """The archive keeps the best per cell and parents come from it (what the engine does anyway):
    a worse child is never a parent unless it is an elite."""

    name = "greedy"


class Annealing(Acceptance):
    """Simulated annealing on a chain beside the archive: with probability ``chain_share`` the parent
    is the chain's current program; its child replaces it if better, or if worse with probability
    exp(relative change / T), T starting at ``t0`` and multiplied by ``cooling`` per chain child."""

    name = "annealing"
    params = (
        Param("t0", "float", 0.05, "initial temperature (in relative score change)", 1e-4, 1.0, log=True),
        Param("cooling", "float", 0.99, "temperature factor per chain child", 0.9, 0.9999),
        Param("chain_share", "float", 0.5, "share of steps that extend the chain", 0.0, 1.0),
    )

    def start(self, ctx: ImproverContext) -> None:
        ctx.state.setdefault("chain", {"current": None, "score": None, "t": self.p["t0"]})

    def parent(self, ctx: ImproverContext) -> int | None:
        chain = ctx.state["chain"]
        if chain["current"] is None:
            best = ctx.archive.best()
            if best is None:
                return None
            chain.update(current=best.id, score=best.score)
        return chain["current"] if ctx.rng.random() < self.p["chain_share"] else None

    def reset(self, ctx: ImproverContext, anchor: int, score: float | None) -> None:
        ctx.state["chain"].update(current=anchor, score=score, t=self.p["t0"])

    def observe(self, ctx: ImproverContext, step: Step, outcome: Outcome, policy: Policy) -> None:
        chain = ctx.state["chain"]
        if step.parent != chain["current"] or outcome.score is None or chain["score"] is None:
            return
        change = (outcome.score - chain["score"]) / (abs(chain["score"]) or 1.0)
        temperature = max(chain["t"], 1e-12)
        if change >= 0 or ctx.rng.random() < math.exp(max(-700.0, change / temperature)):
            chain.update(current=outcome.candidate_id, score=outcome.score)
        chain["t"] = chain["t"] * self.p["cooling"]


# restarts ----------------------------------------------------------------------------------------
class Restart(Component):
    role = "restart"

    def parent(self, ctx: ImproverContext) -> int | None:
        return None


class NoRestart(Restart):
    """Never restart."""

    name = "none"


class StagnationRestart(Restart):
    """After ``patience`` evaluations without a new best (or since the last restart), start again
    from ``target`` (the seed program, a random elite, or the best) and hill-climb from it for
    ``hold`` steps: the parent is the best of the anchor's lineage. ``reset_operator`` also forgets
    what the operator rule learnt."""

    name = "stagnation"
    params = (
        Param("patience", "int", 60, "evaluations without a new best before a restart", 5, 2000, log=True),
        Param("target", "choice", "random_elite", "where to restart from", choices=("seed", "random_elite", "best")),
        Param("hold", "int", 10, "steps spent climbing from the restart point", 1, 100, log=True),
        Param("reset_operator", "bool", False, "forget the operator statistics at a restart"),
    )

    def start(self, ctx: ImproverContext) -> None:
        ctx.state.setdefault("restart", {"since": 0, "left": 0, "lineage": [], "count": 0})

    def parent(self, ctx: ImproverContext) -> int | None:
        restart = ctx.state["restart"]
        if restart["left"] <= 0 or not restart["lineage"]:
            return None
        restart["left"] -= 1
        return max(restart["lineage"], key=lambda pair: (pair[1], -pair[0]))[0]

    def observe(self, ctx: ImproverContext, step: Step, outcome: Outcome, policy: Policy) -> None:
        restart = ctx.state["restart"]
        if restart["left"] > 0 and outcome.score is not None and step.parent in {i for i, _ in restart["lineage"]}:
            restart["lineage"].append([outcome.candidate_id, outcome.score])
            del restart["lineage"][:-64]
        if outcome.new_best:
            restart["since"] = 0
        elif outcome.status in FAILED:
            restart["since"] += 1
        if restart["since"] < self.p["patience"]:
            return
        anchor, score = self._target(ctx)
        restart.update(since=0, left=self.p["hold"], lineage=[[anchor, score]], count=restart["count"] + 1)
        policy.acceptance.reset(ctx, anchor, score)
        if self.p["reset_operator"]:
            policy.operator.reset(ctx)

    def _target(self, ctx: ImproverContext) -> tuple[int, float | None]:
        scores = dict(ctx.population)
        elites = ctx.archive.elites()
        if self.p["target"] == "random_elite" and elites:
            elite = ctx.rng.choice(elites)
            return elite.id, elite.score
        if self.p["target"] == "best" and elites:
            return elites[0].id, elites[0].score
        return SEED_ID, scores.get(SEED_ID)


# inspirations ------------------------------------------------------------------------------------
class InspirationRule(Component):
    role = "inspirations"

    def choose(self, ctx: ImproverContext, island: int, parent: int, elites: list[Elite]) -> list[int]:
        raise NotImplementedError

    def _with_best(self, ctx: ImproverContext, parent: int, chosen: list[int]) -> list[int]:
        best = ctx.archive.best()
        if self.p.get("add_best") and best is not None and best.id != parent and best.id not in chosen:
            chosen.append(best.id)
        return chosen


_COUNT = Param("count", "int", 2, "inspirations drawn", 0, 8)
_ADD_BEST = Param("add_best", "bool", True, "the global best is always one more inspiration")


class IslandElites(InspirationRule):
    """``count`` other elites of the parent's island (other cells), plus the global best."""

    name = "island_elites"
    params = (_COUNT, _ADD_BEST)

    def choose(self, ctx: ImproverContext, island: int, parent: int, elites: list[Elite]) -> list[int]:
        others = [e for e in ctx.archive.elites(island) if e.id != parent]
        chosen = [e.id for e in ctx.rng.sample(others, min(self.p["count"], len(others)))]
        return self._with_best(ctx, parent, chosen)


class GlobalElites(InspirationRule):
    """``count`` other elites of the whole archive, plus the global best."""

    name = "global_elites"
    params = (_COUNT, _ADD_BEST)

    def choose(self, ctx: ImproverContext, island: int, parent: int, elites: list[Elite]) -> list[int]:
        others = [e for e in ctx.archive.elites() if e.id != parent]
        chosen = [e.id for e in ctx.rng.sample(others, min(self.p["count"], len(others)))]
        return self._with_best(ctx, parent, chosen)


class Top(InspirationRule):
    """The ``count`` best programs found so far (other than the parent)."""

    name = "top"
    params = (_COUNT,)

    def choose(self, ctx: ImproverContext, island: int, parent: int, elites: list[Elite]) -> list[int]:
        ranked = sorted((p for p in ctx.population if p[0] != parent), key=lambda p: (-p[1], p[0]))
        return [cid for cid, _ in ranked[: self.p["count"]]]


class NoInspirations(InspirationRule):
    """No inspirations: every child is an edit of its parent alone."""

    name = "none"

    def choose(self, ctx: ImproverContext, island: int, parent: int, elites: list[Elite]) -> list[int]:
        return []


# operator choice ---------------------------------------------------------------------------------
class OperatorRule(Component):
    role = "operator"

    def choose(self, ctx: ImproverContext) -> str:
        """An arm, "proposer:operator"."""
        raise NotImplementedError

    def reset(self, ctx: ImproverContext) -> None:
        """Forget what was learnt (a restart)."""


def _arms(ctx: ImproverContext) -> list[str]:
    return [f"{proposer}:{op}" for proposer, ops in sorted(ctx.operators.items()) for op in ops]


class Bandit(OperatorRule):
    """The credit bandit (``rsi.proposers.bandit``): an operator's chance follows its decayed credit
    per unit of cost, mixed with a uniform ``floor``. Credit: ``improved`` for a child better than its
    parent, ``new_best`` for a new best; a child counts as as many tries as it cost evaluations (1,
    plus model tokens / ``tokens_per_evaluation`` and dollars x ``evaluations_per_dollar``)."""

    name = "bandit"
    params = (
        Param("floor", "float", 0.2, "uniform share mixed into the choice", 0.0, 1.0),
        Param("decay", "float", 0.995, "forgetting factor per child", 0.9, 1.0),
        Param("improved", "float", 1.0, "credit for a child better than its parent", 0.0, 10.0),
        Param("new_best", "float", 3.0, "credit for a new best", 0.0, 30.0),
        Param("tokens_per_evaluation", "float", 40.0, "model tokens that cost one evaluation", 1.0, 1e5, log=True),
        Param("evaluations_per_dollar", "float", 5000.0, "what a dollar of model spend weighs", 1.0, 1e7, log=True),
        Param("memory_weight", "int", 20, "pseudo-tries an arm starts with from ctx.memory (0: ignore it)", 0, 500),
    )

    def start(self, ctx: ImproverContext) -> None:
        if "bandit" not in ctx.state:
            self.reset(ctx)

    def reset(self, ctx: ImproverContext) -> None:
        bandit = CreditBandit(_arms(ctx), floor=self.p["floor"], decay=self.p["decay"])
        bandit.prime(credit_rates(ctx.memory, self.p["improved"], self.p["new_best"]), self.p["memory_weight"])
        ctx.state["bandit"] = bandit.to_json()

    def choose(self, ctx: ImproverContext) -> str:
        return CreditBandit.from_json(ctx.state["bandit"]).choose(ctx.rng)

    def observe(self, ctx: ImproverContext, step: Step, outcome: Outcome, policy: Policy) -> None:
        credit = 0.0
        if outcome.improved_parent:
            credit = self.p["improved"]
        if outcome.new_best:
            credit = self.p["new_best"]
        cost = (1.0 + outcome.tokens / self.p["tokens_per_evaluation"]
                + outcome.cost * self.p["evaluations_per_dollar"])
        bandit = CreditBandit.from_json(ctx.state["bandit"])
        bandit.update(f"{step.proposer}:{step.operator}", credit, spent=cost)
        ctx.state["bandit"] = bandit.to_json()


class UniformOperator(OperatorRule):
    """Every operator of every proposer equally often."""

    name = "uniform"

    def choose(self, ctx: ImproverContext) -> str:
        return ctx.rng.choice(_arms(ctx))


class FixedWeights(OperatorRule):
    """Operators drawn with fixed weights: ``weights`` by arm ("mutate:perturb_constant") or by
    proposer ("mutate", each of its operators getting that weight); any other arm ``default``."""

    name = "fixed"
    params = (
        Param("weights", "weights", {}, "weight by arm or proposer", 0.0, 100.0),
        Param("default", "float", 1.0, "weight of an arm not named in weights", 0.01, 100.0, log=True),
    )

    def choose(self, ctx: ImproverContext) -> str:
        arms = _arms(ctx)
        weights = self.p["weights"]
        chosen = [weights.get(arm, weights.get(arm.split(":", 1)[0], self.p["default"])) for arm in arms]
        return arms[_weighted(ctx.rng, chosen)] if sum(chosen) > 0 else ctx.rng.choice(arms)


# children per step -------------------------------------------------------------------------------
class ChildrenRule(Component):
    role = "children"

    def count(self, ctx: ImproverContext) -> int:
        raise NotImplementedError


class FixedChildren(ChildrenRule):
    """``count`` children of each chosen parent and operator."""

    name = "fixed"
    params = (Param("count", "int", 1, "children per step", 1, 8),)

    def count(self, ctx: ImproverContext) -> int:
        return int(self.p["count"])


class Burst(ChildrenRule):
    """``count`` children per step, ``burst`` while the search stagnates (more than ``patience``
    evaluations without a new best): wider sampling around each parent when progress stalls."""

    name = "burst"
    params = (
        Param("count", "int", 1, "children per step", 1, 8),
        Param("burst", "int", 4, "children per step while stagnating", 1, 8),
        Param("patience", "int", 40, "evaluations without a new best before bursting", 5, 2000, log=True),
    )

    def count(self, ctx: ImproverContext) -> int:
        return int(self.p["burst"] if ctx.state["since_best"] > self.p["patience"] else self.p["count"])


# multi-evaluation moves -------------------------------------------------------------------------------
class TuningRule(Component):
    role = "tuning"

    def step(self, ctx: ImproverContext, island: int, parent: int) -> Step | None:
        """A tuning move to make instead of this step's child, or None."""
        return None


class NoTuning(TuningRule):
    """No tuning moves: every step is one child of one operator."""

    name = "none"


class CmaTuning(TuningRule):
    """Every ``every`` evaluations, a move of ``children`` evaluations that tunes the numeric
    constants of a program with CMA-ES (the ``tune`` proposer, ``rsi.proposers.tune``): of the
    global best (``target = "best"``) or of this step's parent. A program with no constant to tune
    is remembered and not tried again."""

    name = "cma"
    params = (
        Param("every", "int", 40, "evaluations between tuning moves", 5, 1000, log=True),
        Param("children", "int", 8, "evaluations one move spends", 2, 32),
        Param("target", "choice", "best", "whose constants: the global best or the step's parent",
              choices=("best", "parent")),
    )

    def step(self, ctx: ImproverContext, island: int, parent: int) -> Step | None:
        if ctx.evaluations - ctx.state.get("tuned_at", 0) < self.p["every"]:
            return None
        best = ctx.archive.best()
        target = best.id if self.p["target"] == "best" and best is not None else parent
        if target in ctx.state.get("untunable", ()):
            return None
        ctx.state["tuned_at"] = ctx.evaluations
        return Step(parent=target, island=island, proposer="tune", operator="cma", children=int(self.p["children"]))

    def observe(self, ctx: ImproverContext, step: Step, outcome: Outcome, policy: Policy) -> None:
        if step.proposer == "tune" and outcome.status == "invalid":
            untunable = ctx.state.setdefault("untunable", [])
            if step.parent not in untunable:
                untunable[:] = [*untunable[-199:], step.parent]


def _weighted(rng: random.Random, weights: Sequence[float]) -> int:
    """An index drawn with probability proportional to ``weights`` (one rng draw)."""
    x = rng.random() * sum(weights)
    acc = 0.0
    for index, weight in enumerate(weights):
        acc += weight
        if x < acc:
            return index
    return len(weights) - 1


# --- the library ----------------------------------------------------------------------------------
ROLES: dict[str, tuple[type[Component], ...]] = {
    "islands": (RoundRobin, SingleIsland),
    "parent": (SeedMix, Tournament, FitnessProportional, Best, Uniform, Novelty),
    "acceptance": (Greedy, Annealing),
    "restart": (NoRestart, StagnationRestart),
    "inspirations": (IslandElites, GlobalElites, Top, NoInspirations),
    "operator": (Bandit, UniformOperator, FixedWeights),
    "children": (FixedChildren, Burst),
    "tuning": (NoTuning, CmaTuning),
}
COMPONENTS: dict[str, dict[str, type[Component]]] = {
    role: {cls.name: cls for cls in classes} for role, classes in ROLES.items()}


def component(role: str, name: Any) -> type[Component]:
    """The component class ``name`` of ``role``; SpecError listing what exists otherwise."""
    if role not in COMPONENTS:
        raise SpecError(f"SPEC: unknown role {role!r}; the roles are {', '.join(ROLES)}")
    found = COMPONENTS[role].get(name) if isinstance(name, str) else None
    if found is None:
        raise SpecError(f"SPEC[{role!r}]: unknown component {name!r}; "
                        f"the {role} components are {', '.join(COMPONENTS[role])}")
    return found


SEED_SPEC: dict[str, dict[str, Any]] = {role: entry(classes[0]) for role, classes in ROLES.items()}


def normalise(spec: Any) -> dict[str, dict[str, Any]]:
    """``spec`` checked and completed: every role, in the library's order, with every parameter
    of its component (defaults for the missing ones). SpecError if anything is wrong."""
    if not isinstance(spec, dict):
        raise SpecError(f"SPEC must be a dict {{role: {{'use': component, parameter: value}}}}, "
                        f"not {type(spec).__name__}")
    unknown = [role for role in spec if role not in ROLES]
    if unknown:
        raise SpecError(f"SPEC: unknown role {unknown[0]!r}; the roles are {', '.join(ROLES)}")
    out: dict[str, dict[str, Any]] = {}
    for role, classes in ROLES.items():
        given = spec.get(role, {"use": classes[0].name})
        if not isinstance(given, dict) or "use" not in given:
            raise SpecError(f"SPEC[{role!r}] must be a dict with 'use' (one of "
                            f"{', '.join(COMPONENTS[role])}) and its parameters, not {given!r}")
        cls = component(role, given["use"])
        declared = {param.name: param for param in cls.params}
        extra = [key for key in given if key != "use" and key not in declared]
        if extra:
            allowed = ", ".join(declared) or "none"
            raise SpecError(f"SPEC[{role!r}]: {cls.name} has no parameter {extra[0]!r} (its parameters: {allowed})")
        values = {name: param.check(given.get(name, param.default), f"SPEC[{role!r}][{name!r}] of {cls.name}")
                  for name, param in declared.items()}
        out[role] = {"use": cls.name, **values}
    return out


class Policy:
    """A search policy built from a spec: the improver hooks ``start``, ``next_step`` and
    ``observe`` (an improver module delegates to them)."""

    islands: IslandRule
    parent: ParentRule
    acceptance: Acceptance
    restart: Restart
    inspirations: InspirationRule
    operator: OperatorRule
    children: ChildrenRule
    tuning: TuningRule

    def __init__(self, spec: dict[str, dict[str, Any]]):
        self.spec = spec
        for role, entry_ in spec.items():
            values = {k: v for k, v in entry_.items() if k != "use"}
            setattr(self, role, COMPONENTS[role][entry_["use"]](values))

    @property
    def components(self) -> list[Component]:
        return [getattr(self, role) for role in ROLES]

    def start(self, ctx: ImproverContext) -> None:
        ctx.state.setdefault("since_best", 0)
        for part in self.components:
            part.start(ctx)

    def next_step(self, ctx: ImproverContext) -> Step:
        island = self.islands.island(ctx)
        elites = self.islands.elites(ctx, island)
        if not elites:
            raise RsiError("the archive is empty: next_step is called only after the seed was evaluated")
        parent = self.restart.parent(ctx)
        if parent is None:
            parent = self.acceptance.parent(ctx)
        if parent is None:
            parent = self.parent.choose(ctx, island, elites)
        move = self.tuning.step(ctx, island, parent)
        if move is not None:
            return move
        inspirations = self.inspirations.choose(ctx, island, parent, elites)
        proposer, operator = self.operator.choose(ctx).split(":", 1)
        return Step(parent=parent, inspirations=inspirations, island=island, proposer=proposer, operator=operator,
                    children=self.children.count(ctx))

    def observe(self, ctx: ImproverContext, step: Step, outcome: Outcome) -> None:
        if outcome.new_best:
            ctx.state["since_best"] = 0
        elif outcome.status in FAILED:
            ctx.state["since_best"] += 1
        move = step.proposer not in ctx.operators  # a tuning move's child: not an arm of the operator rule
        for part in (self.operator, self.parent, self.acceptance, self.inspirations, self.children, self.islands,
                     self.tuning):
            if not (move and part is self.operator):
                part.observe(ctx, step, outcome, self)
        self.restart.observe(ctx, step, outcome, self)


def build(spec: Any) -> Policy:
    """The policy ``spec`` describes (checked by ``normalise``: SpecError if it is not valid)."""
    return Policy(normalise(spec))
