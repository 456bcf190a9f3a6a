"""What goes in and out of a Release's workflow: its start input, signals, and its result.

Names and shapes are part of running histories: add fields with defaults, never rename.
"""

from __future__ import annotations

from typing import Any, Literal

from workflows.messages import Message

SIGNAL_APPROVE = "approve-stage"
SIGNAL_ABORT_RELEASE = "abort-release"
SIGNAL_RESUME_RELEASE = "resume-release"
QUERY_RELEASE_STATUS = "release-status"


class ReleaseStart(Message):
    namespace: str
    name: str
    uid: str
    generation: int
    spec: dict[str, Any]
    # The cluster that holds the Release (its watcher's KULTA_CLUSTER_NAME): stages without a
    # cluster of their own change Rollouts here, through this workflow's own task queue.
    cluster: str = "default"


class ApproveRequest(Message):
    stage: str


class ReleaseAbortRequest(Message):
    reason: str = "aborted by user"


class ReleaseOutcome(Message):
    result: Literal["completed", "rolled-back", "aborted", "failed", "cancelled"]
    reason: str = ""
