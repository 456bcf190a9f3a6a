"""Promote latency: from `kulta promote` writing its annotation to the HTTPRoute's weight change.

One canary with a manual pause at each of 19 weights (5%, 10%, ... 95%); each promotion is the
CLI's own code path (annotate, then wait for the watcher to take it), timed from the annotation
write to a watch seeing the canary's weight move to the next step.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.report import Row, median_ms, p95_ms
from bench.stack import Stack, first_route_change
from kulta import cli
from tests import builders

TARGET_MS = 300.0


async def _weight_reaches(stack: Stack, weight: int) -> float:
    def reached(route: dict[str, Any]) -> bool:
        return builders.route_weight(route, "promote-canary") == weight

    return await first_route_change(stack, "promote-route", reached)


async def run(stack: Stack, runs: int = 19) -> list[Row]:
    weights = [5 * (i + 1) for i in range(min(runs, 19))]
    steps = [{"setWeight": w, "pause": {}} for w in weights] + [{"setWeight": 100}]
    await stack.app("promote", replicas=1, steps=steps, scale_down_delay=0)
    await stack.wait_phase("promote", "Completed")
    await stack.set_image("promote", "example/app:v2")
    loop = asyncio.get_running_loop()
    samples: list[float] = []
    for weight, following in zip(weights, [*weights[1:], 100], strict=True):
        await stack.wait_phase("promote", "Paused", "waiting for promotion")
        changed = asyncio.create_task(_weight_reaches(stack, following))
        await asyncio.sleep(0.2)  # the watch is open
        start = loop.time()
        await cli._annotate(
            stack.kubeconfig, stack.namespace, "promote", "kulta.io/promote", "true", 30
        )
        samples.append(await asyncio.wait_for(changed, 30) - start)
        print(f"  promote at {weight}%: {samples[-1] * 1000:.0f} ms", flush=True)
    median = median_ms(samples)
    return [
        Row(
            "promote latency",
            f"median of {len(samples)}",
            f"{median:.0f} ms",
            "< 300 ms",
            median < TARGET_MS,
        ),
        Row("promote latency", "p95", f"{p95_ms(samples):.0f} ms"),
    ]
