"""The Rollout custom resource (`kulta.io/v1alpha1`) as pydantic models.

This module is the single source of the API: `deploy/crd.yaml` is generated from it
(`make crd`), and the workflow validates every spec with it again, because an old CRD may still be
installed. Field names are the seed product's, so its manifests apply unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from workflows.analysis_spec import Analysis
from workflows.spec_types import (
    Duration,
    IntOrPercent,
    LabelSelector,
    Model,
    Port,
    ResourceName,
    ServiceName,
    Weight,
)

API_GROUP = "kulta.io"
API_VERSION = "v1alpha1"
MAX_DEADLINE_SECONDS = 86400
DEFAULT_DEADLINE_SECONDS = 600
SEED_API_VERSION = "v1beta1"  # what the original kulta served; the same schema here
KIND = "Rollout"
PLURAL = "rollouts"

MAX_STEPS = 100


class GatewayAPIRouting(Model):
    http_route: ResourceName = Field(description="Name of the HTTPRoute whose weights kulta sets.")
    namespace: str | None = Field(
        default=None, description="Namespace of the HTTPRoute (defaults to the Rollout's)."
    )
    status_timeout: Duration | None = Field(
        default=None,
        description=(
            "How long the Gateways reporting on the HTTPRoute may take to accept each change "
            "kulta makes to it (status.parents: Accepted and ResolvedRefs for the generation "
            "written) before the rollout pauses with their word; default 30s."
        ),
    )


class TrafficRouting(Model):
    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")


class Pause(Model):
    duration: Duration | None = Field(
        default=None, description="Timed pause; without it the step waits for promotion."
    )


class HeaderMatch(Model):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=4096)]
    type: Literal["Exact", "RegularExpression"] = "Exact"


class MirrorRoute(Model):
    percent: Annotated[int, Field(ge=1, le=100)] = Field(
        description="Share of the requests the route sends to stable that are also sent to the "
        "canary; its responses are dropped, so no user sees them."
    )


class CanaryStep(Model):
    """One step: set a weight, measure inline, pause, or several (in that order)."""

    set_header_route: HeaderMatch | None = Field(
        default=None,
        description="From this step on, requests with this header go to the canary whatever "
        "the weight (a kulta rule copying the route's rule with the header added); it stays "
        "until the rollout ends or a later step sets another. Needs trafficRouting.",
    )
    set_mirror_route: MirrorRoute | None = Field(
        default=None,
        description="From this step on, the route mirrors a share of its requests to the canary "
        "(a Gateway API RequestMirror filter); it stays until the rollout ends or a later step "
        "sets another share. Needs trafficRouting.",
    )
    set_weight: Weight | None = None
    analysis: Analysis | None = Field(
        default=None,
        description="Measured inline: the step waits for each metric's `count` verdicts.",
    )
    pause: Pause | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> CanaryStep:
        parts = (
            self.set_header_route,
            self.set_mirror_route,
            self.set_weight,
            self.pause,
            self.analysis,
        )
        if all(part is None for part in parts):
            raise ValueError(
                "a step needs setHeaderRoute, setMirrorRoute, setWeight, analysis, pause, or "
                "several"
            )
        if self.analysis is not None and not self.analysis.metrics:
            raise ValueError("analysis: a step's analysis needs at least one metric")
        return self


def _distinct(field: str, value: str, other: str, other_value: str) -> None:
    """One Service for both sides would get both weights (the last one wins): an outage."""
    if value == other_value:
        raise ValueError(f"{field}: must differ from {other} (both are {value!r})")


class CanaryStrategy(Model):
    stable_service: ServiceName
    canary_service: ServiceName
    port: Port | None = Field(
        default=None,
        description="Accepted for manifests of the original kulta and not used: kulta changes only "
        "the weights of the route's backendRefs, which keep their own port.",
    )
    # At least one: a canary without steps would promote at once, a rolling update in disguise.
    steps: Annotated[list[CanaryStep], Field(min_length=1, max_length=MAX_STEPS)]
    traffic_routing: TrafficRouting | None = None
    analysis: Analysis | None = None
    scale_down_delay_seconds: Annotated[int, Field(ge=0, le=86400)] = 30
    abort_scale_down_delay_seconds: Annotated[int, Field(ge=0, le=86400)] = 30
    max_surge: IntOrPercent | None = Field(
        default=None,
        description="Accepted for manifests of the original kulta and not used: a canary keeps the "
        "stable revision at full capacity and adds ceil(replicas * weight / 100) canary pods.",
    )
    max_unavailable: IntOrPercent | None = Field(
        default=None,
        description="Accepted for manifests of the original kulta and not used: the stable "
        "revision keeps all its pods until the canary is promoted.",
    )

    @model_validator(mode="after")
    def _two_services(self) -> CanaryStrategy:
        _distinct("canaryService", self.canary_service, "stableService", self.stable_service)
        if self.traffic_routing is None and any(
            s.set_header_route or s.set_mirror_route for s in self.steps
        ):
            raise ValueError(
                "trafficRouting: setHeaderRoute and setMirrorRoute need an HTTPRoute to change"
            )
        return self


class BlueGreenStrategy(Model):
    active_service: ServiceName
    preview_service: ServiceName
    port: Port | None = Field(
        default=None,
        description="Accepted for manifests of the original kulta and not used: kulta changes only "
        "the weights of the route's backendRefs, which keep their own port.",
    )
    auto_promotion_enabled: bool = True
    auto_promotion_seconds: Annotated[int, Field(ge=0, le=86400 * 30)] | None = None
    preview_replica_count: Annotated[int, Field(ge=0)] | None = None
    scale_down_delay_seconds: Annotated[int, Field(ge=0, le=86400)] = 30
    traffic_routing: TrafficRouting | None = None
    pre_promotion_analysis: Analysis | None = None
    post_promotion_analysis: Analysis | None = None
    analysis: Analysis | None = Field(
        default=None,
        description="Deprecated (the original kulta): the pre-promotion analysis, used when "
        "prePromotionAnalysis is not given.",
    )

    @property
    def before_promotion(self) -> Analysis | None:
        return self.pre_promotion_analysis or self.analysis

    @model_validator(mode="after")
    def _two_services(self) -> BlueGreenStrategy:
        _distinct("previewService", self.preview_service, "activeService", self.active_service)
        if self.auto_promotion_seconds is not None and not self.auto_promotion_enabled:
            raise ValueError(
                "autoPromotionSeconds: set while autoPromotionEnabled is false, so it would "
                "never apply (enable auto-promotion or remove the delay)"
            )
        return self


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
        _distinct(
            "variantBService", self.variant_b_service, "variantAService", self.variant_a_service
        )
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


class WorkloadRef(Model):
    """A Deployment whose pod template the Rollout takes (how a Deployment migrates)."""

    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    name: Annotated[str, Field(min_length=1)]
    scale_down: Literal["never", "onsuccess"] = Field(
        default="onsuccess",
        description="onsuccess: the Deployment is scaled to zero each time a revision of the "
        "Rollout is stable (its pods served until then); never: it is left alone.",
    )


class TrackConfig(Model):
    """Config that rolls out like code: the referenced objects become immutable copies per
    revision, so a change to one starts a rollout and a rollback restores the old config."""

    config_maps: bool = Field(
        default=False,
        description="Copy the ConfigMaps the pod template references (volumes, envFrom, env) "
        "into immutable per-revision copies owned by the revision's ReplicaSet; a change to "
        "one of them starts a rollout.",
    )
    secrets: bool = Field(
        default=False,
        description="The same for Secrets (the watcher must follow Secrets too: "
        "KULTA_TRACK_SECRETS=true and deploy/rbac-track-secrets.yaml).",
    )


# One message for both wrong shapes (neither, both), from the model, `kulta lint` and CEL alike.
TEMPLATE_OR_WORKLOAD = "template: give exactly one of template and workloadRef"


class RolloutSpec(Model):
    replicas: Annotated[int, Field(ge=0, le=10000)] = 1
    selector: LabelSelector
    template: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="Pod template, as in a Deployment (or give workloadRef).",
    )
    workload_ref: WorkloadRef | None = Field(
        default=None,
        description="Take the pod template from this Deployment instead of template: a change "
        "of the Deployment's template starts a rollout.",
    )
    strategy: Strategy
    track_config: TrackConfig | None = Field(
        default=None,
        description="Roll out the ConfigMaps (and Secrets) the pod template references with it.",
    )
    paused: bool = False
    # 0: the original kulta's "no deadline", read as the longest one (see `_seed_no_deadline`).
    progress_deadline_seconds: Annotated[int, Field(ge=0, le=MAX_DEADLINE_SECONDS)] = (
        DEFAULT_DEADLINE_SECONDS
    )
    min_ready_seconds: Annotated[int, Field(ge=0, le=3600)] = 0
    revision_history_limit: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=10,
        description="Old, scaled-down revisions kept (their ReplicaSets at zero) so that setting "
        "the template back is a fast rollback; older ones are deleted.",
    )

    # The original kulta's placement of the simple strategy's surge and unavailability.
    max_surge: IntOrPercent | None = Field(
        default=None,
        description="Deprecated (the original kulta): strategy.simple.maxSurge, used when that "
        "is not given; not used by other strategies.",
    )
    max_unavailable: IntOrPercent | None = Field(
        default=None,
        description="Deprecated (the original kulta): strategy.simple.maxUnavailable, used when "
        "that is not given; not used by other strategies.",
    )
    advisor: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="Accepted for manifests of the original kulta and not used.",
    )

    @model_validator(mode="before")
    @classmethod
    def _seed_no_deadline(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("progressDeadlineSeconds") == 0:
            return {**data, "progressDeadlineSeconds": MAX_DEADLINE_SECONDS}
        return data

    @model_validator(mode="after")
    def _selector_matches_template(self) -> RolloutSpec:
        if self.template is None:
            if self.workload_ref is None:
                raise ValueError(TEMPLATE_OR_WORKLOAD)
            return self  # the Deployment's, resolved by the watcher (see `parse_spec`)
        labels = (self.template.get("metadata") or {}).get("labels") or {}
        for key, value in (self.selector.match_labels or {}).items():
            if labels.get(key) != value:
                raise ValueError(
                    f"selector.matchLabels: {key}={value} does not match template.metadata.labels"
                )
        return self


# ------------------------------------------------------------------------------------------------
def seed_fields(raw: dict[str, Any]) -> list[str]:
    """The original kulta's fields a raw spec uses, each with what kulta reads it as (shown as
    `kulta lint` warnings and a Warning Event; the spec is accepted)."""
    found = []
    for key in ("maxSurge", "maxUnavailable"):
        if key in raw:
            found.append(f"spec.{key}: read as strategy.simple.{key} (the simple strategy only)")
    if "advisor" in raw:
        found.append("spec.advisor: not used by kulta")
    if raw.get("progressDeadlineSeconds") == 0:
        found.append(
            f"spec.progressDeadlineSeconds: 0 read as {MAX_DEADLINE_SECONDS} (the longest)"
        )
    blue_green = (raw.get("strategy") or {}).get("blueGreen") or {}
    if isinstance(blue_green, dict) and "analysis" in blue_green:
        found.append("spec.strategy.blueGreen.analysis: read as prePromotionAnalysis")
    for path, metric in _metrics(raw, "spec"):
        if "failureThreshold" in metric:
            found.append(f"{path}.failureThreshold: read as failureLimit one lower")
        if "minSampleSize" in metric:
            found.append(f"{path}.minSampleSize: not used for canary metrics")
    return found


def _metrics(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every metric of every analysis block, with its path."""
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "metrics" and isinstance(value, list):
                out += [
                    (f"{path}.metrics[{i}]", m) for i, m in enumerate(value) if isinstance(m, dict)
                ]
            else:
                out += _metrics(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _metrics(value, f"{path}[{i}]")
    return out


def parse_spec(raw: dict[str, Any], *, resolved: bool = True) -> RolloutSpec:
    """Validates a spec; raises `InvalidSpec` naming each bad field.

    `resolved`: the spec as the watcher hands it to a workflow, with a workloadRef's template
    filled in from the Deployment (a missing template then means a missing Deployment).
    Otherwise the spec as written (`kulta lint`), where a workloadRef excludes a template.
    """
    try:
        spec = RolloutSpec.model_validate(raw)
    except ValidationError as err:
        raise InvalidSpec(describe_validation_error(err)) from None
    ref = spec.workload_ref
    if ref is not None and resolved and spec.template is None:
        raise InvalidSpec(
            f"spec.workloadRef: Deployment {ref.name} not found in the Rollout's namespace"
        )
    if ref is not None and not resolved and spec.template is not None:
        raise InvalidSpec(f"spec.{TEMPLATE_OR_WORKLOAD}")
    return spec


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
