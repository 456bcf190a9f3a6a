"""Scale: N Rollouts (default 1,000) created, then all changed to a manual pause, then all promoted.

The worker(s) and the watcher run as the real `kulta-worker` and `kulta-watcher` processes and
the Temporal dev server as its own process, so the peak RSS (VmHWM) and CPU time of each can be
read from /proc at every phase boundary; so is the API server's. Each Rollout has one replica,
two Services and an HTTPRoute. Phases: all first revisions stable after creation; all paused at
50% after a new image; all complete after being promoted by annotation (as `kulta promote`
does without Temporal access). With `workers` > 1, that many worker processes share the task
queue (workers are stateless: this is how a user scales out).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from activities.adapters.kube import KubeClient, load_credentials
from activities.naming import ANNOTATION_PROMOTE
from bench.report import Row
from tests.support import proc_stats
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
from tests.support.kube import Kube, cluster_up, path_of
from tests.support.processes import KultaProcess
from tests.support.temporal import DevServerProcess

CONCURRENCY = 32  # the benchmark's own parallel API requests
RSS_TARGET_MB = 250
# Issue targets at 1,000 rollouts (300 rollouts: first revisions < 10 s).
COMPLETE_TARGET_S = 60
PAUSED_TARGET_S = 90


@dataclass
class Meters:
    """CPU seconds of each measured process, read at each phase boundary."""

    pids: dict[str, list[int]]
    marks: list[dict[str, float]] = field(default_factory=list)

    def mark(self) -> None:
        self.marks.append(
            {name: sum(_cpu(pid) for pid in pids) for name, pids in self.pids.items()}
        )

    def spent(self, phase: int) -> dict[str, float]:
        """CPU seconds per process group between mark `phase` and the one after it."""
        before, after = self.marks[phase], self.marks[phase + 1]
        return {name: after[name] - before[name] for name in before}


def _cpu(pid: int) -> float:
    try:
        return proc_stats.cpu_seconds(pid)
    except OSError:  # an API server restarted meanwhile: count what can be read
        return 0.0


async def run(rollouts: int = 1000, workers: int = 1) -> list[Row]:
    kubeconfig = cluster_up()
    kube = Kube.admin_only(
        KubeClient(load_credentials(kubeconfig), max_connections=CONCURRENCY), kubeconfig
    )
    tmp = Path(tempfile.mkdtemp(prefix="kulta-scale-"))
    temporal = DevServerProcess(None, tmp / "temporal.log")  # in memory, as `make demo` runs it
    await temporal.start()
    namespace = f"scale-{uuid.uuid4().hex[:6]}"
    await kube.client.create(
        path_of("Namespace", None),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    base = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal.address,
        "KUBECONFIG": kubeconfig,
        "KULTA_TASK_QUEUE": f"scale-{uuid.uuid4().hex[:6]}",
        "KULTA_WATCH_NAMESPACE": namespace,
        "KULTA_OCCURRENCE_DIR": str(tmp / "occurrences"),
    }
    base.pop("KULTA_WORKFLOW_SANDBOX", None)  # measured as deployed
    pool = [
        KultaProcess(
            "kulta-worker", {**base, "KULTA_HTTP_PORT": str(free_port())}, tmp / f"worker{n}.log"
        )
        for n in range(workers)
    ]
    watcher = KultaProcess(
        "kulta-watcher", {**base, "KULTA_HTTP_PORT": str(free_port())}, tmp / "watcher.log"
    )
    meters = Meters(
        {
            "worker": [w.proc.pid for w in pool],
            "watcher": [watcher.proc.pid],
            "temporal": [temporal.pid],
            "apiserver": proc_stats.pids_running("kube-apiserver"),
        }
    )
    names = [f"r{n:04d}" for n in range(rollouts)]
    steps: list[dict[str, Any]] = [{"setWeight": 50, "pause": {}}, {"setWeight": 100}]
    loop = asyncio.get_running_loop()

    async def phase(
        act: Callable[[str], Awaitable[None]], done: Callable[[dict[str, Any]], bool]
    ) -> tuple[float, float]:
        """Seconds until every Rollout is acknowledged (a status for its latest generation),
        and until every one is done."""
        meters.mark()
        start = loop.time()
        await bounded(names, act, CONCURRENCY)
        await until_all(kube, namespace, rollouts, observed)
        seen = loop.time() - start
        await until_all(kube, namespace, rollouts, done)
        took = loop.time() - start
        meters.mark()
        return seen, took

    async def create(name: str) -> None:
        await create_canary(kube, namespace, name, steps)

    async def new_image(name: str) -> None:
        await set_image(kube, namespace, name, "example/app:v2")

    async def promote(name: str) -> None:
        annotation = {"metadata": {"annotations": {ANNOTATION_PROMOTE: "true"}}}
        await kube.patch("Rollout", namespace, name, annotation)

    try:
        times = []
        for label, act, done in (
            ("first revisions stable after creation", create, in_phase("Completed")),
            (
                "all paused after the image change",
                new_image,
                in_phase("Paused", "waiting for promotion"),
            ),
            ("all complete after promotion", promote, stable_on_its_latest_revision),
        ):
            seen, took = await phase(act, done)
            times.append((label, took, seen))
            print(
                f"  {rollouts}: {label} in {took:.1f}s (all acknowledged in {seen:.1f}s)",
                flush=True,
            )
        rows = _rows(rollouts, workers, times, meters)
        worker_rss = sum(w.peak_rss_mb() for w in pool)
        rss = worker_rss + watcher.peak_rss_mb()
        rows += [
            Row(
                "scale",
                "peak RSS worker + watcher",
                f"{rss:.0f} MB ({worker_rss:.0f} + {watcher.peak_rss_mb():.0f})",
                f"< {RSS_TARGET_MB} MB",
                rss < RSS_TARGET_MB,
            ),
            Row("scale", "peak RSS Temporal dev server", f"{_rss(temporal.pid):.0f} MB"),
        ]
    finally:
        for process in [*pool, watcher]:
            process.stop()
        await kube.client.delete(path_of("Namespace", None, namespace))
        temporal.stop()
        await kube.client.aclose()
    return rows


def _rss(pid: int) -> float:
    try:
        return proc_stats.peak_rss_mb(pid)
    except OSError:
        return 0.0


def _rows(
    rollouts: int, workers: int, times: list[tuple[str, float, float]], meters: Meters
) -> list[Row]:
    targets = {
        "all paused after the image change": PAUSED_TARGET_S if rollouts >= 1000 else None,
        "all complete after promotion": COMPLETE_TARGET_S if rollouts >= 1000 else None,
        "first revisions stable after creation": 10 if rollouts <= 300 else None,
    }
    rows = []
    who = f"{rollouts} rollouts, {workers} worker{'s' if workers > 1 else ''}"
    for n, (label, took, seen) in enumerate(times):
        target = targets[label]
        rows.append(
            Row(
                "scale",
                f"{who}: {label}",
                f"{took:.1f} s",
                f"< {target} s" if target else "",
                took < target if target else None,
            )
        )
        rows.append(
            Row("scale", "  all acknowledged (status of the latest generation)", f"{seen:.1f} s")
        )
        cpu = meters.spent(2 * n)
        kulta = cpu["worker"] + cpu["watcher"]
        rows.append(
            Row(
                "scale",
                "  CPU: worker / watcher / Temporal / API server",
                f"{cpu['worker']:.1f} / {cpu['watcher']:.1f} / {cpu['temporal']:.1f} / "
                f"{cpu['apiserver']:.1f} s",
            )
        )
        rows.append(
            Row(
                "scale",
                "  CPU per rollout: kulta / kulta + Temporal",
                f"{kulta / rollouts * 1000:.0f} / "
                f"{(kulta + cpu['temporal']) / rollouts * 1000:.0f} ms",
            )
        )
    return rows
