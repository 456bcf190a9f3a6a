"""A Rollout that takes its pod template from an existing Deployment (`workloadRef`): the
migration path. The watcher reads the Deployment's template; the Deployment keeps serving until
the Rollout's first revision is stable, then goes to zero; a change of its template rolls out
as a canary; a Rollout naming a Deployment that is not there says so and starts once it is."""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.adapters.kube import KubeClient
from tests.support import builders
from tests.support.kube import Kube, service_account_credentials
from tests.support.kube_proxy import Fault, FaultProxy
from tests.support.scenario import Scenario, watched

pytestmark = pytest.mark.cluster

STEPS = [{"setWeight": 50}, {"setWeight": 100}]


async def _deployment_replicas(kube: Kube, namespace: str, name: str) -> int:
    return int((await kube.get("Deployment", namespace, name))["spec"].get("replicas", 1))


async def _image_of(sc: Scenario, revision: str) -> str:
    rs = await sc.replicaset(revision)
    return str(rs["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_a_deployment_is_taken_over_and_its_template_changes_roll_out(
    stack: Scenario, kube: Kube, namespace: str
) -> None:
    sc = stack
    await kube.apply(namespace, builders.deployment("web", sc.name, "example/app:v1", 3))
    await sc.create(workload_ref="web", replicas=3, steps=STEPS, scale_down_delay=1)

    first = await sc.wait_phase("Completed", timeout=90)
    v1 = first["status"]["stableRevision"]
    assert await _image_of(sc, v1) == "example/app:v1"
    assert await _deployment_replicas(kube, namespace, "web") == 0
    assert any(d["action"] == "workload-scaled-down" for d in first["status"]["decisions"])

    # The Deployment's template changes (as a GitOps sync of the old manifest would do it).
    await kube.patch(
        "Deployment",
        namespace,
        "web",
        {"spec": {"template": builders.pod_template(sc.name, "example/app:v2")}},
    )
    done = await sc.wait_until(
        lambda r: (
            (r.get("status") or {}).get("phase") == "Completed"
            and r["status"].get("stableRevision") not in (None, v1)
        ),
        "the Deployment's new template rolled out",
        timeout=120,
    )
    v2 = done["status"]["stableRevision"]
    assert await _image_of(sc, v2) == "example/app:v2"
    assert done["status"]["stepCount"] == len(STEPS)  # through the canary's steps
    assert await _deployment_replicas(kube, namespace, "web") == 0


async def test_a_missing_deployment_is_reported_and_rolls_out_once_created(
    stack: Scenario, kube: Kube, namespace: str
) -> None:
    sc = stack
    await sc.create(workload_ref="later", replicas=2, steps=STEPS)
    failed = await sc.wait_phase("Failed", "Deployment later not found", timeout=60)
    assert failed["status"]["phase"] == "Failed"

    await kube.apply(namespace, builders.deployment("later", sc.name, "example/app:v1", 2))
    done = await sc.wait_phase("Completed", timeout=90)
    assert await _image_of(sc, done["status"]["stableRevision"]) == "example/app:v1"
    assert await _deployment_replicas(kube, namespace, "later") == 0


async def test_a_refused_scale_down_completes_the_rollout_and_says_so(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str
) -> None:
    """The worker may never scale the Deployment (403 on every try): the revision is still
    stable, and the completion message and a decision say the Deployment kept its pods."""
    async with FaultProxy(kube.client.credentials) as proxy:
        proxy.faults.append(
            Fault("status", "PATCH", "/deployments/web/scale", times=10**9, code=403)
        )
        token = (await service_account_credentials(kube.client, "kulta-worker")).token
        faulty = dataclasses.replace(kube, as_worker=KubeClient(proxy.credentials(token)))
        async with watched(dev_env, faulty, namespace) as sc:
            await kube.apply(namespace, builders.deployment("web", sc.name, "example/app:v1", 2))
            await sc.create(workload_ref="web", replicas=2, steps=STEPS)
            done = await sc.wait_phase(
                "Completed", "Deployment web could not be scaled down", timeout=90
            )
        await faulty.as_worker.aclose()
    assert any(d["action"] == "workload-kept" for d in done["status"]["decisions"])
    assert await _deployment_replicas(kube, namespace, "web") == 2
    assert proxy.faults[0].hits >= 1
