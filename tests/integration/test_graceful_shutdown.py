"""SIGTERM to a real `kulta-worker` in the middle of a canary step: it turns not ready, stops
taking tasks, lets the running activities finish, exits 0; the next worker carries on from the
durable workflow and the rollout completes as if nothing happened."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.naming import ANNOTATION_PROMOTE
from tests.support.kube import Kube
from tests.support.processes import WorkerProcesses, until_ready, worker_environment
from tests.support.scenario import Scenario
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]


@pytest.fixture
async def scenario(
    kube: Kube, dev_env: WorkflowEnvironment, namespace: str, tmp_path: Path
) -> AsyncIterator[tuple[Scenario, WorkerProcesses]]:
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    env = await worker_environment(
        kube, dev_env.client.service_client.config.target_host, task_queue, tmp_path
    )
    env["KULTA_SHUTDOWN_GRACE_SECONDS"] = "10"
    runner = Runner(dev_env.client, kube.as_watcher, task_queue)
    watcher = asyncio.create_task(watch_forever(runner, RolloutSource(kube.as_watcher, namespace)))
    try:
        yield Scenario(kube, dev_env.client, namespace, task_queue), WorkerProcesses(env, tmp_path)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def test_sigterm_mid_step_exits_0_and_the_next_worker_finishes(
    scenario: tuple[Scenario, WorkerProcesses],
) -> None:
    sc, workers = scenario
    first, port = workers.start()
    try:
        await until_ready(port)
        await sc.create(
            steps=[{"setWeight": 50, "pause": {}}, {"setWeight": 100}],
            replicas=4,
            scale_down_delay=1,
        )
        await sc.wait_phase("Completed")
        await sc.set_image("example/app:v2")
        await sc.wait_until(
            lambda r: r.get("status", {}).get("phase") == "Progressing", "the canary in progress"
        )

        started = time.monotonic()
        first.proc.terminate()  # SIGTERM, as the kubelet sends it
        code = await asyncio.to_thread(first.proc.wait, 30)
        took = time.monotonic() - started
    finally:
        first.stop()
    assert code == 0, first.output()
    assert took < 10 + 5, f"shutdown took {took:.1f}s, beyond the grace period"
    assert "shutting down" in first.output()

    second, port = workers.start()
    try:
        await until_ready(port)
        paused = await sc.wait_phase("Paused", "waiting for promotion")
        assert paused["status"]["currentWeight"] == 50
        await sc.annotate(ANNOTATION_PROMOTE)
        await sc.wait_phase("Completed", "is stable")
        assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
        assert second.stop() == 0, second.output()
    finally:
        second.stop()


SIGTERMS = 50


async def test_every_sigterm_after_real_work_exits_0(
    scenario: tuple[Scenario, WorkerProcesses],
) -> None:
    """A worker that has just run a rollout, stopped by SIGTERM, 50 times: 50 exits with 0
    (interpreter finalization beside the SDK's native threads used to abort now and then)."""
    sc, workers = scenario
    codes: list[int] = []
    for round_ in range(SIGTERMS):
        worker, port = workers.start()
        try:
            await until_ready(port)
            if round_ == 0:
                await sc.create(steps=[{"setWeight": 100}], replicas=1, scale_down_delay=0)
            else:
                await sc.set_image(f"example/app:round-{round_}")
            revision = await sc.revision()
            await sc.wait_until(
                lambda r, rev=revision: (r.get("status") or {}).get("stableRevision") == rev,
                f"round {round_} stable",
            )
            worker.proc.terminate()
            codes.append(await asyncio.to_thread(worker.proc.wait, 30))
        finally:
            worker.stop()
        if codes[-1] != 0:
            print(worker.output())
    assert codes == [0] * SIGTERMS, f"exit codes: {codes}"
