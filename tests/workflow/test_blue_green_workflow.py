"""Blue-green on the time-skipping server with real activities against the local API server.

The scenario's Services double as active (app-stable) and preview (app-canary)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import builders
from tests.support.histories import replay_and_record
from tests.support.scenario import Scenario
from workflows.messages import SIGNAL_ABORT, SIGNAL_PROMOTE, AbortRequest, PromoteRequest

pytestmark = pytest.mark.cluster


def blue_green(**settings: Any) -> dict[str, Any]:
    return builders.blue_green(
        trafficRouting={"gatewayAPI": {"httpRoute": "app-route"}}, **settings
    )


async def stable_v1(sc: Scenario, **settings: Any) -> str:
    await sc.create(replicas=4, strategy=blue_green(**settings))
    assert (await (await sc.start()).result()).result == "completed"
    v1 = await sc.revision()
    assert await sc.selector("app-stable") == {"app": "app", "pod-template-hash": v1}
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    return v1


async def test_manual_promotion_switches_active_then_scales_old_down(scenario: Scenario) -> None:
    v1 = await stable_v1(scenario, autoPromotionEnabled=False, previewReplicaCount=2)
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    preview = await scenario.wait_phase("Preview", "waiting for promotion")
    assert preview["status"]["canaryRevision"] == v2
    assert (await scenario.replicaset(v2))["status"]["availableReplicas"] == 2
    assert await scenario.selector("app-canary") == {"app": "app", "pod-template-hash": v2}
    assert await scenario.selector("app-stable") == {"app": "app", "pod-template-hash": v1}
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 4

    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
    cut = await scenario.wait_phase("Progressing", "stays up for 30s")
    assert cut["status"]["currentWeight"] == 100
    assert await scenario.selector("app-stable") == {"app": "app", "pod-template-hash": v2}
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 4
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 4  # the abort window
    assert await scenario.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}

    await scenario.skip(30, handle)
    done = await scenario.wait_phase("Completed")
    assert done["status"]["stableRevision"] == v2 and "canaryRevision" not in done["status"]
    await scenario.wait_rs_replicas(v1, 0)
    await replay_and_record(scenario.client, handle, "blue-green-manual-promotion")


async def test_abort_in_preview_scales_preview_down_and_leaves_active(scenario: Scenario) -> None:
    v1 = await stable_v1(scenario, autoPromotionEnabled=False)
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_phase("Preview")
    await handle.signal(SIGNAL_ABORT, AbortRequest(reason="preview looks wrong"))
    failed = await scenario.wait_phase("Failed", "preview looks wrong")
    assert failed["status"]["currentWeight"] == 0
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 0
    assert await scenario.selector("app-stable") == {"app": "app", "pod-template-hash": v1}
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 4


async def test_abort_after_cutover_switches_back_instantly(scenario: Scenario) -> None:
    v1 = await stable_v1(scenario, autoPromotionEnabled=True, scaleDownDelaySeconds=600)
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_phase("Progressing", "stays up for 600s")  # promoted automatically
    assert await scenario.selector("app-stable") == {"app": "app", "pod-template-hash": v2}
    await handle.signal(SIGNAL_ABORT, AbortRequest(reason="errors after cutover"))
    await scenario.wait_phase("Failed", "errors after cutover")
    assert await scenario.selector("app-stable") == {"app": "app", "pod-template-hash": v1}
    assert (await scenario.replicaset(v2))["spec"]["replicas"] == 0
    assert (await scenario.replicaset(v1))["spec"]["replicas"] == 4
    decisions = [d["action"] for d in (await scenario.rollout())["status"]["decisions"]]
    # No Gateway controller runs in this tier: the route's first write says so, once.
    assert decisions.count("traffic-unverified") == 1
    decisions.remove("traffic-unverified")
    assert decisions[-3:] == ["promote", "cutover", "rollback"]
    await replay_and_record(scenario.client, handle, "blue-green-abort-in-window")


async def test_auto_promotion_waits_its_delay(scenario: Scenario) -> None:
    await stable_v1(scenario, autoPromotionEnabled=True, autoPromotionSeconds=120)
    await scenario.set_image("example/app:v2")
    v2 = await scenario.revision()
    handle = await scenario.start()
    await scenario.wait_phase("Preview", "promoting automatically in 120s")
    assert (await scenario.selector("app-stable"))["pod-template-hash"] != v2
    await scenario.skip(120, handle)
    await scenario.wait_phase("Progressing", "stays up for 30s")
    assert await scenario.selector("app-stable") == {"app": "app", "pod-template-hash": v2}
