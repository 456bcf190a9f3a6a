"""Someone else edits the HTTPRoute mid-canary: kulta notices at its next write, pauses with the
reason and leaves the route as they made it (no matter how long), and takes the weights back only
when a person resumes. A deleted route pauses the rollout until it is back."""

from __future__ import annotations

import pytest

from activities.naming import WORKFLOW_NAME
from tests.support.scenario import Scenario
from tests.workflow.test_canary_workflow import stable_v1
from watcher.dispatch import StartWorkflow, decide
from workflows.messages import SIGNAL_RESUME, SIGNAL_UPDATE_SPEC, SpecUpdate

pytestmark = pytest.mark.cluster


async def _set_weights(sc: Scenario, stable: int, canary: int) -> None:
    route = await sc.route()
    for ref in route["spec"]["rules"][1]["backendRefs"]:
        if ref["name"] == "app-stable":
            ref["weight"] = stable
        elif ref["name"] == "app-canary":
            ref["weight"] = canary
    await sc.kube.client.replace(
        f"/apis/gateway.networking.k8s.io/v1/namespaces/{sc.namespace}/httproutes/app-route",
        route,
    )


async def test_an_edited_route_pauses_the_rollout_and_is_not_fought(scenario: Scenario) -> None:
    sc = scenario
    await stable_v1(
        sc, steps=[{"setWeight": 20, "pause": {"duration": "5m"}}, {"setWeight": 50, "pause": {}}]
    )
    await sc.set_image("example/app:v2")
    handle = await sc.start()
    await sc.wait_phase("Progressing", "pausing for 300s")
    await _set_weights(sc, 60, 40)  # a person moves traffic by hand

    await sc.skip(300, handle)
    held = await sc.wait_phase("Paused", "rollout paused until resumed")
    assert "HTTPRouteDrifted" in {c["reason"] for c in held["status"]["conditions"]}
    await sc.skip(
        3600
    )  # an hour later (no timer: it waits for a person): still theirs, still paused
    assert await sc.weights() == {"app-stable": 60, "app-canary": 40, "mirror-sink": 0}
    assert (await sc.rollout())["status"]["phase"] == "Paused"

    await handle.signal(SIGNAL_RESUME)
    await sc.wait_paused_at(50)
    assert await sc.weights() == {"app-stable": 50, "app-canary": 50, "mirror-sink": 0}
    reasons = [d["reason"] for d in (await sc.rollout())["status"]["decisions"]]
    assert "resumed: kulta owns the route's weights again" in reasons


async def test_a_route_deleted_mid_canary_pauses_then_the_rollout_carries_on(
    scenario: Scenario,
) -> None:
    sc = scenario
    await stable_v1(
        sc, steps=[{"setWeight": 20, "pause": {"duration": "1m"}}, {"setWeight": 50, "pause": {}}]
    )
    await sc.set_image("example/app:v2")
    handle = await sc.start()
    await sc.wait_phase("Progressing", "pausing for 60s")
    route = await sc.route()
    await sc.kube.client.delete(
        f"/apis/gateway.networking.k8s.io/v1/namespaces/{sc.namespace}/httproutes/app-route"
    )
    await sc.skip(60, handle)
    held = await sc.wait_phase("Paused", "nothing was scaled down")
    assert "app-route" in held["status"]["message"]
    v1 = held["status"]["stableRevision"]
    assert (await sc.replicaset(v1))["spec"]["replicas"] == 5  # stable keeps full capacity
    # The route comes back (as the user had it): the next recheck finds it and goes on.
    route["metadata"] = {"name": "app-route"}
    await sc.kube.apply(sc.namespace, route)
    await sc.skip(300, handle)
    await sc.wait_paused_at(50)
    assert await sc.weights() == {"app-stable": 50, "app-canary": 50, "mirror-sink": 0}


async def test_a_spec_update_in_the_first_activation_is_applied(scenario: Scenario) -> None:
    """The watcher starts a run and at once signals a newer spec (a second edit right after the
    first): the signal can be in the run's first activation, where signal handlers run before
    `run` has its input. It must neither fail the workflow task nor be lost."""
    sc = scenario
    await stable_v1(sc, steps=[{"setWeight": 20, "pause": {}}, {"setWeight": 100}])
    await sc.set_image("example/app:v2")
    rollout = await sc.rollout()
    [start] = [a for a in decide(rollout) if isinstance(a, StartWorkflow)]
    edited = {**rollout["spec"]}
    edited["strategy"] = {
        "canary": {**edited["strategy"]["canary"], "steps": [{"setWeight": 30, "pause": {}}]}
    }
    update = SpecUpdate(generation=start.start.generation + 1, spec=edited)
    await sc.client.start_workflow(
        WORKFLOW_NAME,
        start.start,
        id=start.workflow_id,
        task_queue=sc.task_queue,
        start_signal=SIGNAL_UPDATE_SPEC,
        start_signal_args=[update],
    )
    sc.started.add(start.workflow_id)
    paused = await sc.wait_paused_at(30)  # the edited steps, not the 20% of the first spec
    assert paused["status"]["observedGeneration"] == update.generation
