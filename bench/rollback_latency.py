"""Benchmark: from the first failing sample being queryable in Prometheus to canary weight 0.

Runs the real parts: the local control plane (scripts/cluster up), the Temporal dev server,
Debian's Prometheus scraping an exporter this script drives, and kulta's worker and watcher in
this process. Each run shifts a fresh canary revision (at 50%) to 10% 5xx; the clock starts when
the error-rate query kulta renders first returns a value above the threshold (polled every 20 ms)
and stops when a watch on the HTTPRoute sees the canary's weight at 0. The fault starts at a
random moment, so runs sample every phase of kulta's measurement schedule.

    .venv/bin/python -m bench.rollback_latency [--runs 7] [--interval 2]

Target: under one analysis interval plus one second. Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from typing import Any

from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.adapters.kube import KubeClient, load_credentials
from activities.adapters.prometheus import PrometheusClient, PrometheusConfig
from activities.metrics import BUILT_INS, window
from activities.naming import SEARCH_ATTRIBUTES, revision_of
from activities.promql import render
from kulta import binaries
from kulta.worker import build_worker
from tests import builders
from tests.kube import Kube, cluster_up, path_of
from tests.support.exporter import Exporter
from tests.support.prometheus import PrometheusServer
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

THRESHOLD = 5.0  # percent of 5xx
MIN_WINDOW = 5  # seconds: the worker's rate() window floor (Prometheus scrapes every second)


async def main(runs: int, interval: int) -> None:
    kube = Kube(KubeClient(load_credentials(cluster_up())), "")
    exporter = Exporter()
    exporter.start()
    prometheus_server = PrometheusServer(f"127.0.0.1:{exporter.port}")
    prometheus = PrometheusClient(PrometheusConfig(address=prometheus_server.url))
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binaries.find("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=[SearchAttributeKey.for_keyword(n) for n in SEARCH_ATTRIBUTES],
        dev_server_log_level="error",
    )
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    await kube.client.create(
        path_of("Namespace", None),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    worker = build_worker(
        env.client, kube.client, task_queue, prometheus=prometheus, min_window_seconds=MIN_WINDOW
    )
    errors: dict[str, int] = {}
    traffic = asyncio.create_task(_serve(exporter, errors))
    latencies: list[float] = []
    try:
        async with worker:
            runner = Runner(env.client, kube.client, task_queue)
            watcher = asyncio.create_task(
                watch_forever(runner, RolloutSource(kube.client, namespace))
            )
            await _stable_rollout(kube, namespace, interval)
            for run in range(runs):
                latency = await _one_run(kube, namespace, prometheus, errors, interval)
                latencies.append(latency)
                print(f"run {run + 1}/{runs}: {latency * 1000:.0f} ms", flush=True)
            watcher.cancel()
    finally:
        traffic.cancel()
        await kube.client.delete(path_of("Namespace", None, namespace))
        await env.shutdown()
        await prometheus.aclose()
        prometheus_server.stop()
        exporter.stop()
        await kube.client.aclose()
    _table(latencies, interval)


async def _serve(exporter: Exporter, errors: dict[str, int]) -> None:
    while True:
        for revision, percent in list(errors.items()):
            exporter.serve("app", revision, ok=100 - percent, errors=percent)
        await asyncio.sleep(0.1)


async def _stable_rollout(kube: Kube, namespace: str, interval: int) -> None:
    await kube.apply(namespace, builders.service("app-stable", "app"))
    await kube.apply(namespace, builders.service("app-canary", "app"))
    await kube.apply(namespace, builders.httproute("app-route", "app-stable", "app-canary"))
    rollout = builders.rollout(
        "app",
        replicas=2,
        steps=[{"setWeight": 50, "pause": {"duration": "10m"}}, {"setWeight": 100}],
        abort_delay=1,
        scale_down_delay=1,
    )
    rollout["spec"]["strategy"]["canary"]["analysis"] = {
        "interval": f"{interval}s",
        "metrics": [{"name": "error-rate", "threshold": THRESHOLD}],
    }
    await kube.apply(namespace, rollout)
    await _wait_phase(kube, namespace, "Completed", "")


async def _one_run(
    kube: Kube,
    namespace: str,
    prometheus: PrometheusClient,
    errors: dict[str, int],
    interval: int,
) -> float:
    template = builders.pod_template("app", f"example/app:{uuid.uuid4().hex[:8]}")
    revision = revision_of(template)
    errors[revision] = 0
    await kube.patch("Rollout", namespace, "app", {"spec": {"template": template}})
    await _wait_phase(kube, namespace, "Paused", "pausing")
    # Healthy measurements first, as in a real canary; then a moment at random within one
    # interval, or the fault would always land at the same phase of kulta's measuring schedule.
    await asyncio.sleep(MIN_WINDOW + 1 + random.uniform(0, interval))
    zero = asyncio.create_task(_canary_weight_zero(kube, namespace))
    await asyncio.sleep(0.2)  # the watch is open
    errors[revision] = 10
    query = render(
        BUILT_INS["error-rate"],
        {"revision": revision, "interval": window(f"{interval}s", MIN_WINDOW)},
    )
    while True:
        samples = await prometheus.query(query)
        if samples and samples[0].value is not None and samples[0].value > THRESHOLD:
            queryable = time.monotonic()
            break
        await asyncio.sleep(0.02)
    at_zero = await asyncio.wait_for(zero, 120)
    await _wait_phase(kube, namespace, "Failed", "")
    del errors[revision]
    return max(0.0, at_zero - queryable)


async def _canary_weight_zero(kube: Kube, namespace: str) -> float:
    """The monotonic time a watch sees the canary's weight go to 0."""
    listing = await kube.client.get(path_of("HTTPRoute", namespace))
    async for event in kube.client.watch(
        path_of("HTTPRoute", namespace), resource_version=listing["metadata"]["resourceVersion"]
    ):
        if event.type == "MODIFIED" and _canary_weight(event.object) == 0:
            return time.monotonic()
    raise RuntimeError("the HTTPRoute watch ended")


def _canary_weight(route: dict[str, Any]) -> int:
    refs = route["spec"]["rules"][1]["backendRefs"]
    return next(int(ref.get("weight", 1)) for ref in refs if ref["name"] == "app-canary")


async def _wait_phase(kube: Kube, namespace: str, phase: str, message: str) -> None:
    await kube.wait_for(
        "Rollout",
        namespace,
        "app",
        lambda r: (
            (r.get("status") or {}).get("phase") == phase
            and message in ((r.get("status") or {}).get("message") or "")
        ),
        timeout=120,
        what=f"phase {phase}",
    )


def _table(latencies: list[float], interval: int) -> None:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    target = interval + 1.0
    rows = [
        ("runs", f"{len(ordered)}"),
        ("analysis interval", f"{interval} s"),
        ("median", f"{statistics.median(ordered) * 1000:.0f} ms"),
        ("p95", f"{p95 * 1000:.0f} ms"),
        ("min / max", f"{ordered[0] * 1000:.0f} / {ordered[-1] * 1000:.0f} ms"),
        ("target (interval + 1 s)", f"{target * 1000:.0f} ms"),
        ("p95 within target", "yes" if p95 < target else "NO"),
    ]
    width = max(len(name) for name, _ in rows)
    print("\nfailing sample queryable -> canary weight 0 on the HTTPRoute")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--interval", type=int, default=2, help="analysis interval, seconds")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.interval))
