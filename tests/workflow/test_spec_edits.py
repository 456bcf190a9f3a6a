"""Edits of a Rollout's spec while a revision rolls out: applied from the next step, deferred
when they change the revision's frame (its Services, route or strategy), or ignored when
invalid; each way told on the status (observedGeneration, the SpecApplied condition) and by an
Event. The watcher's signal is sent by hand, as in the canary edit test."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from tests.support.scenario import Scenario
from tests.workflow.test_blue_green_workflow import stable_v1 as blue_green_v1
from tests.workflow.test_canary_workflow import stable_v1
from workflows.messages import SIGNAL_PROMOTE, SIGNAL_UPDATE_SPEC, PromoteRequest, SpecUpdate

pytestmark = pytest.mark.cluster

ONE_PAUSE = [{"setWeight": 20, "pause": {}}]


async def edit(sc: Scenario, handle: WorkflowHandle[Any, Any], **changes: Any) -> int:
    """Patches the spec and signals it, as the watcher does; returns the new generation."""
    rollout = await sc.patch_spec(**changes)
    generation: int = rollout["metadata"]["generation"]
    await handle.signal(SIGNAL_UPDATE_SPEC, SpecUpdate(generation=generation, spec=rollout["spec"]))
    return generation


async def spec_applied(sc: Scenario, reason: str) -> dict[str, Any]:
    """The Rollout once its SpecApplied condition has `reason`, and the Event that told it."""

    def told(rollout: dict[str, Any]) -> bool:
        conditions = (rollout.get("status") or {}).get("conditions") or []
        return any(c["type"] == "SpecApplied" and c["reason"] == reason for c in conditions)

    rollout = await sc.wait_until(told, f"SpecApplied {reason}")
    for _ in range(100):
        events = await sc.kube.list("Event", sc.namespace)
        if any(e["reason"] == reason for e in events):
            return rollout
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {reason} Event")


def condition(rollout: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in rollout["status"]["conditions"] if c["type"] == ctype)


async def test_a_new_canary_service_mid_canary_is_deferred_and_the_canary_goes_on(
    scenario: Scenario,
) -> None:
    await stable_v1(scenario, steps=ONE_PAUSE)
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    paused = await scenario.wait_paused_at(20)
    following = paused["status"]["observedGeneration"]
    generation = await edit(
        scenario, handle, strategy={"canary": {"canaryService": "app-other", "steps": ONE_PAUSE}}
    )
    deferred = await spec_applied(scenario, "EditDeferred")
    assert condition(deferred, "SpecApplied")["status"] == "False"
    assert "spec.strategy.canary.canaryService" in condition(deferred, "SpecApplied")["message"]
    assert deferred["status"]["observedGeneration"] == following < generation  # still due
    assert deferred["status"]["phase"] == "Paused"
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
    done = await scenario.wait_phase("Completed")
    assert done["status"]["stableRevision"] == v2
    # Completed on the Services it ran with; the edit is left for the stable revision's run.
    assert await scenario.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    assert done["status"]["observedGeneration"] == following


async def test_a_fixed_service_name_before_any_pod_starts_the_canary_over(
    scenario: Scenario,
) -> None:
    await stable_v1(scenario, steps=ONE_PAUSE)
    await scenario.patch_spec(strategy={"canary": {"canaryService": "app-typo"}})
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_phase("Paused", "app-typo")
    assert await scenario.kube.find("ReplicaSet", scenario.namespace, f"app-{v2}") is None
    generation = await edit(scenario, handle, strategy={"canary": {"canaryService": "app-canary"}})
    paused = await scenario.wait_paused_at(20)
    assert paused["status"]["observedGeneration"] == generation
    assert condition(paused, "SpecApplied")["reason"] == "EditApplied"
    assert await scenario.selector("app-canary") == {"app": "app", "pod-template-hash": v2}
    assert (await scenario.weights())["app-canary"] == 20


async def test_an_invalid_edit_mid_canary_is_told_and_ignored(scenario: Scenario) -> None:
    await stable_v1(scenario, steps=ONE_PAUSE)
    await scenario.set_image("example/app:v2")
    handle = await scenario.start()
    await scenario.wait_paused_at(20)
    rollout = await scenario.rollout()
    spec = rollout["spec"]
    spec["strategy"]["canary"]["canaryService"] = "app-stable"  # the API server refuses it
    generation = rollout["metadata"]["generation"] + 1
    await handle.signal(SIGNAL_UPDATE_SPEC, SpecUpdate(generation=generation, spec=spec))
    ignored = await spec_applied(scenario, "InvalidEdit")
    assert "canaryService" in condition(ignored, "SpecApplied")["message"]
    assert ignored["status"]["phase"] == "Paused"
    assert (await scenario.weights())["app-canary"] == 20  # nothing moved on it


async def test_blue_green_edits_in_preview_apply_at_once(scenario: Scenario) -> None:
    await blue_green_v1(scenario, autoPromotionEnabled=False, previewReplicaCount=2)
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_phase("Preview", "waiting for promotion")
    settings = {"autoPromotionEnabled": True, "autoPromotionSeconds": 120, "previewReplicaCount": 1}
    generation = await edit(scenario, handle, strategy={"blueGreen": settings})
    await scenario.wait_rs_replicas(v2, 1)
    preview = await scenario.wait_phase("Preview", "promoting automatically in")
    assert preview["status"]["observedGeneration"] == generation
    assert condition(preview, "SpecApplied")["reason"] == "EditApplied"
    await scenario.skip(120, handle)  # the edited delay promotes it
    cut = await scenario.wait_phase("Progressing", "stays up for 30s")
    assert cut["status"]["currentWeight"] == 100
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 4


async def test_simple_re_plans_for_replicas_edited_mid_update(scenario: Scenario) -> None:
    await scenario.create(replicas=4, strategy={"simple": {"maxSurge": 1, "maxUnavailable": 0}})
    assert (await (await scenario.start()).result()).result == "completed"
    v1 = await scenario.revision()
    await scenario.patch_spec(paused=True)
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_phase("Paused", "paused by user")
    generation = await edit(scenario, handle, replicas=6, paused=False)
    assert (await handle.result()).result == "completed"
    done = await scenario.rollout()
    assert done["status"]["observedGeneration"] == generation
    assert (await scenario.replicaset(v2))["status"]["availableReplicas"] == 6
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 0
    steps = [d for d in done["status"]["decisions"] if d["action"] == "rolling-step"]
    assert len(steps) == done["status"]["stepCount"]
