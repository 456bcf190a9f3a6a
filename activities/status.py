"""Rollout status and Kubernetes Events, written by the workflow that owns the Rollout."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from datetime import UTC, datetime

from temporalio import activity

from activities import occurrences, telemetry
from activities.adapters.kube import KubeClient
from activities.adapters.occurrence_log import OccurrenceLog
from activities.contracts import EventSpec, PublishStatusInput, RolloutRef
from activities.errors import AlreadyExists, Conflict, NotFound
from activities.naming import EVENTS, ROLLOUT_API_VERSION, ROLLOUTS
from activities.rollout_status import RolloutStatus

COMPONENT = "kulta"
log = logging.getLogger("kulta.status")


def event_name(rollout: str, transition_id: str) -> str:
    """A deterministic Event name, so a retried write of one transition is one Event."""
    digest = hashlib.sha256(transition_id.encode()).hexdigest()[:16]
    return f"{rollout[:200]}.{digest}"


def build_event(
    ref: RolloutRef, spec: EventSpec, now: datetime, kind: str = "Rollout"
) -> dict[str, object]:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    micro = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(ref.name, spec.transition_id), "namespace": ref.namespace},
        "involvedObject": {
            "apiVersion": ROLLOUT_API_VERSION,
            "kind": kind,
            "name": ref.name,
            "namespace": ref.namespace,
            "uid": ref.uid,
        },
        "type": spec.type,
        "reason": spec.reason,
        "message": spec.message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": "kulta.io/controller",
        "reportingInstance": COMPONENT,
        "action": spec.reason,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": micro,
        "count": 1,
    }


class StatusActivities:
    def __init__(
        self, kube: KubeClient, occurrences: OccurrenceLog | None = None, cluster: str = "default"
    ) -> None:
        self._kube = kube
        self._occurrences = occurrences
        self._cluster = cluster

    @activity.defn(name="publish_status")
    async def publish_status(self, inp: PublishStatusInput) -> bool:
        """Writes the whole status (nulls clear fields) and records the transition's Event and
        occurrence.

        Idempotent: the status is absolute, and the Event's name and the occurrence's id derive
        from the transition.
        Returns False when the Rollout no longer exists (or is a different object now).
        """
        ref = inp.rollout
        path = ROLLOUTS.path(ref.namespace, ref.name)
        try:
            await self._kube.patch(
                path + "/status",
                {
                    "metadata": {"uid": ref.uid},
                    # Every field, nulls included: a null clears what an earlier write set.
                    "status": inp.status.model_dump(mode="json", by_alias=True),
                },
            )
        except NotFound:
            return False
        except Conflict as err:
            if "UID" in str(err):  # the uid precondition failed: a re-created Rollout
                return False
            raise
        if inp.event is not None:
            if inp.kubernetes_event:
                body = build_event(ref, inp.event, datetime.now(UTC))
                with contextlib.suppress(AlreadyExists):
                    await self._kube.create(EVENTS.path(ref.namespace), body)
            self._record_occurrence(ref, inp.status, inp.event)
        return True

    def _record_occurrence(self, ref: RolloutRef, status: RolloutStatus, event: EventSpec) -> None:
        """Best effort: a full or read-only disk is counted and logged, never a failed rollout."""
        if self._occurrences is None:
            return
        at = datetime.fromisoformat(event.time) if event.time else datetime.now(UTC)
        try:
            written = self._occurrences.write(
                occurrences.build(ref, status, event, at, self._cluster)
            )
        except OSError as err:
            telemetry.OCCURRENCES.labels("failed").inc()
            log.error("occurrence for %s/%s not written: %s", ref.namespace, ref.name, err)
            return
        telemetry.OCCURRENCES.labels("written" if written else "repeated").inc()
