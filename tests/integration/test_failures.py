"""Unhappy paths on the local stack: what the user sees when the API server refuses kulta, when
an object kulta needs is deleted, and when the canary's pods never come up. Each must end in a
safe state that says why, and the workflow must never fail in Temporal."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.adapters.kube import KubeClient
from activities.errors import Unauthorized
from activities.naming import ANNOTATION_ABORT, ANNOTATION_PROMOTE
from tests.support import builders
from tests.support.kube import (
    KULTA_NAMESPACE,
    Kube,
    bound_token,
    service_account_credentials,
    write_token_kubeconfig,
)
from tests.support.processes import WorkerProcesses, until_ready, worker_environment
from tests.support.scenario import Scenario
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]


def _stable(revision: str) -> Any:
    return lambda r: (r.get("status") or {}).get("stableRevision") == revision


async def _workflow_status(sc: Scenario, rollout: dict[str, Any]) -> WorkflowExecutionStatus:
    handle = sc.client.get_workflow_handle(rollout["status"]["workflowId"])
    status = (await handle.describe()).status
    assert status is not None
    return status


async def test_a_template_the_api_server_refuses_fails_the_rollout_not_the_workflow(
    stack: Scenario,
) -> None:
    sc = stack
    await sc.create(steps=[{"setWeight": 50, "pause": {"duration": "1s"}}], replicas=2)
    await sc.wait_phase("Completed")
    refused = builders.pod_template(sc.name, "example/app:v2")
    refused["spec"]["containers"][0]["name"] = "Not_A_DNS_Label"  # the CRD keeps it as is
    await sc.patch_spec(template=refused)

    failed = await sc.wait_phase("Failed", timeout=30)
    message = failed["status"]["message"]
    assert "Not_A_DNS_Label" in message and "Invalid value" in message, message  # its words
    conditions = {c["type"]: c for c in failed["status"]["conditions"]}
    assert conditions["Progressing"]["reason"] == "RejectedByAPIServer"
    assert conditions["Available"]["status"] == "True"  # the stable revision still serves
    assert await _workflow_status(sc, failed) == WorkflowExecutionStatus.RUNNING
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}

    await sc.set_image("example/app:v3")  # corrected: a new revision rolls out
    v3 = await sc.revision()
    await sc.wait_until(_stable(v3), "the corrected revision stable", timeout=90)


async def test_a_service_deleted_mid_canary_holds_until_it_is_back(stack: Scenario) -> None:
    sc = stack
    await sc.create(steps=[{"setWeight": 50, "pause": {}}], replicas=2, scale_down_delay=1)
    await sc.wait_phase("Completed")
    await sc.set_image("example/app:v2")
    v2 = await sc.revision()
    await sc.wait_paused_at(50)
    await sc.kube.delete("Service", sc.namespace, "app-stable")
    await sc.annotate(ANNOTATION_PROMOTE)  # promotion pins the stable Service: it is gone

    held = await sc.wait_phase("Paused", "app-stable does not exist", timeout=30)
    assert "nothing was scaled down" in held["status"]["message"]
    assert await _workflow_status(sc, held) == WorkflowExecutionStatus.RUNNING

    await sc.kube.apply(sc.namespace, builders.service("app-stable", sc.name))
    done = await sc.wait_until(_stable(v2), "v2 stable once the Service is back", timeout=90)
    assert done["status"]["phase"] == "Completed"
    assert (await sc.selector("app-stable")).get("pod-template-hash") == v2


async def test_an_abort_while_the_canary_pods_never_come_up_moves_traffic_at_once(
    stack: Scenario, kube: Kube
) -> None:
    sc = stack
    steps = [{"setWeight": 25, "pause": {"duration": "1s"}}, {"setWeight": 75}]
    await sc.create(steps=steps, replicas=4, abort_delay=1)
    await sc.wait_phase("Completed")
    # Room for the stable revision's 4 pods and one more: the canary's second pod never starts.
    await kube.apply(
        sc.namespace,
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "five-pods"},
            "spec": {"hard": {"pods": "5"}},
        },
    )
    await sc.set_image("example/app:v2")
    await sc.wait_until(
        lambda r: (r.get("status") or {}).get("currentWeight") == 25, "canary at 25%"
    )
    await sc.wait_rs_replicas(await sc.revision(), 3)  # step 2 waits for pods that never come
    assert (await sc.weights())["app-canary"] == 25

    aborted_at = time.monotonic()
    await sc.annotate(ANNOTATION_ABORT)
    await kube.wait_for(
        "HTTPRoute",
        sc.namespace,
        "app-route",
        lambda route: route["spec"]["rules"][1]["backendRefs"][1].get("weight") == 0,
        timeout=10,
        what="canary weight 0",
    )
    took = time.monotonic() - aborted_at
    assert took < 2, f"traffic left the canary {took:.1f}s after the abort"
    failed = await sc.wait_phase("Failed", timeout=30)
    status = failed["status"]
    assert status.get("pauseEndTime") is None and status["currentWeight"] == 0
    # What `kubectl get kro` shows: the stable revision's pods, which serve everything again.
    assert status["readyReplicas"] == status["availableReplicas"] == 4
    reasons = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert reasons == {
        "Progressing": ("False", "Aborted"),
        "Paused": ("False", "NotPaused"),
        "Available": ("True", "StableRevisionServing"),
        "Valid": ("True", "SpecValid"),
    }


async def _anchor(kube: Kube, name: str) -> dict[str, Any]:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}
    return await kube.apply(KULTA_NAMESPACE, secret)


async def test_a_rotated_token_file_is_read_again_and_rollouts_go_on(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """The worker reads its token from a file (as in a Pod); a new bound token is written there
    and the old one invalidated: the next rollout still completes."""
    suffix = uuid.uuid4().hex[:8]
    old_anchor = await _anchor(kube, f"old-{suffix}")
    new_anchor = await _anchor(kube, f"new-{suffix}")
    token_file = tmp_path / "token"
    token_file.write_text(await bound_token(kube.client, "kulta-worker", old_anchor))
    task_queue = f"tq-{suffix}"
    env = await worker_environment(
        kube, dev_env.client.service_client.config.target_host, task_queue, tmp_path
    )
    credentials = await service_account_credentials(kube.client, "kulta-worker")
    env["KUBECONFIG"] = str(
        write_token_kubeconfig(credentials, tmp_path / "file.kubeconfig", token_file)
    )
    worker, port = WorkerProcesses(env, tmp_path).start()
    runner = Runner(dev_env.client, kube.as_watcher, task_queue)
    watcher = asyncio.create_task(watch_forever(runner, RolloutSource(kube.as_watcher, namespace)))
    sc = Scenario(kube, dev_env.client, namespace, task_queue)
    try:
        await until_ready(port)
        await sc.create(steps=[{"setWeight": 50, "pause": {"duration": "1s"}}], replicas=2)
        await sc.wait_phase("Completed")

        old_token = token_file.read_text()
        rotated = tmp_path / "token.new"
        rotated.write_text(await bound_token(kube.client, "kulta-worker", new_anchor))
        rotated.replace(token_file)  # atomically, as the kubelet does
        await kube.delete("Secret", KULTA_NAMESPACE, old_anchor["metadata"]["name"])
        # The API server caches a token's validity for a few seconds: until it refuses it.
        refused = KubeClient(dataclasses.replace(credentials, token=old_token))
        try:
            for _ in range(60):
                try:
                    await refused.get("/apis")
                except Unauthorized:
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError("the old token was never invalidated: nothing is tested")
        finally:
            await refused.aclose()

        await sc.set_image("example/app:v2")
        v2 = await sc.revision()
        await sc.wait_until(_stable(v2), "v2 stable with the rotated token", timeout=90)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await sc.terminate_running()
        assert worker.stop() == 0, worker.output()
        await kube.delete("Secret", KULTA_NAMESPACE, new_anchor["metadata"]["name"])


async def test_a_first_revision_held_for_a_missing_service_runs_no_pods_so_none_skips_a_canary(
    stack: Scenario,
) -> None:
    """The first revision waits for its canary Service before any pod; a newer template is
    the first revision in its place; once one is stable, the next goes through its steps."""
    sc, ns = stack, stack.namespace
    await sc.kube.apply(ns, builders.service("app-stable", sc.name))
    await sc.kube.apply(ns, builders.httproute("app-route", "app-stable", "app-canary"))
    await sc.kube.apply(ns, builders.rollout(sc.name, steps=[{"setWeight": 40, "pause": {}}]))
    held = await sc.wait_phase("Paused", "app-canary", timeout=30)
    assert held["status"]["phase"] == "Paused"
    v1 = await sc.revision()
    assert await sc.kube.find("ReplicaSet", ns, f"{sc.name}-{v1}") is None  # no pods at all

    await sc.set_image("example/app:v2")
    v2 = await sc.revision()
    await sc.kube.apply(ns, builders.service("app-canary", sc.name))
    await sc.wait_until(_stable(v2), "v2 stable as the first revision", timeout=60)
    assert await sc.kube.find("ReplicaSet", ns, f"{sc.name}-{v1}") is None

    await sc.set_image("example/app:v3")  # now there is a stable revision: the canary runs
    paused = await sc.wait_paused_at(40)
    assert paused["status"]["stableRevision"] == v2


async def test_a_route_in_another_namespace_is_used_only_with_its_grant(
    stack: Scenario, other_namespace: str
) -> None:
    """A Rollout of namespace A naming team B's HTTPRoute is held, B's route untouched, until B
    grants it with a ReferenceGrant; then it proceeds."""
    sc, theirs = stack, other_namespace
    await sc.kube.apply(sc.namespace, builders.service("app-stable", sc.name))
    await sc.kube.apply(sc.namespace, builders.service("app-canary", sc.name))
    route = await sc.kube.apply(theirs, builders.httproute("app-route", "app-stable", "app-canary"))
    rollout = builders.rollout(sc.name, steps=[{"setWeight": 50, "pause": {}}])
    routing = rollout["spec"]["strategy"]["canary"]["trafficRouting"]
    routing["gatewayAPI"]["namespace"] = theirs
    await sc.kube.apply(sc.namespace, rollout)

    held = await sc.wait_phase("Paused", "no ReferenceGrant", timeout=30)
    assert theirs in held["status"]["message"]
    untouched = await sc.kube.get("HTTPRoute", theirs, "app-route")
    assert untouched["metadata"]["resourceVersion"] == route["metadata"]["resourceVersion"]

    grant = {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "kulta-rollouts"},
        "spec": {
            "from": [{"group": "kulta.io", "kind": "Rollout", "namespace": sc.namespace}],
            "to": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "app-route"}
            ],
        },
    }
    await sc.kube.apply(theirs, grant)
    await sc.wait_phase("Completed", timeout=90)  # the recheck after 10 s finds the grant
