"""A revision that is (or becomes, for a Rollout's first one) stable: full scale, its Services
pinned, all traffic on it, every other revision scaled down. No steps, nothing to undo.

A Rollout's first revision is the first one whose pods run; once any revision is stable,
every later one goes through the strategy.
Deterministic workflow code."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.strategies import Parts, StableLayout


async def establish_stable(parts: Parts, layout: StableLayout, *, first: bool) -> None:
    """`first`: a new Rollout's first revision (announced as a rollout); otherwise a stable
    revision's run reconciles what may have drifted (announced as nothing new)."""
    run, workload = parts.run, parts.workload
    run.reconciling = not first
    await parts.transitions.transition(
        "Progressing",
        "RolloutStarted" if first else "Reconciling",
        f"revision {run.revision} going to full scale"
        if first
        else f"reconciling stable revision {run.revision}",
    )
    spec = run.current_spec
    if first and layout.services:
        # Before any pod: a first revision held for a missing Service or route runs no pods,
        # so a newer template that arrives meanwhile is the first revision in its place,
        # never a second revision beside it that would skip the strategy.
        await workload.ensure_targets(layout.services, layout.routing, split=layout.split)
    await workload.scale_own_and_wait(spec, spec.replicas)
    run.raise_if_restructured()  # an edit of the Services or route: set up the edited ones
    if not first and layout.services:
        await workload.ensure_targets(layout.services, layout.routing, split=layout.split)
    for service, pinned in layout.pins.items():
        await workload.select(service, run.revision if pinned else None)
    if layout.weights is not None:
        await workload.write_weights(layout.routing, layout.weights, force=True)
    await parts.transitions.completed(layout.step_count, "is stable")
    await workload.scale_down_others()
