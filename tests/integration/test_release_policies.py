"""A Release's gates and failure policy, and the ways a Release can be wrong about its
Rollouts: each ends in a phase that says why, and changes nothing it should not."""

from __future__ import annotations

from datetime import datetime

import pytest

from activities.naming import ANNOTATION_ABORT, ANNOTATION_RELEASE
from tests.support import builders
from tests.support.releases import (
    MANUAL,
    annotate,
    apps,
    image_of,
    paused_on,
    release_phase,
    rollout_phase,
)
from tests.support.scenario import Scenario

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_soak_holds_the_next_stage_for_its_duration_and_a_template_patch_ships(
    stack: Scenario,
) -> None:
    sc = stack
    await apps(sc)
    stages = [
        builders.stage(
            "backend", {"orders": "example/orders:v2"}, gate={"type": "Soak", "duration": "4s"}
        ),
        {
            "name": "frontend",
            "rollouts": [
                {"name": "web", "template": {"metadata": {"annotations": {"build": "1234"}}}}
            ],
        },
    ]
    await sc.kube.apply(sc.namespace, builders.release("shop", stages))
    soaking = await sc.kube.wait_for(
        "Release",
        sc.namespace,
        "shop",
        lambda r: any(
            s.get("phase") == "Soaking" for s in (r.get("status") or {}).get("stages", [])
        ),
        what="stage backend soaking",
    )
    assert soaking["status"]["stages"][0]["gateEndsAt"]
    web = await sc.kube.get("Rollout", sc.namespace, "web")
    assert "build" not in (web["spec"]["template"].get("metadata") or {}).get("annotations", {})
    done = await release_phase(sc, "Completed")
    backend, frontend = done["status"]["stages"]
    assert _moment(frontend["startedAt"]) >= _moment(backend["gateEndsAt"]), (backend, frontend)
    web = await sc.kube.get("Rollout", sc.namespace, "web")
    assert web["spec"]["template"]["metadata"]["annotations"] == {"build": "1234"}
    assert web["spec"]["template"]["metadata"]["labels"] == {"app": "web"}  # merged, not replaced
    assert web["status"]["stableRevision"] == frontend["rollouts"][0]["revision"]


async def test_failed_stage_gives_back_only_the_failed_stage(stack: Scenario) -> None:
    sc = stack
    await apps(sc, steps={"web": MANUAL})
    await sc.kube.apply(
        sc.namespace,
        builders.release(
            "shop",
            [
                builders.stage("backend", {"orders": "example/orders:v2"}),
                builders.stage("frontend", {"web": "example/web:v2"}),
            ],
            rollback="failed-stage",
        ),
    )
    await paused_on(sc, "web", "example/web:v2")
    await annotate(sc, "Rollout", "web", ANNOTATION_ABORT, "true")
    done = await release_phase(sc, "RolledBack")
    assert [s["phase"] for s in done["status"]["stages"]] == ["Completed", "RolledBack"]
    assert "1 Rollout(s) back on their previous revision" in done["status"]["message"]
    web = await rollout_phase(sc, "web", "Completed")
    assert image_of(web) == "example/app:v1"
    orders = await sc.kube.get("Rollout", sc.namespace, "orders")
    assert image_of(orders) == "example/orders:v2"  # its stage completed: it stays


async def test_a_rollout_that_does_not_exist_fails_the_release_before_anything_changes(
    stack: Scenario,
) -> None:
    sc = stack
    await apps(sc)
    await sc.kube.apply(
        sc.namespace,
        builders.release(
            "shop",
            [builders.stage("backend", {"orders": "example/orders:v2", "ordres": "example/x:v2"})],
        ),
    )
    failed = await release_phase(sc, "Failed")
    assert failed["status"]["reason"] == "ObjectNotFound", failed["status"]
    assert "ordres" in failed["status"]["message"]
    assert "nothing was changed" in failed["status"]["message"]
    orders = await sc.kube.get("Rollout", sc.namespace, "orders")
    assert image_of(orders) == "example/app:v1"
    assert ANNOTATION_RELEASE not in (orders["metadata"].get("annotations") or {})


async def test_an_image_for_a_container_that_is_not_there_refuses_the_release_up_front(
    stack: Scenario,
) -> None:
    sc = stack
    await apps(sc)
    stages = [
        builders.stage("backend", {"orders": "example/orders:v2"}),
        {"name": "frontend", "rollouts": [{"name": "web", "images": {"sidecar": "example/s:v2"}}]},
    ]
    await sc.kube.apply(sc.namespace, builders.release("shop", stages))
    done = await release_phase(sc, "Failed")
    assert done["status"]["reason"] == "InvalidChange"
    assert "no container named sidecar; nothing was changed" in done["status"]["message"]
    for name in ("orders", "web"):  # not even the first stage shipped
        rollout = await sc.kube.get("Rollout", sc.namespace, name)
        assert image_of(rollout) == "example/app:v1"
        assert ANNOTATION_RELEASE not in (rollout["metadata"].get("annotations") or {})


async def test_a_rollout_with_a_workload_ref_is_refused_with_the_reason(stack: Scenario) -> None:
    sc = stack
    await sc.kube.apply(sc.namespace, builders.deployment("web-deploy", "web", "example/web:v1", 2))
    for obj in builders.app(
        "web", replicas=2, workload_ref="web-deploy", steps=[{"setWeight": 100}]
    ):
        await sc.kube.apply(sc.namespace, obj)
    await rollout_phase(sc, "web", "Completed")
    await sc.kube.apply(
        sc.namespace, builders.release("shop", [builders.stage("all", {"web": "example/web:v2"})])
    )
    done = await release_phase(sc, "Failed")
    assert done["status"]["reason"] == "UnsupportedRollout"
    assert "takes its template from Deployment web-deploy" in done["status"]["message"]
    deployment = await sc.kube.get("Deployment", sc.namespace, "web-deploy")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "example/web:v1"
