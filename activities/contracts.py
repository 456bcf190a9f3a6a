"""Inputs and results of every activity: one model per call, so signatures can grow.

Pure data; imported by workflow code, so it must stay free of I/O libraries.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from activities.conditions import parse
from activities.rollout_status import ExperimentMetricStatus, RolloutStatus


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True)


class RolloutRef(Contract):
    namespace: str
    name: str
    uid: str


class ClaimInput(Contract):
    rollout: RolloutRef
    workflow_id: str
    revision: str
    # The kinds of config the run's template names copies of (trackConfig): the claim checks
    # the revision with those, as the watcher made it.
    config_kinds: list[Literal["ConfigMap", "Secret"]] = []


class ClaimResult(Contract):
    """What the Rollout looked like once this workflow became its owner."""

    claimed: bool
    reason: str = ""
    stable_revision: str | None = None
    phase: str | None = None
    previous_owner: str | None = None
    current_revision: str | None = None


class EnsureReplicaSetInput(Contract):
    rollout: RolloutRef
    revision: str
    template: dict[str, Any]
    match_labels: dict[str, str]
    replicas: int
    min_ready_seconds: int = 0
    generation: int = 0  # the Rollout generation the run follows (ANNOTATION_GENERATION)


class ScaleInput(Contract):
    namespace: str
    name: str
    replicas: int


class ReplicaSetState(Contract):
    name: str
    replicas: int
    ready: int
    available: int
    exists: bool = True


class WaitAvailableInput(Contract):
    namespace: str
    name: str
    want: int
    progress_deadline_seconds: int


class WaitAvailableResult(Contract):
    met: bool
    available: int
    message: str = ""


class ScaleAndWaitInput(Contract):
    replicaset: EnsureReplicaSetInput
    progress_deadline_seconds: int


class ScaleAndWaitResult(Contract):
    """The ReplicaSet after the scale, and whether its pods became available in time."""

    state: ReplicaSetState
    wait: WaitAvailableResult


class ScaleDownOthersInput(Contract):
    rollout: RolloutRef
    keep_revisions: list[str]
    # Scaled-down revisions kept for a fast rollback; older ones are deleted (None: keep all,
    # as runs recorded before the limit existed did).
    history_limit: int | None = None


class SelectRevisionInput(Contract):
    namespace: str
    service: str
    # None removes the pin, so the Service selects the pods of every revision.
    revision: str | None


class CheckTargetsInput(Contract):
    namespace: str
    services: list[str]
    route: str | None = None
    route_namespace: str | None = None
    # Weighted strategies need a rule naming every Service; A/B only needs the route.
    require_split: bool = True


class CheckTargetsResult(Contract):
    ok: bool
    reason: str = ""
    message: str = ""


class SetWeightsInput(Contract):
    namespace: str
    route: str
    weights: dict[str, int]
    # The weights this workflow wrote last; a route that shows others was edited by someone else.
    expected: dict[str, int] | None = None
    port: int | None = None
    rollout: str = ""  # for the per-rollout weight metric


class MirrorInput(Contract):
    """`percent` of the split rules' requests mirrored to the canary Service (None: none)."""

    namespace: str
    route: str
    stable_service: str
    canary_service: str
    percent: int | None = None


class VerifyRouteInput(Contract):
    """Waits up to `within_seconds` for the Gateways to take the route's current generation."""

    namespace: str
    route: str
    within_seconds: float


class VerifyRouteResult(Contract):
    """`verified`: every Gateway reporting on the route accepted its current generation;
    `unobserved`: none reports on it; `refused`: one said no (`message` is its reason);
    `unreported`: one had not reported on the generation in time; `missing`: no route."""

    outcome: Literal["verified", "unobserved", "refused", "unreported", "missing"]
    generation: int = 0
    message: str = ""


class SetWeightsResult(Contract):
    outcome: Literal["applied", "unchanged", "drifted", "missing"]
    message: str = ""
    observed: dict[str, int] = {}


class EventSpec(Contract):
    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    # Names the transition; a retried write of the same transition creates no second Event.
    transition_id: str
    time: str | None = None  # the workflow's time of the transition, RFC 3339


class PublishStatusInput(Contract):
    rollout: RolloutRef
    status: RolloutStatus
    event: EventSpec | None = None
    # False: the transition is recorded (occurrence) but no Kubernetes Event is created.
    kubernetes_event: bool = True


CDEventKind = Literal["deployed", "upgraded", "rolledback", "published"]
CDEVENT_SEND_ATTEMPTS = 8  # about two minutes of backoff before an event is dropped


class Announcement(Contract):
    """One transition told to the delivery pipeline (a CDEvent); ids derive from the transition,
    so every retry of a send repeats the same event id."""

    kind: CDEventKind
    transition_id: str
    timestamp: str  # the workflow's time of the transition, RFC 3339
    rollout: RolloutRef
    strategy: str
    phase: str
    reason: str
    message: str
    revision: str
    stable_revision: str | None = None
    images: list[str] = []
    step_index: int | None = None
    step_count: int | None = None
    weight: int | None = None
    seconds_in_rollout: float = 0.0
    seconds_in_step: float | None = None
    experiment: dict[str, Any] | None = None


ReleaseEventKind = Literal[
    "pipelinerun.started", "pipelinerun.finished", "taskrun.started", "taskrun.finished"
]


class ReleaseAnnouncement(Contract):
    """A Release (a pipeline run) or one of its stages (a task run) starting or finishing,
    told to the delivery pipeline; ids derive from `transition_id` as for a Rollout's."""

    kind: ReleaseEventKind
    transition_id: str
    timestamp: str
    release: RolloutRef
    workflow_id: str
    stage: str | None = None
    outcome: Literal["success", "failure"] | None = None
    errors: str | None = None


class Proportion(Contract):
    """Events (`successes`, e.g. errors or conversions) out of `trials` for one variant."""

    successes: int
    trials: int

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0


class ExperimentRuleInput(Contract):
    """kulta's own HTTPRoute rule sending matching requests to variant B (or its removal)."""

    namespace: str
    route: str
    rule_name: str
    present: bool
    service: str = ""
    port: int | None = None
    header_name: str = ""
    header_value: str = ""
    header_type: Literal["Exact", "RegularExpression"] = "Exact"
    # Variant B's cookie as a Cookie-header pattern, when `variantBMatch` also has one: a
    # second rule (header OR cookie), named `<rule_name>-cookie`.
    cookie_pattern: str | None = None
    # The user's rule to copy (its matches, filters, timeouts): the one sending to variant A.
    variant_a_service: str = ""


class ExperimentMetric(Contract):
    name: str
    query: str | None = None
    trials_query: str | None = None
    direction: Literal["lower", "higher"] = "lower"


class Variant(Contract):
    service: str
    revision: str


class MeasureExperimentInput(Contract):
    namespace: str
    rollout: str
    metrics: list[ExperimentMetric]
    variant_a: Variant
    variant_b: Variant
    since: str
    confidence_level: float
    min_samples: int


class ExperimentMeasurement(Contract):
    has_data: bool
    verdicts: list[ExperimentMetricStatus] = []
    winner: Literal["A", "B"] | None = None
    message: str = ""


class ProportionRequest(Contract):
    namespace: str
    rollout: str
    metric: ExperimentMetric
    variant: Variant
    since: str


class MetricCheck(Contract):
    """One metric to measure: a built-in name or a PromQL template, and its bounds."""

    name: str
    query: str | None = None
    provider: str | None = None
    max: float | None = None
    min: float | None = None
    condition: str | None = None
    baseline_max_ratio: float | None = None
    baseline_max_difference: float | None = None
    lower_is_better: bool = True

    @property
    def needs_baseline(self) -> bool:
        return (
            self.baseline_max_ratio is not None
            or self.baseline_max_difference is not None
            or (self.condition is not None and "baseline" in parse(self.condition).variables())
        )


class MeasureMetricInput(Contract):
    metric: MetricCheck
    variables: dict[str, str]


class MetricMeasurement(Contract):
    verdict: Literal["Successful", "Failed", "Inconclusive", "Error", "Invalid"]
    value: float | None = None
    baseline: float | None = None
    message: str = ""
    query: str = ""
