"""The watcher's source relists after 410 Gone and keeps going after transport errors.

Uses a fake client, named as such: the real API server expires watches only after compaction,
which a test cannot schedule. The real server's 410 is covered in tests/integration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from activities.adapters.kube import WatchEvent
from activities.errors import Gone, Unavailable
from watcher.source import RolloutSource


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
