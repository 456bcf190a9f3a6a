"""The Rollout custom resource (`kulta.io/v1alpha1`) as pydantic models.

This module is the single source of the API: `deploy/crd.yaml` is generated from it
(`make crd`), and the workflow validates every spec with it again, because an old CRD may still be
installed. Field names are the seed product's, so its manifests apply unchanged.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from activities.conditions import ConditionError, parse
from workflows.durations import DURATION_PATTERN, parse_duration

API_GROUP = "kulta.io"
API_VERSION = "v1alpha1"
KIND = "Rollout"
PLURAL = "rollouts"

MAX_STEPS = 100
MAX_METRICS = 20
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, max_length=64),
    AfterValidator(_check_duration),
]
ServiceName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
ResourceName = Annotated[str, Field(min_length=1, max_length=253)]
Port = Annotated[int, Field(ge=1, le=65535)]
Weight = Annotated[int, Field(ge=0, le=100)]


def _check_int_or_percent(value: int | str) -> int | str:
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,3}%", value) and int(value[:-1]) <= 100:
        return value
    raise ValueError(f"{value!r} is not a pod count or a percentage such as 25%")


# A pod count or a percentage of replicas, as in a Deployment's rolling update.
IntOrPercent = Annotated[int | str, AfterValidator(_check_int_or_percent)]


class Model(BaseModel):
    """Base for spec models: camelCase on the wire, unknown fields rejected, and types strict
    as in the CRD's schema ("50" is not an integer), so `kulta lint` and the API server agree."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True, strict=True
    )


class LabelSelectorRequirement(Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


# Kubernetes label syntax: kulta copies the selector onto ReplicaSets and pod templates, where
# the API server would refuse a bad label only after the rollout had started.
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def label_problem(key: str, value: str) -> str | None:
    """Why `key: value` is not a valid Kubernetes label, or None."""
    prefix, _, name = key.rpartition("/")
    if (prefix and not _LABEL_PREFIX.match(prefix)) or not _LABEL_NAME.match(name):
        return f"label key {key!r} is not a valid label name"
    if not _LABEL_VALUE.match(value):
        return f"label value {value!r} of {key!r} is not a valid label value"
    return None


class LabelSelector(Model):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None

    @model_validator(mode="after")
    def _valid_labels(self) -> LabelSelector:
        for key, value in (self.match_labels or {}).items():
            problem = label_problem(key, value)
            if problem is not None:
                raise ValueError(problem)
        return self


class GatewayAPIRouting(Model):
    http_route: ResourceName = Field(description="Name of the HTTPRoute whose weights kulta sets.")
    namespace: str | None = Field(
        default=None, description="Namespace of the HTTPRoute (defaults to the Rollout's)."
    )


class TrafficRouting(Model):
    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")


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
    failure_policy: Literal["Rollback", "Pause", "Continue"] | None = None
    direction: Literal["lower", "higher"] | None = None


class Analysis(Model):
    warmup_duration: Duration | None = None
    interval: Duration | None = None
    metrics: Annotated[list[Metric], Field(max_length=MAX_METRICS)] = []
    # A/B experiment settings (seed names).
    min_duration: Duration | None = None
    min_sample_size: Annotated[int, Field(ge=1)] | None = None
    confidence_level: Annotated[float, Field(gt=0, lt=1)] | None = None


class Pause(Model):
    duration: Duration | None = Field(
        default=None, description="Timed pause; without it the step waits for promotion."
    )


class CanaryStep(Model):
    """One step: set a weight, measure inline, pause, or several (in that order)."""

    set_weight: Weight | None = None
    analysis: Analysis | None = Field(
        default=None,
        description="Measured inline: the step waits for each metric's `count` verdicts.",
    )
    pause: Pause | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> CanaryStep:
        if self.set_weight is None and self.pause is None and self.analysis is None:
            raise ValueError("a step needs setWeight, analysis, pause, or several")
        if self.analysis is not None and not self.analysis.metrics:
            raise ValueError("analysis: a step's analysis needs at least one metric")
        return self


class CanaryStrategy(Model):
    stable_service: ServiceName
    canary_service: ServiceName
    port: Port | None = None
    steps: Annotated[list[CanaryStep], Field(max_length=MAX_STEPS)] = []
    traffic_routing: TrafficRouting | None = None
    analysis: Analysis | None = None
    scale_down_delay_seconds: Annotated[int, Field(ge=0, le=86400)] = 30
    abort_scale_down_delay_seconds: Annotated[int, Field(ge=0, le=86400)] = 30
    max_surge: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None


class BlueGreenStrategy(Model):
    active_service: ServiceName
    preview_service: ServiceName
    port: Port | None = None
    auto_promotion_enabled: bool = True
    auto_promotion_seconds: Annotated[int, Field(ge=0, le=86400 * 30)] | None = None
    preview_replica_count: Annotated[int, Field(ge=0)] | None = None
    scale_down_delay_seconds: Annotated[int, Field(ge=0, le=86400)] = 30
    traffic_routing: TrafficRouting | None = None
    pre_promotion_analysis: Analysis | None = None
    post_promotion_analysis: Analysis | None = None


class HeaderMatch(Model):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=4096)]
    type: Literal["Exact", "RegularExpression"] = "Exact"


class CookieMatch(Model):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=4096)]


class VariantMatch(Model):
    header: HeaderMatch | None = None
    cookie: CookieMatch | None = None

    @model_validator(mode="after")
    def _one(self) -> VariantMatch:
        if self.header is None and self.cookie is None:
            raise ValueError("variantBMatch needs header or cookie")
        return self


class ABTestingStrategy(Model):
    variant_a_service: ServiceName = Field(alias="variantAService")
    variant_b_service: ServiceName = Field(alias="variantBService")
    port: Port | None = None
    max_duration: Duration | None = None
    variant_b_match: VariantMatch = Field(alias="variantBMatch")
    traffic_routing: TrafficRouting | None = None
    analysis: Analysis | None = None
    scale_down_delay_seconds: Annotated[int, Field(ge=0, le=86400)] = 30

    @model_validator(mode="after")
    def _needs_a_route(self) -> ABTestingStrategy:
        if self.traffic_routing is None or self.traffic_routing.gateway_api is None:
            raise ValueError(
                "trafficRouting: an A/B experiment routes by header or cookie, so it needs "
                "trafficRouting.gatewayAPI.httpRoute"
            )
        return self


class SimpleStrategy(Model):
    analysis: Analysis | None = None
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"

    @model_validator(mode="after")
    def _can_progress(self) -> SimpleStrategy:
        if self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            raise ValueError("maxSurge: maxSurge and maxUnavailable cannot both be 0")
        return self


StrategyKind = Literal["canary", "blueGreen", "abTesting", "simple"]
STRATEGY_KINDS: tuple[StrategyKind, ...] = ("canary", "blueGreen", "abTesting", "simple")


class Strategy(Model):
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None
    ab_testing: ABTestingStrategy | None = None
    simple: SimpleStrategy | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Strategy:
        chosen = [n for n in STRATEGY_KINDS if self._get(n)]
        if len(chosen) != 1:
            raise ValueError(
                "exactly one of canary, blueGreen, abTesting, simple must be set"
                + (f" (found {', '.join(chosen)})" if chosen else "")
            )
        return self

    def _get(self, wire_name: str) -> object:
        return getattr(
            self, {"blueGreen": "blue_green", "abTesting": "ab_testing"}.get(wire_name, wire_name)
        )

    @property
    def kind(self) -> StrategyKind:
        return next(kind for kind in STRATEGY_KINDS if self._get(kind))


class RolloutSpec(Model):
    replicas: Annotated[int, Field(ge=0, le=10000)] = 1
    selector: LabelSelector
    template: dict[str, Any] = Field(
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="Pod template, as in a Deployment.",
    )
    strategy: Strategy
    paused: bool = False
    progress_deadline_seconds: Annotated[int, Field(ge=1, le=86400)] = 600
    min_ready_seconds: Annotated[int, Field(ge=0, le=3600)] = 0

    @model_validator(mode="after")
    def _selector_matches_template(self) -> RolloutSpec:
        labels = (self.template.get("metadata") or {}).get("labels") or {}
        for key, value in (self.selector.match_labels or {}).items():
            if labels.get(key) != value:
                raise ValueError(
                    f"selector.matchLabels: {key}={value} does not match template.metadata.labels"
                )
        return self


# ------------------------------------------------------------------------------------------------
def parse_spec(raw: dict[str, Any]) -> RolloutSpec:
    """Validates a raw spec; raises `InvalidSpec` naming each bad field."""
    try:
        return RolloutSpec.model_validate(raw)
    except ValidationError as err:
        raise InvalidSpec(describe_validation_error(err)) from None


class InvalidSpec(ValueError):
    """A Rollout spec kulta does not understand; the message names the fields."""


def describe_validation_error(err: ValidationError) -> str:
    """One line per problem, each starting with the `spec.` field path."""
    lines = []
    for problem in err.errors():
        path = ".".join(
            f"[{p}]" if isinstance(p, int) else str(p) for p in ("spec", *problem["loc"])
        ).replace(".[", "[")
        message = problem["msg"].removeprefix("Value error, ")
        # Whole-object validators name their field as "field.path: message".
        field, sep, rest = message.partition(": ")
        if sep and field.replace(".", "").isalnum() and field[:1].islower():
            path, message = f"{path}.{field}", rest
        lines.append(f"{path}: {message}")
    return "; ".join(lines)
