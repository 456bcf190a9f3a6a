"""The rollout workflow: one run per Rollout revision, interpreting the planned steps.

Deterministic code only: time comes from `workflow.now()`, waiting from durable timers and
conditions, and every effect on the world is an activity. A run ends when its revision is
stable (Completed); a Failed run stays open, costing nothing, until a retry or a newer revision.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        ClaimInput,
        ClaimResult,
        ScaleDownOthersInput,
    )
    from activities.naming import (
        WORKFLOW_NAME,
    )
    from workflows import options
    from workflows.canary_steps import CanarySteps, canary_split
    from workflows.machinery import KEY_STRATEGY
    from workflows.messages import (
        QUERY_STATUS,
        SIGNAL_ABORT,
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
    from workflows.model import (
        RolloutSpec,
        RolloutStatus,
    )


@workflow.defn(name=WORKFLOW_NAME)
class RolloutWorkflow(CanarySteps):
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

    @workflow.signal(name=SIGNAL_RETRY)
    def retry(self) -> None:
        self._retry = True

    @workflow.signal(name=SIGNAL_UPDATE_SPEC)
    def update_spec(self, update: SpecUpdate) -> None:
        assert self._start is not None
        if update.generation <= self._start.generation:
            return
        self._start = self._start.model_copy(
            update={"generation": update.generation, "spec": update.spec}
        )
        self._spec_changed = True

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> RolloutStatus:
        return self._status

    @workflow.run
    async def run(self, start: RolloutStart) -> RolloutOutcome:
        self._start = start
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
            return await self._drive()
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
        if spec.strategy.canary is None:
            await self._transition(
                "Failed",
                "StrategyUnsupported",
                f"strategy {spec.strategy.kind} is not supported by this kulta version",
                event_type="Warning",
            )
            await workflow.wait_condition(lambda: False)
        return await self._run_canary()

    async def _establish_stable(self, spec: RolloutSpec, *, first: bool) -> None:
        """The revision is (or becomes, for a first one) stable: full scale, all traffic."""
        await self._transition(
            "Progressing",
            "RolloutStarted" if first else "Reconciling",
            f"revision {self._input.revision} going to full scale"
            if first
            else f"reconciling stable revision {self._input.revision}",
        )
        await self._scale_canary_and_wait(spec, spec.replicas)
        canary = spec.strategy.canary
        if canary is not None:
            await self._ensure_targets(
                [canary.stable_service, canary.canary_service], canary.traffic_routing
            )
            pin = self._input.revision if self._route(canary.traffic_routing) else None
            await self._select(canary.stable_service, pin)
            await self._select(canary.canary_service, self._input.revision)
            if self._route(canary.traffic_routing) is not None:
                await self._write_weights(
                    canary.traffic_routing, canary_split(canary, 0), force=True
                )
        await self._mark_stable(len(canary.steps) if canary else None, "is stable")
        await self._activity(
            "scale_down_other_revisions",
            ScaleDownOthersInput(rollout=self._ref, keep_revisions=[self._input.revision]),
            list,
            summary="scale down other revisions",
        )

    async def _compensate(self) -> None:
        """Cancelled by a newer revision (or a revert): undo this canary before handing over."""
        spec = self._spec
        if spec is None or spec.strategy.canary is None or not self._canary_touched:
            return
        canary = spec.strategy.canary
        if await self._traffic_to_stable(canary):
            await self._scale(self._own_replicaset, 0)
            self._status = self._status.model_copy(
                update={"current_weight": 0, "canary_revision": None}
            )
            await self._transition(
                "Progressing",
                "Superseded",
                f"revision {self._input.revision} superseded; traffic returned to stable",
                decision=("rollback", "superseded by a newer revision"),
            )
