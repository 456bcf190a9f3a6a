"""kulta's Prometheus metrics, defined once (prometheus-client's default registry).

Counters are exported with `_total`; durations in seconds. Labels stay low-cardinality except
`kulta_traffic_weight`, which is per rollout and removed when the rollout ends.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROLLOUTS = Gauge(
    "kulta_rollouts",
    "Rollouts by phase and strategy, as the watcher sees them.",
    ["phase", "strategy"],
)
ROLLOUT_DURATION = Histogram(
    "kulta_rollout_duration_seconds",
    "From a rollout's start to its completion or rollback.",
    ["strategy", "result"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 604800),
)
STEP_DURATION = Histogram(
    "kulta_step_duration_seconds",
    "Time between a rollout's step transitions.",
    ["strategy"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400),
)
STEP_TRANSITIONS = Counter(
    "kulta_step_transitions", "Steps advanced (canary weights, batches, cutovers).", ["strategy"]
)
ANALYSIS_MEASUREMENTS = Counter(
    "kulta_analysis_measurements", "Metric measurements by verdict.", ["verdict"]
)
TRAFFIC_WEIGHT = Gauge(
    "kulta_traffic_weight",
    "HTTPRoute weight kulta last wrote, per rollout backend.",
    ["namespace", "rollout", "backend"],
)
ROUTE_VERIFICATIONS = Histogram(
    "kulta_route_verification_seconds",
    "From the first look at an HTTPRoute's status to the Gateways' verdict on its generation, "
    "by outcome (verified, refused, unreported, unobserved).",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
ACTIVITY_FAILURES = Counter(
    "kulta_activity_failures",
    "Activity attempts that raised, by activity and error.",
    ["activity", "error"],
)
WATCH_RESTARTS = Counter(
    "kulta_watch_restarts", "Times the watcher re-listed Rollouts, by reason.", ["reason"]
)
CDEVENT_SENDS = Counter(
    "kulta_cdevents_sent",
    "CDEvent send attempts by result (sent, retried, dropped, disabled).",
    ["type", "result"],
)
KUBE_REQUESTS = Counter(
    "kulta_kube_requests",
    "Requests to the Kubernetes API server, by verb (WATCH: watches opened).",
    ["verb"],
)
OCCURRENCES = Counter(
    "kulta_occurrences", "Occurrence lines written, or failed to write.", ["result"]
)


def forget_rollout(namespace: str, rollout: str) -> None:
    """Drops a finished rollout's per-rollout series."""
    for labels in list(_series(TRAFFIC_WEIGHT)):
        if labels.get("namespace") == namespace and labels.get("rollout") == rollout:
            TRAFFIC_WEIGHT.remove(labels["namespace"], labels["rollout"], labels["backend"])


def _series(gauge: Gauge) -> list[dict[str, str]]:
    return [dict(sample.labels) for metric in gauge.collect() for sample in metric.samples]
