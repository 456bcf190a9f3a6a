"""The pure parts of a Release: the spec's plan (defaults, cycles, names), which stages may
start, what a Rollout's status means for the Release, template edits, and the watcher's
decisions."""

from __future__ import annotations

from typing import Any

import pytest

from activities.naming import ANNOTATION_APPROVE, release_workflow_id
from activities.release_contracts import MemberObservation
from activities.templates import merge_diff, merge_patch, with_images
from watcher.dispatch import CancelWorkflow, RemoveAnnotation, Signal
from watcher.releases import StartRelease, decide_release
from workflows.release_messages import SIGNAL_APPROVE, ApproveRequest
from workflows.release_model import InvalidRelease, dependencies, parse_release_spec
from workflows.release_plan import ready_stages, verdict


def _stage(name: str, *rollouts: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "rollouts": [{"name": r, "images": {"app": "x:2"}} for r in rollouts],
        **fields,
    }


def test_a_stage_is_after_the_one_before_it_unless_it_says_otherwise() -> None:
    spec = parse_release_spec(
        {"stages": [_stage("a", "r1"), _stage("b", "r2"), _stage("c", "r3", after=[])]}
    )
    assert dependencies(spec) == {"a": [], "b": ["a"], "c": []}


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([_stage("a", "r1", after=["b"]), _stage("b", "r2")], "cycle: a -> b -> a"),
        ([_stage("a", "r1"), _stage("b", "r2", after=["nope"])], "unknown stage 'nope'"),
        ([_stage("a", "r1"), _stage("a", "r2")], "stage name 'a' is used twice"),
        ([_stage("a", "r1"), _stage("b", "r1")], "Rollout r1 is named twice"),
        ([{"name": "a", "rollouts": [{"name": "r"}]}], "exactly one of images and template"),
        ([_stage("a", "r", gate={"type": "Soak"})], "a Soak gate needs a duration"),
        ([_stage("a", "r", gate={"type": "Approval", "duration": "1m"})], "only a Soak gate"),
        ([], "spec.stages: List should have at least 1 item"),
    ],
)
def test_a_plan_that_cannot_run_is_refused_naming_why(
    stages: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(InvalidRelease, match=message.replace("(", r"\(")):
        parse_release_spec({"stages": stages})


def test_the_same_rollout_name_in_two_clusters_is_two_rollouts() -> None:
    parse_release_spec({"stages": [_stage("a", "web"), _stage("b", "web", cluster="east")]})


def test_stages_start_once_all_they_are_after_are_done() -> None:
    after = {"a": [], "b": ["a"], "c": [], "d": ["b", "c"]}
    assert ready_stages(after, done=set(), started=set()) == ["a", "c"]
    assert ready_stages(after, done={"a"}, started={"a", "c"}) == ["b"]
    assert ready_stages(after, done={"a", "b"}, started={"a", "b", "c"}) == []
    assert ready_stages(after, done={"a", "b", "c"}, started={"a", "b", "c"}) == ["d"]


def _seen(**fields: Any) -> MemberObservation:
    return MemberObservation(**{"template_revision": "new", **fields})


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        # Just changed: the Rollout still says Completed, on the old revision.
        (_seen(phase="Completed", stable_revision="old", running_revision="old"), "running"),
        (_seen(phase="Progressing", running_revision="new"), "running"),
        (_seen(phase="Completed", stable_revision="new", running_revision="new"), "completed"),
        (_seen(phase="Failed", running_revision="new"), "failed"),
        # A Failed left from an earlier revision is not this one's failure.
        (_seen(phase="Failed", running_revision="old"), "running"),
        (_seen(template_revision="someone-else", phase="Progressing"), "edited"),
    ],
)
def test_what_a_rollout_status_means_for_the_release(
    seen: MemberObservation, expected: str
) -> None:
    assert verdict(seen, "new") == expected


def test_a_merge_patch_and_its_diff_are_inverse() -> None:
    before = {
        "metadata": {"labels": {"app": "a", "old": "x"}},
        "spec": {"containers": [{"name": "app"}]},
    }
    after = merge_patch(before, {"metadata": {"labels": {"old": None, "new": "y"}}})
    assert after == {
        "metadata": {"labels": {"app": "a", "new": "y"}},
        "spec": {"containers": [{"name": "app"}]},
    }
    assert merge_patch(before, merge_diff(before, after)) == after
    assert before["metadata"]["labels"]["old"] == "x"  # not changed in place


def test_images_are_set_by_container_name_and_a_typo_is_named() -> None:
    template = {
        "spec": {
            "initContainers": [{"name": "init", "image": "i:1"}],
            "containers": [{"name": "app", "image": "a:1"}],
        }
    }
    changed, missing = with_images(template, {"app": "a:2", "init": "i:2", "sidecar": "s:2"})
    assert changed["spec"]["containers"][0]["image"] == "a:2"
    assert changed["spec"]["initContainers"][0]["image"] == "i:2"
    assert missing == ["sidecar"]


def _release(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": "shop",
            "uid": "0123456789",
            "generation": generation,
        },
        "spec": {"stages": [_stage("a", "r")]},
        "status": status,
    }


def test_each_generation_runs_once() -> None:
    [start] = decide_release(_release(), cluster="c1")
    assert isinstance(start, StartRelease)
    assert start.workflow_id == release_workflow_id("ns", "shop", "0123456789", 1)
    assert start.start.cluster == "c1"
    running = release_workflow_id("ns", "shop", "0123456789", 1)
    assert (
        decide_release(
            _release(observedGeneration=1, workflowId=running, phase="Progressing"), cluster="c1"
        )
        == []
    )
    assert (
        decide_release(
            _release(observedGeneration=1, workflowId=running, phase="Completed"), cluster="c1"
        )
        == []
    )


def test_an_edit_waits_for_the_running_generation_to_end() -> None:
    running = release_workflow_id("ns", "shop", "0123456789", 1)
    edited = _release(2, observedGeneration=1, workflowId=running, phase="Paused")
    assert decide_release(edited, cluster="c1") == []
    ended = _release(2, observedGeneration=1, workflowId=running, phase="RolledBack")
    [start] = decide_release(ended, cluster="c1")
    assert isinstance(start, StartRelease) and start.start.generation == 2


def test_an_approve_annotation_is_a_signal_to_the_running_generation() -> None:
    running = release_workflow_id("ns", "shop", "0123456789", 1)
    release = _release(observedGeneration=1, workflowId=running, phase="Paused")
    release["metadata"]["annotations"] = {ANNOTATION_APPROVE: "a"}
    assert decide_release(release, cluster="c1") == [
        Signal(running, SIGNAL_APPROVE, ApproveRequest(stage="a")),
        RemoveAnnotation("ns", "shop", ANNOTATION_APPROVE, kind="Release"),
    ]


def test_a_deleted_release_cancels_its_run() -> None:
    running = release_workflow_id("ns", "shop", "0123456789", 1)
    assert decide_release(_release(workflowId=running), cluster="c1", deleted=True) == [
        CancelWorkflow(running)
    ]
