"""Load: 200 Rollouts created at once, each running a short canary, while the worker is
SIGKILLed every 30 seconds, its API requests meet random 500s and 503s (a fault proxy), and the
Temporal server is killed and restarted once. Every invariant holds on every recorded write,
every rollout ends, no revision has more than one workflow run, no workflow ends Failed in
Temporal, and a rollout that stands still says why. Wall time and peak memory of the worker and
the watcher (both real processes) go to load-results.json and the test's output.

Long (minutes), so it runs only with KULTA_LOAD=1 (.ci/run sets it; `make test-load` too).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.naming import SA_NAMESPACE
from tests.support.exporter import free_port
from tests.support.fleet import (
    bounded,
    create_canary,
    in_phase,
    observed,
    set_image,
    stable_on_its_latest_revision,
    until_all,
)
from tests.support.invariants import RECORDED_KINDS, WriteRecorder, violations
from tests.support.kube import (
    ROOT,
    Kube,
    path_of,
    service_account_credentials,
    write_token_kubeconfig,
)
from tests.support.kube_proxy import Fault, FaultProxy
from tests.support.processes import (
    KultaProcess,
    WorkerProcesses,
    until_logged,
    until_ready,
    worker_environment,
)
from tests.support.temporal import DevServerProcess

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.devserver,
    pytest.mark.skipif(os.environ.get("KULTA_LOAD") != "1", reason="load run: KULTA_LOAD=1"),
    pytest.mark.timeout(1800),
]

ROLLOUTS = int(os.environ.get("KULTA_LOAD_ROLLOUTS", "200"))
KILL_EVERY_SECONDS = 30
DEADLINE_SECONDS = 900  # every rollout ends within this (invariant 8)
# A pause long enough that the first worker kill and the Temporal restart land mid-rollout
# (with 2 s, the 200 canaries finished before the first kill once the engine got cheaper).
STEPS: list[dict[str, Any]] = [{"setWeight": 50, "pause": {"duration": "30s"}}, {"setWeight": 100}]


class Peaks:
    """Peak RSS of every worker process so far (each is replaced when killed)."""

    def __init__(self) -> None:
        self.worker_mb = 0.0

    def note(self, process: KultaProcess) -> None:
        self.worker_mb = max(self.worker_mb, process.peak_rss_mb())


async def _kill_forever(
    workers: WorkerProcesses, current: list[KultaProcess], peaks: Peaks, kills: list[float]
) -> None:
    first = True
    while True:
        await asyncio.sleep(KILL_EVERY_SECONDS / 3 if first else KILL_EVERY_SECONDS)
        first = False
        peaks.note(current[0])
        current[0].kill()
        kills.append(time.monotonic())
        current[0], _ = workers.start()
        # Polling, not ready: a new worker takes up to 200 activities at once on two busy
        # cores, and its readiness probes (answered within 5 s) can fail for a minute then.
        # One started during the Temporal restart waits for it (retries at most 10 s apart).
        await until_logged(current[:1], "worker polling task queue", timeout=90)


# Every n-th worker request of these kinds fails (the proxy counts per fault).
FAULTS = [
    Fault("status", "PATCH", "/replicasets/", times=10**9, code=500, every=7),
    Fault("status", "PUT", "/httproutes/", times=10**9, code=500, every=11),
    Fault("status", "PATCH", "/status", times=10**9, code=503, every=13),
]
TEMPORAL_DOWN_SECONDS = 5
STILL_SECONDS = 60  # a rollout unchanged for this long must say why in status
# Every creation and template change is taken up (a status for its generation) within this,
# although 200 arrive at once, with the worker killed every 30 s and the Temporal server
# restarted, on two cores shared with everything else. Measured 101 and 111 s on earlier
# code, then 185 s (other tests sharing the cores) and 232 s in two CI runs here: an activity
# lost with a killed worker is retried only when its timeout expires, and one rollout can
# lose several. A change that is lost never gets a status:
# `until_all(stable_on_its_latest_revision)` times out then.
ACK_SECONDS = 360


async def _restart_temporal_once(server: DevServerProcess, restarts: list[float]) -> None:
    await asyncio.sleep(KILL_EVERY_SECONDS / 2)
    server.kill()
    await asyncio.sleep(TEMPORAL_DOWN_SECONDS)
    await server.start()
    restarts.append(time.monotonic())


@dataclass
class Stillness:
    """What the sampler found: rollouts that stood still without saying why, and the longest
    wait for a change (a creation or a new template) to be acknowledged in status."""

    silent: list[str] = field(default_factory=list)
    slowest_ack_s: float = 0.0


async def _sample_stillness(kube: Kube, namespace: str, found: Stillness) -> None:
    """Samples every 10 s. A Rollout whose status is not yet written for its latest generation
    waits to be taken up (its age goes to `slowest_ack_s`); one that is taken up, not
    Completed and unchanged for STILL_SECONDS must show its phase's reason and a message."""
    since: dict[str, tuple[str, float]] = {}
    waiting: dict[tuple[str, int], float] = {}
    while True:
        await asyncio.sleep(10)
        now = time.monotonic()
        for r in (await kube.client.get(path_of("Rollout", namespace)))["items"]:
            name, version = r["metadata"]["name"], r["metadata"]["resourceVersion"]
            if not observed(r):
                first = waiting.setdefault((name, r["metadata"]["generation"]), now)
                found.slowest_ack_s = max(found.slowest_ack_s, now - first)
                continue
            if since.get(name, ("", 0.0))[0] != version:
                since[name] = (version, now)
                continue
            status = r["status"]
            if status.get("phase") == "Completed" or now - since[name][1] < STILL_SECONDS:
                continue
            reasons = [c.get("reason") for c in status.get("conditions") or []]
            if not status.get("message") or not all(reasons):
                found.silent.append(
                    f"{name}: {status.get('phase')} for {STILL_SECONDS}s, no reason"
                )


async def test_200_rollouts_with_the_worker_killed_every_30s(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    server = DevServerProcess(tmp_path / "temporal.db", tmp_path / "temporal.log")
    client = await server.start()
    proxy = FaultProxy(kube.client.credentials)
    await proxy.__aenter__()
    task_queue = f"load-{uuid.uuid4().hex[:6]}"
    env = await worker_environment(kube, server.address, task_queue, tmp_path)
    # As deployed: the workflow tests and the recorded replays are where the sandbox checks
    # determinism; here it would only slow the 200 first revisions (117 s against 35 s).
    env["KULTA_WORKFLOW_SANDBOX"] = "false"
    worker_token = await service_account_credentials(kube.client, "kulta-worker")
    env["KUBECONFIG"] = str(
        write_token_kubeconfig(
            proxy.credentials(worker_token.token), tmp_path / "proxied.kubeconfig"
        )
    )
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
    current, peaks, kills, restarts = [first], Peaks(), [], []
    names = [f"r{n:03d}" for n in range(ROLLOUTS)]
    recorder = WriteRecorder(kube, namespace, kinds=RECORDED_KINDS)
    killer: asyncio.Task[None] | None = None
    stillness = Stillness()
    sampler = asyncio.create_task(_sample_stillness(kube, namespace, stillness))
    try:
        await until_ready(port)
        async with recorder.running():
            await bounded(names, lambda n: create_canary(kube, namespace, n, STEPS))
            stable_s = await until_all(kube, namespace, ROLLOUTS, in_phase("Completed"))
            armed = max(w.resource_version for w in recorder.history)

            started = time.monotonic()
            proxy.faults += FAULTS
            killer = asyncio.create_task(_kill_forever(workers, current, peaks, kills))
            restarter = asyncio.create_task(_restart_temporal_once(server, restarts))
            await bounded(names, lambda n: set_image(kube, namespace, n, "example/app:v2"))
            done_s = await asyncio.wait_for(
                until_all(kube, namespace, ROLLOUTS, stable_on_its_latest_revision),
                DEADLINE_SECONDS,
            )
            wall = time.monotonic() - started
            killer.cancel()
            for ended in await asyncio.gather(killer, restarter, return_exceptions=True):
                if isinstance(ended, Exception):  # a fault task that broke: nothing was tested
                    raise ended
            client = await Client.connect(server.address, data_converter=pydantic_data_converter)
            peaks.note(current[0])
            watcher_mb = watcher.peak_rss_mb()
            # Visibility is eventually consistent (its records are written by the server's own
            # task queue, which a restart delays): wait for every run to be listed, or a minute.
            for _ in range(60):
                runs = collections.Counter(
                    [w.id async for w in client.list_workflows(f"{SA_NAMESPACE} = '{namespace}'")]
                )
                if len(runs) >= 2 * ROLLOUTS:
                    break
                await asyncio.sleep(1)
            failed_in_temporal = [
                w.id
                async for w in client.list_workflows(
                    f"{SA_NAMESPACE} = '{namespace}' AND ExecutionStatus = 'Failed'"
                )
            ]
    finally:
        sampler.cancel()
        if killer is not None:
            killer.cancel()
        current[0].stop()
        watcher.stop()
        await proxy.__aexit__(None, None, None)
        server.stop()

    history = recorder.history
    broken = violations(history, from_version=armed)  # every rollout, in one pass
    assert broken == [], broken[:20]
    assert len(runs) == 2 * ROLLOUTS and set(runs.values()) == {1}, runs.most_common(3)
    assert failed_in_temporal == [], failed_in_temporal[:10]
    assert stillness.silent == [], stillness.silent[:10]
    assert stillness.slowest_ack_s < ACK_SECONDS, stillness.slowest_ack_s
    assert kills, "the canaries finished before the first kill: nothing was tested"
    assert restarts, "Temporal was never restarted: nothing was tested"
    injected = sum(f.hits for f in FAULTS)
    assert injected > 0, "no fault was injected"

    figures = {
        "rollouts": ROLLOUTS,
        "first revisions stable (s)": round(stable_s, 1),
        "canaries complete with kills (s)": round(done_s, 1),
        "wall (s)": round(wall, 1),
        "worker kills": len(kills),
        "Temporal restarts": len(restarts),
        "API faults injected": injected,
        "peak RSS worker (MB)": round(peaks.worker_mb),
        "peak RSS watcher (MB)": round(watcher_mb),
        "writes recorded": len(history),
        "slowest acknowledgement (s)": round(stillness.slowest_ack_s),
    }
    (ROOT / "load-results.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
