"""Step cost: Kubernetes API writes and Temporal history events per canary step, and API requests
while a rollout sits in a manual pause.

A canary of 10 timed steps; the worker's own Kubernetes client counts its requests by verb, and
the workflow's history is read when it completes. Then a canary paused for promotion is left
alone for 30 s while the worker's requests are counted.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

from temporalio.api.enums.v1 import EventType

from activities.naming import revision_of
from bench.report import Row
from bench.stack import Stack
from tests import builders

WRITES = ("POST", "PUT", "PATCH", "DELETE")
STEPS = 10
IDLE_SECONDS = 30


def _writes(stack: Stack) -> int:
    return sum(stack.worker_kube.requests[v] for v in WRITES)


async def run(stack: Stack) -> list[Row]:
    steps = [{"setWeight": 10 * (i + 1), "pause": {"duration": "1s"}} for i in range(STEPS - 1)]
    steps.append({"setWeight": 100})
    await stack.app("steps", replicas=10, steps=steps, scale_down_delay=0)
    await stack.wait_phase("steps", "Completed")
    before = _writes(stack)
    reads_before = stack.worker_kube.requests["GET"]
    await stack.set_image("steps", "example/app:v2")
    v2 = revision_of(builders.pod_template("steps", "example/app:v2"))
    await stack.wait_phase("steps", "Completed", f"revision {v2} is stable", timeout=300)
    done = await stack.kube.get("Rollout", stack.namespace, "steps")
    history = await stack.client.get_workflow_handle(done["status"]["workflowId"]).fetch_history()
    writes = (_writes(stack) - before) / STEPS
    reads = (stack.worker_kube.requests["GET"] - reads_before) / STEPS
    events = len(history.events) / STEPS
    profile = _profile(history.events)

    await stack.app("idle", replicas=2, steps=[{"setWeight": 50, "pause": {}}, {"setWeight": 100}])
    await stack.wait_phase("idle", "Completed")
    await stack.set_image("idle", "example/app:v2")
    await stack.wait_phase("idle", "Paused", "waiting for promotion")
    await asyncio.sleep(2)  # the status write and Event of the pause land
    idle_before = sum(stack.worker_kube.requests.values())
    await asyncio.sleep(IDLE_SECONDS)
    idle = sum(stack.worker_kube.requests.values()) - idle_before
    return [
        Row("step cost", "API writes per canary step", f"{writes:.1f}", "<= 3", writes <= 3),
        Row("step cost", "API reads per canary step", f"{reads:.1f}"),
        Row("step cost", "history events per canary step", f"{events:.1f}", "~20", events <= 24),
        Row("step cost", "activities per step (the profile)", profile),
        Row(
            "step cost",
            f"worker API requests in {IDLE_SECONDS}s of manual pause",
            str(idle),
            "0",
            idle == 0,
        ),
    ]


def _profile(events: Sequence[Any]) -> str:
    """Activities scheduled per step, by type: where the history events come from (each
    activity costs scheduled/started/completed plus a workflow task of three)."""
    scheduled = Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    timers = sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)
    parts = [f"{name} {n / STEPS:.1f}" for name, n in scheduled.most_common()]
    return ", ".join([*parts, f"timers {timers / STEPS:.1f}"])
