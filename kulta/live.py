"""What `kulta get --watch` follows: one Rollout and its ReplicaSets, kept current by watches.

Watches, not polling: the API server pushes each change, so the view costs two open connections
however many pods there are (ReplicaSet status carries the ready counts; pods are never listed).
A burst of changes becomes one snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from activities.adapters.kube import KubeClient
from activities.errors import Gone, KultaError
from activities.naming import LABEL_ROLLOUT, REPLICASETS, ROLLOUTS

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]


@dataclass
class Snapshot:
    rollout: JsonObject | None = None  # None once deleted
    replicasets: dict[str, JsonObject] = field(default_factory=dict)


async def follow(kube: KubeClient, namespace: str, name: str) -> AsyncIterator[Snapshot]:
    """A snapshot after the first listing and after every burst of changes, until cancelled."""
    snapshot = Snapshot()
    changed = asyncio.Event()

    async def rollout() -> None:
        path = ROLLOUTS.path(namespace)
        async for kind, objects in list_and_watch(kube, path, f"metadata.name={name}", None):
            snapshot.rollout = None if kind == "DELETED" else (objects[-1] if objects else None)
            changed.set()

    async def replicasets() -> None:
        path = REPLICASETS.path(namespace)
        async for kind, objects in list_and_watch(kube, path, None, f"{LABEL_ROLLOUT}={name}"):
            if kind == "LIST":
                snapshot.replicasets.clear()
            for obj in objects:
                if kind == "DELETED":
                    snapshot.replicasets.pop(obj["metadata"]["name"], None)
                else:
                    snapshot.replicasets[obj["metadata"]["name"]] = obj
            changed.set()

    tasks = [asyncio.create_task(rollout()), asyncio.create_task(replicasets())]
    try:
        while True:
            await changed.wait()
            await asyncio.sleep(0.05)  # let the rest of a burst arrive
            changed.clear()
            yield snapshot
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, KultaError):
                await task


async def list_and_watch(
    kube: KubeClient, path: str, field_selector: str | None, label_selector: str | None
) -> AsyncIterator[tuple[str, list[JsonObject]]]:
    """("LIST", items) after each (re)list, then (event type, [object]) per change."""
    params = {
        key: value
        for key, value in (("fieldSelector", field_selector), ("labelSelector", label_selector))
        if value
    }
    backoff = 0.5
    while True:
        try:
            listing = await kube.get(path, params=params)
            yield "LIST", listing.get("items", [])
            version = listing["metadata"]["resourceVersion"]
            while True:
                async for event in kube.watch(path, resource_version=version, params=params):
                    version = event.object.get("metadata", {}).get("resourceVersion", version)
                    if event.type in ("ADDED", "MODIFIED", "DELETED"):
                        yield event.type, [event.object]
                backoff = 0.5
        except Gone:
            continue
        except KultaError as err:
            log.debug("watch of %s failed: %s; relisting in %.1fs", path, err, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
