"""Real `kulta-worker` processes SIGKILLed mid-rollout (no cleanup, as when a node dies), several
times in a row, while a recorder keeps every write to the namespace: the rollout still ends where
it should, and no recorded write ever broke an invariant (tests/support/invariants.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.naming import ANNOTATION_ABORT, ANNOTATION_PROMOTE, SA_NAMESPACE, SA_ROLLOUT
from tests.support.invariants import (
    RECORDED_KINDS,
    WriteRecorder,
    terminal_problems,
    violations,
)
from tests.support.kube import Kube
from tests.support.processes import KultaProcess, WorkerProcesses, until_ready, worker_environment
from tests.support.scenario import Scenario
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

STEPS: list[dict[str, Any]] = [
    {"setWeight": 25, "pause": {"duration": "2s"}},
    {"setWeight": 50, "pause": {}},
    {"setWeight": 75, "pause": {"duration": "1s"}},
    {"setWeight": 100},
]
USER_RULES = 2  # builders.httproute: the user's /admin rule and the weighted one


@dataclass
class Crashes:
    sc: Scenario
    workers: WorkerProcesses
    recorder: WriteRecorder
    current: KultaProcess | None = None
    kills: int = 0

    async def start_worker(self) -> None:
        self.current, port = self.workers.start()
        await until_ready(port)

    async def kill_and_replace(self) -> None:
        assert self.current is not None
        self.current.kill()
        self.kills += 1
        await self.start_worker()

    async def running_workflows(self) -> int:
        query = (
            f"{SA_NAMESPACE} = '{self.sc.namespace}' AND {SA_ROLLOUT} = '{self.sc.name}' "
            "AND ExecutionStatus = 'Running'"
        )
        return len([w async for w in self.sc.client.list_workflows(query)])

    async def until_no_workflow_runs(self, timeout: float = 30) -> None:
        """The revision's workflow ends after its scale-down delay; visibility follows."""
        deadline = time.monotonic() + timeout
        while (running := await self.running_workflows()) > 0:
            assert time.monotonic() < deadline, f"{running} workflow(s) still running"
            await asyncio.sleep(0.5)

    async def until_phase(self, phase: str, message: str = "", timeout: float = 120) -> None:
        """Waits for the phase; the timeout covers an activity lost with a killed worker
        (retried after its 30 s start-to-close timeout)."""
        await self.sc.wait_phase(phase, message, timeout=timeout)

    async def invariants_held(self, from_version: int) -> None:
        await self.recorder.caught_up()  # the end state, not a lagging watch's
        history = self.recorder.history
        assert violations(history, self.sc.name, from_version=from_version) == []
        canary_traffic = [
            w
            for w in history
            if w.kind == "HTTPRoute"
            and w.resource_version >= from_version
            and any(
                ref.get("name") == "app-canary" and ref.get("weight", 0) > 0
                for rule in w.object["spec"]["rules"]
                for ref in rule.get("backendRefs") or []
            )
        ]
        assert canary_traffic, "the record never saw canary traffic: the check proved nothing"


@pytest.fixture
async def crashes(
    kube: Kube, dev_env: WorkflowEnvironment, namespace: str, tmp_path: Path
) -> AsyncIterator[Crashes]:
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    env = await worker_environment(
        kube, dev_env.client.service_client.config.target_host, task_queue, tmp_path
    )
    runner = Runner(dev_env.client, kube.as_watcher, task_queue)
    watcher = asyncio.create_task(watch_forever(runner, RolloutSource(kube.as_watcher, namespace)))
    sc = Scenario(kube, dev_env.client, namespace, task_queue)
    recorder = WriteRecorder(kube, namespace, kinds=RECORDED_KINDS)
    async with recorder.running():
        state = Crashes(sc, WorkerProcesses(env, tmp_path), recorder)
        await state.start_worker()
        try:
            yield state
        finally:
            if state.current is not None:
                state.current.stop()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await sc.terminate_running()


async def _stable_v1(c: Crashes) -> int:
    """v1 at full scale; returns the resourceVersion from which invariants must hold (before
    v1 exists, the user's route points at Services with no pods yet)."""
    await c.sc.create(steps=STEPS, replicas=4, abort_delay=1, scale_down_delay=1)
    done = await c.sc.wait_until(
        lambda r: (r.get("status") or {}).get("phase") == "Completed", "v1 stable"
    )
    return int(done["metadata"]["resourceVersion"])


async def test_killed_during_weight_changes_and_pauses_it_still_completes_safely(
    crashes: Crashes,
) -> None:
    c = crashes
    armed = await _stable_v1(c)
    await c.sc.set_image("example/app:v2")
    v2_started = time.monotonic()

    # 1: while the first step's scale-up and weight change are in flight.
    await c.sc.wait_until(
        lambda r: (r.get("status") or {}).get("phase") == "Progressing", "the canary starting"
    )
    await c.kill_and_replace()
    # 2: in the manual pause at 50%, then again right after the promotion.
    await c.until_phase("Paused", "waiting for promotion")
    await c.kill_and_replace()
    assert await c.running_workflows() == 1
    await c.sc.annotate(ANNOTATION_PROMOTE)
    await c.sc.wait_until(
        lambda r: (r.get("status") or {}).get("currentStepIndex", 0) >= 2,
        "past the promoted pause",
        timeout=120,
    )
    await c.kill_and_replace()
    await c.until_phase("Completed", "is stable", timeout=180)
    took = time.monotonic() - v2_started
    v1 = next(
        w.object["metadata"]["labels"]["pod-template-hash"]
        for w in c.recorder.history
        if w.kind == "ReplicaSet" and w.object["spec"].get("replicas") == 4
    )
    await c.sc.wait_rs_replicas(v1, 0, timeout=60)

    assert c.kills == 3
    assert await c.sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    await c.invariants_held(armed)
    assert terminal_problems(c.recorder.history, c.sc.name, USER_RULES) == []
    await c.until_no_workflow_runs()
    print(f"canary with 3 worker SIGKILLs completed in {took:.1f}s")


async def test_killed_during_an_abort_the_rollback_finishes_traffic_first(
    crashes: Crashes,
) -> None:
    c = crashes
    armed = await _stable_v1(c)
    await c.sc.set_image("example/app:v2")
    await c.until_phase("Paused", "waiting for promotion")
    await c.sc.annotate(ANNOTATION_ABORT)
    await c.sc.wait_until(
        lambda r: ANNOTATION_ABORT not in (r["metadata"].get("annotations") or {}),
        "the abort delivered",
    )
    await c.kill_and_replace()  # the rollback's route write and scale-down are in flight
    await c.until_phase("Failed", "aborted by annotation")
    canary = (await c.sc.rollout())["status"]
    assert canary["currentWeight"] == 0
    assert await c.sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    v2 = next(
        w.object["metadata"]["labels"]["pod-template-hash"]
        for w in reversed(c.recorder.history)
        if w.kind == "ReplicaSet" and w.object["spec"].get("replicas") == 2
    )
    await c.sc.wait_rs_replicas(v2, 0, timeout=60)
    await c.invariants_held(armed)
    assert terminal_problems(c.recorder.history, c.sc.name, USER_RULES) == []
