"""Two watchers at once, one of them restarted over and over (each restart relists everything),
while rollouts are created and updated: every rollout completes, and no revision ever gets a
second workflow run (invariant 6)."""

from __future__ import annotations

import asyncio
import collections

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.naming import SA_NAMESPACE
from tests.support import builders
from tests.support.kube import Kube
from tests.support.scenario import Scenario
from tests.support.worker import running_worker
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

ROLLOUTS = 5
STEPS = [{"setWeight": 50, "pause": {"duration": "1s"}}, {"setWeight": 100}]


def _watcher(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str, queue: str
) -> asyncio.Task[None]:
    runner = Runner(dev_env.client, kube.as_watcher, queue)  # a fresh process: empty caches
    return asyncio.create_task(watch_forever(runner, RolloutSource(kube.as_watcher, namespace)))


async def _restart_forever(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str, queue: str, counter: list[int]
) -> None:
    while True:
        task = _watcher(dev_env, kube, namespace, queue)
        await asyncio.sleep(0.4)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        counter[0] += 1


async def test_restarted_and_doubled_watchers_start_each_revision_once(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str
) -> None:
    names = [f"app{n}" for n in range(ROLLOUTS)]
    async with running_worker(dev_env.client, kube) as worker:
        steady = _watcher(dev_env, kube, namespace, worker.task_queue)
        restarts = [0]
        flapping = asyncio.create_task(
            _restart_forever(dev_env, kube, namespace, worker.task_queue, restarts)
        )
        try:
            for name in names:
                await kube.apply(namespace, builders.service(f"{name}-stable", name))
                await kube.apply(namespace, builders.service(f"{name}-canary", name))
                await kube.apply(
                    namespace,
                    builders.httproute(f"{name}-route", f"{name}-stable", f"{name}-canary"),
                )
                await kube.apply(namespace, builders.rollout(name, replicas=2, steps=STEPS))
            await asyncio.gather(*(_completed(kube, namespace, n) for n in names))
            for name in names:
                await kube.patch(
                    "Rollout",
                    namespace,
                    name,
                    {"spec": {"template": builders.pod_template(name, "example/app:v2")}},
                )
            await asyncio.gather(*(_completed(kube, namespace, n, generation=2) for n in names))
            await asyncio.sleep(2)  # more relists of the finished rollouts
        finally:
            flapping.cancel()
            steady.cancel()
            await asyncio.gather(flapping, steady, return_exceptions=True)

    runs = collections.Counter(
        [w.id async for w in dev_env.client.list_workflows(f"{SA_NAMESPACE} = '{namespace}'")]
    )
    assert restarts[0] >= 5, "the flapping watcher did not restart often enough to matter"
    assert len(runs) == 2 * ROLLOUTS  # one workflow per revision...
    assert set(runs.values()) == {1}, runs  # ...and one run of each


async def _completed(kube: Kube, namespace: str, name: str, generation: int = 1) -> None:
    await kube.wait_for(
        "Rollout",
        namespace,
        name,
        lambda r: (
            (r.get("status") or {}).get("phase") == "Completed"
            and (r.get("status") or {}).get("observedGeneration") == generation
        ),
        timeout=120,
        what=f"generation {generation} completed",
    )


async def test_a_rollout_deleted_while_no_watcher_ran_has_its_workflow_cancelled(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str
) -> None:
    async with running_worker(dev_env.client, kube) as worker:

        def watcher() -> asyncio.Task[None]:
            runner = Runner(dev_env.client, kube.as_watcher, worker.task_queue)
            source = RolloutSource(
                kube.as_watcher, namespace, running=lambda: runner.running_workflows(namespace)
            )
            return asyncio.create_task(watch_forever(runner, source))

        sc = Scenario(kube, dev_env.client, namespace, worker.task_queue)
        first = watcher()
        try:
            await sc.create(steps=[{"setWeight": 50, "pause": {}}], replicas=2)
            await sc.wait_phase("Completed")
            await sc.set_image("example/app:v2")
            paused = await sc.wait_paused_at(50)  # its workflow waits for a promotion
        finally:
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
        handle = dev_env.client.get_workflow_handle(paused["status"]["workflowId"])
        await kube.delete("Rollout", namespace, sc.name)  # while no watcher runs

        second = watcher()
        try:
            for _ in range(150):
                if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                    break
                await asyncio.sleep(0.2)
            assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
        finally:
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)
            await sc.terminate_running()
