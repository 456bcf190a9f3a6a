"""Pure decisions: what one observed Rollout asks of Temporal. No I/O here.

The watcher never touches ReplicaSets or routes: it starts the workflow for the Rollout's
current revision (idempotently) and turns annotations and spec edits into signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from activities.naming import (
    ANNOTATION_ABORT,
    ANNOTATION_CONCLUDE,
    ANNOTATION_PROMOTE,
    ANNOTATION_RELEASE,
    ANNOTATION_RESUME,
    ANNOTATION_RETRY,
    revision_of,
    workflow_id,
)
from workflows.messages import (
    SIGNAL_ABORT,
    SIGNAL_CONCLUDE,
    SIGNAL_PROMOTE,
    SIGNAL_RESUME,
    SIGNAL_RETRY,
    SIGNAL_UPDATE_SPEC,
    AbortRequest,
    PromoteRequest,
    RolloutStart,
    SpecUpdate,
)

TRUTHY = {"true", "yes", "1", "full"}


@dataclass(frozen=True)
class StartWorkflow:
    workflow_id: str
    start: RolloutStart
    strategy: str
    # `<namespace>/<name>` of the Release that changed this Rollout (its search attribute).
    release: str | None = None


@dataclass(frozen=True)
class Signal:
    workflow_id: str
    name: str
    arg: Any = None


@dataclass(frozen=True)
class CancelWorkflow:
    workflow_id: str


@dataclass(frozen=True)
class RemoveAnnotation:
    namespace: str
    name: str
    key: str
    kind: str = "Rollout"


@dataclass(frozen=True)
class ClaimAnnotation:
    """Rewrites a steering annotation's value (only if it is still `was`) to a claim that
    names this one request, before the request is sent: see `CLAIMED`."""

    namespace: str
    name: str
    key: str
    was: str
    claim: str


Action = StartWorkflow | Signal | CancelWorkflow | RemoveAnnotation | ClaimAnnotation

# A promote annotation is claimed before it is signalled: its value becomes
# `kulta-claimed:<true|full>:<resourceVersion>`, and the signal carries that identity. If the
# removal after the signal fails, the next event sends the same identity again, and the
# workflow ignores it: one annotation passes one pause, never two.
CLAIMED = "kulta-claimed:"


def strategy_of(spec: dict[str, Any]) -> str:
    strategy = spec.get("strategy") or {}
    for name in ("canary", "blueGreen", "abTesting", "simple"):
        if name in strategy:
            return name
    return "unknown"


def decide(rollout: dict[str, Any], *, deleted: bool = False) -> list[Action]:
    """The actions one observed state of a Rollout calls for."""
    meta = rollout.get("metadata") or {}
    spec = rollout.get("spec") or {}
    status = rollout.get("status") or {}
    ns, name, uid = meta.get("namespace", "default"), meta["name"], meta["uid"]
    owner: str | None = status.get("workflowId")
    if deleted or meta.get("deletionTimestamp"):
        return [CancelWorkflow(owner)] if owner else []
    revision = revision_of(spec.get("template") or {})
    wid = workflow_id(ns, name, uid, revision)
    generation = int(meta.get("generation", 1))
    observed = status.get("observedGeneration")
    phase = status.get("phase")
    actions: list[Action] = []
    annotations = meta.get("annotations") or {}

    settled = owner == wid and observed == generation and phase in ("Completed", "Failed")
    if not settled:
        actions.append(
            StartWorkflow(
                workflow_id=wid,
                strategy=strategy_of(spec),
                start=RolloutStart(
                    namespace=ns,
                    name=name,
                    uid=uid,
                    revision=revision,
                    generation=generation,
                    spec=spec,
                ),
                release=release_of(annotations.get(ANNOTATION_RELEASE)),
            )
        )
    if owner == wid and observed is not None and observed != generation:
        actions.append(
            Signal(wid, SIGNAL_UPDATE_SPEC, SpecUpdate(generation=generation, spec=spec))
        )

    target = owner or wid
    promote = annotations.get(ANNOTATION_PROMOTE)
    if promote is not None:
        actions += _promote_actions(ns, name, uid, target, promote, meta.get("resourceVersion"))
    # Each of these annotations is one signal, then removed; a falsy value is only removed.
    one_shot: list[tuple[str, Signal]] = [
        (
            ANNOTATION_ABORT,
            Signal(target, SIGNAL_ABORT, AbortRequest(reason="aborted by annotation")),
        ),
        (ANNOTATION_CONCLUDE, Signal(target, SIGNAL_CONCLUDE)),
        (ANNOTATION_RESUME, Signal(target, SIGNAL_RESUME)),
        (ANNOTATION_RETRY, Signal(wid, SIGNAL_RETRY)),
    ]
    for key, signal in one_shot:
        value = annotations.get(key)
        if value is None:
            continue
        if value.lower() in TRUTHY:
            actions.append(signal)
        actions.append(RemoveAnnotation(ns, name, key))
    return actions


def release_of(claim: str | None) -> str | None:
    """`<namespace>/<name>` of the Release a Rollout's claim (`<cluster>/<ns>/<name>`) names."""
    if not claim or claim.count("/") < 2:
        return None
    return claim.split("/", 1)[1]


def _promote_actions(
    ns: str, name: str, uid: str, target: str, value: str, resource_version: str | None
) -> list[Action]:
    """Claim, then signal with the claim's identity and remove (see `CLAIMED`)."""
    remove = RemoveAnnotation(ns, name, ANNOTATION_PROMOTE)
    if value.startswith(CLAIMED):
        how, _, claimed_at = value.removeprefix(CLAIMED).partition(":")
        request = PromoteRequest(full=how == "full", id=f"{uid}/{claimed_at}")
        return [Signal(target, SIGNAL_PROMOTE, request), remove]
    if value.lower() not in TRUTHY:
        return [remove]
    how = "full" if value.lower() == "full" else "true"
    claim = f"{CLAIMED}{how}:{resource_version or ''}"
    return [ClaimAnnotation(ns, name, ANNOTATION_PROMOTE, was=value, claim=claim)]
