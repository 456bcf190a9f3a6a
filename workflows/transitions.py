"""How a run tells what happens: a transition writes status with its conditions, a Kubernetes
Event and an occurrence, updates the search attributes and, for the four transitions the
delivery pipeline hears about, sends a CDEvent.

Deterministic workflow code; the writes go through `Effects`.
"""

from __future__ import annotations

import contextlib

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from activities.contracts import EventSpec, PublishStatusInput, ScaleInput
    from activities.naming import SA_PHASE, SA_STRATEGY
    from activities.rollout_status import Phase
    from workflows.announcements import cdevent_kind
    from workflows.announcing import Announcer
    from workflows.conditions import conditions_after, with_condition
    from workflows.durations import iso_time
    from workflows.effects import Effects
    from workflows.model import DEFAULT_DEADLINE_SECONDS
    from workflows.run import ActionFailed, Run

KEY_STRATEGY = SearchAttributeKey.for_keyword(SA_STRATEGY)
KEY_PHASE = SearchAttributeKey.for_keyword(SA_PHASE)


class Transitions:
    def __init__(self, run: Run, effects: Effects) -> None:
        self._run = run
        self._effects = effects
        self._announcer = Announcer(effects)

    def strategy_chosen(self, kind: str) -> None:
        self._run.update(strategy=kind)
        workflow.upsert_search_attributes([KEY_STRATEGY.value_set(kind)])

    async def transition(
        self,
        phase: Phase,
        reason: str,
        message: str,
        *,
        event_type: str = "Normal",
        decision: tuple[str, str] | None = None,
        condition: tuple[str, str] | None = None,
        event_on_phase_change_only: bool = False,
        announce_as: str | None = None,
    ) -> None:
        """Records a transition: status, conditions, a Kubernetes Event and search attributes.

        `event_on_phase_change_only`: a canary step within one phase writes status and its
        occurrence but no Kubernetes Event (a second API write per step); `kubectl describe`
        shows the phase changes, `kulta history` and the occurrences every step.
        `announce_as`: the reason the CDEvent is chosen by, when it differs (a step that
        advances and pauses for promotion in one transition is still an advanced step).
        """
        run = self._run
        if decision is not None:
            run.decide(*decision)
        with_event = not event_on_phase_change_only or run.status.phase != phase
        conditions = conditions_after(
            run.status.conditions,
            phase,
            reason,
            message,
            run.start.generation,
            condition,
            stable_revision=run.status.stable_revision,
        )
        run.update(phase=phase, message=message, conditions=conditions)
        event = self._next_event(reason, message, event_type)
        transition = event.transition_id
        workflow.upsert_search_attributes([KEY_PHASE.value_set(phase)])
        await self._effects.publish_status(
            PublishStatusInput(
                rollout=run.ref, status=run.status, event=event, kubernetes_event=with_event
            ),
            f"{phase}: {reason}",
            local=phase == "Progressing",
        )
        kind = cdevent_kind(phase, announce_as or reason, reconciling=run.reconciling)
        if kind is not None:
            self._announcer.announce(
                kind,
                transition_id=transition,
                rollout=run.ref,
                revision=run.revision,
                spec=run.spec,
                status=run.status,
                reason=reason,
                message=message,
            )

    # How a run tells that an action keeps failing (Effects' TroubleReporter).

    def deadline_seconds(self) -> int:
        spec = self._run.spec
        return spec.progress_deadline_seconds if spec is not None else DEFAULT_DEADLINE_SECONDS

    async def retrying(self, action: str, detail: str) -> None:
        """Degraded=True with the last error, and a Warning Event; the phase stays."""
        await self._degraded("True", "ActionRetrying", f"{action}: {detail}; retrying", "Warning")

    async def recovered(self, action: str) -> None:
        await self._degraded("False", "Recovered", f"{action} succeeded", "Normal")

    async def warn(self, reason: str, message: str) -> None:
        """A Warning Event (and occurrence) about the spec; phase and conditions stay."""
        await self._publish_event(reason, message, "Warning", f"warning: {reason}")

    async def tell_edit(self) -> None:
        """The Event of the last edit taken mid-run (`Run.take_edit`), once; its condition and
        decision are already in status."""
        untold, self._run.untold_edit = self._run.untold_edit, None
        if untold is not None:
            reason, message, event_type = untold
            await self._publish_event(reason, message, event_type, f"edit: {reason}")

    async def _degraded(self, status: str, reason: str, message: str, event_type: str) -> None:
        run = self._run
        run.update(
            conditions=with_condition(
                run.status.conditions, "Degraded", status, reason, message, run.start.generation
            )
        )
        # Not reported itself (this is the report), and never fatal: the failing action is
        # retried whether or not the API server takes this write.
        with contextlib.suppress(ActionFailed):
            await self._publish_event(
                reason, message, event_type, f"Degraded={status}: {reason}", reported=False
            )

    async def _publish_event(
        self, reason: str, message: str, event_type: str, summary: str, *, reported: bool = True
    ) -> None:
        """Status as it is, with an Event (and occurrence); not a transition (the phase stays)."""
        run = self._run
        await self._effects.publish_status(
            PublishStatusInput(
                rollout=run.ref,
                status=run.status,
                event=self._next_event(reason, message, event_type),
            ),
            summary,
            local=False,
            reported=reported,
        )

    def _next_event(self, reason: str, message: str, event_type: str) -> EventSpec:
        """The Event (and occurrence) of the next transition, with an id unique in the run."""
        run = self._run
        run.seq += 1
        return EventSpec(
            type="Warning" if event_type == "Warning" else "Normal",
            reason=reason,
            message=message,
            transition_id=f"{workflow.info().workflow_id}/{run.start.attempt}/{run.seq}",
            time=iso_time(workflow.now()),
        )

    async def publish_quietly(self) -> None:
        """Status only (no Event): for measurements, which are not transitions."""
        run = self._run
        await self._effects.publish_status(
            PublishStatusInput(rollout=run.ref, status=run.status),
            "record measurements",
            local=True,
        )

    async def completed(self, step_count: int | None, how: str) -> None:
        """This revision is stable now: recorded in status, and undoing it no longer applies."""
        run = self._run
        kept = await self._scale_down_taken_over_deployment()
        run.done = True
        run.update(
            stable_revision=run.revision,
            canary_revision=None,
            current_weight=100,
            current_step_index=step_count,
            step_count=step_count,
        )
        await self.transition(
            "Completed",
            "RolloutCompleted",
            f"revision {run.revision} is stable{kept}",
            decision=("promote", f"revision {run.revision} {how}"),
        )

    async def _scale_down_taken_over_deployment(self) -> str:
        """A Rollout that takes its template from a Deployment (workloadRef, scaleDown
        onsuccess): the Deployment goes to zero once a revision is stable, its pods having
        served until then. What the completion message adds when that failed ("" if not)."""
        run = self._run
        ref = run.spec.workload_ref if run.spec is not None else None
        if ref is None or ref.scale_down != "onsuccess":
            return ""
        try:
            outcome = await self._effects.scale_deployment(
                ScaleInput(namespace=run.namespace, name=ref.name, replicas=0)
            )
        except ActionFailed as failed:
            run.decide("workload-kept", f"Deployment {ref.name} not scaled down: {failed.message}")
            return f"; Deployment {ref.name} could not be scaled down: {failed.message}"
        if outcome == "scaled":
            run.decide("workload-scaled-down", f"Deployment {ref.name} scaled to zero")
        return ""

    async def rolled_back(self, reason: str, message: str) -> None:
        """A finished rollback: phase Failed, with the reason, until a retry."""
        self._run.update(pause_start_time=None, pause_end_time=None)  # no pause is running
        self._run.rolled_back = True
        await self.transition(
            "Failed",
            reason,
            f"rolled back: {message}",
            event_type="Warning",
            decision=("rollback", message),
        )

    async def settle(self) -> None:
        """Waits for CDEvent sends still retrying (before the run closes or continues)."""
        await self._announcer.settle()
