"""Canary steps: weights on the route (or pod counts), pauses, promotion, traffic-first rollback."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        SetWeightsInput,
        SetWeightsResult,
    )
    from activities.naming import (
        replicaset_name,
    )
    from workflows import options
    from workflows.analysis import AnalysisState
    from workflows.analysis_steps import AnalysisSteps
    from workflows.machinery import RollbackRequired, iso_time
    from workflows.messages import (
        RolloutOutcome,
    )
    from workflows.model import (
        CanaryStrategy,
        RolloutSpec,
    )
    from workflows.steps import Analyze, Pause, SetWeight
    from workflows.strategies import canary as canary_planner
    from workflows.weights import (
        canary_replicas_for_weight,
        replica_split_without_routing,
        route_weights,
    )


class CanarySteps(AnalysisSteps):
    async def _run_canary(self) -> RolloutOutcome:
        spec = self._current_spec
        assert spec.strategy.canary is not None
        canary = spec.strategy.canary
        steps = canary_planner.plan(canary)
        self._status = self._status.model_copy(
            update={
                "canary_revision": self._input.revision,
                "step_count": len(canary.steps),
                "current_step_index": 0,
                "current_weight": 0,
            }
        )
        await self._transition(
            "Progressing", "RolloutStarted", f"canary of revision {self._input.revision} started"
        )
        await self._ensure_targets(
            [canary.stable_service, canary.canary_service], canary.traffic_routing
        )
        await self._ensure_rs(0)
        self._canary_touched = True
        await self._select(canary.canary_service, self._input.revision)
        if self._route(canary.traffic_routing) is None:
            # Without a route, traffic follows pod counts: the stable Service must span both.
            await self._select(canary.stable_service, None)
        if canary.analysis is not None and canary.analysis.metrics:
            self._analysis = AnalysisState(canary.analysis)
            self._analysis_task = asyncio.create_task(
                self._analysis_loop(self._metric_variables(canary))
            )
        try:
            for position, step in enumerate(steps):
                spec = self._current_spec
                canary = spec.strategy.canary or canary
                await self._checkpoint()
                match step:
                    case SetWeight(weight=weight):
                        # A weight followed by a pause is told in the pause's one transition.
                        then_pause = position + 1 < len(steps) and isinstance(
                            steps[position + 1], Pause
                        )
                        await self._set_weight(
                            spec,
                            canary,
                            weight,
                            step.spec_index,
                            tell=not (self._one_write and then_pause),
                        )
                    case Analyze(analysis=analysis):
                        self._status = self._status.model_copy(
                            update={"current_step_index": step.spec_index}
                        )
                        await self._run_inline_analysis(
                            analysis,
                            self._metric_variables(canary),
                            f"step {step.spec_index + 1}/{len(canary.steps)}",
                        )
                    case Pause():
                        await self._pause(step, len(canary.steps))
                if self._promote_full:
                    self._decide("promote-full", "promoted fully: remaining steps skipped")
                    break
            await self._checkpoint()
            await self._await_analysis_pass()
            self._analysis_stop = True
            await self._promote_canary(
                self._current_spec, self._current_spec.strategy.canary or canary
            )
        except RollbackRequired as rollback:
            self._analysis_stop = True
            await self._rollback(canary, rollback.reason, rollback.message)
            return await self._wait_for_retry()
        return RolloutOutcome(result="completed", phase="Completed")

    async def _set_weight(
        self, spec: RolloutSpec, canary: CanaryStrategy, weight: int, index: int, *, tell: bool
    ) -> None:
        """Enough canary pods available, then the weight; `tell=False` leaves the transition
        (status, CDEvent) to the pause that follows."""
        self._status = self._status.model_copy(update={"current_step_index": index})
        route = self._route(canary.traffic_routing)
        if route is None:
            split = replica_split_without_routing(spec.replicas, weight)
            await self._scale_own_and_wait(spec, split.canary)
            stable = self._status.stable_revision
            assert stable is not None
            await self._scale(replicaset_name(self._input.name, stable), split.stable)
        else:
            need = canary_replicas_for_weight(spec.replicas, weight)
            await self._scale_own_and_wait(spec, need)
            await self._write_weights(canary.traffic_routing, canary_split(canary, weight))
        self._status = self._status.model_copy(update={"current_weight": weight})
        if weight > 0:
            self._traffic_since = workflow.now()  # warmup and evidence count from here
        decision = ("set-weight", f"canary weight set to {weight}%")
        if not tell:
            self._decide(*decision)
            self._step_untold = True
            return
        await self._transition(
            "Progressing",
            "StepAdvanced",
            f"step {index + 1}/{len(canary.steps)}: canary weight {weight}%",
            decision=decision,
            event_on_phase_change_only=self._one_write,
        )

    async def _pause(self, step: Pause, step_count: int) -> None:
        """Waits for the timer or a promotion. Since the one-write-per-step patch, its start is
        told together with the weight set just before it, a timed pause keeps the phase
        Progressing (it ends by itself; pauseEndTime says when; Paused means someone must act),
        and its end is told with the next step's write unless a person ended it."""
        now = workflow.now()
        self._promotions = 0
        self._in_pause = True
        advanced, self._step_untold = self._step_untold, False
        told = (
            f"step {step.spec_index + 1}/{step_count}: canary weight "
            f"{self._status.current_weight}%, "
            if advanced
            else ""
        )
        if step.manual:
            self._status = self._status.model_copy(
                update={"pause_start_time": iso_time(now), "pause_end_time": None}
            )
            await self._transition(
                "Paused",
                "PausedForPromotion",
                f"{told}waiting for promotion",
                announce_as="StepAdvanced" if advanced else None,
            )
            await workflow.wait_condition(
                self._promoted_or_interrupted, timeout_summary="wait for promotion"
            )
        else:
            assert step.seconds is not None
            end = now + timedelta(seconds=step.seconds)
            self._status = self._status.model_copy(
                update={"pause_start_time": iso_time(now), "pause_end_time": iso_time(end)}
            )
            await self._transition(
                "Progressing" if self._one_write else "Paused",
                "StepAdvanced" if advanced else "Pausing",
                f"{told}pausing for {step.seconds}s",
                event_on_phase_change_only=self._one_write,
            )
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    self._promoted_or_interrupted,
                    timeout=timedelta(seconds=step.seconds),
                    timeout_summary=f"pause {step.seconds}s",
                )
        if self._abort is not None:
            raise RollbackRequired("Aborted", self._abort.reason)
        promoted = self._promotions > 0 or self._promote_full
        self._in_pause = False
        await self._react_to_analysis()
        if not promoted:
            await self._await_analysis_pass()  # a timer alone never promotes without evidence
        self._promotions = 0
        self._status = self._status.model_copy(
            update={"pause_start_time": None, "pause_end_time": None}
        )
        why = "promoted" if promoted else "pause elapsed"
        if self._one_write and not promoted and self._status.phase != "Paused":
            self._decide("resume", why)  # told with the next step's write
            return
        # Someone acted: they see it at once, not only once the next step's pods are up.
        await self._transition(
            "Progressing",
            "PauseEnded",
            why,
            decision=("resume", why),
            event_on_phase_change_only=self._one_write,
        )

    async def _promote_canary(self, spec: RolloutSpec, canary: CanaryStrategy) -> None:
        """The canary becomes stable: full scale, stable Service follows, weights 100/0."""
        await self._scale_own_and_wait(spec, spec.replicas)
        route = self._route(canary.traffic_routing)
        await self._select(canary.stable_service, self._input.revision if route else None)
        if route is not None:
            await self._write_weights(canary.traffic_routing, canary_split(canary, 0))
        old = self._status.stable_revision
        await self._mark_stable(len(canary.steps), "promoted to stable")
        if old is not None:
            await workflow.sleep(
                timedelta(seconds=canary.scale_down_delay_seconds),
                summary=f"scale-down delay {canary.scale_down_delay_seconds}s",
            )
            await self._scale_down_others()

    async def _rollback(self, canary: CanaryStrategy, reason: str, message: str) -> None:
        """Traffic first, confirmed; then, after the abort delay, the canary scales to zero."""
        if not await self._traffic_to_stable(canary):
            await self._transition(
                "Failed",
                "RollbackIncomplete",
                f"{message}; the HTTPRoute could not be set back to stable, so nothing was "
                "scaled down",
                event_type="Warning",
            )
            return
        self._status = self._status.model_copy(update={"current_weight": 0})
        await self._transition(
            "Failed",
            reason,
            f"rolled back: {message}",
            event_type="Warning",
            decision=("rollback", message),
        )
        await workflow.sleep(
            timedelta(seconds=canary.abort_scale_down_delay_seconds),
            summary=f"abort scale-down delay {canary.abort_scale_down_delay_seconds}s",
        )
        await self._scale(self._own_replicaset, 0)

    async def _traffic_to_stable(self, canary: CanaryStrategy) -> bool:
        """Moves all traffic back to stable; True once that is confirmed."""
        route = self._route(canary.traffic_routing)
        stable = self._status.stable_revision
        assert stable is not None
        if route is None:
            spec = self._current_spec
            await self._scale(replicaset_name(self._input.name, stable), spec.replicas)
            return True
        try:
            result = await self._activity(
                "set_route_weights",
                SetWeightsInput(
                    rollout=self._input.name,
                    namespace=route[0],
                    route=route[1],
                    weights=canary_split(canary, 0),
                ),
                SetWeightsResult,
                retry=options.ROLLBACK_ROUTE_RETRY,
                summary="weights stable 100 / canary 0",
            )
        except ActivityError:
            return False
        if result.outcome in ("applied", "unchanged"):
            self._expected_weights = canary_split(canary, 0)
            return True
        return False

    def _metric_variables(self, canary: CanaryStrategy) -> dict[str, str]:
        return {
            "namespace": self._input.namespace,
            "rollout": self._input.name,
            "revision": self._input.revision,
            "service": canary.canary_service,
            "stable_revision": self._status.stable_revision or "",
            "stable_service": canary.stable_service,
        }


def canary_split(canary: CanaryStrategy, weight: int) -> dict[str, int]:
    """Route weights with `weight` percent on the canary (they always sum to 100)."""
    weights = route_weights(weight)
    return {canary.stable_service: weights.stable, canary.canary_service: weights.canary}
