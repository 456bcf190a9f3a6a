"""What the watcher does for Releases: one workflow per Release generation, steering
annotations turned into signals, and the run of a deleted Release cancelled. Pure decisions
(`decide_release`) and the source of Release events (`ReleaseSource`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from activities.adapters.kube import KubeClient
from activities.naming import (
    ANNOTATION_ABORT,
    ANNOTATION_APPROVE,
    ANNOTATION_RESUME,
    RELEASES,
    release_workflow_id,
)
from activities.release_status import FINISHED_PHASES
from watcher.dispatch import TRUTHY, Action, CancelWorkflow, RemoveAnnotation, Signal
from watcher.listwatch import Listed, ListWatch
from watcher.source import Observed, RunningWorkflow, key_of, orphans, what_deletion_needs
from workflows.release_messages import (
    SIGNAL_ABORT_RELEASE,
    SIGNAL_APPROVE,
    SIGNAL_RESUME_RELEASE,
    ApproveRequest,
    ReleaseAbortRequest,
    ReleaseStart,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartRelease:
    workflow_id: str
    start: ReleaseStart


def decide_release(
    release: dict[str, Any], *, cluster: str, deleted: bool = False
) -> list[Action | StartRelease]:
    """The actions one observed state of a Release calls for.

    A generation whose run finished is not run again. An edit of a Release whose run has not
    finished waits for that run to end (its status names the generation it runs): two runs
    of one Release must never change the same Rollouts at once.
    """
    meta = release.get("metadata") or {}
    status = release.get("status") or {}
    ns, name, uid = meta.get("namespace", "default"), meta["name"], meta["uid"]
    running: str | None = status.get("workflowId")
    if deleted or meta.get("deletionTimestamp"):
        return [CancelWorkflow(running)] if running else []
    generation = int(meta.get("generation", 1))
    wid = release_workflow_id(ns, name, uid, generation)
    observed = status.get("observedGeneration")
    finished = status.get("phase") in FINISHED_PHASES
    actions: list[Action | StartRelease] = []
    if observed != generation and (running is None or finished or running == wid):
        actions.append(
            StartRelease(
                workflow_id=wid,
                start=ReleaseStart(
                    namespace=ns,
                    name=name,
                    uid=uid,
                    generation=generation,
                    spec=release.get("spec") or {},
                    cluster=cluster,
                ),
            )
        )
    target = running if running and not finished else wid
    annotations = meta.get("annotations") or {}
    stage = annotations.get(ANNOTATION_APPROVE)
    if stage is not None:
        if stage.strip():
            actions.append(Signal(target, SIGNAL_APPROVE, ApproveRequest(stage=stage.strip())))
        actions.append(RemoveAnnotation(ns, name, ANNOTATION_APPROVE, kind="Release"))
    for key, signal in (
        (
            ANNOTATION_ABORT,
            Signal(
                target, SIGNAL_ABORT_RELEASE, ReleaseAbortRequest(reason="aborted by annotation")
            ),
        ),
        (ANNOTATION_RESUME, Signal(target, SIGNAL_RESUME_RELEASE)),
    ):
        value = annotations.get(key)
        if value is None:
            continue
        if value.lower() in TRUTHY:
            actions.append(signal)
        actions.append(RemoveAnnotation(ns, name, key, kind="Release"))
    return actions


class ReleaseSource:
    """Every Release once after each (re)list, then each change; a Release a relist no longer
    shows is reported deleted (a deletion missed in a gap still cancels its run)."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str | None = None,
        running: Callable[[], Awaitable[list[RunningWorkflow]]] | None = None,
    ) -> None:
        """`running`: the Release workflows running now; after the first listing, those whose
        Release is not in it (deleted while no watcher ran) are reported deleted."""
        self._list_watch = ListWatch(kube, RELEASES.path(namespace))
        self._known: dict[tuple[str, str], dict[str, Any]] = {}
        self._running = running

    async def observe(self) -> AsyncIterator[Observed]:
        first_listing = True
        async for item in self._list_watch.follow():
            if isinstance(item, Listed):
                if first_listing and self._running is not None:
                    for orphan in await orphans(item.items, self._running, "Release"):
                        yield orphan
                first_listing = False
                gone = dict(self._known)
                for release in item.items:
                    gone.pop(self._remember(release), None)
                    yield Observed(release)
                for key, last in gone.items():
                    log.info("Release %s/%s is gone since the last listing", *key)
                    self._known.pop(key, None)
                    yield Observed(last, deleted=True)
                continue
            deleted = item.type == "DELETED"
            if deleted:
                self._known.pop(key_of(item.object), None)
            else:
                self._remember(item.object)
            yield Observed(item.object, deleted=deleted)

    def _remember(self, release: dict[str, Any]) -> tuple[str, str]:
        key = key_of(release)
        self._known[key] = what_deletion_needs(release)
        return key
