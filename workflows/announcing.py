"""Telling the delivery pipeline: CDEvents sent by an activity that is started, not awaited.

A sink that is down must never hold a rollout up, so the workflow starts `announce_transition`
and moves on; the activity retries with backoff on its own and, after its attempts, drops the
event with a counted, logged reason. The workflow waits for outstanding sends only before it
closes or continues as new (Temporal would abandon them otherwise).

Deterministic workflow code; the send itself is `Effects.announce`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import Announcement, CDEventKind, RolloutRef
    from activities.rollout_status import RolloutStatus
    from workflows.effects import Effects
    from workflows.model import RolloutSpec


class Announcer:
    def __init__(self, effects: Effects) -> None:
        self._effects = effects
        self._sending: list[workflow.ActivityHandle[Any]] = []
        self._started_at: datetime | None = None
        self._step_at: datetime | None = None

    def announce(
        self,
        kind: CDEventKind,
        *,
        transition_id: str,
        rollout: RolloutRef,
        revision: str,
        spec: RolloutSpec | None,
        status: RolloutStatus,
        reason: str,
        message: str,
    ) -> None:
        now = workflow.now()
        self._started_at = self._started_at or now
        in_step = None
        if kind == "upgraded":
            in_step = (now - (self._step_at or self._started_at)).total_seconds()
            self._step_at = now
        experiment = status.experiment if kind == "published" else None
        announcement = Announcement(
            kind=kind,
            transition_id=transition_id,
            timestamp=now.isoformat().replace("+00:00", "Z"),
            rollout=rollout,
            strategy=status.strategy or "",
            phase=status.phase or "",
            reason=reason,
            message=message,
            revision=revision,
            stable_revision=status.stable_revision,
            images=images_of(spec),
            step_index=status.current_step_index,
            step_count=status.step_count,
            weight=status.current_weight,
            seconds_in_rollout=(now - self._started_at).total_seconds(),
            seconds_in_step=in_step,
            experiment=experiment.model_dump(mode="json", by_alias=True) if experiment else None,
        )
        self._sending.append(self._effects.announce(announcement))

    async def settle(self) -> None:
        """Waits for sends still retrying; their outcome never changes the rollout's."""
        sending, self._sending = self._sending, []
        if sending:
            await asyncio.gather(*sending, return_exceptions=True)


def images_of(spec: RolloutSpec | None) -> list[str]:
    if spec is None:
        return []
    containers = ((spec.template or {}).get("spec") or {}).get("containers") or []
    return [str(c["image"]) for c in containers if isinstance(c, dict) and c.get("image")]
