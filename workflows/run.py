"""One rollout run's state (`Run`) and the steering requests that reach it (`Inbox`).

`Run` is what the run knows: its start input, the spec it follows, the status it publishes and
the references it acts on. `Inbox` is what people asked for: signal and update handlers only
write there, and steps read it through `raise_if_aborted()` and `wait_for_promotion()`, the one
place where an abort interrupts a wait and a promotion is consumed.

Deterministic workflow code (see `workflows/__init__.py`): no activity is called from here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import RolloutRef
    from activities.naming import replicaset_name
    from activities.rollout_status import Decision, RolloutStatus
    from workflows import options
    from workflows.conditions import with_condition
    from workflows.durations import iso_time
    from workflows.edits import frame_changes
    from workflows.messages import AbortRequest, PromoteRequest, RolloutStart, SpecUpdate
    from workflows.model import InvalidSpec, RolloutSpec, TrafficRouting, parse_spec


class RollbackRequired(Exception):
    """Raised inside a step when the new revision must be rolled back; carries the reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SpecRestructured(Exception):
    """An edit changed the run's frame (`workflows/edits.py`) before its revision had pods:
    the run starts over with the edited spec (nothing depended on the old one)."""


class Interrupted(Exception):
    """A wait was cut short by an abort or a rollback verdict (it was cancelled); the caller
    raises the rollback that interrupted it."""


# The reason a failed action is reported with, by the error class the activity raised
# (activities/errors.py); any other class (a bounded retry that ran out) is "ActionFailed".
_FAILURE_REASONS = {
    "Invalid": "RejectedByAPIServer",
    "Forbidden": "Forbidden",
    "NotFound": "ObjectNotFound",
    "BadInput": "RejectedByAPIServer",
    "ProgressDeadlineExceeded": "ProgressDeadlineExceeded",
    "EditedByHand": "EditedByHand",
    "UnsupportedRollout": "UnsupportedRollout",
}


class ActionFailed(RollbackRequired):
    """An activity failed for good: the API server refused the request, an object it needs is
    gone, or a bounded retry ran out. The run rolls back (traffic first) and fails with the API
    server's own words; it never fails in Temporal."""

    def __init__(self, action: str, error_type: str, detail: str) -> None:
        super().__init__(
            _FAILURE_REASONS.get(error_type, "ActionFailed"), f"{action} failed: {detail}"
        )
        self.action = action
        self.error_type = error_type
        self.detail = detail


class Run:
    """The run's input, its parsed spec and its status (changed only through `update`)."""

    def __init__(self, start: RolloutStart) -> None:
        self.start = start
        self.spec: RolloutSpec | None = None
        self.spec_changed = False  # a newer generation arrived and is not parsed yet
        self.restructured = False  # an edit changed the frame before any pod: start over
        self.deferred = False  # the latest edit changes the frame: due once this one is stable
        self.applied: SpecUpdate | None = None  # the generation the run follows, as given
        # This revision changed something that superseding must undo (and its frame is fixed);
        # a continued experiment's pods and route rule exist from the start.
        self.touched = start.experiment_started is not None
        # How the last edit was taken (reason, message, Event type), until an Event tells it.
        self.untold_edit: tuple[str, str, str] | None = None
        self.status = start.status or RolloutStatus(
            workflow_id=workflow.info().workflow_id, observed_generation=start.generation
        )
        self.seq = start.transitions  # transition counter: ids must not repeat in an attempt
        self.reconciling = False  # the revision was already stable: nothing new to publish
        self.done = False  # this revision is stable: nothing to undo any more
        self.rolled_back = False  # its rollback was reported (Failed): what fails next is clean-up
        # The route weights kulta last wrote (None: accept what the route shows).
        self.expected_weights: dict[str, int] | None = None
        # Since when the current step's traffic is in place (analysis counts from there).
        self.traffic_since: datetime | None = None

    def update(self, **fields: Any) -> None:
        """The one way status changes: a copy with `fields` replaced."""
        self.status = self.status.model_copy(update=fields)

    def decide(self, action: str, reason: str) -> None:
        """Adds a decision to the status's bounded timeline (published with the next write)."""
        decision = Decision(
            time=iso_time(workflow.now()),
            action=action,
            reason=reason,
            step=self.status.current_step_index,
        )
        self.update(decisions=[*self.status.decisions, decision][-options.MAX_DECISIONS :])

    def offer_spec(self, update: SpecUpdate) -> None:
        """A newer generation of the spec; it applies from the next step on."""
        if update.generation <= self.start.generation:
            return
        self.start = self.start.model_copy(
            update={"generation": update.generation, "spec": update.spec}
        )
        self.spec_changed = True

    def parse(self) -> RolloutSpec:
        """Parses the latest spec; raises InvalidSpec naming the fields."""
        self.spec_changed = False
        self.spec = parse_spec(self.start.spec)
        self._follow(self.spec)
        return self.spec

    def _follow(self, spec: RolloutSpec) -> None:
        self.spec = spec
        self.applied = SpecUpdate(generation=self.start.generation, spec=self.start.spec)
        self.update(
            observed_generation=self.start.generation,
            selector=spec.selector.as_string(),
            hpa_replicas=spec.replicas,
        )

    @property
    def current_spec(self) -> RolloutSpec:
        """The spec the run follows, with a waiting edit taken first (see `take_edit`)."""
        self.take_edit()
        assert self.spec is not None, "the spec was never parsed"
        return self.spec

    def take_edit(self) -> None:
        """Takes the newest generation mid-run: it applies from the next step, unless it is
        invalid (ignored) or changes the frame of a revision that has pods (deferred until the
        revision is stable, or retried). `status.observedGeneration` names the generation the
        run follows, so a deferred edit is still due; the condition `SpecApplied` and an Event
        say which way it went. Without a newer generation waiting, nothing happens."""
        if not self.spec_changed:
            return
        self.spec_changed = False
        generation = self.start.generation
        if self.spec is None:
            self.parse()
            return
        following = f"the rollout goes on with generation {self.status.observed_generation}"
        try:
            edited = parse_spec(self.start.spec)
        except InvalidSpec as err:
            self._tell_edit(
                "InvalidEdit", f"generation {generation} is invalid ({err}); {following}"
            )
            return
        frame = frame_changes(self.spec, edited)
        self.deferred = bool(frame) and (self.touched or self.done)
        if self.deferred:
            self._tell_edit(
                "EditDeferred",
                f"generation {generation} changes {', '.join(frame)}, which cannot change while "
                f"revision {self.revision} is rolling out; it applies once the revision is "
                f"stable, or at a retry after a rollback; {following}",
            )
            return
        self.restructured = self.restructured or bool(frame)
        self._follow(edited)
        applies = "the rollout starts over with it" if frame else "it applies from the next step"
        self._tell_edit("EditApplied", f"generation {generation} is taken: {applies}")

    def _tell_edit(self, reason: str, message: str) -> None:
        applied = reason == "EditApplied"
        self.update(
            conditions=with_condition(
                self.status.conditions,
                "SpecApplied",
                "True" if applied else "False",
                reason,
                message,
                self.start.generation,
            )
        )
        self.decide("edit", message)
        self.untold_edit = (reason, message, "Normal" if applied else "Warning")

    def continued(self, **fields: Any) -> RolloutStart:
        """The input of this revision's next run (continue-as-new) that goes on where this one
        is: the spec it follows, with a deferred edit to be told again."""
        start = self.start.model_copy(
            update={"transitions": self.seq, "status": self.status, **fields}
        )
        if self.deferred and self.applied is not None:
            latest = SpecUpdate(generation=self.start.generation, spec=self.start.spec)
            start = start.model_copy(
                update={
                    "generation": self.applied.generation,
                    "spec": self.applied.spec,
                    "pending": latest,
                }
            )
        return start

    def raise_if_restructured(self) -> None:
        """Before the revision's first pod (and before a stable revision's traffic is set up):
        an edit of the frame taken meanwhile starts the run over with it."""
        self.take_edit()
        if self.restructured:
            raise SpecRestructured()

    @property
    def revision(self) -> str:
        return self.start.revision

    @property
    def namespace(self) -> str:
        return self.start.namespace

    @property
    def name(self) -> str:
        return self.start.name

    @property
    def stable_revision(self) -> str:
        """The stable revision; only asked for by strategies, which run only when there is one."""
        stable = self.status.stable_revision
        assert stable is not None, "no stable revision"
        return stable

    @property
    def own_replicaset(self) -> str:
        return replicaset_name(self.name, self.revision)

    @property
    def ref(self) -> RolloutRef:
        return RolloutRef(namespace=self.namespace, name=self.name, uid=self.start.uid)

    def route(self, routing: TrafficRouting | None) -> tuple[str, str] | None:
        """(namespace, name) of the HTTPRoute, or None without Gateway API routing."""
        if routing is None or routing.gateway_api is None:
            return None
        return (routing.gateway_api.namespace or self.namespace, routing.gateway_api.http_route)


MAX_PROMOTE_IDS = 20


class Inbox:
    """Steering requests: written by the workflow's handlers, consumed by its steps."""

    def __init__(self) -> None:
        self.promotions = 0
        self.promote_full = False
        self.abort: AbortRequest | None = None
        self.paused = False  # `pause` signal; `spec.paused` is the other way to pause
        self.resume_requested = False
        self.retry = False
        self.conclude_requested = False
        self.in_pause = False  # a promotion now would pass a pause
        self._promote_ids: list[str] = []  # identities of annotation promotes already seen

    def promote(self, request: PromoteRequest) -> bool:
        """One promotion passes the current pause; outside a pause it is ignored (False), never
        saved up. A full promotion also skips the remaining steps, so it counts at any time.
        A request seen before (same identity) changes nothing."""
        if request.id is not None:
            if request.id in self._promote_ids:
                return True
            self._promote_ids = [*self._promote_ids, request.id][-MAX_PROMOTE_IDS:]
        if request.full:
            self.promote_full = True
        elif self.in_pause:
            self.promotions = 1
        else:
            return False
        return True

    def request_abort(self, request: AbortRequest) -> None:
        if self.abort is None:
            self.abort = request

    def resume(self) -> None:
        self.paused = False
        self.resume_requested = True

    @property
    def aborted(self) -> bool:
        return self.abort is not None

    def raise_if_aborted(self) -> None:
        """The one abort check: every wait that an abort ends calls it afterwards."""
        if self.abort is not None:
            raise RollbackRequired("Aborted", self.abort.reason)

    def open_pause(self) -> None:
        """From here a promotion passes the pause (published before anyone can react)."""
        self.promotions = 0
        self.in_pause = True

    async def wait_for_promotion(
        self,
        *,
        interrupted: Callable[[], bool] = lambda: False,
        seconds: float | None = None,
        summary: str = "wait for promotion",
    ) -> bool:
        """Waits in an open pause for a promotion, an abort or `interrupted()`, at most
        `seconds` when given, then closes the pause (`close_pause`): False when the time ran
        out or `interrupted()` ended it."""

        def ended() -> bool:
            return (
                self.promotions > 0 or self.promote_full or self.abort is not None or interrupted()
            )

        if seconds is None:
            await workflow.wait_condition(ended, timeout_summary=summary)
        else:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    ended, timeout=timedelta(seconds=seconds), timeout_summary=summary
                )
        return self.close_pause()

    def close_pause(self) -> bool:
        """Ends the open pause: raises RollbackRequired on abort; returns whether a person
        promoted. The promotion is consumed."""
        promoted = self.promotions > 0 or self.promote_full
        self.in_pause = False
        self.raise_if_aborted()
        self.promotions = 0
        return promoted
