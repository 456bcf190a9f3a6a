"""Simple strategy: a rolling update between two ReplicaSets, honouring maxSurge/maxUnavailable."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.naming import replicaset_name
    from workflows.analysis_steps import AnalysisSteps
    from workflows.machinery import RollbackRequired
    from workflows.messages import RolloutOutcome
    from workflows.model import RolloutSpec
    from workflows.weights import resolve_int_or_percent, rolling_plan


class SimpleSteps(AnalysisSteps):
    async def _run_simple(self) -> RolloutOutcome:
        spec = self._current_spec
        simple = spec.strategy.simple
        assert simple is not None
        n = spec.replicas
        surge = resolve_int_or_percent(simple.max_surge, n, round_up=True)
        unavailable = resolve_int_or_percent(simple.max_unavailable, n, round_up=False)
        # Percentages can round both bounds to zero; like a Deployment, then allow one missing pod.
        plan = rolling_plan(n, surge, max(unavailable, 0 if surge else 1))
        stable = self._status.stable_revision
        assert stable is not None
        old = replicaset_name(self._input.name, stable)
        self._status = self._status.model_copy(
            update={
                "canary_revision": self._input.revision,
                "step_count": len(plan),
                "current_step_index": 0,
            }
        )
        await self._transition(
            "Progressing",
            "RolloutStarted",
            f"rolling update to revision {self._input.revision} "
            f"(maxSurge {surge}, maxUnavailable {unavailable})",
        )
        await self._ensure_rs(0)
        self._canary_touched = True
        try:
            for index, step in enumerate(plan):
                await self._checkpoint()
                await self._scale_own_and_wait(spec, step.new)
                await self._scale(old, step.old)
                self._status = self._status.model_copy(
                    update={"current_step_index": index, "updated_replicas": step.new}
                )
                progress = f"{step.new}/{n} pods on {self._input.revision}, {step.old} on {stable}"
                await self._transition(
                    "Progressing", "StepAdvanced", progress, decision=("rolling-step", progress)
                )
            if simple.analysis is not None and simple.analysis.metrics:
                await self._run_inline_analysis(
                    simple.analysis,
                    {
                        "namespace": self._input.namespace,
                        "rollout": self._input.name,
                        "revision": self._input.revision,
                        "stable_revision": stable,
                    },
                    "analysis",
                )
        except RollbackRequired as rollback:
            await self._restore_previous(spec)
            return await self._failed_after_rollback(rollback)
        await self._mark_stable(len(plan), "rolled out")
        await self._scale_down_others()
        return RolloutOutcome(result="completed", phase="Completed")

    async def _restore_previous(self, spec: RolloutSpec) -> None:
        """Capacity first: the previous revision back at full scale and available, then this one
        to zero. If the previous revision cannot come back, this one's pods are kept."""
        stable = self._status.stable_revision
        assert stable is not None
        previous = replicaset_name(self._input.name, stable)
        await self._scale(previous, spec.replicas)
        try:
            await self._wait_available(spec, previous, spec.replicas)
        except RollbackRequired as stuck:
            self._decide("rollback-incomplete", f"kept {self._own_replicaset}: {stuck.message}")
            return
        await self._scale(self._own_replicaset, 0)
