"""The Temporal dev server SIGKILLed during a timed pause and kept down past the pause's end,
then started again on the same database: the worker and watcher reconnect by themselves, the
pause ends late (never early), and the rollout completes with every invariant held."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from activities.naming import ANNOTATION_PROMOTE
from tests.support.exporter import free_port
from tests.support.invariants import RECORDED_KINDS, WriteRecorder, violations
from tests.support.kube import Kube, service_account_credentials, write_token_kubeconfig
from tests.support.processes import (
    KultaProcess,
    WorkerProcesses,
    until_logged,
    until_ready,
    worker_environment,
)
from tests.support.scenario import Scenario
from tests.support.temporal import DevServerProcess
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = pytest.mark.cluster

PAUSE_SECONDS = 8
DOWN_SECONDS = PAUSE_SECONDS + 4


@dataclass
class OwnTemporal:
    """A Temporal dev server of the test's own (so it can be killed), a real worker process
    and an in-process watcher, all on one task queue."""

    server: DevServerProcess
    client: Client
    task_queue: str
    watcher: asyncio.Task[None]


@asynccontextmanager
async def own_temporal(kube: Kube, namespace: str, tmp_path: Path) -> AsyncIterator[OwnTemporal]:
    server = DevServerProcess(tmp_path / "temporal.db", tmp_path / "temporal.log")
    client = await server.start()
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    env = await worker_environment(kube, server.address, task_queue, tmp_path)
    worker, port = WorkerProcesses(env, tmp_path).start()
    runner = Runner(client, kube.as_watcher, task_queue)
    watcher = asyncio.create_task(watch_forever(runner, RolloutSource(kube.as_watcher, namespace)))
    try:
        await until_ready(port)
        yield OwnTemporal(server, client, task_queue, watcher)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        worker.stop()
        server.stop()


async def test_a_pause_survives_a_temporal_crash_and_ends_late_not_early(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    recorder = WriteRecorder(kube, namespace, kinds=RECORDED_KINDS)
    async with own_temporal(kube, namespace, tmp_path) as own, recorder.running():
        server = own.server
        sc = Scenario(kube, own.client, namespace, own.task_queue)
        steps = [
            {"setWeight": 50, "pause": {"duration": f"{PAUSE_SECONDS}s"}},
            {"setWeight": 100},
        ]
        await sc.create(steps=steps, replicas=2, scale_down_delay=1)
        armed = int((await sc.wait_phase("Completed"))["metadata"]["resourceVersion"])
        await sc.set_image("example/app:v2")
        paused = await sc.wait_phase("Progressing", f"pausing for {PAUSE_SECONDS}s")
        pause_end = datetime.fromisoformat(paused["status"]["pauseEndTime"]).timestamp()

        server.kill()
        killed = time.time()
        await asyncio.sleep(DOWN_SECONDS)
        assert time.time() > pause_end, "the server must stay down past the pause's end"
        restarted = time.time()
        await server.start()

        done = await sc.wait_phase("Completed", "is stable", timeout=120)
        # Not early: nothing moved while the server was down, and the pause ended after it
        # was due, by the workflow's own record and by the recorded writes.
        ended = next(
            d
            for d in done["status"]["decisions"]
            if d["action"] == "resume" and d["reason"] == "pause elapsed"
        )
        assert datetime.fromisoformat(ended["time"]).timestamp() >= pause_end - 1
        moved_while_down = [
            w
            for w in recorder.writes
            if w.kind == "HTTPRoute" and killed < _written_at(w.object) < restarted
        ]
        assert moved_while_down == []
    assert violations(recorder.history, sc.name, from_version=armed) == []


def _written_at(obj: dict[str, object]) -> float:
    """When the API server stored this version of the object (its managedFields timestamp)."""
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    times = [f.get("time", "") for f in meta.get("managedFields") or []]
    latest = max((t for t in times if t), default="")
    return datetime.fromisoformat(latest).timestamp() if latest else 0.0


async def test_the_watcher_outlives_temporal_being_down_and_acts_once_it_is_back(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """While Temporal is down for 20 s one Rollout is created and another is annotated to
    promote: the watcher's loop keeps going, and both happen once Temporal is back."""
    async with own_temporal(kube, namespace, tmp_path) as own:
        server, watcher = own.server, own.watcher
        first = Scenario(kube, own.client, namespace, own.task_queue)
        second = Scenario(kube, own.client, namespace, own.task_queue, name="second")
        await first.create(steps=[{"setWeight": 50, "pause": {}}], replicas=2, scale_down_delay=1)
        await first.wait_phase("Completed")
        await first.set_image("example/app:v2")
        v2 = await first.revision()
        await first.wait_paused_at(50)

        server.kill()
        await first.annotate(ANNOTATION_PROMOTE)
        await second.create(replicas=2)
        await asyncio.sleep(20)
        assert not watcher.done(), "the watcher's loop ended while Temporal was down"
        await server.start()

        await second.wait_phase("Completed", timeout=120)
        done = await first.wait_phase("Completed", f"revision {v2} is stable", timeout=120)
        assert done["status"]["stableRevision"] == v2
        assert not watcher.done()


async def test_a_worker_and_a_watcher_started_before_temporal_wait_for_it(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """Both processes start while nothing listens on Temporal's address: they stay up, alive and
    not ready, say so in their logs, and once the server starts a Rollout completes through
    them. (Exiting instead put a pod into CrashLoopBackOff, and a worker restarted during a
    Temporal restart in the load run never came back.)"""
    server = DevServerProcess(tmp_path / "temporal.db", tmp_path / "temporal.log")
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    env = await worker_environment(kube, server.address, task_queue, tmp_path)
    worker, worker_port = WorkerProcesses(env, tmp_path).start()
    watcher_token = await service_account_credentials(kube.client, "kulta-watcher")
    watcher_port = free_port()
    watcher = KultaProcess(
        "kulta-watcher",
        {
            **env,
            "KUBECONFIG": str(write_token_kubeconfig(watcher_token, tmp_path / "w.kubeconfig")),
            "KULTA_WATCH_NAMESPACE": namespace,
            "KULTA_HTTP_PORT": str(watcher_port),
        },
        tmp_path / "watcher.log",
    )
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for port in (worker_port, watcher_port):
                await until_ready(port, probe="/healthz")
                assert (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 503
        await until_logged([worker, watcher], "not reachable (attempt 2")
        assert worker.proc.poll() is None and watcher.proc.poll() is None

        client = await server.start()
        await until_ready(worker_port, timeout=60)
        await until_ready(watcher_port, timeout=60)
        sc = Scenario(kube, client, namespace, task_queue)
        await sc.create(replicas=1)
        await sc.wait_phase("Completed", timeout=120)
        for process in (worker, watcher):
            assert f"connected to Temporal at {server.address}" in process.output()
    finally:
        watcher.stop()
        worker.stop()
        server.stop()
