"""Abort during a pod wait: from the `kulta.io/abort` annotation to canary weight 0, while the
canary waits for pods that never come (a ResourceQuota leaves room for one canary pod beside
what runs; its next step needs three). The clock starts when the annotation is written and
stops when a watch on the HTTPRoute sees the canary at 0. Before the wait could be interrupted,
this was the rest of the progress deadline.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from activities.naming import ANNOTATION_ABORT, replicaset_name, revision_of
from bench.report import Row, median_ms
from bench.stack import Stack, first_route_change
from tests.support import builders

REPLICAS = 4
STEPS = [{"setWeight": 25, "pause": {"duration": "1s"}}, {"setWeight": 75}]


async def run(stack: Stack, runs: int = 5) -> list[Row]:
    ns = stack.namespace
    await stack.app("abort", replicas=REPLICAS, steps=STEPS, abort_delay=0, scale_down_delay=0)
    await stack.wait_phase("abort", "Completed")
    await stack.kube.wait_for(
        "ReplicaSet",
        ns,
        replicaset_name("abort", revision_of(builders.pod_template("abort", "example/app:v1"))),
        lambda rs: (rs.get("status") or {}).get("availableReplicas") == REPLICAS,
        what="the stable revision at full size",
    )
    # Room for every pod in the namespace now (other scenarios' too) and one canary pod.
    running = len(await stack.kube.list("Pod", ns))
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "stable-plus-one"},
        "spec": {"hard": {"pods": str(running + 1)}},
    }
    await stack.kube.apply(ns, quota)
    samples = []
    for n in range(runs):
        samples.append(await _one_run(stack))
        print(f"  abort run {n + 1}/{runs}: {samples[-1] * 1000:.0f} ms", flush=True)
    await stack.kube.delete("ResourceQuota", ns, "stable-plus-one")
    return [
        Row(
            "abort during a pod wait",
            f"annotation -> canary weight 0, median of {runs}",
            f"{median_ms(samples):.0f} ms",
        )
    ]


async def _one_run(stack: Stack) -> float:
    loop = asyncio.get_running_loop()
    template = builders.pod_template("abort", f"example/app:{uuid.uuid4().hex[:8]}")
    revision = revision_of(template)
    await stack.kube.patch("Rollout", stack.namespace, "abort", {"spec": {"template": template}})
    # The second step asked for 3 canary pods: only one can run, so the worker waits.
    await stack.kube.wait_for(
        "ReplicaSet",
        stack.namespace,
        replicaset_name("abort", revision),
        lambda rs: rs["spec"]["replicas"] == 3,
        timeout=60,
        what="the canary waiting for pods",
    )
    await asyncio.sleep(1)  # well inside the wait
    zero = asyncio.create_task(first_route_change(stack, "abort-route", _canary_at_zero))
    await asyncio.sleep(0.2)  # the watch is open
    started = loop.time()
    await stack.kube.patch(
        "Rollout",
        stack.namespace,
        "abort",
        {"metadata": {"annotations": {ANNOTATION_ABORT: "true"}}},
    )
    at_zero = await asyncio.wait_for(zero, 60)
    await stack.wait_phase("abort", "Failed")
    await stack.kube.wait_for(
        "ReplicaSet",
        stack.namespace,
        replicaset_name("abort", revision),
        lambda rs: (rs.get("status") or {}).get("replicas", 0) == 0,
        timeout=60,
        what="the aborted canary gone",
    )
    return at_zero - started


def _canary_at_zero(route: dict[str, Any]) -> bool:
    return builders.route_weight(route, "abort-canary") == 0
