"""How a run tells what happens: a transition writes status with its conditions, a Kubernetes
Event and an occurrence, updates the search attributes and, for the four transitions the
delivery pipeline hears about, sends a CDEvent.

Deterministic workflow code; the writes go through `Effects`.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from activities.contracts import EventSpec, PublishStatusInput
    from activities.naming import SA_PHASE, SA_STRATEGY
    from activities.rollout_status import Condition, Phase
    from workflows.announcements import cdevent_kind
    from workflows.announcing import Announcer
    from workflows.effects import Effects
    from workflows.run import Run, iso_time

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
            run.status.conditions, phase, reason, message, run.start.generation, condition
        )
        run.update(phase=phase, message=message, conditions=conditions)
        run.seq += 1
        transition = f"{workflow.info().workflow_id}/{run.start.attempt}/{run.seq}"
        workflow.upsert_search_attributes([KEY_PHASE.value_set(phase)])
        await self._effects.publish_status(
            PublishStatusInput(
                rollout=run.ref,
                status=run.status,
                event=EventSpec(
                    type="Warning" if event_type == "Warning" else "Normal",
                    reason=reason,
                    message=message,
                    transition_id=transition,
                    time=iso_time(workflow.now()),
                ),
                kubernetes_event=with_event,
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
            f"revision {run.revision} is stable",
            decision=("promote", f"revision {run.revision} {how}"),
        )

    async def rolled_back(self, reason: str, message: str) -> None:
        """A finished rollback: phase Failed, with the reason, until a retry."""
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


_PHASE_CONDITIONS: dict[str, tuple[str, str]] = {
    # phase -> (Progressing status, Available status)
    "Initializing": ("True", "False"),
    "Progressing": ("True", "False"),
    "Paused": ("Unknown", "False"),
    "Completed": ("False", "True"),
    "Failed": ("False", "False"),
}


def conditions_after(
    current: list[Condition],
    phase: str,
    reason: str,
    message: str,
    generation: int,
    extra: tuple[str, str] | None,
) -> list[Condition]:
    """The conditions after a transition to `phase`; a condition's time moves only when its
    status changes."""
    progressing, available = _PHASE_CONDITIONS.get(phase, ("True", "False"))
    wanted = {
        "Progressing": progressing,
        "Paused": "True" if phase == "Paused" else "False",
        "Available": available,
        "Valid": "True",
    }
    if extra is not None:
        wanted[extra[0]] = extra[1]
    now = iso_time(workflow.now())
    by_type = {c.type: c for c in current}
    out = []
    for ctype, status in wanted.items():
        old = by_type.get(ctype)
        changed = old is None or old.status != status
        out.append(
            Condition(
                type=ctype,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now if changed or old is None else old.last_transition_time,
                observed_generation=generation,
            )
        )
    return out
