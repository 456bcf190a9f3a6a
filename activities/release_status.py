"""The Release's status as typed models: written only by the Release's workflow (through the
status activity), read by the CLI and the CRD generator. Pure data; camelCase on the wire."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from activities.rollout_status import Condition, StatusModel

ReleasePhase = Literal[
    "Pending",
    "Progressing",
    "Paused",
    "RollingBack",
    "Completed",
    "RolledBack",
    "Aborted",
    "Failed",
]
# Phases a Release does not leave (until its spec changes: a new generation is a new plan).
FINISHED_PHASES: tuple[str, ...] = ("Completed", "RolledBack", "Aborted", "Failed")

StagePhase = Literal[
    "Pending",
    "Progressing",
    "Soaking",
    "WaitingForApproval",
    "Completed",
    "Failed",
    "RollingBack",
    "RolledBack",
    "Skipped",
]

MemberState = Literal[
    "Pending", "Progressing", "Completed", "Failed", "Reverting", "Reverted", "Unchanged"
]


class ReleaseRolloutStatus(StatusModel):
    """One Rollout of a stage as the Release last saw it."""

    name: str
    state: MemberState = "Pending"
    phase: str | None = Field(default=None, description="the Rollout's own status.phase")
    step: int | None = None
    step_count: int | None = None
    weight: int | None = None
    revision: str | None = Field(default=None, description="the revision this Release ships")
    previous_revision: str | None = Field(
        default=None, description="the revision it had before; a rollback goes back to it"
    )
    workflow_id: str | None = Field(default=None, description="the Rollout's own workflow")
    message: str | None = None


class ReleaseStageStatus(StatusModel):
    name: str
    cluster: str | None = None
    phase: StagePhase = "Pending"
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    gate_ends_at: str | None = None
    rollouts: list[ReleaseRolloutStatus] = Field(default_factory=list)


class ReleaseStatus(StatusModel):
    phase: ReleasePhase | None = None
    reason: str | None = None
    message: str | None = None
    observed_generation: int | None = None
    workflow_id: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    stages: list[ReleaseStageStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
