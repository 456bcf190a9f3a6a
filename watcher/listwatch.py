"""List, then watch from the listing's version, forever: relists after 410 Gone, resumes
after a transport error (with a backoff), and says when it last heard from the API server.
Rollouts and the Deployments they take their templates from are followed this way."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from activities import telemetry
from activities.adapters.kube import KubeClient, WatchEvent
from activities.errors import Gone, KultaError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listed:
    """A full listing: every object there is, as of `resource_version`."""

    items: list[dict[str, Any]]
    resource_version: str


class ListWatch:
    def __init__(self, kube: KubeClient, path: str) -> None:
        self._kube, self._path = kube, path
        self.restarts = 0
        # When it last heard from the API server (a listing, a watch opened, any event or
        # bookmark): the watcher's liveness check reads it.
        self.progressed_at = time.monotonic()

    async def follow(self) -> AsyncIterator[Listed | WatchEvent]:
        """A listing, then each change (bookmarks are taken in, not yielded); a listing again
        whenever the watch expired."""
        backoff = 0.2
        resource_version: str | None = None
        while True:
            try:
                if resource_version is None:
                    listing = await self._kube.get(self._path)
                    resource_version = str(listing["metadata"]["resourceVersion"])
                    self.progressed_at = time.monotonic()
                    yield Listed(listing.get("items", []), resource_version)
                self.progressed_at = time.monotonic()
                async for event in self._kube.watch(self._path, resource_version=resource_version):
                    self.progressed_at = time.monotonic()
                    resource_version = event.object.get("metadata", {}).get(
                        "resourceVersion", resource_version
                    )
                    if event.type != "BOOKMARK":
                        yield event
                backoff = 0.2
            except Gone:
                log.info("watch of %s expired (410 Gone); relisting", self._path)
                resource_version = None
                self.restarts += 1
                telemetry.WATCH_RESTARTS.labels("gone").inc()
            except KultaError as err:
                log.warning("watch of %s failed: %s; retrying in %.1fs", self._path, err, backoff)
                self.restarts += 1
                telemetry.WATCH_RESTARTS.labels("error").inc()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
