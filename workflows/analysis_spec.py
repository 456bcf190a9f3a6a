"""The `analysis` block of a Rollout spec: metrics, their bounds and budgets, and the A/B
experiment's settings. Pure; what a measurement means is `workflows/analysis.py`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from activities.conditions import ConditionError, parse
from workflows.spec_types import MAX_METRICS, Duration, Model, ServiceName


def _check_condition(value: str) -> str:
    try:
        parse(value)
    except ConditionError as err:
        raise ValueError(str(err)) from None
    return value


ConditionText = Annotated[
    str, Field(min_length=1, max_length=1024), AfterValidator(_check_condition)
]
Limit = Annotated[int, Field(ge=0, le=10000)]
FailurePolicy = Literal["Rollback", "Pause", "Continue"]


class Baseline(Model):
    """The canary against the stable revision over the same window: it fails when it is worse
    than the stable value by more than the ratio or the difference (in the metric's direction)."""

    max_ratio: Annotated[float, Field(ge=1)] | None = Field(
        default=None, description="e.g. 1.5: at most 50% worse than stable"
    )
    max_difference: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="at most this much worse than stable, in the metric's unit"
    )

    @model_validator(mode="after")
    def _a_bound(self) -> Baseline:
        if self.max_ratio is None and self.max_difference is None:
            raise ValueError("baseline needs maxRatio or maxDifference")
        return self


class Metric(Model):
    """A metric judged against bounds. Built-ins (error-rate, success-rate, latency-p95,
    latency-p99) need only `threshold`; a custom metric gives a PromQL `query` template."""

    name: Annotated[str, Field(min_length=1, max_length=63)]
    provider: ServiceName | None = Field(
        default=None,
        description="A Prometheus the operator configured by name (KULTA_PROMETHEUS_PROVIDERS); "
        "without it, KULTA_PROMETHEUS_ADDRESS.",
    )
    threshold: float | None = None
    max: float | None = Field(default=None, description="fails above this value")
    min: float | None = Field(default=None, description="fails below this value")
    condition: ConditionText | None = Field(
        default=None, description="passes while this holds, e.g. `result < 0.05`"
    )
    baseline: Baseline | None = None
    query: Annotated[str, Field(max_length=4096)] | None = None
    trials_query: Annotated[str, Field(max_length=4096)] | None = Field(
        default=None, description="A/B only: the trials a custom `query` counts events out of"
    )
    interval: Duration | None = None
    count: Annotated[int, Field(ge=1, le=10000)] | None = Field(
        default=None,
        description="verdicts (passes or failures) per step; inline analysis: per run, default 1",
    )
    failure_limit: Limit | None = None
    consecutive_error_limit: Limit | None = Field(
        default=None, description="provider errors in a row before failurePolicy (default 4)"
    )
    inconclusive_limit: Limit | None = Field(
        default=None, description="empty or NaN results in a row before failurePolicy (default 4)"
    )
    failure_policy: FailurePolicy | None = None
    direction: Literal["lower", "higher"] | None = None
    # The original kulta's names (deprecated; `seed_fields` in workflows/model.py lists them).
    failure_threshold: Annotated[int, Field(ge=1, le=10001)] | None = Field(
        default=None,
        description="Deprecated (the original kulta): roll back at this many failures; the same "
        "as failureLimit one lower.",
    )
    min_sample_size: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Deprecated (the original kulta) and not used for canary metrics; an A/B "
        "experiment's minimum is analysis.minSampleSize.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Metric:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min: {self.min} is above max {self.max}, so every value fails")
        if self.failure_limit is not None and self.failure_threshold is not None:
            raise ValueError(
                "failureThreshold: give failureLimit or the deprecated failureThreshold, not both"
            )
        return self

    @property
    def effective_failure_limit(self) -> int:
        """Failures tolerated: failureLimit, else failureThreshold - 1, else none."""
        if self.failure_limit is not None:
            return self.failure_limit
        return self.failure_threshold - 1 if self.failure_threshold is not None else 0


class Analysis(Model):
    warmup_duration: Duration | None = None
    interval: Duration | None = None
    metrics: Annotated[list[Metric], Field(max_length=MAX_METRICS)] = []
    failure_policy: FailurePolicy | None = Field(
        default=None,
        description="What a metric without its own failurePolicy does when a budget is spent "
        "(the original kulta's placement).",
    )
    prometheus: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="Refused: a Rollout never names a Prometheus address. Name a provider the "
        "operator configured (metrics[].provider).",
    )
    # A/B experiment settings (seed names).
    min_duration: Duration | None = None
    min_sample_size: Annotated[int, Field(ge=1)] | None = None
    confidence_level: Annotated[float, Field(gt=0, lt=1)] | None = None

    @model_validator(mode="after")
    def _no_address(self) -> Analysis:
        if self.prometheus is not None:
            raise ValueError(
                "prometheus: a Rollout cannot give a Prometheus address (ask your operator to "
                "configure a provider, KULTA_PROMETHEUS_PROVIDERS, and name it in "
                "metrics[].provider)"
            )
        return self

    def policy_of(self, metric: Metric) -> FailurePolicy:
        return metric.failure_policy or self.failure_policy or "Pause"
