"""What the watcher observes: every Rollout (list+watch, relisting after 410 Gone), each with
its Deployment's template when it names one, and the runs whose Rollout is gone."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from activities.adapters.kube import KubeClient
from activities.naming import ROLLOUTS, parse_release_workflow_id, parse_workflow_id
from watcher.listwatch import Listed, ListWatch
from watcher.workloads import DeploymentTemplates, Key, referenced_deployment, with_template

log = logging.getLogger(__name__)

# How long the first Rollouts wait for the Deployments' listing (say, the watcher may not read
# them): after that they go on, and a workloadRef Rollout is decided again once it comes.
FIRST_LISTING_SECONDS = 10.0


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
    """The running workflow of the Rollout (or Release) its id names (None: not a kulta
    workflow id)."""
    parsed = parse_workflow_id(workflow_id) or parse_release_workflow_id(workflow_id)
    return None if parsed is None else RunningWorkflow(*parsed, workflow_id)


class RolloutSource:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str | None = None,
        on_list: Callable[[list[dict[str, Any]]], None] | None = None,
        running: Callable[[], Awaitable[list[RunningWorkflow]]] | None = None,
        templates: DeploymentTemplates | None = None,
    ) -> None:
        """`on_list` receives every full listing (the first, and each relist). `running`
        names the workflows running now: after the first listing, those whose Rollout is not
        in it (deleted while no watcher ran) are reported deleted, so they are cancelled.
        With `templates`, a Rollout with `spec.workloadRef` is observed with its Deployment's
        template, and again whenever that template changes."""
        self._running = running
        self._list_watch = ListWatch(kube, ROLLOUTS.path(namespace))
        self._on_list = on_list
        self._templates = templates
        # What each known Rollout's deletion needs (decide(deleted=True)): a relist that no
        # longer shows one reports it deleted, so a deletion missed in a gap cancels its run.
        self._known: dict[tuple[str, str], dict[str, Any]] = {}
        # The latest state of each Rollout that names a Deployment, by that Deployment, and
        # which Deployment each one names (so a new state replaces the old one in one step).
        self._referring: dict[Key, dict[tuple[str, str], dict[str, Any]]] = {}
        self._names: dict[tuple[str, str], Key] = {}

    @property
    def restarts(self) -> int:
        return self._list_watch.restarts

    @property
    def progressed_at(self) -> float:
        """When the source last heard from the API server, on its quietest watch (the
        process's liveness check reads it)."""
        at = self._list_watch.progressed_at
        return at if self._templates is None else min(at, self._templates.progressed_at)

    @progressed_at.setter
    def progressed_at(self, value: float) -> None:
        self._list_watch.progressed_at = value
        if self._templates is not None:
            self._templates.progressed_at = value

    async def observe(self) -> AsyncIterator[Observed]:
        """Every Rollout once after each (re)list, then each change as it happens."""
        if self._templates is None:
            async for observed in self._rollouts():
                yield observed
            return
        async for observed in self._with_templates(self._templates):
            yield observed

    async def _with_templates(self, templates: DeploymentTemplates) -> AsyncIterator[Observed]:
        """Rollout events with their templates resolved, merged with template changes; no
        Rollout is decided before the Deployments were listed (else a Rollout whose
        Deployment exists would be reported as naming a missing one)."""
        changes = templates.changes().__aiter__()
        rollouts = self._rollouts().__aiter__()
        change: asyncio.Future[Any] = asyncio.ensure_future(changes.__anext__())
        deadline = time.monotonic() + FIRST_LISTING_SECONDS
        while True:  # the first listing, or give up waiting for it (it is retried meanwhile)
            first, _ = await asyncio.wait({change}, timeout=max(0.0, deadline - time.monotonic()))
            if not first:
                log.warning(
                    "Deployments not listed after %.0f s: Rollouts with a workloadRef are "
                    "decided without their template until they are",
                    FIRST_LISTING_SECONDS,
                )
                break
            listed = change.result() is None
            change = asyncio.ensure_future(changes.__anext__())
            if listed:
                break
        pending: dict[asyncio.Future[Any], str] = {
            change: "template",
            asyncio.ensure_future(rollouts.__anext__()): "rollout",
        }
        try:
            while True:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    kind = pending.pop(task)
                    if kind == "rollout":
                        pending[asyncio.ensure_future(rollouts.__anext__())] = kind
                        yield self._resolved(task.result(), templates)
                        continue
                    pending[asyncio.ensure_future(changes.__anext__())] = kind
                    key = task.result()
                    for rollout in list(self._referring.get(key, {}).values()) if key else []:
                        yield self._resolved(Observed(rollout), templates)
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await changes.aclose()  # type: ignore[attr-defined]
            await rollouts.aclose()  # type: ignore[attr-defined]

    def _resolved(self, observed: Observed, templates: DeploymentTemplates) -> Observed:
        rollout, key = observed.rollout, key_of(observed.rollout)
        if (named := self._names.pop(key, None)) is not None:
            self._referring[named].pop(key, None)
            if not self._referring[named]:
                del self._referring[named]
        deployment = referenced_deployment(rollout)
        if deployment is None or observed.deleted:
            return observed
        self._names[key] = deployment
        self._referring.setdefault(deployment, {})[key] = rollout
        return Observed(with_template(rollout, templates.template(deployment)))

    async def _rollouts(self) -> AsyncIterator[Observed]:
        first_listing = True
        async for item in self._list_watch.follow():
            if isinstance(item, Listed):
                if self._on_list is not None:
                    self._on_list(item.items)
                gone = dict(self._known)
                for rollout in item.items:
                    gone.pop(self._remember(rollout), None)
                    yield Observed(rollout)
                for key, last in gone.items():
                    log.info("%s/%s is gone since the last listing", *key)
                    self._known.pop(key, None)
                    yield Observed(last, deleted=True)
                if first_listing:
                    first_listing = False
                    for orphan in await self._orphans(item.items):
                        yield orphan
                continue
            obj = item.object
            deleted = item.type == "DELETED"
            if deleted:
                self._known.pop(key_of(obj), None)
            else:
                self._remember(obj)
            yield Observed(obj, deleted=deleted)

    async def _orphans(self, items: list[dict[str, Any]]) -> list[Observed]:
        return [] if self._running is None else await orphans(items, self._running, "Rollout")

    def _remember(self, rollout: dict[str, Any]) -> tuple[str, str]:
        key = key_of(rollout)
        self._known[key] = what_deletion_needs(rollout)
        return key


async def orphans(
    items: list[dict[str, Any]],
    running: Callable[[], Awaitable[list[RunningWorkflow]]],
    kind: str,
) -> list[Observed]:
    """The running workflows whose object (by namespace, name and uid) is not in `items` (a
    first listing): deleted while no watcher ran, so they are reported deleted (cancelled)."""
    listed = {
        (m.get("namespace", "default"), m.get("name", ""), m.get("uid", "")[:8])
        for m in (item.get("metadata") or {} for item in items)
    }
    try:
        found = await running()
    except Exception as err:  # Temporal down: the next start of the watcher sweeps again
        log.warning("could not list running workflows to find orphans: %s", err)
        return []
    gone = [w for w in found if (w.namespace, w.name, w.uid_prefix) not in listed]
    for w in gone:
        log.info("%s %s/%s is gone: cancelling %s", kind, w.namespace, w.name, w.workflow_id)
    return [
        Observed(
            {
                "metadata": {"namespace": w.namespace, "name": w.name, "uid": w.uid_prefix},
                "status": {"workflowId": w.workflow_id},
            },
            deleted=True,
        )
        for w in gone
    ]


def what_deletion_needs(obj: dict[str, Any]) -> dict[str, Any]:
    """What deciding a Rollout's (or Release's) deletion reads: its name, uid and workflow."""
    ns, name = key_of(obj)
    return {
        "metadata": {
            "namespace": ns,
            "name": name,
            "uid": (obj.get("metadata") or {}).get("uid", ""),
        },
        "status": {"workflowId": (obj.get("status") or {}).get("workflowId")},
    }


def key_of(rollout: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of a Rollout."""
    meta = rollout.get("metadata") or {}
    return (meta.get("namespace", "default"), meta.get("name", ""))
