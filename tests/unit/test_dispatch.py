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
from watcher.dispatch import CancelWorkflow, RemoveAnnotation, Signal, StartWorkflow, decide


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


def test_promote_annotation_is_a_signal_then_removed() -> None:
    obj = observed(annotations={ANNOTATION_PROMOTE: "true"})
    obj["status"] = {"workflowId": "rollout/ns/app/old", "observedGeneration": 1, "phase": "Paused"}
    actions = decide(obj)
    assert Signal("rollout/ns/app/old", "promote", actions[1].arg) in actions  # type: ignore[union-attr]
    assert actions[-1] == RemoveAnnotation("ns", "app", ANNOTATION_PROMOTE)


def test_promote_full_and_garbage_values() -> None:
    full = decide(observed(annotations={ANNOTATION_PROMOTE: "full"}))
    assert any(isinstance(a, Signal) and a.arg.full for a in full)
    junk = decide(observed(annotations={ANNOTATION_PROMOTE: "nope"}))
    assert not any(isinstance(a, Signal) for a in junk)
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
