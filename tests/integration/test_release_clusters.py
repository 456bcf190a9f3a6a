"""A Release across two local control planes sharing one Temporal: each cluster runs its own
worker and watcher on its own task queue; the Release, held in the first cluster, reaches the
second one's Rollouts through activities on that cluster's queue. Stage 2 (second cluster)
changes nothing before stage 1 is Completed in the first, and killing the second cluster's
worker mid-stage delays the Release, never breaks it: while no worker takes that cluster's
tasks, the Release says so (Degraded), and it completes once a worker is back."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.adapters.kube import KubeClient, load_credentials
from activities.naming import revision_of
from tests.support import builders
from tests.support.clusters import LocalCluster
from tests.support.kube import Kube, path_of
from tests.support.processes import KultaProcess, WorkerProcesses, until_logged
from tests.support.scenario import Scenario
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

TIMED = [{"setWeight": 50, "pause": {"duration": "5s"}}, {"setWeight": 100}]


@dataclass
class East:
    kube: Kube
    name: str
    workers: WorkerProcesses
    worker: KultaProcess | None = None

    async def start_worker(self) -> None:
        self.worker, _ = self.workers.start()
        await until_logged([self.worker], "worker polling task queue", timeout=60)


@pytest.fixture
async def east(dev_env: WorkflowEnvironment, namespace: str, tmp_path: Path) -> AsyncIterator[East]:
    """The second control plane, with a `kulta-worker` process (killable) and a watcher."""
    with LocalCluster(tmp_path / "east-cluster") as cluster:
        client = KubeClient(load_credentials(str(cluster.admin_kubeconfig)))
        kube = Kube.admin_only(client, str(cluster.admin_kubeconfig))
        await client.create(
            path_of("Namespace", None),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        )
        name = f"east-{uuid.uuid4().hex[:6]}"
        task_queue = f"tq-{name}"
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "KUBECONFIG": str(cluster.admin_kubeconfig),
            "KULTA_TASK_QUEUE": task_queue,
            "KULTA_CLUSTER_NAME": name,
            "KULTA_OCCURRENCE_DIR": str(tmp_path / "east-occurrences"),
        }
        state = East(kube, name, WorkerProcesses(env, tmp_path))
        await state.start_worker()
        runner = Runner(dev_env.client, client, task_queue)
        watcher = asyncio.create_task(watch_forever(runner, RolloutSource(client, namespace)))
        try:
            yield state
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            if state.worker is not None:
                state.worker.stop()
            await Scenario(kube, dev_env.client, namespace, task_queue).terminate_running()
            await client.aclose()


def _image(rollout: dict[str, Any]) -> str:
    return str(rollout["spec"]["template"]["spec"]["containers"][0]["image"])


def _phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


async def test_stage_two_in_the_second_cluster_ships_after_stage_one_and_survives_its_worker_dying(
    stack: Scenario, east: East
) -> None:
    sc, ns = stack, stack.namespace
    for obj in builders.app("orders", replicas=2, steps=TIMED, scale_down_delay=1):
        await sc.kube.apply(ns, obj)
    for obj in builders.app("web", replicas=2, steps=TIMED, scale_down_delay=1):
        await east.kube.apply(ns, obj)
    await sc.kube.wait_for("Rollout", ns, "orders", lambda r: _phase(r) == "Completed")
    await east.kube.wait_for("Rollout", ns, "web", lambda r: _phase(r) == "Completed")

    await sc.kube.apply(
        ns,
        builders.release(
            "shop",
            [
                builders.stage("here", {"orders": "example/orders:v2"}),
                builders.stage("east", {"web": "example/web:v2"}, cluster=east.name),
            ],
        ),
    )
    # Until orders is stable on v2 in the first cluster, web in the second is untouched.
    checks = 0
    while True:
        orders = await sc.kube.get("Rollout", ns, "orders")
        web = await east.kube.get("Rollout", ns, "web")
        stable = (orders.get("status") or {}).get("stableRevision")
        if _image(orders) == "example/orders:v2" and stable == revision_of(
            orders["spec"]["template"]
        ):
            break
        assert _image(web) == "example/app:v1", "web changed before stage 1 completed"
        checks += 1
        await asyncio.sleep(0.2)
    assert checks > 10, "stage 1 was over before it could be watched"

    await east.kube.wait_for(
        "Rollout",
        ns,
        "web",
        lambda r: _image(r) == "example/web:v2" and _phase(r) == "Progressing",
        timeout=60,
        what="web rolling out in the second cluster",
    )
    assert east.worker is not None
    east.worker.kill()  # mid-stage: the Release's follow of web and web's own run are lost
    # Nobody takes the second cluster's tasks now: the Release says so, and waits.
    degraded = await sc.kube.wait_for(
        "Release",
        ns,
        "shop",
        lambda r: any(
            c["type"] == "Degraded" and c["status"] == "True"
            for c in (r.get("status") or {}).get("conditions") or []
        ),
        timeout=150,
        what="the Release degraded while the second cluster's worker is down",
    )
    [condition] = degraded["status"]["conditions"]
    assert f"web in cluster {east.name}" in condition["message"], condition
    assert degraded["status"]["phase"] == "Progressing"
    await east.start_worker()
    release = await sc.kube.wait_for(
        "Release",
        ns,
        "shop",
        lambda r: _phase(r) in ("Completed", "Failed", "RolledBack"),
        timeout=180,
        what="the Release ended",
    )
    assert release["status"]["phase"] == "Completed", release["status"]
    web = await east.kube.get("Rollout", ns, "web")
    assert _phase(web) == "Completed" and _image(web) == "example/web:v2"
    stage = release["status"]["stages"][1]
    assert stage["cluster"] == east.name and stage["rollouts"][0]["state"] == "Completed"
    [condition] = release["status"]["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "Recovered")
