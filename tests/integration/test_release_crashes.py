"""A Release whose worker is SIGKILLed while its workflow waits on a gate and again while it
rolls back: a new worker picks the durable plan up where it was, and every changed Rollout
still ends back on its previous revision."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.naming import ANNOTATION_ABORT, ANNOTATION_APPROVE
from tests.support import builders
from tests.support.invariants import RECORDED_KINDS, WriteRecorder, violations
from tests.support.kube import Kube
from tests.support.processes import KultaProcess, WorkerProcesses, until_logged, worker_environment
from tests.support.scenario import Scenario
from watcher.loop import watch_forever
from watcher.releases import ReleaseSource, decide_release
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

QUICK = [{"setWeight": 50}, {"setWeight": 100}]
MANUAL = [{"setWeight": 50, "pause": {}}, {"setWeight": 100}]


class Workers:
    def __init__(self, processes: WorkerProcesses) -> None:
        self.processes = processes
        self.current: KultaProcess | None = None

    async def start(self) -> None:
        self.current, _ = self.processes.start()
        await until_logged([self.current], "worker polling task queue", timeout=60)

    async def kill_and_replace(self) -> None:
        assert self.current is not None
        self.current.kill()
        await self.start()


@pytest.fixture
async def killable(
    kube: Kube, dev_env: WorkflowEnvironment, namespace: str, tmp_path: Path
) -> AsyncIterator[tuple[Scenario, Workers]]:
    """A `kulta-worker` process (killable) and a watcher of Rollouts and Releases here."""
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    env = await worker_environment(
        kube, dev_env.client.service_client.config.target_host, task_queue, tmp_path
    )
    runner = Runner(dev_env.client, kube.as_watcher, task_queue)
    loops = [
        asyncio.create_task(watch_forever(runner, RolloutSource(kube.as_watcher, namespace))),
        asyncio.create_task(
            watch_forever(
                runner,
                ReleaseSource(kube.as_watcher, namespace),
                decider=lambda r, deleted: decide_release(r, cluster="default", deleted=deleted),
            )
        ),
    ]
    sc = Scenario(kube, dev_env.client, namespace, task_queue)
    workers = Workers(WorkerProcesses(env, tmp_path))
    await workers.start()
    try:
        yield sc, workers
    finally:
        if workers.current is not None:
            workers.current.stop()
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await sc.terminate_running()


def _image(rollout: dict[str, Any]) -> str:
    return str(rollout["spec"]["template"]["spec"]["containers"][0]["image"])


async def _until(sc: Scenario, kind: str, name: str, predicate: Any, what: str) -> dict[str, Any]:
    # Long enough for an activity lost with a killed worker (its heartbeat times out in 30 s).
    return await sc.kube.wait_for(kind, sc.namespace, name, predicate, timeout=180, what=what)


def _phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


async def test_killed_at_a_gate_and_while_rolling_back_the_release_still_ends_right(
    killable: tuple[Scenario, Workers],
) -> None:
    sc, workers = killable
    for name, steps in (("orders", QUICK), ("web", MANUAL)):
        for obj in builders.app(name, replicas=2, steps=steps, scale_down_delay=1, abort_delay=1):
            await sc.kube.apply(sc.namespace, obj)
    for name in ("orders", "web"):
        await _until(sc, "Rollout", name, lambda r: _phase(r) == "Completed", "v1 stable")

    async with WriteRecorder(sc.kube, sc.namespace, kinds=RECORDED_KINDS).running() as writes:
        await sc.kube.apply(
            sc.namespace,
            builders.release(
                "shop",
                [
                    builders.stage(
                        "backend", {"orders": "example/orders:v2"}, gate={"type": "Approval"}
                    ),
                    builders.stage("frontend", {"web": "example/web:v2"}),
                ],
            ),
        )
        await _until(sc, "Release", "shop", lambda r: _phase(r) == "Paused", "at the gate")
        await workers.kill_and_replace()  # 1: while the parent waits on the approval gate
        await sc.kube.patch(
            "Release",
            sc.namespace,
            "shop",
            {"metadata": {"annotations": {ANNOTATION_APPROVE: "backend"}}},
        )
        await _until(
            sc,
            "Rollout",
            "web",
            lambda r: _phase(r) == "Paused" and _image(r) == "example/web:v2",
            "web paused on v2",
        )
        await sc.kube.patch(
            "Rollout",
            sc.namespace,
            "web",
            {"metadata": {"annotations": {ANNOTATION_ABORT: "true"}}},
        )
        await _until(sc, "Release", "shop", lambda r: _phase(r) == "RollingBack", "rolling back")
        await workers.kill_and_replace()  # 2: while it gives the templates back
        done = await _until(
            sc, "Release", "shop", lambda r: _phase(r) in ("RolledBack", "Failed"), "the end"
        )
        assert done["status"]["phase"] == "RolledBack", done["status"]
        for name in ("orders", "web"):
            rollout = await _until(
                sc, "Rollout", name, lambda r: _phase(r) == "Completed", "back on v1"
            )
            assert _image(rollout) == "example/app:v1", name
    assert violations(writes.history) == []
    handle = sc.client.get_workflow_handle(done["status"]["workflowId"])
    assert (await handle.describe()).status.name == "COMPLETED"
