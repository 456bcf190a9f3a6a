"""Someone else edits the HTTPRoute mid-canary: kulta notices at its next write, pauses with the
reason and leaves the route as they made it (no matter how long), and takes the weights back only
when a person resumes. A deleted route pauses the rollout until it is back."""

from __future__ import annotations

import pytest

from tests.workflow.scenario import Scenario
from tests.workflow.test_canary_workflow import stable_v1
from workflows.messages import SIGNAL_RESUME

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
