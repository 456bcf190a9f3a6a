"""What goes in and out of the rollout workflow: its start input, signals, and its result.

Names and shapes are part of running histories: add fields with defaults, never rename.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from activities.rollout_status import RolloutStatus

SIGNAL_PROMOTE = "promote"
SIGNAL_ABORT = "abort"
SIGNAL_PAUSE = "pause"
SIGNAL_RESUME = "resume"
SIGNAL_RETRY = "retry"
SIGNAL_UPDATE_SPEC = "update-spec"
SIGNAL_CONCLUDE = "conclude"
QUERY_STATUS = "status"


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class SpecUpdate(Message):
    generation: int
    spec: dict[str, Any]


class RolloutStart(Message):
    namespace: str
    name: str
    uid: str
    revision: str
    generation: int
    spec: dict[str, Any]
    attempt: int = 1
    # A/B experiments carry their progress across continue-as-new, and the transition counter
    # (transition ids, hence Event names and CDEvent ids, must not repeat within one attempt).
    experiment_started: str | None = None
    experiment_measurements: int = 0
    transitions: int = 0
    # An edit the previous run deferred (it changes the frame of a revision with pods): the
    # continued run follows `spec` and is told this one again.
    pending: SpecUpdate | None = None
    # A run that continues the previous one goes on from the status that one left.
    status: RolloutStatus | None = None


class PromoteRequest(Message):
    full: bool = False
    # The identity of the annotation that asked (None: a person's update or signal); a second
    # request with an identity already seen is the same request again, and is ignored.
    id: str | None = None


class AbortRequest(Message):
    reason: str = "aborted by user"


class RolloutOutcome(Message):
    # "gone": the run failed and could not even report it (the Rollout was deleted).
    result: Literal["completed", "skipped", "cancelled", "gone"]
    reason: str = ""
    phase: str | None = None
