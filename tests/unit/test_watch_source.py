"""The watcher's source relists after 410 Gone and keeps going after transport errors; its
loop retries failed actions without stopping.

Uses a fake client, named as such: the real API server expires watches only after compaction,
which a test cannot schedule. The real server's 410 is covered in tests/integration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from activities.adapters.kube import WatchEvent
from activities.errors import Gone, Unavailable
from watcher import loop
from watcher.dispatch import CancelWorkflow, decide
from watcher.source import Observed, RolloutSource


def item(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}}


class FakeKube:
    """Scripted lists and watches: each watch call plays the next script entry."""

    def __init__(self, lists: list[dict[str, Any]], watches: list[list[Any]]) -> None:
        self.lists = lists
        self.watches = watches
        self.watch_versions: list[str | None] = []

    async def get(self, path: str, params: Any = None) -> dict[str, Any]:
        return self.lists.pop(0)

    async def watch(
        self, path: str, *, resource_version: str | None, **_: Any
    ) -> AsyncIterator[WatchEvent]:
        self.watch_versions.append(resource_version)
        for entry in self.watches.pop(0):
            if isinstance(entry, Exception):
                raise entry
            yield entry


async def test_relists_after_gone_and_resumes_from_the_last_version() -> None:
    fake = FakeKube(
        lists=[
            {"metadata": {"resourceVersion": "10"}, "items": [item("a", "9")]},
            {"metadata": {"resourceVersion": "50"}, "items": [item("a", "40"), item("b", "45")]},
        ],
        watches=[
            [WatchEvent("MODIFIED", item("a", "11")), Gone("too old")],
            [WatchEvent("BOOKMARK", item("", "55")), Unavailable("connection reset")],
            [WatchEvent("DELETED", item("b", "60"))],
        ],
    )
    source = RolloutSource(fake)  # type: ignore[arg-type]
    seen = []
    async for observed in source.observe():
        seen.append((observed.rollout["metadata"]["name"], observed.deleted))
        if observed.deleted:
            break
    assert seen == [("a", False), ("a", False), ("a", False), ("b", False), ("b", True)]
    # First watch from the list, relist after 410, then resume after the bookmark, not relist.
    assert fake.watch_versions == ["10", "50", "55"]
    assert source.restarts == 2


def rollout(name: str, rv: str, workflow_id: str | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": rv},
        "status": {"workflowId": workflow_id} if workflow_id else {},
    }


async def test_a_relist_reports_rollouts_deleted_in_the_gap() -> None:
    fake = FakeKube(
        lists=[
            {"metadata": {"resourceVersion": "10"}, "items": [rollout("a", "9", "wf-a")]},
            {"metadata": {"resourceVersion": "50"}, "items": []},  # "a" went during the gap
        ],
        watches=[[Gone("too old")], []],
    )
    source = RolloutSource(fake)  # type: ignore[arg-type]
    seen = []
    async for observed in source.observe():
        seen.append((observed.rollout["metadata"]["name"], observed.deleted))
        if observed.deleted:
            assert decide(observed.rollout, deleted=True) == [CancelWorkflow("wf-a")]
            break
    assert seen == [("a", False), ("a", True)]


class FlakyRunner:
    """Fails the first `failures` actions with a Temporal RPC error, then applies them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.applied: list[Any] = []

    async def apply(self, action: Any) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RPCError("temporal unavailable", RPCStatusCode.UNAVAILABLE, b"")
        self.applied.append(action)


async def test_a_failed_action_is_retried_while_the_loop_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loop, "FIRST_BACKOFF", 0.01)
    runner = FlakyRunner(failures=3)
    events = [Observed(rollout("a", "1", "wf-a"), deleted=True)]
    source = ScriptedSource(events)
    task = asyncio.create_task(loop.watch_forever(runner, source))  # type: ignore[arg-type]
    for _ in range(200):
        if runner.applied:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert runner.applied == [CancelWorkflow("wf-a")] and runner.failures == 0


class ScriptedSource:
    """Yields its events, then waits forever like a quiet watch."""

    def __init__(self, events: list[Observed]) -> None:
        self.events = events

    async def observe(self) -> AsyncIterator[Observed]:
        for event in self.events:
            yield event
        await asyncio.Event().wait()


def test_a_workflow_id_names_its_rollout() -> None:
    from activities.naming import parse_workflow_id, workflow_id

    assert parse_workflow_id(workflow_id("ns", "app", "1234567890ab", "rev")) == (
        "ns",
        "app",
        "12345678",
    )
    assert parse_workflow_id("someone-else/x") is None
