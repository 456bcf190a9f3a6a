"""Scale: N Rollouts (default 1,000) in a manual pause at once, then all promoted.

The worker and the watcher run as the real `kulta-worker` and `kulta-watcher` processes, so
their peak RSS (VmHWM) and CPU time can be read from /proc. Each Rollout has one replica, two
Services and an HTTPRoute; all first become stable, then all get a new image and stop at a
manual pause at 50%, then all are promoted by annotation (as `kulta promote` does).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from activities.adapters.kube import KubeClient, load_credentials
from activities.naming import ANNOTATION_PROMOTE
from bench.report import Row
from tests.support.exporter import free_port
from tests.support.fleet import (
    bounded,
    create_canary,
    in_phase,
    set_image,
    stable_on_its_latest_revision,
    until_all,
)
from tests.support.kube import Kube, cluster_up, path_of
from tests.support.processes import KultaProcess
from tests.support.temporal import start_dev_server

CONCURRENCY = 32  # the benchmark's own parallel API requests
RSS_TARGET_MB = 300
COMPLETE_TARGET_S = 120


async def run(rollouts: int = 1000) -> list[Row]:
    kubeconfig = cluster_up()
    kube = Kube.admin_only(
        KubeClient(load_credentials(kubeconfig), max_connections=CONCURRENCY), kubeconfig
    )
    env = await start_dev_server()
    namespace = f"scale-{uuid.uuid4().hex[:6]}"
    await kube.client.create(
        path_of("Namespace", None),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    tmp = Path(tempfile.mkdtemp(prefix="kulta-scale-"))
    base = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "KUBECONFIG": kubeconfig,
        "KULTA_TASK_QUEUE": f"scale-{uuid.uuid4().hex[:6]}",
        "KULTA_WATCH_NAMESPACE": namespace,
        "KULTA_OCCURRENCE_DIR": str(tmp / "occurrences"),
    }
    worker = KultaProcess(
        "kulta-worker", {**base, "KULTA_HTTP_PORT": str(free_port())}, tmp / "worker.log"
    )
    watcher = KultaProcess(
        "kulta-watcher", {**base, "KULTA_HTTP_PORT": str(free_port())}, tmp / "watcher.log"
    )
    names = [f"r{n:04d}" for n in range(rollouts)]
    steps: list[dict[str, Any]] = [{"setWeight": 50, "pause": {}}, {"setWeight": 100}]
    try:

        async def create(name: str) -> None:
            await create_canary(kube, namespace, name, steps)

        await bounded(names, create, CONCURRENCY)
        stable = await until_all(kube, namespace, rollouts, in_phase("Completed"))
        print(f"  {rollouts} stable after {stable:.0f}s", flush=True)

        async def new_image(name: str) -> None:
            await set_image(kube, namespace, name, "example/app:v2")

        await bounded(names, new_image, CONCURRENCY)
        paused = await until_all(
            kube, namespace, rollouts, in_phase("Paused", "waiting for promotion")
        )
        print(f"  {rollouts} paused after {paused:.0f}s", flush=True)

        async def promote(name: str) -> None:
            annotation = {"metadata": {"annotations": {ANNOTATION_PROMOTE: "true"}}}
            await kube.patch("Rollout", namespace, name, annotation)

        loop = asyncio.get_running_loop()
        start = loop.time()
        await bounded(names, promote, CONCURRENCY)
        await until_all(kube, namespace, rollouts, stable_on_its_latest_revision)
        completed = loop.time() - start
        print(f"  {rollouts} completed {completed:.0f}s after promotion began", flush=True)
        rss = worker.peak_rss_mb() + watcher.peak_rss_mb()
        rows = [
            Row("scale", f"{rollouts} rollouts: time until all paused", f"{paused:.0f} s"),
            Row(
                "scale",
                "time until all complete after promotion",
                f"{completed:.0f} s",
                f"< {COMPLETE_TARGET_S} s",
                completed < COMPLETE_TARGET_S,
            ),
            Row(
                "scale",
                "peak RSS worker + watcher",
                f"{rss:.0f} MB ({worker.peak_rss_mb():.0f} + {watcher.peak_rss_mb():.0f})",
                f"< {RSS_TARGET_MB} MB",
                rss < RSS_TARGET_MB,
            ),
            Row(
                "scale",
                "CPU time worker / watcher",
                f"{worker.cpu_seconds():.0f} s / {watcher.cpu_seconds():.0f} s",
            ),
        ]
    finally:
        worker.stop()
        watcher.stop()
        await kube.client.delete(path_of("Namespace", None, namespace))
        await env.shutdown()
        await kube.client.aclose()
    return rows
