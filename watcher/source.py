"""What the watcher observes: every Rollout (list+watch, relisting after 410 Gone), each with
its Deployment's template when it names one and its config copies when it tracks its config,
and the runs whose Rollout is gone."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from activities.adapters.kube import KubeClient
from activities.config_copies import tracked_kinds
from activities.naming import ROLLOUTS, parse_release_workflow_id, parse_workflow_id
from watcher.listwatch import Listed, ListWatch
from watcher.workloads import (
    DataDigests,
    DeploymentTemplates,
    Key,
    Projected,
    referenced_deployment,
    with_config,
    with_template,
)

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
        configs: Sequence[DataDigests] = (),
    ) -> None:
        """`on_list` receives every full listing (the first, and each relist). `running`
        names the workflows running now: after the first listing, those whose Rollout is not
        in it (deleted while no watcher ran) are reported deleted, so they are cancelled.
        With `templates`, a Rollout with `spec.workloadRef` is observed with its Deployment's
        template, and again whenever that template changes. With `configs`, a Rollout with
        `spec.trackConfig` is observed with its template naming copies of the config it
        references (`activities/config_copies.py`), and again whenever that config changes."""
        self._running = running
        self._list_watch = ListWatch(kube, ROLLOUTS.path(namespace))
        self._on_list = on_list
        self._templates = templates
        self._configs = list(configs)
        self._resolvers: list[Projected] = [r for r in (templates, *self._configs) if r is not None]
        self._warned: set[tuple[str, str]] = set()
        # What each known Rollout's deletion needs (decide(deleted=True)): a relist that no
        # longer shows one reports it deleted, so a deletion missed in a gap cancels its run.
        self._known: dict[tuple[str, str], dict[str, Any]] = {}
        # The latest state of each Rollout that references something (a Deployment, config),
        # by what it references, and what each one references (so a new state replaces the
        # old one in one step).
        self._referring: dict[tuple[Projected, Key], dict[tuple[str, str], dict[str, Any]]] = {}
        self._names: dict[tuple[str, str], set[tuple[Projected, Key]]] = {}

    @property
    def restarts(self) -> int:
        return self._list_watch.restarts

    @property
    def progressed_at(self) -> float:
        """When the source last heard from the API server, on its quietest watch (the
        process's liveness check reads it)."""
        at = self._list_watch.progressed_at
        return min([at, *(r.progressed_at for r in self._resolvers)])

    @progressed_at.setter
    def progressed_at(self, value: float) -> None:
        self._list_watch.progressed_at = value
        for resolver in self._resolvers:
            resolver.progressed_at = value

    async def observe(self) -> AsyncIterator[Observed]:
        """Every Rollout once after each (re)list, then each change as it happens."""
        if not self._resolvers:
            async for observed in self._rollouts():
                yield observed
            return
        async for observed in self._with_references():
            yield observed

    async def _with_references(self) -> AsyncIterator[Observed]:
        """Rollout events with what they reference resolved, merged with the changes of what
        they reference; no Rollout is decided before those were listed (else a Rollout whose
        Deployment exists would be reported as naming a missing one)."""
        changes = {r: r.changes().__aiter__() for r in self._resolvers}
        waiting: dict[asyncio.Future[Any], Projected] = {
            asyncio.ensure_future(c.__anext__()): r for r, c in changes.items()
        }
        unlisted = set(changes)
        deadline = time.monotonic() + FIRST_LISTING_SECONDS
        while unlisted:  # the first listings, or give up waiting (they are retried meanwhile)
            done, _ = await asyncio.wait(
                set(waiting),
                timeout=max(0.0, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                log.warning(
                    "%s not listed after %.0f s: Rollouts that reference them are decided "
                    "without them until they are",
                    ", ".join(sorted(r.describe for r in unlisted)),
                    FIRST_LISTING_SECONDS,
                )
                break
            for listing in done:
                listed = waiting.pop(listing)
                if listing.result() is None:
                    unlisted.discard(listed)
                waiting[asyncio.ensure_future(changes[listed].__anext__())] = listed
        rollouts = self._rollouts().__aiter__()
        pending: dict[asyncio.Future[Any], Projected | None] = {
            **waiting,
            asyncio.ensure_future(rollouts.__anext__()): None,
        }
        try:
            while True:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    resolver = pending.pop(task)
                    if resolver is None:
                        pending[asyncio.ensure_future(rollouts.__anext__())] = None
                        yield self._resolved(task.result())
                        continue
                    pending[asyncio.ensure_future(changes[resolver].__anext__())] = resolver
                    key = task.result()
                    referring = self._referring.get((resolver, key), {}) if key else {}
                    for rollout in list(referring.values()):
                        yield self._resolved(Observed(rollout))
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for change in changes.values():
                await change.aclose()  # type: ignore[attr-defined]
            await rollouts.aclose()  # type: ignore[attr-defined]

    def _resolved(self, observed: Observed) -> Observed:
        """The Rollout with its Deployment's template and its config copies, remembered under
        everything it references."""
        rollout, key = observed.rollout, key_of(observed.rollout)
        for reference in self._names.pop(key, set()):
            self._referring[reference].pop(key, None)
            if not self._referring[reference]:
                del self._referring[reference]
        if observed.deleted:
            return observed
        references: set[tuple[Projected, Key]] = set()
        resolved = rollout
        if self._templates is not None and (deployment := referenced_deployment(rollout)):
            references.add((self._templates, deployment))
            resolved = with_template(resolved, self._templates.template(deployment))
        if self._configs or tracked_kinds(rollout):
            self._warn_untracked(rollout)
            resolved, watched = with_config(resolved, self._configs)
            by_kind = {source.kind: source for source in self._configs}
            references |= {(by_kind[kind], ref) for kind, ref in watched}
        if references:
            self._names[key] = references
            for reference in references:
                self._referring.setdefault(reference, {})[key] = rollout
        return Observed(resolved) if resolved is not rollout else observed

    def _warn_untracked(self, rollout: dict[str, Any]) -> None:
        """A Rollout asking to track a kind of config this watcher does not follow (Secrets
        are opt-in for the watcher too: `KULTA_TRACK_SECRETS`), said once per Rollout."""
        followed = {source.kind for source in self._configs}
        missing = tracked_kinds(rollout) - followed
        key = key_of(rollout)
        if missing and key not in self._warned:
            self._warned.add(key)
            log.warning(
                "%s/%s tracks %s, which this watcher does not follow: those references are "
                "left as they are",
                *key,
                " and ".join(f"{kind}s" for kind in sorted(missing)),
            )

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
