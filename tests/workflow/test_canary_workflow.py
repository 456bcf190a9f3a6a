"""The canary state machine on Temporal's time-skipping server, with real activities against the
local API server: pauses of minutes pass in milliseconds, everything else is real."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from activities.naming import replicaset_name
from tests.support.histories import replay_and_record
from tests.support.invariants import WriteRecorder, violations
from tests.support.scenario import Scenario
from workflows.messages import (
    SIGNAL_ABORT,
    SIGNAL_PROMOTE,
    SIGNAL_UPDATE_SPEC,
    AbortRequest,
    PromoteRequest,
    SpecUpdate,
)
from workflows.rollout import RolloutWorkflow

pytestmark = pytest.mark.cluster


async def stable_v1(sc: Scenario, **rollout_args: Any) -> str:
    """Creates the Rollout and lets its first revision go to full scale."""
    await sc.create(**rollout_args)
    handle = await sc.start()
    outcome = await handle.result()
    assert outcome.result == "completed"
    return await sc.revision()


async def test_first_revision_goes_straight_to_full_scale(scenario: Scenario) -> None:
    v1 = await stable_v1(scenario)
    rs = await scenario.replicaset(v1)
    assert rs["status"]["availableReplicas"] == 5
    status = (await scenario.rollout())["status"]
    assert status["phase"] == "Completed"
    assert status["stableRevision"] == v1
    assert "canaryRevision" not in status
    assert await scenario.selector("app-stable") == {"app": "app", "pod-template-hash": v1}
    assert await scenario.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}


async def test_canary_with_5m_and_10m_pauses_and_a_manual_pause_completes(
    scenario: Scenario,
) -> None:
    v1 = await stable_v1(scenario)
    route_before = await scenario.route()
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_phase("Progressing", "pausing for 300s")
    assert await scenario.weights() == {"app-stable": 80, "app-canary": 20, "mirror-sink": 0}
    await scenario.skip(300, handle)
    await scenario.wait_phase("Progressing", "pausing for 600s")
    assert await scenario.weights() == {"app-stable": 50, "app-canary": 50, "mirror-sink": 0}
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 3  # ceil(5 * 50 / 100)
    await scenario.skip(600, handle)
    await scenario.wait_phase("Paused", "waiting for promotion")
    assert await scenario.weights() == {"app-stable": 20, "app-canary": 80, "mirror-sink": 0}
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 4  # ceil(5 * 80 / 100)
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 5  # stable keeps full capacity
    assert await scenario.selector("app-canary") == {"app": "app", "pod-template-hash": v2}
    assert await scenario.selector("app-stable") == {"app": "app", "pod-template-hash": v1}
    route = await scenario.route()
    assert route["spec"]["rules"][0] == route_before["spec"]["rules"][0]  # the user's rule
    assert route["spec"]["rules"][1]["filters"] == route_before["spec"]["rules"][1]["filters"]
    assert route["spec"]["rules"][1]["matches"] == route_before["spec"]["rules"][1]["matches"]
    status = (await scenario.rollout())["status"]
    assert status["currentStepIndex"] == 2 and status["currentWeight"] == 80
    assert status["pauseStartTime"]

    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
    await scenario.wait_phase("Completed")
    await scenario.skip(30, handle)  # scaleDownDelaySeconds
    outcome = await asyncio.wait_for(handle.result(), 60)
    assert outcome.result == "completed"
    status = (await scenario.rollout())["status"]
    assert status["phase"] == "Completed"
    assert status["stableRevision"] == v2
    assert "canaryRevision" not in status and "pauseStartTime" not in status
    assert await scenario.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    assert await scenario.selector("app-stable") == {"app": "app", "pod-template-hash": v2}
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 5
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 0  # after scaleDownDelay
    actions = [d["action"] for d in status["decisions"]]
    assert actions.count("set-weight") == 4 and actions[-1] == "promote"
    # Kubernetes Events for the phase changes; the timed steps stay Progressing and have none.
    reasons = [e["reason"] for e in await scenario.kube.list("Event", scenario.namespace)]
    assert {"RolloutStarted", "PausedForPromotion", "PauseEnded", "RolloutCompleted"} <= set(
        reasons
    )
    assert "StepAdvanced" not in reasons and "Pausing" not in reasons

    await replay_and_record(scenario.client, handle, "canary-5m-10m-manual")


async def test_one_promote_passes_one_pause(scenario: Scenario) -> None:
    await stable_v1(
        scenario, steps=[{"setWeight": 20, "pause": {}}, {"setWeight": 40, "pause": {}}]
    )
    await scenario.set_image("example/app:v2")
    handle = await scenario.start()
    await scenario.wait_phase("Paused", "waiting for promotion")
    assert (await scenario.rollout())["status"]["currentWeight"] == 20
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())  # arrives in the same pause: no effect
    await scenario.wait_paused_at(40)
    # Still paused at the second step: the second promote was not saved up for it.
    status = (await scenario.rollout())["status"]
    assert status["message"] == "step 2/2: canary weight 40%, waiting for promotion"
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest(full=True))
    await scenario.wait_phase("Completed")
    await scenario.skip(30, handle)
    assert (await handle.result()).result == "completed"
    await replay_and_record(scenario.client, handle, "canary-promote-full")


async def test_the_same_annotation_promote_twice_passes_one_pause(scenario: Scenario) -> None:
    """The watcher sends an annotation's promote again when removing the annotation failed;
    the request carries the annotation's identity, and the repeat passes nothing."""
    await stable_v1(
        scenario, steps=[{"setWeight": 20, "pause": {}}, {"setWeight": 40, "pause": {}}]
    )
    await scenario.set_image("example/app:v2")
    handle = await scenario.start()
    await scenario.wait_paused_at(20)
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest(id="uid/41"))
    await scenario.wait_paused_at(40)
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest(id="uid/41"))  # the same one, again
    await handle.signal(SIGNAL_ABORT, AbortRequest(reason="to end the test"))
    failed = await scenario.wait_phase("Failed")
    passed = [d for d in failed["status"]["decisions"] if d["reason"] == "promoted"]
    assert [d["step"] for d in passed] == [0]  # the second pause was never passed


async def test_abort_moves_traffic_before_scaling_the_canary_down(scenario: Scenario) -> None:
    await stable_v1(scenario, steps=[{"setWeight": 60, "pause": {}}])
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_phase("Paused", "waiting for promotion")
    async with WriteRecorder(scenario.kube, scenario.namespace).running() as recorder:
        await handle.signal(SIGNAL_ABORT, AbortRequest(reason="bad canary"))
        failed = await scenario.wait_phase("Failed", "bad canary")
        # Traffic is back on stable while the canary keeps its pods for the abort delay.
        assert await scenario.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
        assert (await scenario.replicaset(v2))["spec"]["replicas"] == 3
        await scenario.skip(31, handle)  # abortScaleDownDelaySeconds
        await scenario.wait_rs_replicas(v2, 0)
    route_write = recorder.first(
        "HTTPRoute", "app-route", lambda r: r["spec"]["rules"][1]["backendRefs"][1]["weight"] == 0
    )
    scale_down = recorder.first(
        "ReplicaSet", replicaset_name("app", v2), lambda rs: rs["spec"]["replicas"] < 3
    )
    assert route_write.resource_version < scale_down.resource_version
    assert failed["status"]["currentWeight"] == 0
    assert failed["status"]["decisions"][-1]["action"] == "rollback"
    await replay_and_record(scenario.client, handle, "canary-abort")


async def test_new_revision_supersedes_a_running_canary(scenario: Scenario) -> None:
    v1 = await stable_v1(scenario, steps=[{"setWeight": 40, "pause": {}}])
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    h2 = await scenario.start()
    await scenario.wait_phase("Paused", "waiting for promotion")
    async with WriteRecorder(scenario.kube, scenario.namespace).running() as recorder:
        await scenario.set_image("example/app:v3")
        v3 = await scenario.revision()
        h3 = await scenario.start()
        with pytest.raises(WorkflowFailureError) as failure:
            await h2.result()
        assert isinstance(failure.value.cause, CancelledError)
        await scenario.wait_phase("Paused", "waiting for promotion")
    # v2 was compensated (traffic first, then its pods) before v3 created anything.
    v2_scaled_down = recorder.first(
        "ReplicaSet", replicaset_name("app", v2), lambda rs: rs["spec"]["replicas"] == 0
    )
    v3_created = recorder.first("ReplicaSet", replicaset_name("app", v3), lambda rs: True)
    back_to_stable = recorder.first(
        "HTTPRoute", "app-route", lambda r: r["spec"]["rules"][1]["backendRefs"][1]["weight"] == 0
    )
    assert (
        back_to_stable.resource_version
        < v2_scaled_down.resource_version
        < v3_created.resource_version
    )
    status = (await scenario.rollout())["status"]
    assert status["canaryRevision"] == v3 and status["stableRevision"] == v1
    assert status["workflowId"] == h3.id
    await replay_and_record(scenario.client, h2, "canary-superseded")
    await h3.signal(SIGNAL_PROMOTE, PromoteRequest())
    await scenario.wait_phase("Completed")
    await scenario.skip(30, h3)
    assert (await h3.result()).result == "completed"


async def test_reverting_the_template_to_stable_is_a_fast_rollback(scenario: Scenario) -> None:
    v1 = await stable_v1(scenario, steps=[{"setWeight": 40, "pause": {}}])
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    h2 = await scenario.start()
    await scenario.wait_phase("Paused", "waiting for promotion")
    await scenario.set_image("example/app:v1")
    assert await scenario.revision() == v1
    h1 = await scenario.start()
    assert (await h1.result()).result == "completed"
    with pytest.raises(WorkflowFailureError):
        await h2.result()
    assert await scenario.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 0
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 5
    status = (await scenario.rollout())["status"]
    assert status["phase"] == "Completed" and status["stableRevision"] == v1


async def test_invalid_spec_is_reported_and_nothing_moves(scenario: Scenario) -> None:
    await scenario.create()
    # Valid for the CRD's schema, invalid for kulta: the selector does not match the template.
    await scenario.kube.patch(
        "Rollout",
        scenario.namespace,
        scenario.name,
        {"spec": {"selector": {"matchLabels": {"app": "other"}}}},
    )
    await scenario.start()
    failed = await scenario.wait_phase("Failed", "invalid spec")
    assert "spec.selector" in failed["status"]["message"]
    valid = {c["type"]: c for c in failed["status"]["conditions"]}["Valid"]
    assert valid["status"] == "False" and valid["reason"] == "InvalidSpec"
    assert await scenario.kube.list("ReplicaSet", scenario.namespace) == []
    # The Event is created right after the status write the watch saw: wait for it.
    for _ in range(100):
        events = await scenario.kube.list("Event", scenario.namespace)
        if any(e["reason"] == "InvalidSpec" and e["type"] == "Warning" for e in events):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("no InvalidSpec Warning Event")


async def test_a_second_invalid_spec_is_reported_once_and_a_fixed_one_rolls_out(
    scenario: Scenario,
) -> None:
    sc = scenario
    await sc.create()
    bad = {"selector": {"matchLabels": {"app": "other"}}}
    rollout = await sc.patch_spec(**bad)
    handle = await sc.start()
    await sc.wait_phase("Failed", "invalid spec")
    # Another invalid generation: reported, then the run waits again (it must not loop).
    rollout = await sc.patch_spec(minReadySeconds=1)
    await handle.signal(
        SIGNAL_UPDATE_SPEC,
        SpecUpdate(generation=rollout["metadata"]["generation"], spec=rollout["spec"]),
    )
    for _ in range(200):  # until the second generation is reported
        if len(await invalid_spec_events(sc)) >= 2:
            break
        await asyncio.sleep(0.05)
    fixed = await sc.patch_spec(selector={"matchLabels": {"app": "app"}})
    await handle.signal(
        SIGNAL_UPDATE_SPEC,
        SpecUpdate(generation=fixed["metadata"]["generation"], spec=fixed["spec"]),
    )
    assert (await handle.result()).result == "completed"
    assert (await sc.rollout())["status"]["observedGeneration"] == fixed["metadata"]["generation"]
    # One report per invalid generation (the old code reported the second one without end).
    assert len(await invalid_spec_events(sc)) == 2


async def invalid_spec_events(sc: Scenario) -> list[dict[str, Any]]:
    return [e for e in await sc.kube.list("Event", sc.namespace) if e["reason"] == "InvalidSpec"]


async def test_a_hostile_label_is_reported_and_nothing_moves(scenario: Scenario) -> None:
    sc = scenario
    await sc.create()
    hostile = "a'b{c}"
    await sc.kube.patch(
        "Rollout",
        sc.namespace,
        sc.name,
        {
            "spec": {
                "selector": {"matchLabels": {"app": hostile}},
                "template": {"metadata": {"labels": {"app": hostile}}},
            }
        },
    )
    await sc.start()
    failed = await sc.wait_phase("Failed", "invalid spec")
    assert "is not a valid label value" in failed["status"]["message"]
    assert await sc.kube.list("ReplicaSet", sc.namespace) == []
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}


async def test_missing_canary_service_pauses_without_scaling(scenario: Scenario) -> None:
    v1 = await stable_v1(scenario)
    await scenario.kube.client.delete(
        f"/api/v1/namespaces/{scenario.namespace}/services/app-canary"
    )
    await scenario.set_image("example/app:v2")
    await scenario.start()
    paused = await scenario.wait_phase("Paused", "does not exist")
    assert "Service" in paused["status"]["message"] and "app-canary" in paused["status"]["message"]
    names = [
        rs["metadata"]["name"] for rs in await scenario.kube.list("ReplicaSet", scenario.namespace)
    ]
    assert names == [replicaset_name("app", v1)]
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 5


async def test_canary_pods_that_never_become_ready_hit_the_progress_deadline(
    scenario: Scenario,
) -> None:
    v1 = await stable_v1(scenario, steps=[{"setWeight": 20, "pause": {}}], abort_delay=0)
    rollout = await scenario.rollout()
    template = rollout["spec"]["template"]
    # No fake node has this label: the canary's pods stay Pending and never become available.
    template["spec"]["nodeSelector"] = {"kulta.test/nowhere": "true"}
    await scenario.kube.patch(
        "Rollout",
        scenario.namespace,
        scenario.name,
        {"spec": {"template": template, "progressDeadlineSeconds": 2}},
    )
    v2 = await scenario.revision()
    await scenario.start()
    failed = await scenario.wait_phase("Failed", "made no progress")
    assert failed["status"]["conditions"][0]["reason"] == "ProgressDeadlineExceeded"
    assert await scenario.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    await scenario.wait_rs_replicas(v2, 0)
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 5


async def test_spec_paused_holds_the_rollout_between_steps(scenario: Scenario) -> None:
    await stable_v1(scenario, steps=[{"setWeight": 20, "pause": {}}, {"setWeight": 60}])
    await scenario.set_image("example/app:v2")
    handle = await scenario.start()
    await scenario.wait_phase("Paused", "waiting for promotion")
    rollout = await scenario.patch_spec(paused=True)
    generation = rollout["metadata"]["generation"]
    # The watcher turns the edit into this signal (tests/unit/test_dispatch.py).
    await handle.signal(SIGNAL_UPDATE_SPEC, SpecUpdate(generation=generation, spec=rollout["spec"]))
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
    held = await scenario.wait_phase("Paused", "paused by user")
    assert held["status"]["currentWeight"] == 20  # the next step did not start
    rollout = await scenario.patch_spec(paused=False)
    await handle.signal(
        SIGNAL_UPDATE_SPEC, SpecUpdate(generation=generation + 1, spec=rollout["spec"])
    )
    done = await scenario.wait_phase("Completed")
    assert done["status"]["observedGeneration"] == generation + 1


async def test_steps_and_replicas_edited_mid_canary_apply_from_the_next_step(
    scenario: Scenario,
) -> None:
    v1 = await stable_v1(
        scenario,
        replicas=4,
        steps=[{"setWeight": 25, "pause": {}}, {"setWeight": 50, "pause": {}}],
    )
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_paused_at(25)
    steps = [{"setWeight": 25, "pause": {}}, {"setWeight": 75, "pause": {}}]
    rollout = await scenario.patch_spec(replicas=8, strategy={"canary": {"steps": steps}})
    generation = rollout["metadata"]["generation"]
    await handle.signal(SIGNAL_UPDATE_SPEC, SpecUpdate(generation=generation, spec=rollout["spec"]))
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
    paused = await scenario.wait_paused_at(75)  # the edited second step, not the planned 50
    assert paused["status"]["observedGeneration"] == generation
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 8  # stable at the new size
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 6  # ceil(8 * 75 / 100)
    decisions = [d["reason"] for d in paused["status"]["decisions"]]
    assert decisions.count("canary weight set to 25%") == 1  # a passed step is not run again


async def test_decreasing_weights_move_traffic_before_the_canary_shrinks(
    scenario: Scenario,
) -> None:
    steps = [{"setWeight": 60, "pause": {}}, {"setWeight": 20, "pause": {}}]
    await stable_v1(scenario, steps=steps)
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_paused_at(60)
    async with WriteRecorder(scenario.kube, scenario.namespace).running() as recorder:
        await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
        await scenario.wait_paused_at(20)
        await scenario.wait_rs_replicas(v2, 1)  # ceil(5 * 20 / 100)
    to_20 = recorder.first(
        "HTTPRoute", "app-route", lambda r: r["spec"]["rules"][1]["backendRefs"][1]["weight"] == 20
    )
    shrunk = recorder.first(
        "ReplicaSet", replicaset_name("app", v2), lambda rs: rs["spec"]["replicas"] < 3
    )
    assert to_20.resource_version < shrunk.resource_version
    assert violations(recorder.history, "app") == []


async def test_without_routing_an_abort_waits_for_stable_before_the_canary_goes(
    scenario: Scenario,
) -> None:
    v1 = await stable_v1(scenario, route=False, replicas=4, steps=[{"setWeight": 50, "pause": {}}])
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_phase("Paused", "waiting for promotion")
    async with WriteRecorder(scenario.kube, scenario.namespace).running() as recorder:
        await handle.signal(SIGNAL_ABORT, AbortRequest(reason="bad canary"))
        await scenario.wait_phase("Failed", "bad canary")
        await scenario.skip(31, handle)  # abortScaleDownDelaySeconds
        await scenario.wait_rs_replicas(v2, 0)
    stable_back = recorder.first(
        "ReplicaSet",
        replicaset_name("app", v1),
        lambda rs: (rs.get("status") or {}).get("availableReplicas") == 4,
    )
    canary_down = recorder.first(
        "ReplicaSet", replicaset_name("app", v2), lambda rs: rs["spec"]["replicas"] < 2
    )
    assert stable_back.resource_version < canary_down.resource_version


async def test_racing_starters_produce_one_run(scenario: Scenario) -> None:
    await scenario.create()
    handles = await asyncio.gather(*(scenario.start() for _ in range(5)))
    assert len({h.id for h in handles}) == 1
    runs = {(await h.describe()).run_id for h in handles}
    assert len(runs) == 1
    assert (await handles[0].result()).result == "completed"


async def test_without_routing_replica_counts_follow_the_weight(scenario: Scenario) -> None:
    v1 = await stable_v1(
        scenario,
        route=False,
        replicas=4,
        steps=[{"setWeight": 25, "pause": {}}, {"setWeight": 75, "pause": {}}],
    )
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    async with WriteRecorder(scenario.kube, scenario.namespace).running() as recorder:
        await scenario.wait_phase("Paused", "waiting for promotion")
        assert (await scenario.replicaset(v2))["spec"]["replicas"] == 1  # ceil(4 * 25 / 100)
        assert (await scenario.replicaset(v1))["spec"]["replicas"] == 3
        assert await scenario.selector("app-stable") == {"app": "app"}
        assert await scenario.selector("app-canary") == {"app": "app", "pod-template-hash": v2}
        status = await handle.query(RolloutWorkflow.status)
        assert status.current_weight == 25 and status.phase == "Paused"
        await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
        await scenario.wait_paused_at(75)
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 3
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 1
    # Capacity never dips: the canary grows (and is available) before stable shrinks.
    canary_up = recorder.first(
        "ReplicaSet",
        replicaset_name("app", v2),
        lambda rs: (rs.get("status") or {}).get("availableReplicas") == 3,
    )
    stable_down = recorder.first(
        "ReplicaSet", replicaset_name("app", v1), lambda rs: rs["spec"]["replicas"] == 1
    )
    assert canary_up.resource_version < stable_down.resource_version
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
    await scenario.wait_phase("Completed")
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 4
