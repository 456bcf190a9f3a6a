"""Every effect a Release has on the world: one method per activity, as in `effects.py`, from
which it takes the failure rules (nothing retried in silence; a final failure comes out as
`ActionFailed`). A Rollout in another cluster is reached on that cluster's task queue.

Activity names are part of running histories: never rename one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import ReleaseAnnouncement
    from activities.naming import cluster_task_queue
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
    from workflows import options
    from workflows.effects import Effects


class ReleaseEffects(Effects):
    def __init__(self, own_cluster: str) -> None:
        super().__init__()
        self._own_cluster = own_cluster

    def _queue(self, member: MemberRef) -> str | None:
        """None: this workflow's own task queue (the Release's cluster)."""
        if member.cluster is None or member.cluster == self._own_cluster:
            return None
        return cluster_task_queue(member.cluster)

    async def claim_member(self, inp: ClaimMemberInput) -> ClaimMemberResult:
        return await self._run(
            "claim_release_member",
            inp,
            ClaimMemberResult,
            f"claim {inp.member.label()}",
            task_queue=self._queue(inp.member),
        )

    async def release_member(self, inp: ClaimMemberInput) -> bool:
        return await self._run(
            "release_release_member",
            inp,
            bool,
            f"release {inp.member.label()}",
            task_queue=self._queue(inp.member),
        )

    async def read_member(self, member: MemberRef) -> MemberTemplate:
        return await self._run(
            "read_release_member",
            member,
            MemberTemplate,
            f"read the template of {member.label()}",
            task_queue=self._queue(member),
        )

    async def apply_member(self, inp: ApplyTemplateInput, what: str) -> ApplyTemplateResult:
        return await self._run(
            "apply_release_member",
            inp,
            ApplyTemplateResult,
            f"{what} {inp.member.label()}",
            task_queue=self._queue(inp.member),
        )

    async def follow_member(self, inp: FollowInput) -> MemberObservation:
        return await self._run(
            "follow_release_member",
            inp,
            MemberObservation,
            f"follow {inp.member.label()}",
            timeout=timedelta(seconds=inp.max_wait_seconds + 60),
            heartbeat=options.HEARTBEAT,
            task_queue=self._queue(inp.member),
        )

    async def promote_member(self, inp: PromoteMemberInput) -> bool:
        return await self._run(
            "promote_release_member",
            inp,
            bool,
            f"promote {inp.member.label()} fully ({inp.reason})",
            task_queue=self._queue(inp.member),
        )

    def announce_release(self, announcement: ReleaseAnnouncement) -> workflow.ActivityHandle[Any]:
        """Started, not awaited (as a Rollout's CDEvents): a sink that is down never holds a
        Release up."""
        return workflow.start_activity(
            "announce_release",
            announcement,
            start_to_close_timeout=options.ANNOUNCE_TIMEOUT,
            retry_policy=options.ANNOUNCE_RETRY,
            summary=f"CDEvent {announcement.kind}",
        )

    async def publish_release_status(self, inp: PublishReleaseStatusInput, summary: str) -> bool:
        # Not reported through the reporter: the reporter's own writes go here.
        return await self._run("publish_release_status", inp, bool, summary, reported=False)
