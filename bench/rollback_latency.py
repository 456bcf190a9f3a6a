"""Rollback latency: from the first failing sample being queryable in Prometheus to canary weight 0.

Debian's Prometheus scrapes an exporter this benchmark drives. Each run shifts a fresh canary
revision (at 50%) to 10% 5xx at a random moment (so runs sample every phase of kulta's
measurement schedule); the clock starts when the error-rate query kulta renders first returns a
value above the threshold (polled every 20 ms) and stops when a watch on the HTTPRoute sees the
canary's weight at 0. Target: under one analysis interval plus one second.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from activities.adapters.prometheus import PrometheusClient, PrometheusConfig
from activities.metrics import BUILT_INS, window
from activities.naming import revision_of
from activities.promql import render
from bench.report import Row, median_ms, p95_ms
from bench.stack import Stack, first_route_change, local_stack
from tests.support import builders
from tests.support.exporter import Exporter, Traffic
from tests.support.prometheus import PrometheusServer

THRESHOLD = 5.0  # percent of 5xx
MIN_WINDOW = 5  # seconds: the worker's rate() window floor (Prometheus scrapes every second)


@asynccontextmanager
async def stack_with_prometheus() -> AsyncIterator[tuple[Stack, Exporter, PrometheusClient]]:
    exporter = Exporter()
    exporter.start()
    server = PrometheusServer(f"127.0.0.1:{exporter.port}")
    prometheus = PrometheusClient(PrometheusConfig(address=server.url))
    try:
        async with local_stack(prometheus, MIN_WINDOW) as stack:
            yield stack, exporter, prometheus
    finally:
        await prometheus.aclose()
        server.stop()
        exporter.stop()


async def run(runs: int = 7, interval: int = 2) -> list[Row]:
    async with stack_with_prometheus() as (stack, exporter, prometheus):
        load = Traffic(exporter, stack.namespace, period=0.1)
        errors = load.error_percent
        traffic = asyncio.create_task(load.run())
        try:
            await _stable_rollout(stack, interval)
            samples = []
            for n in range(runs):
                samples.append(await _one_run(stack, prometheus, errors, interval))
                print(f"  rollback run {n + 1}/{runs}: {samples[-1] * 1000:.0f} ms", flush=True)
        finally:
            traffic.cancel()
    target = (interval + 1) * 1000
    p95 = p95_ms(samples)
    return [
        Row(
            "rollback latency",
            f"median of {runs} (interval {interval}s)",
            f"{median_ms(samples):.0f} ms",
        ),
        Row("rollback latency", "p95", f"{p95:.0f} ms", f"< {target:.0f} ms", p95 < target),
    ]


async def _stable_rollout(stack: Stack, interval: int) -> None:
    steps = [{"setWeight": 50, "pause": {"duration": "10m"}}, {"setWeight": 100}]
    await stack.app("app", replicas=2, steps=steps, abort_delay=1, scale_down_delay=1)
    rollout = await stack.kube.get("Rollout", stack.namespace, "app")
    rollout["spec"]["strategy"]["canary"]["analysis"] = {
        "interval": f"{interval}s",
        "metrics": [{"name": "error-rate", "threshold": THRESHOLD}],
    }
    await stack.kube.patch("Rollout", stack.namespace, "app", {"spec": rollout["spec"]})
    await stack.wait_phase("app", "Completed")


async def _one_run(
    stack: Stack, prometheus: PrometheusClient, errors: dict[str, int], interval: int
) -> float:
    loop = asyncio.get_running_loop()
    template = builders.pod_template("app", f"example/app:{uuid.uuid4().hex[:8]}")
    revision = revision_of(template)
    errors[revision] = 0
    await stack.kube.patch("Rollout", stack.namespace, "app", {"spec": {"template": template}})
    await stack.wait_phase("app", "Progressing", "pausing for")  # a timed pause
    # Healthy measurements first, as in a real canary; then a moment at random within one
    # interval, or the fault would always land at the same phase of kulta's schedule.
    await asyncio.sleep(MIN_WINDOW + 1 + random.uniform(0, interval))
    zero = asyncio.create_task(first_route_change(stack, "app-route", _canary_at_zero))
    await asyncio.sleep(0.2)  # the watch is open
    errors[revision] = 10
    query = render(
        BUILT_INS["error-rate"],
        {
            "namespace": stack.namespace,
            "revision": revision,
            "interval": window(f"{interval}s", MIN_WINDOW),
        },
    )
    while True:
        samples = await prometheus.query(query)
        if samples and samples[0].value is not None and samples[0].value > THRESHOLD:
            queryable = loop.time()
            break
        await asyncio.sleep(0.02)
    at_zero = await asyncio.wait_for(zero, 120)
    await stack.wait_phase("app", "Failed")
    del errors[revision]
    return max(0.0, at_zero - queryable)


def _canary_at_zero(route: dict[str, Any]) -> bool:
    return builders.route_weight(route, "app-canary") == 0
