"""The Rollout's status as typed models: written only by the workflow that owns the Rollout,
read by the status activity, occurrences, the CLI and the CRD generator alike.

Pure data (imported by workflow code). Wire names are camelCase, as in the CRD.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Phase = Literal[
    "Initializing",
    "Progressing",
    "Paused",
    "Preview",
    "Experimenting",
    "Concluded",
    "Completed",
    "Failed",
]


class StatusModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, alias_generator=to_camel)


class Condition(StatusModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class Decision(StatusModel):
    time: str
    action: str
    reason: str
    step: int | None = None


class ExperimentMetricStatus(StatusModel):
    """One metric of an A/B experiment as the Z-test judged it."""

    name: str
    rate_a: float
    rate_b: float
    samples_a: int
    samples_b: int
    z: float
    p_value: float
    confidence: float
    significant: bool
    winner: Literal["A", "B"] | None = None


class ExperimentStatus(StatusModel):
    started_at: str
    measured_at: str | None = None
    measurements: int = 0
    samples_a: int = 0
    samples_b: int = 0
    metrics: list[ExperimentMetricStatus] = []
    winner: str | None = None
    concluded: bool = False
    reason: str | None = None


class MeasurementStatus(StatusModel):
    time: str
    verdict: str
    value: float | None = None
    baseline: float | None = None
    message: str = ""


class MetricAnalysisStatus(StatusModel):
    name: str
    failures: int = 0
    consecutive_errors: int = 0
    consecutive_inconclusive: int = 0
    measurements: list[MeasurementStatus] = []


class AnalysisStatus(StatusModel):
    metrics: list[MetricAnalysisStatus] = Field(
        default=[], description="background analysis of the canary"
    )
    inline: list[MetricAnalysisStatus] = Field(
        default=[], description="the latest inline analysis (a step's, pre/post-promotion)"
    )


class RolloutStatus(StatusModel):
    phase: Phase | None = None
    message: str | None = None
    selector: str | None = Field(
        default=None,
        description="spec.selector as a string (app=shop,...): the scale subresource's selector",
    )
    hpa_replicas: int | None = Field(
        default=None,
        description="the size the Rollout runs at (during a canary, its stable revision's): "
        "what the scale subresource reports to an HPA as its current replicas",
    )
    strategy: str | None = None
    current_step_index: int | None = None
    step_count: int | None = None
    current_weight: int | None = None
    stable_revision: str | None = None
    canary_revision: str | None = None
    replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    updated_replicas: int | None = None
    pause_start_time: str | None = None
    pause_end_time: str | None = None
    observed_generation: int | None = None
    workflow_id: str | None = None
    conditions: list[Condition] = []
    decisions: list[Decision] = []
    experiment: ExperimentStatus | None = None
    analysis: AnalysisStatus | None = None
