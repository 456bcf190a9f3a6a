"""A Release of 20 Rollouts in 3 stages (7, 7, 6; automatic gates): how much longer the whole
Release takes than its Rollouts' own work, and how many Temporal history events its parent
workflow writes.

Each Rollout's own time runs from the watch event that shows its template changed to the one
that shows it Completed on the new revision; a stage takes as long as its slowest Rollout. The
parent's overhead is the Release's time (created -> Completed, both seen by watches) minus the
sum of its stages' times: claiming, reading and writing templates, noticing completion, and
starting the next stage.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from activities.naming import RELEASES, ROLLOUTS, revision_of
from bench.report import Row
from bench.stack import Stack
from tests.support import builders

STAGES = (7, 7, 6)
STEPS = [{"setWeight": 50}, {"setWeight": 100}]


def _names() -> list[list[str]]:
    names, start = [], 0
    for size in STAGES:
        names.append([f"svc-{i:02d}" for i in range(start, start + size)])
        start += size
    return names


class Timeline:
    """When each Rollout's template changed and when it was Completed on it (watch arrival
    times), and when the Release was Completed."""

    def __init__(self) -> None:
        self.changed: dict[str, float] = {}
        self.completed: dict[str, float] = {}
        self.release_done: float | None = None
        self.done = asyncio.Event()

    def see_rollout(self, rollout: dict[str, Any], now: float) -> None:
        name = rollout["metadata"]["name"]
        revision = revision_of(rollout["spec"]["template"])
        status = rollout.get("status") or {}
        if name not in self.changed and status.get("stableRevision") not in (None, revision):
            self.changed[name] = now
        if (
            name in self.changed
            and name not in self.completed
            and status.get("phase") == "Completed"
            and status.get("stableRevision") == revision
        ):
            self.completed[name] = now


async def _watch(stack: Stack, path: str, see: Any) -> None:
    loop = asyncio.get_running_loop()
    listing = await stack.kube.client.get(path)
    async for event in stack.kube.client.watch(
        path, resource_version=listing["metadata"]["resourceVersion"]
    ):
        if event.type == "MODIFIED":
            see(event.object, loop.time())


async def _one_run(stack: Stack, run: int) -> tuple[float, float, int]:
    """(Release seconds, the stages' own seconds, parent history events)."""
    loop = asyncio.get_running_loop()
    timeline = Timeline()
    name = f"release-{run}"

    def see_release(release: dict[str, Any], now: float) -> None:
        if release["metadata"]["name"] == name and (release.get("status") or {}).get("phase") in (
            "Completed",
            "RolledBack",
            "Failed",
        ):
            timeline.release_done = now
            timeline.done.set()

    watches = [
        asyncio.create_task(_watch(stack, ROLLOUTS.path(stack.namespace), timeline.see_rollout)),
        asyncio.create_task(_watch(stack, RELEASES.path(stack.namespace), see_release)),
    ]
    await asyncio.sleep(0.3)  # the watches are open
    stages = [
        builders.stage(f"stage-{i}", {n: f"example/{n}:r{run}" for n in names})
        for i, names in enumerate(_names())
    ]
    started = loop.time()
    await stack.kube.apply(stack.namespace, builders.release(name, stages))
    try:
        await timeline.done.wait()
    finally:
        for watch in watches:
            watch.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
    release = await stack.kube.get("Release", stack.namespace, name)
    assert release["status"]["phase"] == "Completed", release["status"]
    assert timeline.release_done is not None
    total = timeline.release_done - started
    own = sum(max(timeline.completed[n] - timeline.changed[n] for n in names) for names in _names())
    handle = stack.client.get_workflow_handle(release["status"]["workflowId"])
    events = len((await handle.fetch_history()).events)
    return total, own, events


async def run(stack: Stack, runs: int = 3) -> list[Row]:
    every = [rollout for names in _names() for rollout in names]
    for rollout in every:
        await stack.app(rollout, replicas=2, steps=STEPS, scale_down_delay=0, abort_delay=0)
    for rollout in every:
        await stack.wait_phase(rollout, "Completed")
    totals, owns, histories = [], [], []
    for n in range(runs):
        total, own, events = await _one_run(stack, n + 1)
        totals.append(total)
        owns.append(own)
        histories.append(events)
        print(
            f"  release run {n + 1}/{runs}: {total:.1f} s, the stages' own {own:.1f} s, "
            f"{events} history events",
            flush=True,
        )
    overheads = [t - o for t, o in zip(totals, owns, strict=True)]
    share = statistics.median(o / t for o, t in zip(overheads, totals, strict=True))
    label = f"20 Rollouts in 3 stages, median of {runs}"
    return [
        Row(
            "release",
            f"Release created -> Completed ({label})",
            f"{statistics.median(totals):.1f} s",
        ),
        Row(
            "release",
            "the stages' own time (slowest Rollout per stage)",
            f"{statistics.median(owns):.1f} s",
        ),
        Row(
            "release",
            "overhead of the parent",
            f"{statistics.median(overheads):.1f} s ({100 * share:.0f}% of the Release's time)",
        ),
        Row(
            "release",
            "history events of the parent workflow",
            f"{statistics.median(histories):.0f}",
        ),
    ]
