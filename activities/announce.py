"""The `announce_transition` activity: the CDEvent for a transition, and the metrics that count
rollouts and steps. Started by the workflow without waiting (see workflows/announcing.py)."""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any, Protocol

from temporalio import activity

from activities import cdevents, telemetry
from activities.contracts import CDEVENT_SEND_ATTEMPTS, Announcement, ReleaseAnnouncement
from activities.errors import Unavailable

log = logging.getLogger("kulta.cdevents")


class CDEventSink(Protocol):
    async def send(self, cdevent: dict[str, Any]) -> None: ...


class AnnounceActivities:
    def __init__(self, sink: CDEventSink | None, workflow_url: str = "") -> None:
        """`workflow_url`: the Temporal UI's page of a workflow, without the id (a Release's
        CDEvents link to it)."""
        self._sink = sink
        self._workflow_url = workflow_url

    @activity.defn(name="announce_transition")
    async def announce(self, a: Announcement) -> str:
        """Sends the CDEvent; returns sent, dropped or disabled. A failed send raises (Temporal
        retries it with the same event id) until the last attempt, which drops it instead."""
        attempt = activity.info().attempt
        if attempt == 1:
            _count(a)
        kind = cdevents.event_type(a.kind)
        if self._sink is None:
            telemetry.CDEVENT_SENDS.labels(kind, "disabled").inc()
            return "disabled"
        return await self._send(
            cdevents.build(a), kind, f"Rollout {a.rollout.namespace}/{a.rollout.name}"
        )

    @activity.defn(name="announce_release")
    async def announce_release(self, a: ReleaseAnnouncement) -> str:
        """As `announce`, for a Release or one of its stages."""
        kind = cdevents.release_event_type(a)
        if self._sink is None:
            telemetry.CDEVENT_SENDS.labels(kind, "disabled").inc()
            return "disabled"
        url = self._workflow_url + urllib.parse.quote(a.workflow_id, safe="")
        return await self._send(cdevents.build_release(a, url), kind, f"Release {a.release.name}")

    async def _send(self, event: dict[str, Any], kind: str, what: str) -> str:
        """Sent, or (after the last attempt) dropped; a failed send before that raises."""
        assert self._sink is not None
        attempt = activity.info().attempt
        try:
            await self._sink.send(event)
        except Unavailable as err:
            if attempt >= CDEVENT_SEND_ATTEMPTS:
                telemetry.CDEVENT_SENDS.labels(kind, "dropped").inc()
                log.warning(
                    "CDEvent %s %s for %s dropped after %d attempts: %s",
                    kind,
                    event["context"]["id"],
                    what,
                    attempt,
                    err,
                )
                return "dropped"
            telemetry.CDEVENT_SENDS.labels(kind, "retried").inc()
            raise
        telemetry.CDEVENT_SENDS.labels(kind, "sent").inc()
        return "sent"


def _count(a: Announcement) -> None:
    """Rollout and step metrics, once per transition (on the first attempt only)."""
    strategy = a.strategy or "unknown"
    if a.kind == "upgraded":
        telemetry.STEP_TRANSITIONS.labels(strategy).inc()
        if a.seconds_in_step is not None:
            telemetry.STEP_DURATION.labels(strategy).observe(a.seconds_in_step)
    if a.kind in ("rolledback", "published") and a.phase in ("Completed", "Failed"):
        result = "completed" if a.phase == "Completed" else "rolledback"
        telemetry.ROLLOUT_DURATION.labels(strategy, result).observe(a.seconds_in_rollout)
        telemetry.forget_rollout(a.rollout.namespace, a.rollout.name)
