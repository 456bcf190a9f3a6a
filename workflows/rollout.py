"""The rollout workflow: one run per Rollout revision, interpreting the planned steps.

Deterministic code only: time comes from `workflow.now()`, waiting from durable timers and
conditions, and every effect on the world is an activity. A run ends when its revision is
stable (Completed); a Failed run stays open, costing nothing, until a retry or a newer revision.
"""

from __future__ import annotations

import asyncio
from typing import assert_never

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        ClaimInput,
        ClaimResult,
    )
    from activities.naming import (
        WORKFLOW_NAME,
    )
    from workflows import options
    from workflows.ab_test_steps import ABTestSteps
    from workflows.blue_green_steps import BlueGreenSteps
    from workflows.canary_steps import CanarySteps
    from workflows.machinery import KEY_STRATEGY, STEP_PATCH
    from workflows.messages import (
        QUERY_STATUS,
        SIGNAL_ABORT,
        SIGNAL_CONCLUDE,
        SIGNAL_PAUSE,
        SIGNAL_PROMOTE,
        SIGNAL_RESUME,
        SIGNAL_RETRY,
        SIGNAL_UPDATE_SPEC,
        UPDATE_ABORT,
        UPDATE_CONCLUDE,
        UPDATE_PROMOTE,
        UPDATE_RETRY,
        AbortRequest,
        PromoteRequest,
        RolloutOutcome,
        RolloutStart,
        SpecUpdate,
    )
    from workflows.model import (
        RolloutSpec,
        RolloutStatus,
    )
    from workflows.simple_steps import SimpleSteps
    from workflows.strategies.stable import layout as stable_layout


@workflow.defn(name=WORKFLOW_NAME)
class RolloutWorkflow(CanarySteps, SimpleSteps, BlueGreenSteps, ABTestSteps):
    @workflow.signal(name=SIGNAL_PROMOTE)
    def promote(self, request: PromoteRequest) -> None:
        # One promotion passes the current pause; outside a pause it is ignored, never saved up.
        # A full promotion also skips the remaining steps, so it counts at any time.
        if request.full:
            self._promote_full = True
        elif self._in_pause:
            self._promotions = 1
        else:
            self._decide("promote-ignored", "promote received while no pause was active")

    @workflow.signal(name=SIGNAL_ABORT)
    def abort(self, request: AbortRequest) -> None:
        if self._abort is None:
            self._abort = request

    @workflow.signal(name=SIGNAL_PAUSE)
    def pause(self) -> None:
        self._signal_paused = True

    @workflow.signal(name=SIGNAL_RESUME)
    def resume(self) -> None:
        self._signal_paused = False
        self._resume_requested = True

    @workflow.signal(name=SIGNAL_CONCLUDE)
    def conclude(self) -> None:
        self._conclude_requested = True

    @workflow.signal(name=SIGNAL_RETRY)
    def retry(self) -> None:
        self._retry = True

    @workflow.signal(name=SIGNAL_UPDATE_SPEC)
    def update_spec(self, update: SpecUpdate) -> None:
        if self._start is None:
            # Sent right after the start, it can arrive in the run's first activation, where
            # signal handlers run before `run` has its input: `run` applies it.
            self._early_spec = update
            return
        if update.generation <= self._start.generation:
            return
        self._start = self._start.model_copy(
            update={"generation": update.generation, "spec": update.spec}
        )
        self._spec_changed = True

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
        self._refuse_unless(self._abort is None, "it is being rolled back")
        self._refuse_unless(not self._done, "its revision is already stable")
        if not request.full:
            self._refuse_unless(self._in_pause, "nothing is paused")

    @workflow.update(name=UPDATE_ABORT)
    def abort_update(self, request: AbortRequest) -> str:
        self.abort(request)
        return "aborting: traffic goes back to stable, then the new revision scales down"

    @abort_update.validator
    def _may_abort(self, request: AbortRequest) -> None:
        self._refuse_unless(self._abort is None, "it is already being rolled back")
        self._refuse_unless(not self._done, "its revision is already stable")
        self._refuse_unless(self._status.phase != "Failed", "it has already failed")

    @workflow.update(name=UPDATE_RETRY)
    def retry_update(self) -> str:
        self.retry()
        return "retrying: the revision runs again from its first step"

    @retry_update.validator
    def _may_retry(self) -> None:
        self._refuse_unless(self._status.phase == "Failed" and not self._retry, "not failed")

    @workflow.update(name=UPDATE_CONCLUDE)
    def conclude_update(self) -> str:
        self.conclude()
        return "concluding: the leading variant wins at the next measurement"

    @conclude_update.validator
    def _may_conclude(self) -> None:
        self._refuse_unless(
            self._status.phase == "Experimenting" and not self._conclude_requested,
            "no experiment is running",
        )

    def _refuse_unless(self, condition: bool, reason: str) -> None:
        if not condition:
            phase = self._status.phase or "Initializing"
            raise ApplicationError(f"{reason} (phase {phase})", type="Refused", non_retryable=True)

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> RolloutStatus:
        return self._status

    @workflow.run
    async def run(self, start: RolloutStart) -> RolloutOutcome:
        early = self._early_spec
        if early is not None and early.generation > start.generation:
            start = start.model_copy(update={"generation": early.generation, "spec": early.spec})
        self._start = start
        self._one_write = workflow.patched(STEP_PATCH)  # first, so its marker is always here
        self._seq = start.transitions
        self._status = RolloutStatus(
            workflow_id=workflow.info().workflow_id, observed_generation=start.generation
        )
        claim = await self._activity(
            "claim_rollout",
            ClaimInput(
                rollout=self._ref, workflow_id=workflow.info().workflow_id, revision=start.revision
            ),
            ClaimResult,
            timeout=options.CLAIM_TIMEOUT,
            heartbeat=options.HEARTBEAT,
            summary="claim rollout",
        )
        if not claim.claimed:
            return RolloutOutcome(result="skipped", reason=claim.reason)
        self._status = self._status.model_copy(update={"stable_revision": claim.stable_revision})
        try:
            outcome = await self._drive()
            await self._announcer.settle()
            return outcome
        except asyncio.CancelledError:
            if not self._done:
                await self._compensate()
            raise

    async def _drive(self) -> RolloutOutcome:
        spec = await self._valid_spec()
        self._status = self._status.model_copy(update={"strategy": spec.strategy.kind})
        workflow.upsert_search_attributes([KEY_STRATEGY.value_set(spec.strategy.kind)])
        stable = self._status.stable_revision
        if stable is None or stable == self._input.revision:
            await self._establish_stable(spec, first=stable is None)
            return RolloutOutcome(result="completed", phase="Completed")
        match spec.strategy.kind:
            case "canary":
                return await self._run_canary()
            case "simple":
                return await self._run_simple()
            case "blueGreen":
                return await self._run_blue_green()
            case "abTesting":
                return await self._run_ab_test()
        assert_never(spec.strategy.kind)

    async def _establish_stable(self, spec: RolloutSpec, *, first: bool) -> None:
        """The revision is (or becomes, for a first one) stable: full scale, all traffic."""
        self._reconciling = not first
        await self._transition(
            "Progressing",
            "RolloutStarted" if first else "Reconciling",
            f"revision {self._input.revision} going to full scale"
            if first
            else f"reconciling stable revision {self._input.revision}",
        )
        await self._scale_own_and_wait(spec, spec.replicas)
        arrangement = stable_layout(spec.strategy)
        if arrangement.services:
            await self._ensure_targets(
                arrangement.services, arrangement.routing, split=arrangement.split
            )
        for service, pinned in arrangement.pins.items():
            await self._select(service, self._input.revision if pinned else None)
        if arrangement.weights is not None:
            await self._write_weights(arrangement.routing, arrangement.weights, force=True)
        canary = spec.strategy.canary
        await self._mark_stable(len(canary.steps) if canary else None, "is stable")
        await self._scale_down_others()

    async def _compensate(self) -> None:
        """Cancelled by a newer revision (or a revert): undo this revision before handing over."""
        spec = self._spec
        if spec is None or not self._canary_touched:
            return
        if spec.strategy.canary is not None:
            if not await self._traffic_to_stable(spec.strategy.canary):
                return  # traffic could not be moved back: leave the pods that serve it
            await self._scale(self._own_replicaset, 0)
        elif spec.strategy.simple is not None:
            await self._restore_previous(spec)
        elif spec.strategy.blue_green is not None:
            await self._undo_blue_green(spec.strategy.blue_green)
        elif spec.strategy.ab_testing is not None:
            await self._undo_ab_test(spec.strategy.ab_testing)
        self._status = self._status.model_copy(
            update={"current_weight": 0, "canary_revision": None}
        )
        await self._transition(
            "Progressing",
            "Superseded",
            f"revision {self._input.revision} superseded; traffic returned to stable",
            decision=("rollback", "superseded by a newer revision"),
        )
