"""Blue-green: the new revision comes up beside the active one and is selected by the preview
Service; promotion switches the active Service (and route) to it in one step. The old revision is
kept for `scaleDownDelaySeconds`, the window in which an abort switches back instantly."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.analysis_spec import Analysis
    from workflows.messages import RolloutOutcome
    from workflows.model import BlueGreenStrategy
    from workflows.run import RollbackRequired
    from workflows.strategies.base import Parts, StableLayout, routed

PREVIEW_STEP, CUTOVER_STEP = 0, 1


class BlueGreen:
    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._run = parts.run
        bg = parts.run.current_spec.strategy.blue_green
        assert bg is not None
        self._initial = bg
        self._cut_over = False  # the active Service selects this revision
        self._preview_replicas = 0  # the preview's pods, following previewReplicaCount

    @property
    def _bg(self) -> BlueGreenStrategy:
        """The latest settings: an edit applies from the next step (its Services and route are
        its frame, fixed while it runs: `workflows/edits.py`)."""
        return self._run.current_spec.strategy.blue_green or self._initial

    def _preview_count(self) -> int:
        spec = self._run.current_spec
        count = self._bg.preview_replica_count
        return spec.replicas if count is None else count

    def stable_layout(self) -> StableLayout:
        b = self._bg
        return StableLayout(
            services=[b.active_service, b.preview_service],
            pins={b.active_service: True, b.preview_service: True},
            routing=b.traffic_routing,
            weights={b.active_service: 100, b.preview_service: 0}
            if routed(b.traffic_routing)
            else None,
        )

    async def run(self) -> RolloutOutcome:
        parts, run, bg = self._parts, self._run, self._bg
        workload = parts.workload
        stable, rev = run.stable_revision, run.revision
        run.update(
            canary_revision=rev, step_count=2, current_step_index=PREVIEW_STEP, current_weight=0
        )
        await parts.transitions.transition(
            "Progressing", "RolloutStarted", f"bringing up revision {rev} for preview"
        )
        await workload.ensure_targets([bg.active_service, bg.preview_service], bg.traffic_routing)
        await workload.create_own()
        try:
            await self._follow_preview_count()
            await workload.select(bg.preview_service, rev)
            await workload.select(bg.active_service, stable)
            await self._analyse(self._bg.before_promotion, bg.preview_service, "pre-promotion")
            await self._await_promotion()
            await parts.holds.checkpoint()
            await self._cut_over_to_new()
            # While the old revision still runs at full scale: a failure switches back.
            await self._analyse(
                self._bg.post_promotion_analysis, bg.active_service, "post-promotion"
            )
            await self._abort_window()
        except RollbackRequired as rollback:
            await self.undo()
            return await parts.failed_after_rollback(rollback)
        await parts.transitions.completed(2, "promoted to active")
        await workload.scale_down_others()
        return RolloutOutcome(result="completed", phase="Completed")

    async def _analyse(self, spec: Analysis | None, service: str, when: str) -> None:
        """Inline analysis of the revision behind `service`, when the spec asks for one."""
        if spec is not None and spec.metrics:
            await self._parts.analysis.inline(
                spec, self._variables(service), f"{when} analysis", self._parts.holds
            )

    def _variables(self, service: str) -> dict[str, str]:
        run = self._run
        variables = {
            "namespace": run.namespace,
            "rollout": run.name,
            "revision": run.revision,
            "service": service,
            "stable_revision": run.status.stable_revision or "",
        }
        if not self._cut_over:  # before the switch, the active Service still selects stable
            variables["stable_service"] = self._bg.active_service
        return variables

    async def _follow_preview_count(self) -> None:
        count = self._preview_count()
        if count != self._preview_replicas:
            await self._parts.workload.scale_own_and_wait(self._run.current_spec, count)
            self._preview_replicas = count

    async def _await_promotion(self) -> None:
        """Phase Preview until promoted: by a person, or automatically after a delay. An edit
        meanwhile applies at once: the preview's size, and whether and when it promotes."""
        parts, bg = self._parts, self._bg
        inbox = parts.inbox
        inbox.open_pause()
        ready = workflow.now()
        await self._tell_preview(ready)
        if bg.auto_promotion_enabled and not bg.auto_promotion_seconds:
            promoted = inbox.close_pause()
        else:

            async def after_edit() -> None:
                await self._follow_preview_count()
                await self._tell_preview(ready)

            promoted = await parts.holds.pause_until(
                lambda: self._promotion_due(ready),
                summary=f"auto-promotion in {bg.auto_promotion_seconds}s"
                if bg.auto_promotion_enabled
                else "wait for promotion",
                after_edit=after_edit,
            )
        self._run.decide("promote", "promoted" if promoted else "promoted automatically")

    def _promotion_due(self, ready: datetime) -> datetime | None:
        bg = self._bg
        if not bg.auto_promotion_enabled:
            return None
        return ready + timedelta(seconds=bg.auto_promotion_seconds or 0)

    async def _tell_preview(self, ready: datetime) -> None:
        """Phase Preview, saying how it ends (again only when an edit changed that)."""
        due = self._promotion_due(ready)
        if due is None:
            message = "preview ready; waiting for promotion"
        else:
            left = max(0, int((due - workflow.now()).total_seconds()))
            message = f"preview ready; promoting automatically in {left}s"
        if self._run.status.phase != "Preview" or self._run.status.message != message:
            await self._parts.transitions.transition("Preview", "PreviewReady", message)

    async def _cut_over_to_new(self) -> None:
        """Full capacity first, then the active Service (and route) switch in one step."""
        run, bg, workload = self._run, self._bg, self._parts.workload
        await workload.scale_own_and_wait(run.current_spec, run.current_spec.replicas)
        await workload.select(bg.active_service, run.revision)
        self._cut_over = True
        if run.route(bg.traffic_routing) is not None:
            weights = {bg.active_service: 100, bg.preview_service: 0}
            await workload.write_weights(bg.traffic_routing, weights, force=True)
        run.update(current_step_index=CUTOVER_STEP, current_weight=100)
        message = (
            f"active Service {bg.active_service} selects revision {run.revision}; the old "
            f"revision stays up for {bg.scale_down_delay_seconds}s"
        )
        await self._parts.transitions.transition(
            "Progressing", "CutOver", message, decision=("cutover", message)
        )

    async def _abort_window(self) -> None:
        inbox, delay = self._parts.inbox, self._bg.scale_down_delay_seconds
        if delay:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: inbox.aborted,
                    timeout=timedelta(seconds=delay),
                    timeout_summary=f"scale-down delay {delay}s",
                )
        inbox.raise_if_aborted()

    async def undo(self) -> bool:
        """Active back on the old revision (instant: it still runs at full scale), then the new
        revision to zero. In Preview, active was never touched: only the preview goes."""
        run, workload = self._run, self._parts.workload
        if self._cut_over:
            await workload.select(self._bg.active_service, run.stable_revision)
            self._cut_over = False
        await workload.scale_own(0)
        run.update(current_weight=0)
        return True
