"""Which workflow may mutate a Rollout: claimed in the Rollout's status, handed over by cancel.

A new revision's workflow asks the previous owner to cancel (it compensates: traffic back to
stable, its canary scaled down), waits until that workflow has closed, and only then records
itself as owner with a resourceVersion precondition. So at most one workflow mutates a Rollout.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.adapters.kube import KubeClient
from activities.config_copies import (
    Kind,
    data_digest,
    referenced,
    resource_of,
    tracked_kinds,
    with_copies,
)
from activities.contracts import ClaimInput, ClaimResult
from activities.errors import Conflict, NotFound
from activities.naming import DEPLOYMENTS, ROLLOUTS, revision_of

HEARTBEAT_SECONDS = 5.0
MAX_CLAIM_ATTEMPTS = 20


class OwnershipActivities:
    def __init__(self, kube: KubeClient, temporal: Client) -> None:
        self._kube = kube
        self._temporal = temporal

    @activity.defn(name="claim_rollout")
    async def claim_rollout(self, inp: ClaimInput) -> ClaimResult:
        """Makes `inp.workflow_id` the Rollout's owner once any previous owner has closed.

        Idempotent: claiming a Rollout this workflow already owns changes nothing.
        """
        ref = inp.rollout
        path = ROLLOUTS.path(ref.namespace, ref.name)
        previous: str | None = None
        closed: set[str] = set()
        for _ in range(MAX_CLAIM_ATTEMPTS):
            try:
                rollout = await self._kube.get(path)
            except NotFound:
                return ClaimResult(claimed=False, reason="RolloutDeleted")
            meta = rollout["metadata"]
            if meta.get("uid") != ref.uid:
                return ClaimResult(claimed=False, reason="RolloutDeleted")
            current = revision_of(await self._template_of(rollout, set(inp.config_kinds)))
            status = rollout.get("status") or {}
            if current != inp.revision:
                return ClaimResult(claimed=False, reason="Superseded", current_revision=current)
            owner = status.get("workflowId")
            if owner and owner != inp.workflow_id and owner not in closed:
                previous = owner
                await self._cancel_and_wait_closed(owner)
                closed.add(owner)
                continue  # the previous owner may have written status while compensating
            if owner != inp.workflow_id:
                try:
                    await self._kube.patch(
                        path + "/status",
                        {
                            "metadata": {"resourceVersion": meta["resourceVersion"]},
                            "status": {"workflowId": inp.workflow_id},
                        },
                    )
                except Conflict:
                    continue
            return ClaimResult(
                claimed=True,
                stable_revision=status.get("stableRevision"),
                phase=status.get("phase"),
                previous_owner=previous,
                current_revision=current,
            )
        raise Conflict(f"Rollout {ref.namespace}/{ref.name} ownership kept changing; will retry")

    async def _template_of(self, rollout: dict[str, Any], kinds: set[Kind]) -> dict[str, Any]:
        """The template the Rollout rolls out now, as the watcher resolves it: its own, or its
        Deployment's (workloadRef; none while that Deployment is missing), naming the copies
        of the config of `kinds` it tracks (trackConfig; those the watcher follows)."""
        spec = rollout.get("spec") or {}
        namespace = rollout["metadata"].get("namespace", "default")
        ref = spec.get("workloadRef")
        template = dict(spec.get("template") or {})
        if isinstance(ref, dict) and ref.get("name"):
            try:
                deployment = await self._kube.get(DEPLOYMENTS.path(namespace, str(ref["name"])))
            except NotFound:
                return {}
            template = dict((deployment.get("spec") or {}).get("template") or {})
        digests = {}
        for config in referenced(template, tracked_kinds(rollout) & kinds):
            resource = resource_of(config.kind)
            try:
                digests[config] = data_digest(
                    await self._kube.get(resource.path(namespace, config.name))
                )
            except NotFound:
                continue  # left as referenced, as the watcher leaves it
        return with_copies(template, digests)

    async def _cancel_and_wait_closed(self, workflow_id: str) -> None:
        """Requests cancellation of a workflow and waits until it has closed.

        Idempotent: cancelling a closed or unknown workflow is ignored.
        """
        handle = self._temporal.get_workflow_handle(workflow_id)
        try:
            await handle.cancel()
        except RPCError as err:
            if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
        # result() long-polls the server until the workflow closes (following continue-as-new);
        # heartbeats meanwhile let Temporal notice a dead worker.
        closed = asyncio.create_task(handle.result())
        try:
            while True:
                done, _ = await asyncio.wait({closed}, timeout=HEARTBEAT_SECONDS)
                if done:
                    error = closed.exception()
                    # Any outcome of the workflow means it has closed; an RPC failure other than
                    # "not found" says nothing about it, so the activity fails and is retried.
                    if isinstance(error, RPCError) and error.status != RPCStatusCode.NOT_FOUND:
                        raise error
                    return
                activity.heartbeat()
        finally:
            if not closed.done():
                closed.cancel()
            with contextlib.suppress(BaseException):
                await closed
