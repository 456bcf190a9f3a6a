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
    from workflows.weights import RollingStep, resolve_int_or_percent, rolling_plan


class Simple:
    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._run = parts.run

    def stable_layout(self) -> StableLayout:
        return StableLayout()  # no Services or route: traffic follows the pods

    async def run(self) -> RolloutOutcome:
        parts, run, workload = self._parts, self._run, self._parts.workload
        stable = run.stable_revision
        old = replicaset_name(run.name, stable)
        pods = RollingStep(new=0, old=run.current_spec.replicas)
        plan = self._plan(pods)
        run.update(canary_revision=run.revision, step_count=len(plan), current_step_index=0)
        surge, unavailable = _bounds(run.current_spec)
        await parts.transitions.transition(
            "Progressing",
            "RolloutStarted",
            f"rolling update to revision {run.revision} "
            f"(maxSurge {surge}, maxUnavailable {unavailable})",
        )
        await workload.create_own()
        done = 0
        try:
            while True:
                await parts.holds.checkpoint()
                # Re-planned from where the pods are: an edit of the replicas or the bounds
                # applies from this step (without one, this is the rest of the same plan).
                spec, plan = run.current_spec, self._plan(pods)
                if not plan:
                    break
                pods = plan[0]
                await workload.scale_own_and_wait(spec, pods.new)
                await workload.scale(old, pods.old)
                run.update(
                    current_step_index=done, step_count=done + len(plan), updated_replicas=pods.new
                )
                progress = (
                    f"{pods.new}/{spec.replicas} pods on {run.revision}, {pods.old} on {stable}"
                )
                await parts.transitions.transition(
                    "Progressing", "StepAdvanced", progress, decision=("rolling-step", progress)
                )
                done += 1
            analysis = self._simple().analysis
            if analysis is not None and analysis.metrics:
                await parts.analysis.inline(
                    analysis,
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
        await parts.transitions.completed(done, "rolled out")
        await workload.scale_down_others()
        return RolloutOutcome(result="completed", phase="Completed")

    def _simple(self) -> SimpleStrategy:
        simple = self._run.current_spec.strategy.simple
        assert simple is not None  # the strategy kind is the run's frame
        return simple

    def _plan(self, pods: RollingStep) -> list[RollingStep]:
        surge, unavailable = _bounds(self._run.current_spec)
        # Percentages can round both bounds to zero; like a Deployment, then allow one missing pod.
        return rolling_plan(
            self._run.current_spec.replicas,
            surge,
            max(unavailable, 0 if surge else 1),
            start=pods,
        )

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


def _bounds(spec: RolloutSpec) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts for `spec.replicas`."""
    simple = spec.strategy.simple
    assert simple is not None
    n = spec.replicas
    return (
        resolve_int_or_percent(_surge(spec, simple), n, round_up=True),
        resolve_int_or_percent(_unavailable(spec, simple), n, round_up=False),
    )
