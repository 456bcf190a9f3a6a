"""Promote latency: from `kulta promote` to the HTTPRoute's weight change, by both of its routes,
and the command as a user runs it.

One canary with a manual pause at each of 19 weights (5%, 10%, ... 95%). Promotions rotate
between three ways, so all are measured in one run on the same rollout: the CLI's two code paths
called in-process (the validated Temporal update, what `kulta promote` does when Temporal is
reachable; the annotation the watcher turns into a signal, without Temporal access or with
`kubectl annotate`), and the `kulta promote` command as a new process (interpreter start and
imports included). Each is timed to a watch seeing the canary's weight move. `kulta version`
is timed as a process on its own.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from activities.naming import ANNOTATION_PROMOTE, UPDATE_PROMOTE
from bench.report import Row, median_ms, p95_ms
from bench.stack import Stack, first_route_change
from kulta import steering
from tests.support import builders
from workflows.messages import PromoteRequest

TARGET_MS = 300.0
VERSION_TARGET_MS = 150.0
KULTA = str(Path(sys.executable).parent / "kulta")


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
    os.environ["TEMPORAL_ADDRESS"] = stack.client.service_client.config.target_host
    loop = asyncio.get_running_loop()
    samples: dict[str, list[float]] = {"update": [], "annotation": [], "command": []}
    action = steering.Steering(
        "promote",
        ANNOTATION_PROMOTE,
        "true",
        UPDATE_PROMOTE,
        PromoteRequest,
        steering.when_paused(),
    )
    for n, (weight, following) in enumerate(zip(weights, [*weights[1:], 100], strict=True)):
        route = ("update", "annotation", "command")[n % 3]
        await stack.wait_phase("promote", "Paused", "waiting for promotion")
        changed = asyncio.create_task(_weight_reaches(stack, following))
        await asyncio.sleep(0.2)  # the watch is open
        start = loop.time()
        if route == "update":
            await steering.deliver(stack.kubeconfig, stack.namespace, "promote", action, 30)
        elif route == "command":
            await _command(stack, "promote", "promote", "-n", stack.namespace)
        else:
            await steering.annotate(
                stack.kubeconfig, stack.namespace, "promote", ANNOTATION_PROMOTE, "true", 30
            )
        samples[route].append(await asyncio.wait_for(changed, 30) - start)
        print(f"  promote at {weight}% ({route}): {samples[route][-1] * 1000:.0f} ms", flush=True)
    rows = [await _version_row()]
    for route, taken in samples.items():
        median = median_ms(taken)
        rows += [
            Row(
                "promote latency",
                f"{_LABELS[route]}: median of {len(taken)}",
                f"{median:.0f} ms",
                "< 300 ms",
                median < TARGET_MS,
            ),
            Row("promote latency", f"{_LABELS[route]}: p95", f"{p95_ms(taken):.0f} ms"),
        ]
    return rows


_LABELS = {
    "update": "update, in-process",
    "annotation": "annotation, in-process",
    "command": "`kulta promote` process",
}


async def _command(stack: Stack, *args: str) -> None:
    """Runs the `kulta` command to its end (its output is not needed)."""
    process = await asyncio.create_subprocess_exec(
        KULTA,
        *args,
        "--kubeconfig",
        stack.kubeconfig,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"kulta {' '.join(args)} failed: {err.decode()}")


async def _version_row(runs: int = 9) -> Row:
    """`kulta version` as a process, start to exit."""
    loop = asyncio.get_running_loop()
    taken = []
    for _ in range(runs):
        start = loop.time()
        process = await asyncio.create_subprocess_exec(
            KULTA, "version", stdout=asyncio.subprocess.DEVNULL
        )
        await process.wait()
        taken.append(loop.time() - start)
    median = median_ms(taken)
    return Row(
        "promote latency",
        f"`kulta version` process: median of {runs}",
        f"{median:.0f} ms",
        f"< {VERSION_TARGET_MS:.0f} ms",
        median < VERSION_TARGET_MS,
    )
