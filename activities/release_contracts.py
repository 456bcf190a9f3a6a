"""Inputs and results of the activities a Release's workflow calls. Pure data."""

from __future__ import annotations

from typing import Any

from activities.contracts import Contract, EventSpec, RolloutRef
from activities.release_status import ReleaseStatus


class MemberRef(Contract):
    """A Rollout a Release changes: in the Release's namespace, in `cluster` (None: the
    Release's own)."""

    namespace: str
    name: str
    cluster: str | None = None

    def label(self) -> str:
        where = f" in cluster {self.cluster}" if self.cluster else ""
        return f"Rollout {self.namespace}/{self.name}{where}"


class ClaimMemberInput(Contract):
    member: MemberRef
    owner: str  # ANNOTATION_RELEASE's value: `<cluster>/<namespace>/<release>`


class ClaimMemberResult(Contract):
    claimed: bool
    # Who holds the Rollout when the claim was refused.
    owner: str | None = None


class MemberTemplate(Contract):
    """A Rollout's pod template and its revision."""

    template: dict[str, Any]
    revision: str


class ApplyTemplateInput(Contract):
    member: MemberRef
    # The template as read before the change: the write happens only while the template is
    # still this (or already `template`, a retried write), so a hand edit is never overwritten.
    expected: MemberTemplate
    template: dict[str, Any]


class ApplyTemplateResult(Contract):
    revision: str  # of the template as stored
    changed: bool


class FollowInput(Contract):
    member: MemberRef
    last: MemberObservation | None = None
    # Returns after this long even when nothing changed (heartbeating meanwhile).
    max_wait_seconds: float = 60.0


class MemberObservation(Contract):
    """What the Release reads of a Rollout's status (and its template's revision)."""

    phase: str | None = None
    message: str | None = None
    step: int | None = None
    step_count: int | None = None
    weight: int | None = None
    stable_revision: str | None = None
    running_revision: str | None = None  # the revision of the workflow that owns it now
    workflow_id: str | None = None
    template_revision: str | None = None
    paused: bool = False
    promote_pending: bool = False


class PromoteMemberInput(Contract):
    member: MemberRef
    reason: str


class PublishReleaseStatusInput(Contract):
    release: RolloutRef  # namespace, name and uid of the Release
    status: ReleaseStatus
    event: EventSpec | None = None  # and a Kubernetes Event on the Release


FollowInput.model_rebuild()
