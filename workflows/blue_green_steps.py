"""Blue-green: the new revision comes up beside the active one and is selected by the preview
Service; promotion switches the active Service (and route) to it in one step. The old revision is
kept for `scaleDownDelaySeconds`, the window in which an abort switches back instantly."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.analysis_steps import AnalysisSteps
    from workflows.machinery import RollbackRequired
    from workflows.messages import RolloutOutcome
    from workflows.model import BlueGreenStrategy

PREVIEW_STEP, CUTOVER_STEP = 0, 1


class BlueGreenSteps(AnalysisSteps):
    async def _run_blue_green(self) -> RolloutOutcome:
        spec = self._current_spec
        bg = spec.strategy.blue_green
        assert bg is not None
        stable = self._status.stable_revision
        assert stable is not None
        rev = self._input.revision
        preview_count = (
            spec.replicas if bg.preview_replica_count is None else bg.preview_replica_count
        )
        self._status = self._status.model_copy(
            update={
                "canary_revision": rev,
                "step_count": 2,
                "current_step_index": PREVIEW_STEP,
                "current_weight": 0,
            }
        )
        await self._transition(
            "Progressing", "RolloutStarted", f"bringing up revision {rev} for preview"
        )
        await self._ensure_targets([bg.active_service, bg.preview_service], bg.traffic_routing)
        await self._ensure_rs(0)
        self._canary_touched = True
        try:
            await self._scale_own_and_wait(spec, preview_count)
            await self._select(bg.preview_service, rev)
            await self._select(bg.active_service, stable)
            if bg.pre_promotion_analysis is not None and bg.pre_promotion_analysis.metrics:
                await self._run_inline_analysis(
                    bg.pre_promotion_analysis,
                    self._bg_variables(bg, bg.preview_service),
                    "pre-promotion analysis",
                )
            await self._await_promotion(bg)
            await self._checkpoint()
            await self._cut_over_to_new(spec.replicas, bg)
            if bg.post_promotion_analysis is not None and bg.post_promotion_analysis.metrics:
                # While the old revision still runs at full scale: a failure switches back.
                await self._run_inline_analysis(
                    bg.post_promotion_analysis,
                    self._bg_variables(bg, bg.active_service),
                    "post-promotion analysis",
                )
            await self._abort_window(bg)
        except RollbackRequired as rollback:
            await self._undo_blue_green(bg)
            return await self._failed_after_rollback(rollback)
        await self._mark_stable(2, "promoted to active")
        await self._scale_down_others()
        return RolloutOutcome(result="completed", phase="Completed")

    def _bg_variables(self, bg: BlueGreenStrategy, service: str) -> dict[str, str]:
        variables = {
            "namespace": self._input.namespace,
            "rollout": self._input.name,
            "revision": self._input.revision,
            "service": service,
            "stable_revision": self._status.stable_revision or "",
        }
        if not self._cut_over:  # before the switch, the active Service still selects stable
            variables["stable_service"] = bg.active_service
        return variables

    async def _await_promotion(self, bg: BlueGreenStrategy) -> None:
        """Phase Preview until promoted: by a person, or automatically after a delay."""
        self._promotions = 0
        self._in_pause = True

        if bg.auto_promotion_enabled:
            seconds = bg.auto_promotion_seconds or 0
            await self._transition(
                "Preview", "PreviewReady", f"preview ready; promoting automatically in {seconds}s"
            )
            if seconds:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        self._promoted_or_interrupted,
                        timeout=timedelta(seconds=seconds),
                        timeout_summary=f"auto-promotion in {seconds}s",
                    )
        else:
            await self._transition(
                "Preview", "PreviewReady", "preview ready; waiting for promotion"
            )
            await workflow.wait_condition(
                self._promoted_or_interrupted, timeout_summary="wait for promotion"
            )
        self._in_pause = False
        if self._abort is not None:
            raise RollbackRequired("Aborted", self._abort.reason)
        how = "promoted" if self._promotions or self._promote_full else "promoted automatically"
        self._promotions = 0
        self._decide("promote", how)

    async def _cut_over_to_new(self, replicas: int, bg: BlueGreenStrategy) -> None:
        """Full capacity first, then the active Service (and route) switch in one step."""
        spec = self._current_spec
        await self._scale_own_and_wait(spec, replicas)
        await self._select(bg.active_service, self._input.revision)
        self._cut_over = True
        if self._route(bg.traffic_routing) is not None:
            weights = {bg.active_service: 100, bg.preview_service: 0}
            await self._write_weights(bg.traffic_routing, weights, force=True)
        self._status = self._status.model_copy(
            update={"current_step_index": CUTOVER_STEP, "current_weight": 100}
        )
        message = (
            f"active Service {bg.active_service} selects revision {self._input.revision}; the old "
            f"revision stays up for {bg.scale_down_delay_seconds}s"
        )
        await self._transition("Progressing", "CutOver", message, decision=("cutover", message))

    async def _abort_window(self, bg: BlueGreenStrategy) -> None:
        if bg.scale_down_delay_seconds:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._abort is not None,
                    timeout=timedelta(seconds=bg.scale_down_delay_seconds),
                    timeout_summary=f"scale-down delay {bg.scale_down_delay_seconds}s",
                )
        if self._abort is not None:
            raise RollbackRequired("Aborted", self._abort.reason)

    async def _undo_blue_green(self, bg: BlueGreenStrategy) -> None:
        """Active back on the old revision (instant: it still runs at full scale), then the new
        revision to zero. In Preview, active was never touched: only the preview goes."""
        stable = self._status.stable_revision
        assert stable is not None
        if self._cut_over:
            await self._select(bg.active_service, stable)
            self._cut_over = False
        await self._scale(self._own_replicaset, 0)
        self._status = self._status.model_copy(update={"current_weight": 0})
