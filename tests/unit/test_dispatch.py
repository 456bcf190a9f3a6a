"""What the watcher asks of Temporal for one observed Rollout."""

from __future__ import annotations

import copy
from typing import Any

from activities.naming import (
    ANNOTATION_CONCLUDE,
    ANNOTATION_PROMOTE,
    ANNOTATION_RESUME,
    revision_of,
    workflow_id,
)
from tests.support.builders import rollout
from watcher.dispatch import (
    CLAIMED,
    CancelWorkflow,
    ClaimAnnotation,
    RemoveAnnotation,
    Signal,
    StartWorkflow,
    decide,
)
from workflows.messages import PromoteRequest


def observed(
    status: dict[str, Any] | None = None,
    generation: int = 1,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj = copy.deepcopy(rollout("app"))
    obj["metadata"].update({"namespace": "ns", "uid": "0123456789abcdef", "generation": generation})
    if annotations:
        obj["metadata"]["annotations"] = annotations
    if status is not None:
        obj["status"] = status
    return obj


def wid(obj: dict[str, Any]) -> str:
    return workflow_id("ns", "app", "0123456789abcdef", revision_of(obj["spec"]["template"]))


def test_new_rollout_starts_its_revision() -> None:
    obj = observed()
    [start] = decide(obj)
    assert isinstance(start, StartWorkflow)
    assert start.workflow_id == wid(obj) and start.workflow_id.startswith("rollout/ns/app/")
    assert start.start.generation == 1 and start.strategy == "canary"


def test_settled_rollout_needs_nothing() -> None:
    obj = observed()
    obj["status"] = {"workflowId": wid(obj), "observedGeneration": 1, "phase": "Completed"}
    assert decide(obj) == []


def test_spec_edit_on_the_same_revision_is_signalled() -> None:
    obj = observed(generation=2)
    obj["status"] = {"workflowId": wid(obj), "observedGeneration": 1, "phase": "Paused"}
    actions = decide(obj)
    assert isinstance(actions[0], StartWorkflow)
    assert isinstance(actions[1], Signal) and actions[1].name == "update-spec"


def test_promote_annotation_is_claimed_then_signalled_with_its_identity_then_removed() -> None:
    obj = observed(annotations={ANNOTATION_PROMOTE: "true"})
    obj["metadata"]["resourceVersion"] = "41"
    obj["status"] = {"workflowId": "rollout/ns/app/old", "observedGeneration": 1, "phase": "Paused"}
    claim = ClaimAnnotation("ns", "app", ANNOTATION_PROMOTE, was="true", claim=f"{CLAIMED}true:41")
    actions = decide(obj)
    assert claim in actions and not any(isinstance(a, Signal) for a in actions)

    obj["metadata"]["annotations"] = {ANNOTATION_PROMOTE: claim.claim}
    obj["metadata"]["resourceVersion"] = "42"
    actions = decide(obj)
    request = PromoteRequest(full=False, id=f"{obj['metadata']['uid']}/41")
    assert actions[-2:] == [
        Signal("rollout/ns/app/old", "promote", request),
        RemoveAnnotation("ns", "app", ANNOTATION_PROMOTE),
    ]
    obj["metadata"]["resourceVersion"] = "43"  # the removal failed: the same request again
    assert decide(obj)[-2] == Signal("rollout/ns/app/old", "promote", request)


def test_promote_full_and_garbage_values() -> None:
    full = decide(observed(annotations={ANNOTATION_PROMOTE: "full"}))
    assert any(
        isinstance(a, ClaimAnnotation) and a.claim.startswith(f"{CLAIMED}full:") for a in full
    )
    claimed = decide(observed(annotations={ANNOTATION_PROMOTE: f"{CLAIMED}full:7"}))
    assert any(isinstance(a, Signal) and a.arg.full for a in claimed)
    junk = decide(observed(annotations={ANNOTATION_PROMOTE: "nope"}))
    assert not any(isinstance(a, Signal | ClaimAnnotation) for a in junk)
    assert RemoveAnnotation("ns", "app", ANNOTATION_PROMOTE) in junk


def test_deleted_rollout_cancels_its_workflow() -> None:
    obj = observed({"workflowId": "w"})
    assert decide(obj, deleted=True) == [CancelWorkflow("w")]


def test_conclude_experiment_annotation_is_a_conclude_signal() -> None:
    obj = observed(annotations={ANNOTATION_CONCLUDE: "true"})
    obj["status"] = {"workflowId": "w", "observedGeneration": 1, "phase": "Experimenting"}
    actions = decide(obj)
    assert Signal("w", "conclude") in actions
    assert actions[-1] == RemoveAnnotation("ns", "app", ANNOTATION_CONCLUDE)


def test_resume_annotation_resumes_what_analysis_paused() -> None:
    obj = observed(annotations={ANNOTATION_RESUME: "true"})
    obj["status"] = {"workflowId": "w", "observedGeneration": 1, "phase": "Paused"}
    actions = decide(obj)
    assert Signal("w", "resume") in actions
    assert actions[-1] == RemoveAnnotation("ns", "app", ANNOTATION_RESUME)
