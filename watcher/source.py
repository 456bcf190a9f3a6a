"""List+watch of Rollouts that survives expired resource versions (410 Gone) by relisting."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from activities import telemetry
from activities.adapters.kube import KubeClient
from activities.errors import Gone, KultaError
from activities.naming import ROLLOUTS, parse_workflow_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observed:
    rollout: dict[str, Any]
    deleted: bool = False


@dataclass(frozen=True)
class RunningWorkflow:
    namespace: str
    name: str
    uid_prefix: str
    workflow_id: str


def running_workflow(workflow_id: str) -> RunningWorkflow | None:
    """The running workflow of the Rollout its id names (None: not a kulta workflow id)."""
    parsed = parse_workflow_id(workflow_id)
    return None if parsed is None else RunningWorkflow(*parsed, workflow_id)


class RolloutSource:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str | None = None,
        on_list: Callable[[list[dict[str, Any]]], None] | None = None,
        running: Callable[[], Awaitable[list[RunningWorkflow]]] | None = None,
    ) -> None:
        """`on_list` receives every full listing (the first, and each relist). `running`
        names the workflows running now: after the first listing, those whose Rollout is not
        in it (deleted while no watcher ran) are reported deleted, so they are cancelled."""
        self._running = running
        self._kube = kube
        self._path = ROLLOUTS.path(namespace)
        self._on_list = on_list
        self.restarts = 0
        # When the source last heard from the API server (a listing, a watch opened, any event
        # or bookmark): the process's liveness check reads it.
        self.progressed_at = time.monotonic()
        # What each known Rollout's deletion needs (decide(deleted=True)): a relist that no
        # longer shows one reports it deleted, so a deletion missed in a gap cancels its run.
        self._known: dict[tuple[str, str], dict[str, Any]] = {}

    async def observe(self) -> AsyncIterator[Observed]:
        """Every Rollout once after each (re)list, then each change as it happens."""
        backoff = 0.2
        resource_version: str | None = None
        first_listing = True
        while True:
            try:
                if resource_version is None:
                    listing = await self._kube.get(self._path)
                    resource_version = listing["metadata"]["resourceVersion"]
                    items: list[dict[str, Any]] = listing.get("items", [])
                    self.progressed_at = time.monotonic()
                    if self._on_list is not None:
                        self._on_list(items)
                    gone = dict(self._known)
                    for item in items:
                        gone.pop(self._remember(item), None)
                        yield Observed(item)
                    for key, last in gone.items():
                        log.info("%s/%s is gone since the last listing", *key)
                        self._known.pop(key, None)
                        yield Observed(last, deleted=True)
                    if first_listing:
                        first_listing = False
                        for orphan in await self._orphans(items):
                            yield orphan
                self.progressed_at = time.monotonic()
                async for event in self._kube.watch(self._path, resource_version=resource_version):
                    self.progressed_at = time.monotonic()
                    obj = event.object
                    resource_version = obj.get("metadata", {}).get(
                        "resourceVersion", resource_version
                    )
                    if event.type == "BOOKMARK":
                        continue
                    deleted = event.type == "DELETED"
                    if deleted:
                        self._known.pop(key_of(obj), None)
                    else:
                        self._remember(obj)
                    yield Observed(obj, deleted=deleted)
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

    async def _orphans(self, items: list[dict[str, Any]]) -> list[Observed]:
        """Running workflows whose Rollout (by namespace, name and uid) is not listed."""
        if self._running is None:
            return []
        listed = {
            (m.get("namespace", "default"), m.get("name", ""), m.get("uid", "")[:8])
            for m in (item.get("metadata") or {} for item in items)
        }
        try:
            running = await self._running()
        except Exception as err:  # Temporal down: the next start of the watcher sweeps again
            log.warning("could not list running workflows to find orphans: %s", err)
            return []
        orphans = [w for w in running if (w.namespace, w.name, w.uid_prefix) not in listed]
        for w in orphans:
            log.info("%s/%s is gone: cancelling %s", w.namespace, w.name, w.workflow_id)
        return [
            Observed(
                {
                    "metadata": {"namespace": w.namespace, "name": w.name, "uid": w.uid_prefix},
                    "status": {"workflowId": w.workflow_id},
                },
                deleted=True,
            )
            for w in orphans
        ]

    def _remember(self, rollout: dict[str, Any]) -> tuple[str, str]:
        meta = rollout.get("metadata") or {}
        key = key_of(rollout)
        self._known[key] = {
            "metadata": {"namespace": key[0], "name": key[1], "uid": meta.get("uid", "")},
            "status": {"workflowId": (rollout.get("status") or {}).get("workflowId")},
        }
        return key


def key_of(rollout: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of a Rollout."""
    meta = rollout.get("metadata") or {}
    return (meta.get("namespace", "default"), meta.get("name", ""))
