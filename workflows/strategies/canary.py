"""Canary: weights on the route (or pod counts without one), pauses, promotion, and a rollback
that moves traffic first.

- `plan` turns the spec's steps into `SetWeight` (carrying the pause right after it),
  `Analyze` and `Pause`; the weight arithmetic is `workflows/weights.py`.
- Before the canary gets weight `w`, `ceil(replicas * w / 100)` of its pods are available.
- Rollback: weight 0 first, confirmed; after `abortScaleDownDelaySeconds` the canary scales to
  zero. If the route cannot be set back, nothing is scaled down.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.naming import replicaset_name
    from workflows.durations import iso_time, parse_duration
    from workflows.messages import RolloutOutcome
    from workflows.model import CanaryStrategy, HeaderMatch
    from workflows.run import RollbackRequired
    from workflows.steps import Analyze, Pause, SetHeaderRoute, SetMirrorRoute, SetWeight, Step
    from workflows.strategies.base import Parts, StableLayout, routed
    from workflows.strategies.canary_routes import (
        header_rule,
        mirror_input,
        uses_header_routes,
        uses_mirror_routes,
    )
    from workflows.weights import (
        canary_replicas_for_weight,
        replica_split_without_routing,
        route_weights,
    )


def plan(strategy: CanaryStrategy) -> list[Step]:
    """Each spec step becomes its `setHeaderRoute`, `setMirrorRoute`, `setWeight`, then
    `analysis`, then `pause` (those it has); a pause that directly follows a weight travels
    with it."""
    steps: list[Step] = []
    for index, step in enumerate(strategy.steps):
        if step.set_header_route is not None:
            steps.append(SetHeaderRoute(match=step.set_header_route, spec_index=index))
        if step.set_mirror_route is not None:
            steps.append(SetMirrorRoute(percent=step.set_mirror_route.percent, spec_index=index))
        if step.set_weight is not None:
            steps.append(SetWeight(weight=step.set_weight, spec_index=index))
        if step.analysis is not None:
            steps.append(Analyze(analysis=step.analysis, spec_index=index))
        if step.pause is not None:
            seconds = parse_duration(step.pause.duration) if step.pause.duration else None
            pause = Pause(seconds=seconds, spec_index=index)
            last = steps[-1] if steps else None
            if isinstance(last, SetWeight) and last.pause is None:
                steps[-1] = SetWeight(weight=last.weight, spec_index=last.spec_index, pause=pause)
            else:
                steps.append(pause)
    return steps


_ORDER = {SetHeaderRoute: 0, SetMirrorRoute: 1, SetWeight: 2, Analyze: 3, Pause: 4}


def _position(step: Step, *, end: bool = False) -> tuple[int, int]:
    """Where a planned step sits in the spec: (step index, part). With `end`, where it ends: a
    weight that carries its pause ends after the pause."""
    if end and isinstance(step, SetWeight) and step.pause is not None:
        return (step.spec_index, _ORDER[Pause])
    return (step.spec_index, _ORDER[type(step)])


def canary_split(canary: CanaryStrategy, weight: int) -> dict[str, int]:
    """Route weights with `weight` percent on the canary (they always sum to 100)."""
    weights = route_weights(weight)
    return {canary.stable_service: weights.stable, canary.canary_service: weights.canary}


class Canary:
    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._run = parts.run
        spec = parts.run.current_spec
        assert spec.strategy.canary is not None
        self._spec = spec
        self._canary = spec.strategy.canary  # the latest canary settings (edits apply per step)
        # A weight was set but not yet told (status, CDEvent): the pause after it tells it.
        self._step_untold = False
        self._stable_replicas = spec.replicas  # the stable revision's size, kept at full
        self._sized_for: int | None = None  # the spec.replicas the pod counts were last set for
        self._header: HeaderMatch | None = None  # the header route on the HTTPRoute, if any
        self._mirror: int | None = None  # the share mirrored to the canary, if any

    def stable_layout(self) -> StableLayout:
        c = self._canary
        route = routed(c.traffic_routing)
        return StableLayout(
            services=[c.stable_service, c.canary_service],
            # Without a route, traffic follows pod counts, so stable spans every revision.
            pins={c.stable_service: route, c.canary_service: True},
            routing=c.traffic_routing,
            weights=canary_split(c, 0) if route else None,
            step_count=len(c.steps),
        )

    async def run(self) -> RolloutOutcome:
        parts, run, canary = self._parts, self._run, self._canary
        workload = parts.workload
        run.update(
            canary_revision=run.revision,
            step_count=len(canary.steps),
            current_step_index=0,
            current_weight=0,
        )
        await parts.transitions.transition(
            "Progressing", "RolloutStarted", f"canary of revision {run.revision} started"
        )
        await workload.ensure_targets(
            [canary.stable_service, canary.canary_service], canary.traffic_routing
        )
        await workload.create_own()
        await workload.select(canary.canary_service, run.revision)
        if run.route(canary.traffic_routing) is None:
            # Without a route, traffic follows pod counts: the stable Service must span both.
            await workload.select(canary.stable_service, None)
        if canary.analysis is not None and canary.analysis.metrics:
            parts.analysis.start_background(canary.analysis, self._variables())
        try:
            await self._steps()
            await parts.holds.checkpoint()
            await parts.holds.await_analysis_pass()
            parts.analysis.stop()
            await self._promote()
        except RollbackRequired as rollback:
            parts.analysis.stop()
            await self._rollback(rollback.reason, rollback.message)
            await parts.holds.wait_for_retry()
        return RolloutOutcome(result="completed", phase="Completed")

    async def _steps(self) -> None:
        """The plan's steps in order, re-planned after each one: an edit of the steps applies
        from the next step on (a step already passed is not run again)."""
        done = (-1, 0)
        while True:
            await self._between_steps()
            step = next((s for s in plan(self._canary) if _position(s) > done), None)
            if step is None:
                return
            match step:
                case SetWeight(weight=weight, spec_index=index, pause=pause):
                    await self._set_weight(weight, index, tell=pause is None)
                    if pause is not None:
                        if self._promoted_fully():
                            return
                        await self._between_steps()
                        await self._pause(pause)
                case Analyze(analysis=analysis, spec_index=index):
                    self._run.update(current_step_index=index)
                    await self._parts.analysis.inline(
                        analysis,
                        self._variables(),
                        f"step {index + 1}/{len(self._canary.steps)}",
                        self._parts.holds,
                    )
                case SetHeaderRoute(match=match, spec_index=index):
                    self._run.update(current_step_index=index)
                    await self._header_route(match)
                case SetMirrorRoute(percent=percent, spec_index=index):
                    self._run.update(current_step_index=index)
                    await self._mirror_route(percent)
                case Pause():
                    await self._pause(step)
            done = _position(step, end=True)
            if self._promoted_fully():
                return

    async def _between_steps(self) -> None:
        """A valid edit applies from the next step on (the steps, the replicas); then the
        checkpoint."""
        await self._follow_edits()
        await self._parts.holds.checkpoint()

    async def _follow_edits(self) -> None:
        """The latest spec; an edited background analysis replaces the running one at once."""
        self._spec = self._run.current_spec
        self._canary = self._spec.strategy.canary or self._canary
        self._follow_analysis_edits()

    def _follow_analysis_edits(self) -> None:
        analysis, loop = self._canary.analysis, self._parts.analysis
        wanted = analysis if analysis is not None and analysis.metrics else None
        if wanted == loop.spec:
            return
        loop.stop()
        if wanted is not None:
            loop.start_background(wanted, self._variables())
        self._run.decide("analysis-edited", "the edited analysis applies from this step on")

    def _promoted_fully(self) -> bool:
        if self._parts.inbox.promote_full:
            self._run.decide("promote-full", "promoted fully: remaining steps skipped")
            return True
        return False

    async def _set_weight(self, weight: int, index: int, *, tell: bool) -> None:
        """Enough canary pods available, then the weight; `tell=False` leaves the transition
        (status, CDEvent) to the pause that follows."""
        run = self._run
        run.update(current_step_index=index)
        await self._size_and_route(weight, lower=weight < (run.status.current_weight or 0))
        run.update(current_weight=weight)
        if weight > 0:
            run.traffic_since = workflow.now()  # warmup and evidence count from here
        decision = ("set-weight", f"canary weight set to {weight}%")
        if not tell:
            run.decide(*decision)
            self._step_untold = True
            return
        await self._parts.transitions.transition(
            "Progressing",
            "StepAdvanced",
            f"step {index + 1}/{len(self._canary.steps)}: canary weight {weight}%",
            decision=decision,
            event_on_phase_change_only=True,
        )

    async def _header_route(self, match: HeaderMatch) -> None:
        """Requests with the header go to the canary from now on: first a canary pod is
        available (the weight may still be 0), then kulta's rule goes on the route."""
        await self._a_canary_pod_first()
        self._header = match
        await self._set_header_rule(match)
        self._run.decide(
            "header-route", f"requests with {match.name}: {match.value} go to the canary"
        )

    async def _set_header_rule(self, match: HeaderMatch | None) -> None:
        run, canary = self._run, self._canary
        route = run.route(canary.traffic_routing)
        assert route is not None  # the model requires a route for setHeaderRoute
        rule = header_rule(route, run.name, canary, match)
        outcome = await self._parts.effects.set_experiment_rule(rule)
        if outcome == "missing" and match is not None:
            raise RollbackRequired(
                "HTTPRouteNotFound", f"HTTPRoute {route[0]}/{route[1]} does not exist"
            )
        await self._parts.workload.verify_rule_change(
            canary.traffic_routing, added=match is not None
        )

    async def _a_canary_pod_first(self) -> None:
        """At least one canary pod available (the weight may still be 0): header-matched and
        mirrored requests reach the canary whatever the weight."""
        spec = self._spec
        need = canary_replicas_for_weight(spec.replicas, self._run.status.current_weight or 0)
        await self._parts.workload.scale_own_and_wait(spec, max(need, 1))

    async def _mirror_route(self, percent: int) -> None:
        """A share of the stable traffic is copied to the canary from now on (its answers are
        dropped): a canary pod first, then the RequestMirror filter."""
        await self._a_canary_pod_first()
        self._mirror = percent
        await self._set_mirror(percent)
        self._run.decide("mirror-route", f"{percent}% of the requests mirrored to the canary")

    async def _set_mirror(self, percent: int | None) -> None:
        run, canary = self._run, self._canary
        route = run.route(canary.traffic_routing)
        assert route is not None  # the model requires a route for setMirrorRoute
        outcome = await self._parts.effects.set_mirror_route(mirror_input(route, canary, percent))
        if percent is None:
            # Taking it off: a route that is gone or changed mirrors nothing of ours.
            await self._parts.workload.verify_rule_change(canary.traffic_routing, added=False)
            return
        if outcome == "missing":
            raise RollbackRequired(
                "HTTPRouteNotFound", f"HTTPRoute {route[0]}/{route[1]} does not exist"
            )
        if outcome.startswith("misconfigured"):
            raise RollbackRequired("HTTPRouteMisconfigured", outcome.split(": ", 1)[-1])
        await self._parts.workload.verify_rule_change(canary.traffic_routing, added=True)

    async def _remove_traffic_rules(self) -> None:
        """kulta's header rule and mirror off the route (also after an edit removed the step)."""
        await self._remove_header_route()
        if self._mirror is not None or uses_mirror_routes(self._canary):
            await self._set_mirror(None)
            self._mirror = None

    async def _remove_header_route(self) -> None:
        """kulta's header rule off the route (also after an edit removed the step)."""
        if self._header is None and not uses_header_routes(self._canary):
            return
        await self._set_header_rule(None)
        self._header = None

    async def _follow_edits_in_pause(self) -> None:
        """`_follow_edits`, and a replicas edit applies at once at the current weight, without
        waiting for the next step: a pause may last hours, and `kubectl scale` or an HPA (the
        scale subresource) expects its change now."""
        await self._follow_edits()
        resized = self._sized_for is not None and self._spec.replicas != self._sized_for
        if resized and workflow.patched("replicas-follow-in-pause"):
            weight = self._run.status.current_weight or 0
            await self._size_and_route(weight, lower=False, route=False)
            self._run.decide("scaled", f"replicas {self._spec.replicas} at weight {weight}%")
            await self._parts.transitions.publish_quietly()

    async def _size_and_route(self, weight: int, *, lower: bool, route: bool = True) -> None:
        """Both revisions sized for `weight` of `spec.replicas`, and (with `route`) the route
        at `weight`: whichever side grows is up before traffic moves to it."""
        run, spec, canary, workload = self._run, self._spec, self._canary, self._parts.workload
        stable = replicaset_name(run.name, run.stable_revision)
        if run.route(canary.traffic_routing) is None:
            # Traffic follows pod counts: whichever side grows is up before the other shrinks.
            split = replica_split_without_routing(spec.replicas, weight)
            if lower:
                await workload.scale(stable, split.stable)
                await workload.wait_available(spec, stable, split.stable)
                await workload.scale_own(split.canary)
            else:
                await workload.scale_own_and_wait(spec, split.canary)
                await workload.scale(stable, split.stable)
        else:
            # Capacity before traffic both ways: up, then weight; or weight, then down.
            need = canary_replicas_for_weight(spec.replicas, weight)
            if self._header is not None or self._mirror is not None:
                need = max(need, 1)  # header-matched or mirrored requests still reach the canary
            if spec.replicas != self._stable_replicas:
                # `spec.replicas` changed mid-rollout: stable keeps full capacity at the new size.
                await workload.scale(stable, spec.replicas)
                await workload.wait_available(spec, stable, spec.replicas)
                self._stable_replicas = spec.replicas
            if lower:
                await workload.write_weights(canary.traffic_routing, canary_split(canary, weight))
                await workload.scale_own(need)
            else:
                await workload.scale_own_and_wait(spec, need)
                if route:
                    weights = canary_split(canary, weight)
                    await workload.write_weights(canary.traffic_routing, weights)
        self._sized_for = spec.replicas

    async def _pause(self, step: Pause) -> None:
        """Waits for the timer or a promotion. Its start is told together with the weight set
        just before it; a timed pause keeps the phase Progressing (it ends by itself;
        pauseEndTime says when; Paused means someone must act), and its end is told with the
        next step's write unless a person ended it."""
        parts, run = self._parts, self._run
        now = workflow.now()
        parts.inbox.open_pause()
        advanced, self._step_untold = self._step_untold, False
        told = (
            f"step {step.spec_index + 1}/{len(self._canary.steps)}: canary weight "
            f"{run.status.current_weight}%, "
            if advanced
            else ""
        )

        def verdict_pending() -> bool:
            return parts.analysis.verdict is not None

        if step.seconds is None:
            run.update(pause_start_time=iso_time(now), pause_end_time=None)
            await parts.transitions.transition(
                "Paused",
                "PausedForPromotion",
                f"{told}waiting for promotion",
                announce_as="StepAdvanced" if advanced else None,
            )
            promoted = await parts.holds.pause_until(
                lambda: None,
                interrupted=verdict_pending,
                summary="wait for promotion",
                after_edit=self._follow_edits_in_pause,
            )
        else:
            end = now + timedelta(seconds=step.seconds)
            run.update(pause_start_time=iso_time(now), pause_end_time=iso_time(end))
            await parts.transitions.transition(
                "Progressing",
                "StepAdvanced" if advanced else "Pausing",
                f"{told}pausing for {step.seconds}s",
                event_on_phase_change_only=True,
            )
            promoted = await parts.holds.pause_until(
                lambda: end,
                interrupted=verdict_pending,
                summary=f"pause {step.seconds}s",
                after_edit=self._follow_edits_in_pause,
            )
        await parts.holds.react_to_analysis()
        if not promoted:
            await parts.holds.await_analysis_pass()  # a timer alone never promotes without evidence
        run.update(pause_start_time=None, pause_end_time=None)
        why = "promoted" if promoted else "pause elapsed"
        if not promoted and run.status.phase != "Paused":
            run.decide("resume", why)  # told with the next step's write
            return
        # Someone acted: they see it at once, not only once the next step's pods are up.
        await parts.transitions.transition(
            "Progressing",
            "PauseEnded",
            why,
            decision=("resume", why),
            event_on_phase_change_only=True,
        )

    async def _promote(self) -> None:
        """The canary becomes stable: full scale, stable Service follows, weights 100/0."""
        run, workload = self._run, self._parts.workload
        spec = run.current_spec
        canary = spec.strategy.canary or self._canary
        await workload.scale_own_and_wait(spec, spec.replicas)
        route = run.route(canary.traffic_routing)
        await workload.select(canary.stable_service, run.revision if route else None)
        if route is not None:
            await workload.write_weights(canary.traffic_routing, canary_split(canary, 0))
            await self._remove_traffic_rules()
        old = run.status.stable_revision
        await self._parts.transitions.completed(len(canary.steps), "promoted to stable")
        if old is not None:
            await workflow.sleep(
                timedelta(seconds=canary.scale_down_delay_seconds),
                summary=f"scale-down delay {canary.scale_down_delay_seconds}s",
            )
            await workload.scale_down_others()

    async def _rollback(self, reason: str, message: str) -> None:
        """Traffic first, confirmed; then, after the abort delay, the canary scales to zero."""
        canary, transitions = self._canary, self._parts.transitions
        if not await self._traffic_to_stable():
            await transitions.transition(
                "Failed",
                "RollbackIncomplete",
                f"{message}; the HTTPRoute could not be set back to stable, so nothing was "
                "scaled down",
                event_type="Warning",
            )
            return
        self._run.update(current_weight=0)
        if workflow.patched("status-counts-after-rollback"):
            await self._count_stable()
        await transitions.rolled_back(reason, message)
        await workflow.sleep(
            timedelta(seconds=canary.abort_scale_down_delay_seconds),
            summary=f"abort scale-down delay {canary.abort_scale_down_delay_seconds}s",
        )
        await self._parts.workload.scale_own(0)

    async def undo(self) -> bool:
        if not await self._traffic_to_stable():
            return False  # traffic could not be moved back: leave the pods that serve it
        await self._parts.workload.scale_own(0)
        return True

    async def _count_stable(self) -> None:
        """Status counts the stable revision's pods again: it serves everything now. A read
        (a wait for zero pods returns at once), so a failing write cannot hold the report."""
        run = self._run
        spec = run.current_spec
        stable = replicaset_name(run.name, run.stable_revision)
        available = await self._parts.workload.wait_available(spec, stable, 0, interruptible=False)
        run.update(
            replicas=spec.replicas,
            ready_replicas=available,
            available_replicas=available,
            updated_replicas=0,
        )

    async def _traffic_to_stable(self) -> bool:
        """Moves all traffic back to stable; True once that is confirmed."""
        run, canary, workload = self._run, self._canary, self._parts.workload
        if run.route(canary.traffic_routing) is None:
            # Traffic follows pod counts: stable back at full size and available first.
            spec = run.current_spec
            stable = replicaset_name(run.name, run.stable_revision)
            await workload.scale(stable, spec.replicas)
            try:
                await workload.wait_available(spec, stable, spec.replicas, interruptible=False)
            except RollbackRequired as stuck:
                run.decide("rollback-incomplete", f"kept {run.own_replicaset}: {stuck.message}")
                return False
            return True
        # Header-matched and mirrored requests first: they reach the canary at any weight.
        await self._remove_traffic_rules()
        return await workload.weights_for_rollback(canary.traffic_routing, canary_split(canary, 0))

    def _variables(self) -> dict[str, str]:
        run, canary = self._run, self._canary
        return {
            "namespace": run.namespace,
            "rollout": run.name,
            "revision": run.revision,
            "service": canary.canary_service,
            "stable_revision": run.status.stable_revision or "",
            "stable_service": canary.stable_service,
        }
