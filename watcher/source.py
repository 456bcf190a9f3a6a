"""List+watch of Rollouts that survives expired resource versions (410 Gone) by relisting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from activities import telemetry
from activities.adapters.kube import KubeClient
from activities.errors import Gone, KultaError
from activities.naming import ROLLOUTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observed:
    rollout: dict[str, Any]
    deleted: bool = False


class RolloutSource:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str | None = None,
        on_list: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        """`on_list` receives every full listing (the first, and each relist)."""
        self._kube = kube
        self._path = ROLLOUTS.path(namespace)
        self._on_list = on_list
        self.restarts = 0

    async def observe(self) -> AsyncIterator[Observed]:
        """Every Rollout once after each (re)list, then each change as it happens."""
        backoff = 0.2
        resource_version: str | None = None
        while True:
            try:
                if resource_version is None:
                    listing = await self._kube.get(self._path)
                    resource_version = listing["metadata"]["resourceVersion"]
                    items: list[dict[str, Any]] = listing.get("items", [])
                    if self._on_list is not None:
                        self._on_list(items)
                    for item in items:
                        yield Observed(item)
                async for event in self._kube.watch(self._path, resource_version=resource_version):
                    obj = event.object
                    resource_version = obj.get("metadata", {}).get(
                        "resourceVersion", resource_version
                    )
                    if event.type == "BOOKMARK":
                        continue
                    yield Observed(obj, deleted=event.type == "DELETED")
                backoff = 0.2
            except Gone:
                log.info("watch expired (410 Gone); relisting")
                resource_version = None
                self.restarts += 1
                telemetry.WATCH_RESTARTS.labels("gone").inc()
            except KultaError as err:
                log.warning("watch failed: %s; retrying in %.1fs", err, backoff)
                self.restarts += 1
                telemetry.WATCH_RESTARTS.labels("error").inc()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
