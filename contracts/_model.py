"""Typed canonical definitions and agent contracts (pydantic, unknown keys refused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "Action",
    "AgentContract",
    "Definitions",
    "FieldCriterion",
    "FieldWrite",
    "MetricCriterion",
    "RoleCriterion",
    "Stage",
]

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*$")]
TableName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Tier = Literal[1, 2, 3]
Op = Literal[">", ">=", "<", "<=", "=", "!=", "is_set"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldCriterion(_Strict):
    """A column of crm.opportunities compared with a number (or just present)."""

    field: Identifier
    op: Op
    value: float | None = None

    @model_validator(mode="after")
    def _value_needed(self) -> FieldCriterion:
        if self.op != "is_set" and self.value is None:
            raise ValueError(f"op {self.op!r} needs a numeric value")
        return self


class MetricCriterion(_Strict):
    metric: Literal["engaged_contacts", "days_since_two_way"]
    op: Op
    value: float


class RoleCriterion(_Strict):
    """A contact with this buying role is on the deal."""

    role: Identifier


Criterion = FieldCriterion | MetricCriterion | RoleCriterion


class Stage(_Strict):
    key: Identifier
    label: str
    probability: Probability
    forecast_category: Identifier
    quiet_days: int | None = Field(default=None, ge=1)
    closed: bool = False
    won: bool = False
    entry_criteria: list[Criterion] = []


class Category(_Strict):
    key: Identifier
    label: str


class QualifiedPipeline(_Strict):
    stages: list[Identifier]
    min_amount: float = Field(ge=0)


class AtRisk(_Strict):
    quiet_multiple: float = Field(gt=0)
    close_date_pushes: int = Field(ge=1)
    min_engaged_contacts: int = Field(ge=0)
    champion_departed: bool = True


class Phantom(_Strict):
    days_past_close: int = Field(ge=0)
    quiet_multiple: float = Field(gt=0)


class Definitions(_Strict):
    version: int
    owner: str
    stages: list[Stage] = Field(min_length=2)
    metrics: dict[Identifier, str] = {}
    forecast_categories: list[Category]
    required_fields: dict[Literal["accounts", "contacts", "opportunities"], list[Identifier]]
    qualified_pipeline: QualifiedPipeline
    at_risk: AtRisk
    phantom: Phantom
    stale_days: int = Field(ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> Definitions:
        keys = [s.key for s in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError(f"stage keys repeat: {keys}")
        cats = {c.key for c in self.forecast_categories}
        for s in self.stages:
            if s.forecast_category not in cats:
                raise ValueError(
                    f"stage {s.key}: forecast_category {s.forecast_category!r} is not one of {sorted(cats)}"
                )
        unknown = [k for k in self.qualified_pipeline.stages if k not in keys]
        if unknown:
            raise ValueError(f"qualified_pipeline names unknown stages {unknown}")
        return self

    # -- lookups the rest of the code wants ----------------------------------
    def stage(self, key: str) -> Stage:
        for s in self.stages:
            if s.key == key:
                return s
        raise KeyError(key)

    @property
    def open_stages(self) -> list[str]:
        return [s.key for s in self.stages if not s.closed]

    def stage_index(self, key: str) -> int:
        return [s.key for s in self.stages].index(key)

    def probabilities(self) -> dict[str, float]:
        return {s.key: s.probability for s in self.stages}

    def quiet_days(self) -> dict[str, int]:
        return {s.key: s.quiet_days for s in self.stages if s.quiet_days}


class FieldWrite(_Strict):
    tier: Tier
    min_confidence: Probability = 0.0


class Action(_Strict):
    name: Identifier
    description: str
    tier: Tier
    min_confidence: Probability = 0.0
    writes: list[Annotated[str, StringConstraints(pattern=r"^[a-z_]+\.[a-z_]+\.[a-z_0-9]+$")]] = []
    # record kind(s) of an output-only action
    about: (
        Literal["accounts", "contacts", "opportunities"]
        | list[Literal["accounts", "contacts", "opportunities"]]
        | None
    ) = None
    auto_execute: bool = False
    # A tier-3 task nobody acted on leaves the list after this many days (None: never).
    # A draft grounded in last month's news is not worth sending, and a list that only
    # grows hides the tasks worth doing; an expired task is no one's verdict on it.
    expires_after_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _shape(self) -> Action:
        if not self.writes and self.about is None:
            raise ValueError(
                "an output-only action (no writes) names the record kind it is about with `about`"
            )
        if self.tier == 3 and self.auto_execute:
            raise ValueError("tier 3 actions are never executed automatically; remove auto_execute")
        if self.expires_after_days is not None and self.tier != 3:
            raise ValueError(
                "only tier 3 tasks expire (expires_after_days): a tier 2 card waits for its "
                "reviewer, and a reviewer's silence is not a decision"
            )
        return self


class AgentContract(_Strict):
    agent: Identifier
    owner: str
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    description: str
    mode: Literal["live", "shadow"]
    depends_on: list[Identifier] = []
    triggers: list[
        Literal[
            "import",
            "record_created",
            "record_changed",
            "stage_changed",
            "close_date_changed",
            "meeting_booked",
            "schedule",
        ]
    ]
    reads: dict[TableName, Literal["*"] | list[Identifier]]
    writes: dict[TableName, dict[Identifier, FieldWrite]] = {}
    actions: list[Action]
    # ops tables the engine fills with the agent's outputs (forecast snapshots,
    # briefings, risk flags): written in the run's transaction, tagged with its run_id.
    outputs: list[TableName] = []
    # Outputs that hold only the latest run's rows (a cache the agent reads back): each
    # run's rows replace the table's instead of adding to it, so it does not grow.
    replaces: list[TableName] = []
    # Settings of the agent's own that RevOps may tune (thresholds, provider order ...).
    params: dict[Identifier, Any] = {}
    below_threshold: Literal["escalate", "drop"] = "escalate"

    @model_validator(mode="after")
    def _consistent(self) -> AgentContract:
        names = [a.name for a in self.actions]
        if len(set(names)) != len(names):
            raise ValueError(f"action names repeat: {names}")
        return self
