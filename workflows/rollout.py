"""The rollout workflow: one run per Rollout revision.

Its handlers only write steering requests to the `Inbox` (or refuse them, for updates); `run`
claims the Rollout, validates the spec, then hands over to the strategy (`strategy_for`). A run
ends when its revision is stable (Completed); a Failed run stays open, costing nothing, until a
retry or a newer revision. Cancelled by a newer revision, it undoes its own before handing over.

No domain error ends a run in Temporal's Failed state: a failure no strategy step handled (an
activity that failed for good before the steps began, in a stable revision's run, or in the
middle of a rollback) puts traffic back on stable where it can, reports Failed with the cause,
and waits for a retry like any rollback.

Deterministic code only: time comes from `workflow.now()`, waiting from durable timers and
conditions, and every effect on the world goes through `workflows/effects.py`.
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.config_copies import copies_in
    from activities.contracts import ClaimInput
    from activities.naming import (
        UPDATE_ABORT,
        UPDATE_CONCLUDE,
        UPDATE_PROMOTE,
        UPDATE_RETRY,
        WORKFLOW_NAME,
    )
    from activities.phases import CONCLUDABLE_PHASES, RETRYABLE_PHASES, TERMINAL_PHASES
    from activities.rollout_status import RolloutStatus
    from workflows.analysis_loop import AnalysisLoop
    from workflows.effects import Effects
    from workflows.holds import Holds
    from workflows.messages import (
        QUERY_STATUS,
        SIGNAL_ABORT,
        SIGNAL_CONCLUDE,
        SIGNAL_PAUSE,
        SIGNAL_PROMOTE,
        SIGNAL_RESUME,
        SIGNAL_RETRY,
        SIGNAL_UPDATE_SPEC,
        AbortRequest,
        PromoteRequest,
        RolloutOutcome,
        RolloutStart,
        SpecUpdate,
    )
    from workflows.run import ActionFailed, Inbox, RollbackRequired, Run, SpecRestructured
    from workflows.stable import establish_stable
    from workflows.strategies import Parts, Strategy, strategy_for
    from workflows.transitions import Transitions
    from workflows.workload import Workload


@workflow.defn(name=WORKFLOW_NAME)
class RolloutWorkflow:
    @workflow.init
    def __init__(self, start: RolloutStart) -> None:
        run = Run(start)
        inbox = Inbox()
        effects = Effects()
        transitions = Transitions(run, effects)
        effects.report_to(transitions)  # an action that keeps failing is told on status
        analysis = AnalysisLoop(run, inbox, effects, transitions)
        holds = Holds(run, inbox, transitions, analysis)
        workload = Workload(run, effects, holds)
        self._run = run
        self._inbox = inbox
        self._parts = Parts(run, inbox, effects, transitions, holds, workload, analysis)

    @workflow.signal(name=SIGNAL_PROMOTE)
    def promote(self, request: PromoteRequest) -> None:
        if not self._inbox.promote(request):
            self._run.decide("promote-ignored", "promote received while no pause was active")

    @workflow.signal(name=SIGNAL_ABORT)
    def abort(self, request: AbortRequest) -> None:
        self._inbox.request_abort(request)

    @workflow.signal(name=SIGNAL_PAUSE)
    def pause(self) -> None:
        self._inbox.paused = True

    @workflow.signal(name=SIGNAL_RESUME)
    def resume(self) -> None:
        self._inbox.resume()

    @workflow.signal(name=SIGNAL_CONCLUDE)
    def conclude(self) -> None:
        self._inbox.conclude_requested = True

    @workflow.signal(name=SIGNAL_RETRY)
    def retry(self) -> None:
        self._inbox.retry = True

    @workflow.signal(name=SIGNAL_UPDATE_SPEC)
    def update_spec(self, update: SpecUpdate) -> None:
        # Also in the run's first activation, before `run` starts: then the run starts from it.
        self._run.offer_spec(update)

    # Validated steering. A validator refuses without a trace in the history; it raises
    # ApplicationError (anything else would leave the caller waiting).

    @workflow.update(name=UPDATE_PROMOTE)
    def promote_update(self, request: PromoteRequest) -> str:
        self.promote(request)
        if request.full:
            return "promoted fully: the remaining steps are skipped"
        return "promoted: the current pause ends"

    @promote_update.validator
    def _may_promote(self, request: PromoteRequest) -> None:
        self._refuse_unless(not self._inbox.aborted, "it is being rolled back")
        self._refuse_unless(not self._run.done, "its revision is already stable")
        if not request.full:
            self._refuse_unless(self._inbox.in_pause, "nothing is paused")

    @workflow.update(name=UPDATE_ABORT)
    def abort_update(self, request: AbortRequest) -> str:
        self.abort(request)
        return "aborting: traffic goes back to stable, then the new revision scales down"

    @abort_update.validator
    def _may_abort(self, request: AbortRequest) -> None:
        self._refuse_unless(not self._inbox.aborted, "it is already being rolled back")
        self._refuse_unless(not self._run.done, "its revision is already stable")
        self._refuse_unless(self._run.status.phase not in TERMINAL_PHASES, "it has already failed")

    @workflow.update(name=UPDATE_RETRY)
    def retry_update(self) -> str:
        self.retry()
        return "retrying: the revision runs again from its first step"

    @retry_update.validator
    def _may_retry(self) -> None:
        self._refuse_unless(
            self._run.status.phase in RETRYABLE_PHASES and not self._inbox.retry, "not failed"
        )

    @workflow.update(name=UPDATE_CONCLUDE)
    def conclude_update(self) -> str:
        self.conclude()
        return "concluding: the leading variant wins at the next measurement"

    @conclude_update.validator
    def _may_conclude(self) -> None:
        self._refuse_unless(
            self._run.status.phase in CONCLUDABLE_PHASES and not self._inbox.conclude_requested,
            "no experiment is running",
        )

    def _refuse_unless(self, condition: bool, reason: str) -> None:
        if not condition:
            phase = self._run.status.phase or "Initializing"
            raise ApplicationError(f"{reason} (phase {phase})", type="Refused", non_retryable=True)

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> RolloutStatus:
        return self._run.status

    @workflow.run
    async def run(self, start: RolloutStart) -> RolloutOutcome:
        run, parts = self._run, self._parts
        try:
            claim = await parts.effects.claim(
                ClaimInput(
                    rollout=run.ref,
                    workflow_id=workflow.info().workflow_id,
                    revision=run.revision,
                    config_kinds=sorted(
                        {c.kind for c in copies_in(start.spec.get("template") or {})}
                    ),
                )
            )
        except ActionFailed as failed:  # the Rollout is gone, or kulta may not read it
            return RolloutOutcome(result="skipped", reason=failed.message)
        if not claim.claimed:
            return RolloutOutcome(result="skipped", reason=claim.reason)
        run.update(stable_revision=claim.stable_revision)
        strategy: Strategy | None = None
        try:
            spec = await parts.holds.valid_spec()
            if start.pending is not None:  # deferred by the run this one continues
                run.offer_spec(start.pending)
            while True:
                parts.transitions.strategy_chosen(spec.strategy.kind)
                strategy = strategy_for(spec.strategy.kind, parts)
                try:
                    outcome = await _make_stable(parts, strategy)
                    break
                except SpecRestructured:  # nothing was touched: start over with the edit
                    run.restructured = False
                    spec = run.current_spec
                    run.decide("replan", "the edited Services, route or strategy apply")
            await parts.transitions.settle()
            if run.deferred and outcome.result == "completed":
                # The edit that had to wait for a stable revision: a new run sets it up.
                workflow.continue_as_new(
                    run.start.model_copy(update={"transitions": run.seq, "status": run.status})
                )
            return outcome
        except RollbackRequired as failure:
            return await self._failed(strategy, failure)
        except asyncio.CancelledError:
            if strategy is not None and run.touched and not run.done:
                await self._undo(strategy)
            raise

    async def _failed(self, strategy: Strategy | None, failure: RollbackRequired) -> RolloutOutcome:
        """A failure no step handled: traffic back to stable first (if this revision had any),
        then Failed with the cause; then, like any rollback, wait for a retry."""
        run, transitions = self._run, self._parts.transitions
        reason, message = failure.reason, failure.message
        if run.rolled_back:  # the rollback was reported; what failed is its clean-up
            reason = "CleanupFailed"
            message = f"{run.status.message}; then {failure.message}"
        elif strategy is not None and run.touched and not run.done:
            if await self._undone(strategy):
                run.update(current_weight=0, canary_revision=None)
                message = f"rolled back: {message}"
            else:
                reason = "RollbackIncomplete"
                message = f"{message}; traffic could not be set back to stable, nothing scaled down"
        try:
            await transitions.transition(
                "Failed", reason, message, event_type="Warning", decision=("fail", message)
            )
        except ActionFailed as unreported:
            if unreported.error_type == "NotFound":  # the Rollout itself is gone
                return RolloutOutcome(result="gone", reason=message, phase="Failed")
            run.decide("unreported", unreported.message)
        return await self._parts.holds.wait_for_retry()

    async def _undone(self, strategy: Strategy) -> bool:
        try:
            return await strategy.undo()
        except ActionFailed as failed:
            self._run.decide("rollback-incomplete", failed.message)
            return False

    async def _undo(self, strategy: Strategy) -> None:
        """Cancelled by a newer revision (or a revert): undo this revision before handing over."""
        run = self._run
        if not await self._undone(strategy):
            return  # traffic could not be moved back: leave the pods that serve it
        run.update(current_weight=0, canary_revision=None)
        with contextlib.suppress(ActionFailed):  # the newer revision's run reports from here
            await self._parts.transitions.transition(
                "Progressing",
                "Superseded",
                f"revision {run.revision} superseded; traffic returned to stable",
                decision=("rollback", "superseded by a newer revision"),
            )


async def _make_stable(parts: Parts, strategy: Strategy) -> RolloutOutcome:
    """The revision made stable: directly when there is no stable one yet (or it is this one),
    else through the strategy."""
    run = parts.run
    stable = run.status.stable_revision
    if stable is None or stable == run.revision:
        await establish_stable(parts, strategy.stable_layout(), first=stable is None)
        return RolloutOutcome(result="completed", phase="Completed")
    return await strategy.run()
