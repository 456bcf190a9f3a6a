"""Load: 200 Rollouts created at once, each running a short canary, while the worker is
SIGKILLed every 30 seconds. Every invariant holds on every recorded write, every rollout ends,
and no revision has more than one workflow run. Wall time and peak memory of the worker and the
watcher (both real processes) go to load-results.json and the test's output.

Long (minutes), so it runs only with KULTA_LOAD=1 (.ci/run sets it; `make test-load` too).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.naming import SA_NAMESPACE
from tests.support.exporter import free_port
from tests.support.fleet import (
    bounded,
    create_canary,
    in_phase,
    set_image,
    stable_on_its_latest_revision,
    until_all,
)
from tests.support.invariants import RECORDED_KINDS, WriteRecorder, violations
from tests.support.kube import ROOT, Kube, service_account_credentials, write_token_kubeconfig
from tests.support.processes import (
    KultaProcess,
    WorkerProcesses,
    until_ready,
    worker_environment,
)

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.devserver,
    pytest.mark.skipif(os.environ.get("KULTA_LOAD") != "1", reason="load run: KULTA_LOAD=1"),
    pytest.mark.timeout(1800),
]

ROLLOUTS = int(os.environ.get("KULTA_LOAD_ROLLOUTS", "200"))
KILL_EVERY_SECONDS = 30
DEADLINE_SECONDS = 900  # every rollout ends within this (invariant 8)
STEPS: list[dict[str, Any]] = [{"setWeight": 50, "pause": {"duration": "2s"}}, {"setWeight": 100}]


class Peaks:
    """Peak RSS of every worker process so far (each is replaced when killed)."""

    def __init__(self) -> None:
        self.worker_mb = 0.0

    def note(self, process: KultaProcess) -> None:
        self.worker_mb = max(self.worker_mb, process.peak_rss_mb())


async def _kill_forever(
    workers: WorkerProcesses, current: list[KultaProcess], peaks: Peaks, kills: list[float]
) -> None:
    while True:
        await asyncio.sleep(KILL_EVERY_SECONDS)
        peaks.note(current[0])
        current[0].kill()
        kills.append(time.monotonic())
        current[0], port = workers.start()
        await until_ready(port)


async def test_200_rollouts_with_the_worker_killed_every_30s(
    kube: Kube, dev_env: WorkflowEnvironment, namespace: str, tmp_path: Path
) -> None:
    address = dev_env.client.service_client.config.target_host
    task_queue = f"load-{uuid.uuid4().hex[:6]}"
    env = await worker_environment(kube, address, task_queue, tmp_path)
    watcher_token = await service_account_credentials(kube.client, "kulta-watcher")
    watcher = KultaProcess(
        "kulta-watcher",
        {
            **env,
            "KUBECONFIG": str(write_token_kubeconfig(watcher_token, tmp_path / "w.kubeconfig")),
            "KULTA_WATCH_NAMESPACE": namespace,
            "KULTA_HTTP_PORT": str(free_port()),
        },
        tmp_path / "watcher.log",
    )
    workers = WorkerProcesses(env, tmp_path)
    first, port = workers.start()
    current, peaks, kills = [first], Peaks(), []
    names = [f"r{n:03d}" for n in range(ROLLOUTS)]
    recorder = WriteRecorder(kube, namespace, kinds=RECORDED_KINDS)
    killer: asyncio.Task[None] | None = None
    try:
        await until_ready(port)
        async with recorder.running():
            await bounded(names, lambda n: create_canary(kube, namespace, n, STEPS))
            stable_s = await until_all(kube, namespace, ROLLOUTS, in_phase("Completed"))
            armed = max(w.resource_version for w in recorder.history)

            started = time.monotonic()
            killer = asyncio.create_task(_kill_forever(workers, current, peaks, kills))
            await bounded(names, lambda n: set_image(kube, namespace, n, "example/app:v2"))
            done_s = await asyncio.wait_for(
                until_all(kube, namespace, ROLLOUTS, stable_on_its_latest_revision),
                DEADLINE_SECONDS,
            )
            wall = time.monotonic() - started
            killer.cancel()
            await asyncio.gather(killer, return_exceptions=True)
            peaks.note(current[0])
            watcher_mb = watcher.peak_rss_mb()
    finally:
        if killer is not None:
            killer.cancel()
        current[0].stop()
        watcher.stop()

    history = recorder.history
    broken = violations(history, from_version=armed)  # every rollout, in one pass
    assert broken == [], broken[:20]
    runs = collections.Counter(
        [w.id async for w in dev_env.client.list_workflows(f"{SA_NAMESPACE} = '{namespace}'")]
    )
    assert len(runs) == 2 * ROLLOUTS and set(runs.values()) == {1}, runs.most_common(3)
    assert kills, "the canaries finished before the first kill: nothing was tested"

    figures = {
        "rollouts": ROLLOUTS,
        "first revisions stable (s)": round(stable_s, 1),
        "canaries complete with kills (s)": round(done_s, 1),
        "wall (s)": round(wall, 1),
        "worker kills": len(kills),
        "peak RSS worker (MB)": round(peaks.worker_mb),
        "peak RSS watcher (MB)": round(watcher_mb),
        "writes recorded": len(history),
    }
    (ROOT / "load-results.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
