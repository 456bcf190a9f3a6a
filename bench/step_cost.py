"""Step cost: Kubernetes API writes and Temporal history events per canary step, and API requests
while a rollout sits in a manual pause.

Two canaries that differ only in their number of timed steps (2 and 10); the worker's own
Kubernetes client counts its requests by verb, and each workflow's history is read when it
completes. The difference, divided by the 8 extra steps, is what one step costs (the rollout's
start and promotion cost the same in both). Then a canary paused for promotion is left
alone for 30 s while the worker's requests are counted.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType

from activities.naming import revision_of
from bench.report import Row
from bench.stack import Stack
from tests.support import builders

WRITES = ("POST", "PUT", "PATCH", "DELETE")
STEPS = 10
FEW = 2  # the shorter canary: the difference between the two is what the extra steps cost
IDLE_SECONDS = 30


@dataclass(frozen=True)
class Cost:
    writes: int
    reads: int
    events: int
    history: Sequence[Any]


def _writes(stack: Stack) -> int:
    return sum(stack.worker_kube.requests[v] for v in WRITES)


async def _canary(stack: Stack, name: str, timed_steps: int) -> Cost:
    """One canary of `timed_steps` steps (10 replicas, a weight and a 1 s pause each, then 100%),
    from the image change to completion."""
    weights = [round(100 * (i + 1) / (timed_steps + 1)) for i in range(timed_steps)]
    steps: list[dict[str, Any]] = [{"setWeight": w, "pause": {"duration": "1s"}} for w in weights]
    steps.append({"setWeight": 100})
    await stack.app(name, replicas=10, steps=steps, scale_down_delay=0)
    await stack.wait_phase(name, "Completed")
    writes, reads = _writes(stack), stack.worker_kube.requests["GET"]
    await stack.set_image(name, "example/app:v2")
    v2 = revision_of(builders.pod_template(name, "example/app:v2"))
    await stack.wait_phase(name, "Completed", f"revision {v2} is stable", timeout=300)
    done = await stack.kube.get("Rollout", stack.namespace, name)
    handle = stack.client.get_workflow_handle(done["status"]["workflowId"])
    history = (await handle.fetch_history()).events
    return Cost(
        writes=_writes(stack) - writes,
        reads=stack.worker_kube.requests["GET"] - reads,
        events=len(history),
        history=history,
    )


async def run(stack: Stack) -> list[Row]:
    few = await _canary(stack, "few-steps", FEW)
    many = await _canary(stack, "steps", STEPS)
    extra = STEPS - FEW
    writes = (many.writes - few.writes) / extra
    reads = (many.reads - few.reads) / extra
    events = (many.events - few.events) / extra
    profile = _profile(many.history)

    await stack.app("idle", replicas=2, steps=[{"setWeight": 50, "pause": {}}, {"setWeight": 100}])
    await stack.wait_phase("idle", "Completed")
    await stack.set_image("idle", "example/app:v2")
    await stack.wait_phase("idle", "Paused", "waiting for promotion")
    await asyncio.sleep(2)  # the status write and Event of the pause land
    idle_before = sum(stack.worker_kube.requests.values())
    await asyncio.sleep(IDLE_SECONDS)
    idle = sum(stack.worker_kube.requests.values()) - idle_before
    whole = f"{many.writes} writes, {many.events} history events"
    return [
        Row("step cost", "API writes per canary step", f"{writes:.1f}", "<= 3", writes <= 3),
        Row("step cost", "API reads per canary step", f"{reads:.1f}", "<= 3", reads <= 3),
        Row("step cost", "history events per canary step", f"{events:.1f}", "~20", events <= 22),
        Row("step cost", f"a whole canary of {STEPS} steps, start and promotion included", whole),
        Row("step cost", "activities in that canary, per step (the profile)", profile),
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
