"""A stand-in for the API server's list and watch, for unit tests of the watcher's sources:
one listing per resource (the path's last segment), then the events a test puts in its queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from activities.adapters.kube import WatchEvent


class FakeListWatch:
    def __init__(self, listings: dict[str, list[dict[str, Any]]]) -> None:
        self.listings = listings
        self.events: dict[str, asyncio.Queue[WatchEvent]] = {k: asyncio.Queue() for k in listings}

    @staticmethod
    def _resource(path: str) -> str:
        return path.rstrip("/").rsplit("/", 1)[-1]

    async def get(self, path: str, params: Any = None) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "1"}, "items": self.listings[self._resource(path)]}

    async def watch(
        self, path: str, *, resource_version: str | None, **_: Any
    ) -> AsyncIterator[WatchEvent]:
        queue = self.events[self._resource(path)]
        while True:
            yield await queue.get()
