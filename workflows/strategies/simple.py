"""Simple: a rolling update between two ReplicaSets within maxSurge / maxUnavailable (the plan
is `workflows/weights.py:rolling_plan`). Rollback restores capacity first: the previous
revision back at full scale and available, then the new one to zero."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.naming import replicaset_name
    from workflows.messages import RolloutOutcome
    from workflows.model import RolloutSpec, SimpleStrategy
    from workflows.run import RollbackRequired
    from workflows.strategies.base import Parts, StableLayout
    from workflows.weights import resolve_int_or_percent, rolling_plan


class Simple:
    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._run = parts.run

    def stable_layout(self) -> StableLayout:
        return StableLayout()  # no Services or route: traffic follows the pods

    async def run(self) -> RolloutOutcome:
        parts, run, workload = self._parts, self._run, self._parts.workload
        spec = run.current_spec
        simple = spec.strategy.simple
        assert simple is not None
        n = spec.replicas
        surge = resolve_int_or_percent(_surge(spec, simple), n, round_up=True)
        unavailable = resolve_int_or_percent(_unavailable(spec, simple), n, round_up=False)
        # Percentages can round both bounds to zero; like a Deployment, then allow one missing pod.
        plan = rolling_plan(n, surge, max(unavailable, 0 if surge else 1))
        stable = run.stable_revision
        old = replicaset_name(run.name, stable)
        run.update(canary_revision=run.revision, step_count=len(plan), current_step_index=0)
        await parts.transitions.transition(
            "Progressing",
            "RolloutStarted",
            f"rolling update to revision {run.revision} "
            f"(maxSurge {surge}, maxUnavailable {unavailable})",
        )
        await workload.create_own()
        run.touched = True
        try:
            for index, step in enumerate(plan):
                await parts.holds.checkpoint()
                await workload.scale_own_and_wait(spec, step.new)
                await workload.scale(old, step.old)
                run.update(current_step_index=index, updated_replicas=step.new)
                progress = f"{step.new}/{n} pods on {run.revision}, {step.old} on {stable}"
                await parts.transitions.transition(
                    "Progressing", "StepAdvanced", progress, decision=("rolling-step", progress)
                )
            if simple.analysis is not None and simple.analysis.metrics:
                await parts.analysis.inline(
                    simple.analysis,
                    {
                        "namespace": run.namespace,
                        "rollout": run.name,
                        "revision": run.revision,
                        "stable_revision": stable,
                    },
                    "analysis",
                    parts.holds,
                )
        except RollbackRequired as rollback:
            await self.undo()
            return await parts.failed_after_rollback(rollback)
        await parts.transitions.completed(len(plan), "rolled out")
        await workload.scale_down_others()
        return RolloutOutcome(result="completed", phase="Completed")

    async def undo(self) -> bool:
        """Capacity first: the previous revision back at full scale and available, then this
        one to zero. If the previous revision cannot come back, this one's pods are kept."""
        run, workload = self._run, self._parts.workload
        spec = run.current_spec
        previous = replicaset_name(run.name, run.stable_revision)
        await workload.scale(previous, spec.replicas)
        try:
            await workload.wait_available(spec, previous, spec.replicas, interruptible=False)
        except RollbackRequired as stuck:
            run.decide("rollback-incomplete", f"kept {run.own_replicaset}: {stuck.message}")
        else:
            await workload.scale_own(0)
        return True


def _surge(spec: RolloutSpec, simple: SimpleStrategy) -> int | str:
    """strategy.simple's, else the original kulta's top-level placement, else the default."""
    if "max_surge" in simple.model_fields_set or spec.max_surge is None:
        return simple.max_surge
    return spec.max_surge


def _unavailable(spec: RolloutSpec, simple: SimpleStrategy) -> int | str:
    if "max_unavailable" in simple.model_fields_set or spec.max_unavailable is None:
        return simple.max_unavailable
    return spec.max_unavailable
