"""Occurrences: one JSON object per rollout transition, for people and log pipelines. Pure.

Type `<canary|bluegreen|abtesting|rolling>.rollout.<progressing|paused|completed|failed>`. Each
carries the rollout entity, its context (namespace, cluster, correlation keys), a reasoning
block (why kulta decided what it did), the recent decisions, and on a failure or a warning an
error block: what failed, why it matters, likely causes and a suggested fix, naming the metric
and the value when analysis decided.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from activities.contracts import EventSpec, RolloutRef
from activities.naming import ROLLOUT_API_VERSION
from activities.rollout_status import RolloutStatus

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
STRATEGY_TYPES = {
    "canary": "canary",
    "blueGreen": "bluegreen",
    "abTesting": "abtesting",
    "simple": "rolling",
}
PHASE_CLASSES = {
    "Progressing": "progressing",
    "Experimenting": "progressing",
    "Paused": "paused",
    "Preview": "paused",
    "Concluded": "paused",
    "Completed": "completed",
    "Failed": "failed",
}


def ulid(at: datetime, seed: str) -> str:
    """A ULID whose time part is `at` and whose random part derives from `seed`: the same
    transition always gets the same id (a retried write is recognisably the same occurrence)."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    entropy = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    value = (millis << 80) | entropy
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def build(
    ref: RolloutRef, status: RolloutStatus, event: EventSpec, at: datetime, cluster: str
) -> dict[str, Any]:
    strategy = status.strategy or "canary"
    phase = status.phase or "Progressing"
    phase_class = PHASE_CLASSES.get(phase, "progressing")
    kind = f"{STRATEGY_TYPES.get(strategy, strategy)}.rollout.{phase_class}"
    revision = status.canary_revision or status.stable_revision
    decisions = [d.model_dump(mode="json", by_alias=True) for d in status.decisions]
    occurrence: dict[str, Any] = {
        "id": ulid(at, event.transition_id),
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "type": kind,
        "severity": _severity(phase, event),
        "outcome": _outcome(phase),
        "message": event.message,
        "context": {
            "namespace": ref.namespace,
            "cluster": cluster,
            "correlation": {
                "rolloutUid": ref.uid,
                "workflowId": status.workflow_id,
                "transitionId": event.transition_id,
                "revision": revision,
            },
        },
        "entity": {
            "apiVersion": ROLLOUT_API_VERSION,
            "kind": "Rollout",
            "namespace": ref.namespace,
            "name": ref.name,
            "uid": ref.uid,
            "strategy": strategy,
            "phase": phase,
            "revision": revision,
            "stableRevision": status.stable_revision,
            "step": status.current_step_index,
            "stepCount": status.step_count,
            "weight": status.current_weight,
        },
        "reasoning": {
            "reason": event.reason,
            "decision": decisions[-1] if decisions else None,
            "evidence": _evidence(status),
        },
        "history": decisions[-10:],
    }
    if phase == "Failed" or event.type == "Warning":
        occurrence["error"] = error_block(event, status)
    return occurrence


def _severity(phase: str, event: EventSpec) -> str:
    if phase == "Failed":
        return "error"
    return "warning" if event.type == "Warning" else "info"


def _outcome(phase: str) -> str:
    return {"Completed": "success", "Failed": "failure"}.get(phase, "in_progress")


def _evidence(status: RolloutStatus) -> list[dict[str, Any]]:
    """The latest measurement of each metric (background and inline analysis)."""
    analysis = status.analysis
    if analysis is None:
        return []
    return [
        {"metric": metric.name, **metric.measurements[-1].model_dump(mode="json", by_alias=True)}
        for metric in [*analysis.metrics, *analysis.inline]
        if metric.measurements
    ]


def _failing_measurement(status: RolloutStatus) -> dict[str, Any] | None:
    judged = [e for e in _evidence(status) if e.get("verdict") != "Successful"]
    return judged[-1] if judged else None


# reason -> (why it matters, likely causes, suggested fix); {revision} is filled in.
_GUIDANCE: dict[str, tuple[str, list[str], str]] = {
    "AnalysisFailed": (
        "the new revision measured worse than the Rollout allows, so kulta moved all traffic back "
        "to the stable revision before scaling the new one down",
        [
            "a regression in revision {revision}",
            "a dependency the new revision calls is failing",
            "a threshold tighter than the service's normal behaviour",
        ],
        "look at the metric in Prometheus and at the pods with pod-template-hash={revision}; "
        "push a fixed revision, or `kulta retry` if the cause was transient",
    ),
    "AnalysisInconclusive": (
        "kulta has no evidence either way, and never promotes without it",
        [
            "Prometheus is down or unreachable from the worker",
            "the query matches no series (wrong labels, or no traffic reaches the new revision)",
        ],
        "check KULTA_PROMETHEUS_ADDRESS and the query; `kulta resume` (or spec.paused: false) "
        "measures again, `kulta abort` rolls back",
    ),
    "AnalysisInvalid": (
        "the analysis cannot run as written, so the rollout waits instead of guessing",
        [
            "a PromQL syntax error",
            "a template variable kulta does not provide",
            "an unknown provider",
        ],
        "fix the metric named in the message; the rollout continues once the spec is corrected",
    ),
    "Aborted": (
        "all traffic went back to the stable revision at someone's request",
        ["a person or a pipeline aborted the rollout"],
        "`kulta retry` tries the same revision again; a new template starts a new rollout",
    ),
    "ProgressDeadlineExceeded": (
        "the new revision's pods did not become available in time, so it received no more traffic",
        [
            "the image cannot be pulled",
            "the container crashes or its readiness probe fails",
            "the cluster lacks capacity for the extra pods",
        ],
        "`kubectl describe pods -l pod-template-hash={revision}` and the pods' logs",
    ),
    "RollbackIncomplete": (
        "kulta could not confirm that traffic is back on the stable revision, so it kept the new "
        "revision's pods running rather than drop traffic",
        ["the HTTPRoute was deleted or is edited concurrently", "kulta lacks RBAC on HTTPRoutes"],
        "check the HTTPRoute's weights by hand, then `kulta retry` or fix the permissions",
    ),
    "InvalidSpec": (
        "kulta does not understand the spec, so it moves no traffic at all",
        ["a field the API server accepted but kulta rejects (see the message)"],
        "correct the field named in the message; kulta picks the fixed spec up by itself",
    ),
    "ExperimentLost": (
        "variant B did not win the experiment, so variant A keeps all traffic",
        ["B performed no better than A, or the experiment ended without significance"],
        "nothing is broken; change the experiment or the variant and roll out again",
    ),
}
_GENERIC = (
    "the rollout stopped before the new revision became stable",
    ["see the message and the rollout's Events"],
    "`kulta get` shows the state; `kulta retry` tries again",
)


def error_block(event: EventSpec, status: RolloutStatus) -> dict[str, Any]:
    revision = status.canary_revision or ""
    why, causes, fix = _GUIDANCE.get(event.reason, _GENERIC)
    block: dict[str, Any] = {
        "what": event.message,
        "reason": event.reason,
        "whyItMatters": why,
        "likelyCauses": [c.format(revision=revision) for c in causes],
        "suggestedFix": fix.format(revision=revision),
    }
    failing = _failing_measurement(status) if event.reason.startswith("Analysis") else None
    if failing is not None:
        block["metric"] = failing.get("metric")
        block["value"] = failing.get("value")
        block["verdict"] = failing.get("verdict")
    return block
