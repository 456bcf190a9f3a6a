"""What a Release does to the Rollouts it ships: claim each one, change its pod template, follow
its status, promote it through a rollback, and write the Release's own status.

Every activity is idempotent. A Release never touches ReplicaSets, Services or routes: each
Rollout's own workflow turns a template change into a rollout (and a change back into a
rollback). The member activities run on the worker of the Rollout's cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

from activities.adapters.kube import KubeClient
from activities.config_copies import tracked_kinds
from activities.contracts import RolloutRef
from activities.errors import AlreadyExists, Conflict, Invalid, NotFound
from activities.naming import (
    ANNOTATION_PROMOTE,
    ANNOTATION_RELEASE,
    EVENTS,
    RELEASES,
    ROLLOUTS,
    parse_revision,
    revision_of,
)
from activities.release_contracts import (
    ApplyTemplateInput,
    ApplyTemplateResult,
    ClaimMemberInput,
    ClaimMemberResult,
    FollowInput,
    MemberObservation,
    MemberRef,
    MemberTemplate,
    PromoteMemberInput,
    PublishReleaseStatusInput,
)
from activities.status import build_event
from activities.templates import merge_diff

FIRST_POLL_SECONDS = 0.5
# A stage is done as soon as its slowest Rollout is seen done: this bounds how late that is.
MAX_POLL_SECONDS = 2.0


class EditedByHand(Invalid):
    """The Rollout's template is neither what the Release read nor what it wrote."""


class UnsupportedRollout(Invalid):
    """A Rollout a Release cannot change (its template lives in a Deployment, or its revisions
    are made from its config too)."""


def _pointer(key: str) -> str:
    return "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")


class ReleaseMemberActivities:
    """The activities on one cluster's Rollouts."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    @activity.defn(name="claim_release_member")
    async def claim(self, inp: ClaimMemberInput) -> ClaimMemberResult:
        """Marks the Rollout as this Release's (ANNOTATION_RELEASE), unless another holds it.

        Raises:
            NotFound: no such Rollout.
        """
        path = ROLLOUTS.path(inp.member.namespace, inp.member.name)
        for _ in range(10):
            rollout = await self._kube.get(path)
            owner = (rollout["metadata"].get("annotations") or {}).get(ANNOTATION_RELEASE)
            if owner == inp.owner:
                return ClaimMemberResult(claimed=True, owner=owner)
            if owner:
                return ClaimMemberResult(claimed=False, owner=owner)
            try:  # only if still unclaimed: two Releases racing for it get one owner
                await self._kube.patch(
                    path,
                    {
                        "metadata": {
                            "annotations": {ANNOTATION_RELEASE: inp.owner},
                            "resourceVersion": rollout["metadata"]["resourceVersion"],
                        }
                    },
                )
            except Conflict:
                continue
            return ClaimMemberResult(claimed=True, owner=inp.owner)
        raise Conflict(f"{inp.member.label()} kept changing while it was claimed")

    @activity.defn(name="release_release_member")
    async def release(self, inp: ClaimMemberInput) -> bool:
        """Removes this Release's claim (another owner's is left alone); False: no claim."""
        path = ROLLOUTS.path(inp.member.namespace, inp.member.name)
        try:
            await self._kube.patch(
                path,
                [
                    {"op": "test", "path": _pointer(ANNOTATION_RELEASE), "value": inp.owner},
                    {"op": "remove", "path": _pointer(ANNOTATION_RELEASE)},
                ],
                patch_type="json",
            )
        except (NotFound, Invalid):  # gone, or the test failed: not (or no longer) ours
            return False
        return True

    @activity.defn(name="read_release_member")
    async def read(self, member: MemberRef) -> MemberTemplate:
        rollout = await self._kube.get(ROLLOUTS.path(member.namespace, member.name))
        return self._template(member, rollout)

    def _template(self, member: MemberRef, rollout: dict[str, Any]) -> MemberTemplate:
        """Raises:
        Invalid: the Rollout takes its template from a Deployment (workloadRef), which only
        the Deployment's owner changes (kulta may not write Deployments)."""
        spec = rollout.get("spec") or {}
        ref = spec.get("workloadRef")
        if ref:
            raise UnsupportedRollout(
                f"{member.label()} takes its template from Deployment {ref.get('name')} "
                "(workloadRef): a Release changes Rollout templates only; change the "
                "Deployment where it is managed"
            )
        if tracked_kinds(rollout):
            raise UnsupportedRollout(
                f"{member.label()} tracks its config (trackConfig): its revisions include its "
                "ConfigMaps' and Secrets' data, which a Release does not change; release it on "
                "its own"
            )
        template = spec.get("template") or {}
        return MemberTemplate(template=template, revision=revision_of(template))

    @activity.defn(name="apply_release_member")
    async def apply(self, inp: ApplyTemplateInput) -> ApplyTemplateResult:
        """Writes the new template where it lives, only over the one read before.

        Raises:
            EditedByHand: the template changed since it was read (to something else).
            Invalid: the API server refused the template.
        """
        wanted = revision_of(inp.template)
        for _ in range(10):
            path = ROLLOUTS.path(inp.member.namespace, inp.member.name)
            rollout = await self._kube.get(path)
            current = self._template(inp.member, rollout)
            if current.revision == wanted:
                return ApplyTemplateResult(revision=wanted, changed=False)
            if current.revision != inp.expected.revision:
                raise EditedByHand(
                    f"{inp.member.label()}: its template changed (revision {current.revision}) "
                    f"after the Release read it (revision {inp.expected.revision})"
                )
            version = rollout["metadata"]["resourceVersion"]
            try:  # a resourceVersion precondition: a write in between is a 409, read again
                stored = await self._kube.patch(
                    path,
                    {
                        "metadata": {"resourceVersion": version},
                        "spec": {"template": merge_diff(current.template, inp.template)},
                    },
                )
            except Conflict:
                continue
            revision = revision_of(stored["spec"]["template"])
            return ApplyTemplateResult(revision=revision, changed=True)
        raise Conflict(f"{inp.member.label()} kept changing while its template was written")

    @activity.defn(name="follow_release_member")
    async def follow(self, inp: FollowInput) -> MemberObservation:
        """The Rollout's state once it differs from `inp.last` (or after `max_wait_seconds`),
        heartbeating meanwhile. Polled (0.5 s, doubling to 2 s while nothing changes): a watch
        would need the worker to list and watch every Rollout, which it may not."""
        member = inp.member
        deadline = time.monotonic() + inp.max_wait_seconds
        pause = FIRST_POLL_SECONDS
        while True:
            rollout = await self._kube.get(ROLLOUTS.path(member.namespace, member.name))
            seen = self._observe(rollout)
            if seen != inp.last or time.monotonic() >= deadline:
                return seen
            activity.heartbeat()
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, MAX_POLL_SECONDS)

    def _observe(self, rollout: dict[str, Any]) -> MemberObservation:
        status = rollout.get("status") or {}
        annotations = rollout["metadata"].get("annotations") or {}
        owner = status.get("workflowId")
        template = (rollout.get("spec") or {}).get("template") or {}
        return MemberObservation(
            phase=status.get("phase"),
            message=status.get("message"),
            step=status.get("currentStepIndex"),
            step_count=status.get("stepCount"),
            weight=status.get("currentWeight"),
            stable_revision=status.get("stableRevision"),
            running_revision=parse_revision(owner) if owner else None,
            workflow_id=owner,
            template_revision=revision_of(template),
            paused=bool(status.get("pauseStartTime")) or status.get("phase") == "Paused",
            promote_pending=ANNOTATION_PROMOTE in annotations,
        )

    @activity.defn(name="promote_release_member")
    async def promote(self, inp: PromoteMemberInput) -> bool:
        """Promotes the Rollout fully (its own promote annotation), so a rollback the Release
        started does not wait in the Rollout's pauses."""
        path = ROLLOUTS.path(inp.member.namespace, inp.member.name)
        with contextlib.suppress(NotFound):
            await self._kube.patch(
                path, {"metadata": {"annotations": {ANNOTATION_PROMOTE: "full"}}}
            )
            return True
        return False


class ReleaseStatusActivities:
    """The Release's own status, in the cluster that holds the Release."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    @activity.defn(name="publish_release_status")
    async def publish(self, inp: PublishReleaseStatusInput) -> bool:
        """The whole status (a uid precondition: never a re-created Release's); False when the
        Release is gone."""
        ref: RolloutRef = inp.release
        try:
            await self._kube.patch(
                RELEASES.path(ref.namespace, ref.name, "status"),
                {
                    "metadata": {"uid": ref.uid},
                    "status": inp.status.model_dump(mode="json", by_alias=True),
                },
            )
        except NotFound:
            return False
        except Conflict as err:
            if "UID" in str(err):
                return False
            raise
        if inp.event is not None:
            body = build_event(ref, inp.event, datetime.now(UTC), kind="Release")
            with contextlib.suppress(AlreadyExists):
                await self._kube.create(EVENTS.path(ref.namespace), body)
        return True
