"""The worker and watcher reach the API server through a fault-injecting proxy: conflicts, 500s,
a hang, dropped watches and 410 Gone on a watch resume, each injected during a real canary. The
rollout completes, every fault was met, and no write broke an invariant."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.adapters.kube import KubeClient
from activities.naming import ANNOTATION_PROMOTE
from tests.support.invariants import RECORDED_KINDS, WriteRecorder, violations
from tests.support.kube import Kube, service_account_credentials
from tests.support.kube_proxy import Fault, FaultProxy
from tests.support.scenario import watched

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

STEPS = [
    {"setWeight": 25, "pause": {"duration": "1s"}},
    {"setWeight": 50, "pause": {"duration": "1s"}},
    {"setWeight": 100},
]


@pytest.fixture
async def proxy(kube: Kube) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(kube.client.credentials) as running:
        yield running


async def _client_through(proxy: FaultProxy, kube: Kube, account: str) -> KubeClient:
    token = (await service_account_credentials(kube.client, account)).token
    # A short client timeout, so an injected hang costs seconds, not the default 30.
    return KubeClient(proxy.credentials(token), timeout=3.0)


async def test_a_canary_completes_through_api_faults(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str, proxy: FaultProxy
) -> None:
    as_worker = await _client_through(proxy, kube, "kulta-worker")
    as_watcher = await _client_through(proxy, kube, "kulta-watcher")
    faulty = dataclasses.replace(kube, as_worker=as_worker, as_watcher=as_watcher)
    recorder = WriteRecorder(kube, namespace, kinds=RECORDED_KINDS)  # direct: sees the truth
    routes, replicasets = "/httproutes/", "/replicasets"
    # From the start: the watcher's first watch meets 410 Gone, its next one is cut; the first
    # revision's first wait for its pods (they cannot be ready yet) is cut as well.
    proxy.faults += [
        Fault("gone", "WATCH", "/rollouts", times=1),
        Fault("drop", "WATCH", "/rollouts", times=1),
        Fault("drop", "WATCH", replicasets, times=1),
        Fault("status", "PUT", routes, times=2, code=500),
        Fault("status", "PUT", routes, times=1, code=409),
        Fault("status", "PATCH", "/status", times=1, code=500),
        Fault("status", "PATCH", replicasets, times=1, code=503),
        Fault("hang", "GET", routes, times=1, seconds=5),
    ]
    try:
        async with watched(dev_env, faulty, namespace) as sc, recorder.running():
            await sc.create(steps=STEPS, replicas=4, scale_down_delay=1)
            armed = int((await sc.wait_phase("Completed"))["metadata"]["resourceVersion"])
            await sc.set_image("example/app:v2")
            v2 = await sc.revision()
            await sc.wait_until(
                lambda r: (r.get("status") or {}).get("stableRevision") == v2,
                "v2 stable",
                timeout=180,
            )
            assert await sc.weights() == {
                "app-stable": 100,
                "app-canary": 0,
                "mirror-sink": 0,
            }
    finally:
        await as_worker.aclose()
        await as_watcher.aclose()
    missed = [f for f in proxy.faults if f.hits < f.times]
    assert missed == [], f"faults never met, so untested: {missed}"
    assert violations(recorder.history, "app", from_version=armed) == []
    print("injected:", *proxy.injected, sep="\n  ")


def _degraded(rollout: dict[str, Any]) -> bool:
    conditions = (rollout.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Degraded" and c["status"] == "True" for c in conditions)


async def test_a_write_that_keeps_failing_is_told_then_rolled_back_at_the_deadline(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str, proxy: FaultProxy
) -> None:
    """500 on every ReplicaSet patch: Degraded with the API server's message within 2 minutes,
    then the progress deadline rolls the canary back; the invariants hold throughout."""
    as_worker = await _client_through(proxy, kube, "kulta-worker")
    faulty = dataclasses.replace(kube, as_worker=as_worker)
    recorder = WriteRecorder(kube, namespace, kinds=RECORDED_KINDS)
    try:
        async with watched(dev_env, faulty, namespace) as sc, recorder.running():
            await sc.create(steps=[{"setWeight": 50, "pause": {}}], replicas=2, abort_delay=1)
            await sc.patch_spec(progressDeadlineSeconds=40)
            armed = int((await sc.wait_phase("Completed"))["metadata"]["resourceVersion"])
            proxy.faults.append(Fault("status", "PATCH", "/replicasets/", times=100_000))
            await sc.set_image("example/app:v2")

            degraded = await sc.wait_until(_degraded, "Degraded=True", timeout=120)
            condition = next(c for c in degraded["status"]["conditions"] if c["type"] == "Degraded")
            assert condition["reason"] == "ActionRetrying"
            assert "500" in condition["message"], condition["message"]
            # The Event is created right after the status write the watch saw.
            for _ in range(100):
                events = await kube.list("Event", namespace)
                warnings = [e["reason"] for e in events if e["type"] == "Warning"]
                if "ActionRetrying" in warnings:
                    break
                await asyncio.sleep(0.1)
            assert "ActionRetrying" in warnings

            failed = await sc.wait_phase("Failed", timeout=180)
            assert failed["status"]["conditions"][0]["reason"] == "ProgressDeadlineExceeded"
            assert "500" in failed["status"]["message"]
            assert await sc.weights() == {
                "app-stable": 100,
                "app-canary": 0,
                "mirror-sink": 0,
            }
            handle = dev_env.client.get_workflow_handle(failed["status"]["workflowId"])
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    finally:
        await as_worker.aclose()
    assert violations(recorder.history, "app", from_version=armed) == []


async def test_a_promote_annotation_whose_removal_fails_passes_one_pause(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str, proxy: FaultProxy
) -> None:
    """The watcher's patches of the Rollout go through the proxy: the claim passes, the removal
    after the signal fails once, so the watcher sends the promote again. One pause is passed."""
    as_watcher = await _client_through(proxy, kube, "kulta-watcher")
    faulty = dataclasses.replace(kube, as_watcher=as_watcher)
    steps = [{"setWeight": w, "pause": {}} for w in (20, 40, 60)]
    try:
        async with watched(dev_env, faulty, namespace) as sc:
            await sc.create(steps=steps, replicas=5)
            await sc.wait_phase("Completed")
            await sc.set_image("example/app:v2")
            await sc.wait_paused_at(20)
            # Every second patch of a Rollout fails, twice: the claim passes, its removal not.
            removal = Fault("status", "PATCH", "/rollouts/", times=2, code=500, every=2)
            proxy.faults.append(removal)
            await sc.annotate(ANNOTATION_PROMOTE)
            await sc.wait_paused_at(40)
            await sc.wait_until(
                lambda r: ANNOTATION_PROMOTE not in (r["metadata"].get("annotations") or {}),
                "the annotation removed in the end",
            )
            await asyncio.sleep(3)  # time for a second pause to be passed, if it were
            status = (await sc.rollout())["status"]
            assert (status["phase"], status["currentWeight"]) == ("Paused", 40)
            promoted = [d for d in status["decisions"] if d["reason"] == "promoted"]
            assert len(promoted) == 1, status["decisions"]
            assert removal.hits >= 1, "the removal never failed: nothing was tested"
    finally:
        await as_watcher.aclose()
