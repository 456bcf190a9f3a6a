"""The simple strategy: a rolling update that keeps its surge and availability bounds."""

from __future__ import annotations

import pytest

from activities.naming import replicaset_name
from tests.support.histories import replay_and_record
from tests.support.invariants import WriteRecorder
from tests.support.scenario import Scenario
from workflows.messages import SIGNAL_ABORT, SIGNAL_UPDATE_SPEC, AbortRequest, SpecUpdate

pytestmark = pytest.mark.cluster


async def first_revision(sc: Scenario, **simple: object) -> str:
    await sc.create(replicas=4, strategy={"simple": simple})
    assert (await (await sc.start()).result()).result == "completed"
    return await sc.revision()


async def test_rolling_update_keeps_surge_and_availability_bounds(scenario: Scenario) -> None:
    v1 = await first_revision(scenario, maxSurge=1, maxUnavailable=0)
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    async with WriteRecorder(scenario.kube, scenario.namespace).running() as recorder:
        handle = await scenario.start()
        assert (await handle.result()).result == "completed"
    old, new = replicaset_name("app", v1), replicaset_name("app", v2)
    state = {old: (4, 4), new: (0, 0)}  # name -> (spec.replicas, available)
    for write in recorder.writes:
        if write.kind != "ReplicaSet":
            continue
        rs = write.object
        state[write.name] = (
            rs["spec"]["replicas"],
            (rs.get("status") or {}).get("availableReplicas", 0),
        )
        assert sum(spec for spec, _ in state.values()) <= 4 + 1, state  # maxSurge 1
        assert sum(min(spec, avail) for spec, avail in state.values()) >= 4, (
            state
        )  # maxUnavailable 0
    status = (await scenario.rollout())["status"]
    assert status["phase"] == "Completed" and status["stableRevision"] == v2
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 0
    assert (await scenario.replicaset(v2))["status"]["availableReplicas"] == 4
    assert [d["action"] for d in status["decisions"]].count("rolling-step") == status["stepCount"]
    await replay_and_record(scenario.client, handle, "simple-rolling-update")


async def test_abort_restores_the_previous_revision_first(scenario: Scenario) -> None:
    v1 = await first_revision(scenario)
    rollout = await scenario.patch_spec(paused=True)
    await scenario.set_image("example/app:v2")
    rollout = await scenario.rollout()
    v2 = await scenario.revision()
    handle = await scenario.start()
    await handle.signal(
        SIGNAL_UPDATE_SPEC,
        SpecUpdate(generation=rollout["metadata"]["generation"], spec=rollout["spec"]),
    )
    await scenario.wait_phase("Paused", "paused by user")
    await handle.signal(SIGNAL_ABORT, AbortRequest(reason="stop the update"))
    failed = await scenario.wait_phase("Failed", "stop the update")
    assert failed["status"]["conditions"][0]["reason"] == "Aborted"
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 4
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 0
