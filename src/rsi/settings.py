"""Problem and run settings: ``problem.toml`` validated by pydantic.

Every key does something; an unknown key is an error that names it (a setting that silently does
nothing is worse than none).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .registry import ALWAYS_AVAILABLE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunSettings(_Strict):
    budget: int = Field(1000, ge=1, description="evaluations before the run stops")
    time: float | None = Field(None, gt=0, description="wall seconds before the run stops")
    workers: int = Field(1, ge=1, le=256, description="evaluation worker processes")
    seed: int = Field(0, description="master seed: proposals and per-task evaluation seeds")
    cpu_seconds: float | None = Field(None, gt=0, description="total CPU seconds of evaluations before the run stops")
    max_tokens: int | None = Field(None, ge=1, description="LLM tokens before the run stops (proposers report usage)")
    max_cost: float | None = Field(None, gt=0, description="LLM spend in dollars before the run stops")
    max_attempts_factor: int = Field(
        20, ge=1, description="stop after budget x this many proposals (guards against endless duplicates)"
    )
    proposers: list[str] = Field(
        default_factory=lambda: ["mutate"], min_length=1,
        description="proposers the improver may use, by registered name (rsi.proposers.register)",
    )
    executor: str = Field("local", description="where evaluations run, by registered name: local, fork, ray, ...")
    memory: str | None = Field(
        None, description="a memory file (rsi memory learn): what paid in earlier searches, handed to the improver as "
        "ctx.memory (a prior for its operator choice); relative to the problem folder",
    )
    ordered: bool = Field(
        True, description="apply results in the order their tasks were asked (the same seed gives the same run); "
        "false: as they arrive (a little faster, not repeatable)",
    )
    lookahead: int | None = Field(
        None, ge=0, le=64, description="proposals written ahead while evaluations run: a model writes the next "
        "children while the workers evaluate, each one chosen before the outcomes of the `lookahead` proposals "
        "before it are known (in the chosen order, the same seed still gives the same run; see proposal_order); "
        "0: a proposal is written when a worker "
        "asks for it; default: the largest concurrency of the run's model proposers, 0 without one",
    )
    proposal_order: Literal["chosen", "written"] = Field(
        "chosen", description="with proposals written ahead: 'chosen' resolves them in the order they were chosen "
        "(the same seed gives the same run, but a slow model call holds up the children chosen after it); "
        "'written': each joins the run as soon as it is written, so a model call never holds up other proposers' "
        "children (the run then depends on timing; its order is stored, so it replays offline)",
    )


class EvaluatorSettings(_Strict):
    timeout: float = Field(30.0, gt=0, description="wall seconds per evaluation")
    cpu_seconds: float | None = Field(None, gt=0, description="CPU seconds per evaluation (default 2x timeout)")
    memory_mb: int = Field(2048, ge=64, description="address-space cap per evaluation")
    output_bytes: int = Field(64_000, ge=0, description="captured stdout/stderr kept per stream")
    holdout_every_best: bool = Field(False, description="also run evaluate_holdout on every new best")
    holdout_reads_folder: bool = Field(
        True, description="split contract: produce_holdout may read the evaluator's folders (its held-out inputs, as "
        "bin packing's test instances); false: it is confined like produce, for problems whose held-out data only "
        "score_holdout reads (a language model's test text)",
    )
    format: Literal["rsi", "openevolve", "shinka"] = Field(
        "rsi", description="how the evaluator is called: rsi's evaluate (or produce + score), OpenEvolve's "
        "evaluator.py (EvaluationResult returns, cascade), ShinkaEvolve's evaluate.py run as a script "
        "(metrics.json, correct.json); load_problem sets it from the folder's layout",
    )
    guard: bool = Field(
        True, description="a plain evaluate() runs in a trusted process and the candidate in its own, behind "
        "proxies (rsi.sandbox.guard), so the candidate cannot change how it is scored; false: the candidate is "
        "loaded into the evaluator's process (faster per call, and its score can be forged)",
    )
    cascade_thresholds: list[float] | None = Field(
        None, description="OpenEvolve's cascade: if the evaluator defines evaluate_stage1, stage k+1 runs only "
        "when the metrics so far reach threshold k (combined_score, else their mean); None: no cascade",
    )


class ArchiveSettings(_Strict):
    features: list[str] = Field(
        default_factory=lambda: ["code_size", "behavior"],
        description="MAP-Elites descriptors: 'code_size' or the name of a metric the evaluator returns",
    )
    bins: int = Field(6, ge=1, le=64, description="cells per feature")
    islands: int = Field(4, ge=1, le=64)
    migration_interval: int = Field(100, ge=1, description="evaluations between migrations")
    min_improvement: float = Field(
        0.0, ge=0, allow_inf_nan=False,
        description="noise margin, in combined_score units: a child displaces a cell's elite only when it scores "
        "higher by more than this (set it to the spread of the seed program's score over repeats)",
    )


class ReportSettings(_Strict):
    references: dict[str, float] = Field(
        default_factory=dict,
        description="published scores, in combined_score's units, drawn as lines on the report's best-score charts, "
        "e.g. {\"Best Fit\" = -3.98}",
    )

    holdout_line: str | None = Field(
        None,
        description="format string over held-out metrics printed at the end, e.g. "
        "'test excess {excess:.2f}% (Best Fit 3.98%)'",
    )


class RaySettings(_Strict):
    """``executor = "ray"``: where the cluster is and what each evaluation reserves on it."""

    address: str | None = Field(
        None, description="the Ray cluster: auto (the one running on this machine), HOST:PORT (its GCS, as `ray start "
        "--head` prints it) or ray://HOST:PORT (Ray Client); none: RAY_ADDRESS, else a running local cluster, else a "
        "new single-machine Ray",
    )
    cpus: float = Field(1.0, gt=0, description="CPUs Ray reserves for each evaluation worker (fractions allowed)")
    retries: int = Field(
        2, ge=0, le=100, description="re-runs of an evaluation lost with its Ray worker or node, before its candidate "
        "is marked as failed",
    )


class OversightSettings(_Strict):
    adoption: Literal["auto", "manual"] = Field(
        "auto", description="auto: promote the best when the evidence holds; manual: a person approves each promotion"
    )
    promote_every: int | None = Field(
        200, ge=1, description="evaluations between promotion attempts of the current best (false: no gate)"
    )
    holdout_repeats: int = Field(3, ge=1, description="held-out re-evaluations per program for the gate")
    level: float = Field(0.05, gt=0, lt=0.5, description="significance level of the gate's test")
    min_effect: float = Field(0.0, ge=0, description="smallest held-out gain worth promoting")
    gap_alarm: float = Field(
        0.25, gt=0, description="alarm when the best's train/held-out gap exceeds this share of its train score"
    )

    @field_validator("promote_every", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        return None if value is False else value


class SuiteMeta(_Strict):
    """Where a problem of rsi's meta-problem suite belongs, and its two anchor scores."""

    split: Literal["train", "validation", "test"]
    kind: str = Field(description="the problem's family")
    seed_score: float = Field(description="what the initial program scores")
    reference_score: float = Field(description="what the reference program reaches")
    reference_note: str = ""


class ProblemSettings(_Strict):
    """A problem.toml, validated."""

    run: RunSettings = Field(default_factory=RunSettings)
    evaluator: EvaluatorSettings = Field(default_factory=EvaluatorSettings)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    oversight: OversightSettings = Field(default_factory=OversightSettings)
    ray: RaySettings = Field(default_factory=RaySettings, description="[ray]: the 'ray' executor's cluster")
    improver: dict = Field(default_factory=dict, description="free settings passed to the improver")
    proposer: dict[str, dict] = Field(
        default_factory=dict,
        description="[proposer.NAME] tables: the settings of each proposer in [run] proposers, handed to its factory",
    )
    meta: SuiteMeta | None = Field(None, description="suite problems only: split, family and anchor scores")

    @model_validator(mode="after")
    def _proposer_tables_are_used(self) -> ProblemSettings:
        unused = sorted(set(self.proposer) - set(self.run.proposers) - set(ALWAYS_AVAILABLE))
        if unused:
            raise ValueError(f"[proposer.{unused[0]}] configures a proposer that [run] proposers does not use "
                             f"(it has {self.run.proposers}); add it there or remove the table")
        return self
