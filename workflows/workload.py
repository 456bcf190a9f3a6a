"""The moves a run makes on its workload: this revision's ReplicaSet scaled and waited for, other
ReplicaSets scaled, Service selectors pinned, route weights written.

The rules kept here: a missing Service or route holds the rollout (nothing is scaled down);
someone else's weights on the route hold it until a person resumes (never fought); pods that do
not become available within `progressDeadlineSeconds` require a rollback. Deterministic workflow
code; the activities are in `Effects`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        CheckTargetsInput,
        EnsureReplicaSetInput,
        ReplicaSetState,
        ScaleAndWaitInput,
        ScaleDownOthersInput,
        ScaleInput,
        SelectRevisionInput,
        SetWeightsInput,
        VerifyRouteInput,
        VerifyRouteResult,
        WaitAvailableInput,
    )
    from workflows import options
    from workflows.durations import parse_duration
    from workflows.effects import Effects
    from workflows.holds import Holds
    from workflows.model import RolloutSpec, TrafficRouting
    from workflows.run import ActionFailed, Interrupted, RollbackRequired, Run


class Workload:
    def __init__(self, run: Run, effects: Effects, holds: Holds) -> None:
        self._run = run
        self._effects = effects
        self._holds = holds
        self._told_unobserved = False

    async def ensure_targets(
        self, services: list[str], routing: TrafficRouting | None, *, split: bool = True
    ) -> None:
        """Blocks (phase Paused, with the reason) until the Services and route are usable."""
        run = self._run
        route = run.route(routing)
        wait = options.RECHECK_INITIAL
        while True:
            result = await self._effects.check_targets(
                CheckTargetsInput(
                    namespace=run.namespace,
                    services=services,
                    require_split=split,
                    route=route[1] if route else None,
                    route_namespace=route[0] if route else None,
                )
            )
            if result.ok:
                return
            await self._holds.hold(result.reason, result.message, wait)
            wait = min(wait * 2, options.RECHECK_MAX)

    def _own(self, replicas: int) -> EnsureReplicaSetInput:
        run = self._run
        assert run.spec is not None
        return EnsureReplicaSetInput(
            rollout=run.ref,
            revision=run.revision,
            template=run.start.spec.get("template") or {},
            match_labels=run.spec.selector.match_labels or {},
            replicas=replicas,
            min_ready_seconds=run.spec.min_ready_seconds,
            generation=run.status.observed_generation or run.start.generation,
        )

    async def create_own(self) -> None:
        """This revision's ReplicaSet exists (at zero pods when it is new). From here the run
        has something to undo, and the frame of its spec is fixed (`workflows/edits.py`)."""
        self._run.raise_if_restructured()
        await self._effects.ensure_replicaset(self._own(0), self._run.own_replicaset)
        self._run.touched = True

    async def scale_own_and_wait(self, spec: RolloutSpec, replicas: int) -> None:
        """This revision's ReplicaSet at `replicas`, with that many pods available; no progress
        for the deadline means the rollout must be rolled back. An abort or a rollback verdict
        ends the wait at once (traffic must not wait for pods to go back)."""
        run = self._run
        try:
            result = await self._effects.scale_and_wait(
                ScaleAndWaitInput(
                    replicaset=self._own(replicas),
                    progress_deadline_seconds=spec.progress_deadline_seconds,
                ),
                run.own_replicaset,
                interrupted=self._holds.must_stop,
            )
        except Interrupted:
            await self._holds.stop_now()
        self._record(result.state)
        if not result.wait.met:
            raise RollbackRequired("ProgressDeadlineExceeded", result.wait.message)
        if replicas > 0:
            available = result.wait.available
            run.update(available_replicas=available, ready_replicas=available)

    async def wait_available(
        self, spec: RolloutSpec, name: str, want: int, *, interruptible: bool = True
    ) -> int:
        """Waits for `want` available pods of ReplicaSet `name`; no progress for the deadline
        means the rollout must be rolled back. Unless `interruptible` is False (a rollback's own
        wait), an abort or a rollback verdict ends the wait at once."""
        try:
            result = await self._effects.wait_available(
                WaitAvailableInput(
                    namespace=self._run.namespace,
                    name=name,
                    want=want,
                    progress_deadline_seconds=spec.progress_deadline_seconds,
                ),
                interrupted=self._holds.must_stop if interruptible else None,
            )
        except Interrupted:
            await self._holds.stop_now()
        if not result.met:
            raise RollbackRequired("ProgressDeadlineExceeded", result.message)
        return result.available

    async def scale(self, name: str, replicas: int) -> ReplicaSetState:
        return await self._effects.scale(
            ScaleInput(namespace=self._run.namespace, name=name, replicas=replicas)
        )

    async def scale_own(self, replicas: int) -> None:
        await self.scale(self._run.own_replicaset, replicas)

    async def select(self, service: str, revision: str | None) -> None:
        """Pins `service` to `revision` (None: it spans every revision). A Service deleted
        mid-rollout holds the rollout (nothing scaled down) until it is back."""
        run = self._run
        wait = options.RECHECK_INITIAL
        while True:
            try:
                await self._effects.select(
                    SelectRevisionInput(namespace=run.namespace, service=service, revision=revision)
                )
                return
            except ActionFailed as failed:
                if failed.error_type != "NotFound":
                    raise
            await self._holds.hold(
                "ServiceNotFound", f"Service {run.namespace}/{service} does not exist", wait
            )
            wait = min(wait * 2, options.RECHECK_MAX)

    async def scale_down_others(self) -> None:
        """Every other revision of this Rollout to zero (this one is stable now); beyond
        `revisionHistoryLimit`, the oldest scaled-down ones are deleted."""
        run = self._run
        await self._effects.scale_down_others(
            ScaleDownOthersInput(
                rollout=run.ref,
                keep_revisions=[run.revision],
                history_limit=run.current_spec.revision_history_limit,
            )
        )

    async def write_weights(
        self, routing: TrafficRouting | None, weights: dict[str, int], *, force: bool = False
    ) -> None:
        """Sets our backends' weights; someone else's edit holds the rollout instead."""
        run = self._run
        route = run.route(routing)
        assert route is not None
        while True:
            result = await self._effects.set_weights(
                SetWeightsInput(
                    rollout=run.name,
                    namespace=route[0],
                    route=route[1],
                    weights=weights,
                    expected=None if force else run.expected_weights,
                )
            )
            if result.outcome in ("applied", "unchanged"):
                run.expected_weights = weights
                await self.verify_route(routing)
                return
            if result.outcome == "drifted":
                # Someone else's edit: leave the route as they made it until a person resumes;
                # then kulta owns the weights again, as the route shows them now.
                await self._holds.hold_until_resumed("HTTPRouteDrifted", result.message)
                run.expected_weights = None
                continue
            # The route went away or is misconfigured: hold until it is usable again.
            await self._holds.hold("HTTPRouteMisconfigured", result.message, options.RECHECK_MAX)

    async def weights_for_rollback(
        self, routing: TrafficRouting | None, weights: dict[str, int]
    ) -> bool:
        """Moves all traffic back to stable with a bounded retry; True once confirmed."""
        run = self._run
        route = run.route(routing)
        assert route is not None
        try:
            result = await self._effects.set_weights_for_rollback(
                SetWeightsInput(
                    rollout=run.name, namespace=route[0], route=route[1], weights=weights
                )
            )
        except ActionFailed:
            return False
        if result.outcome not in ("applied", "unchanged"):
            return False
        run.expected_weights = weights
        # Nothing is scaled down while a Gateway may still send traffic to the canary.
        return await self.settle_route(routing, "rollback-incomplete")

    async def verify_route(self, routing: TrafficRouting | None) -> None:
        """After a change to the route: the step goes on (its pause or analysis clock starts)
        only once the Gateways reporting on the route accepted it. A Gateway that refuses it,
        or does not report on it within `statusTimeout`, holds the rollout with its word; it
        is looked at again on the recheck timer, a resume or an edit. A route no Gateway
        reports on is not waited for, and that is said once per run."""
        wait = options.RECHECK_INITIAL
        while True:
            verified = await self._route_verdict(routing)
            if verified is None or verified.outcome in ("verified", "missing"):
                return
            if verified.outcome == "unobserved":
                if not self._told_unobserved:
                    self._told_unobserved = True
                    self._run.decide("traffic-unverified", f"{verified.message}: not waited for")
                return
            reason = "HTTPRouteRefused" if verified.outcome == "refused" else "HTTPRouteNotAccepted"
            await self._holds.hold(reason, verified.message, wait)
            wait = min(wait * 2, options.RECHECK_MAX)

    async def verify_rule_change(self, routing: TrafficRouting | None, *, added: bool) -> None:
        """After kulta's header, mirror or A/B rule went on the route (verified like a weight:
        a refusal holds) or came off it (settled: the way out does not stop)."""
        if added:
            await self.verify_route(routing)
        else:
            await self.settle_route(routing)

    async def settle_route(
        self, routing: TrafficRouting | None, action: str = "traffic-unverified"
    ) -> bool:
        """Gives the Gateways up to `statusTimeout` to take a change before pods go away,
        without holding; False, with the Gateway's word as a decision `action`, when one
        refused it or did not report on it."""
        verified = await self._route_verdict(routing)
        if verified is not None and verified.outcome in ("refused", "unreported"):
            self._run.decide(action, verified.message)
            return False
        return True

    async def _route_verdict(self, routing: TrafficRouting | None) -> VerifyRouteResult | None:
        """What the Gateways say about the route now; None without a route, or in a run
        recorded before kulta looked (its history has no such activity)."""
        route = self._run.route(routing)
        if route is None or not workflow.patched("verify-route-status"):
            return None
        assert routing is not None and routing.gateway_api is not None
        timeout = routing.gateway_api.status_timeout
        within = (
            parse_duration(timeout)
            if timeout is not None
            else options.ROUTE_STATUS_TIMEOUT.total_seconds()
        )
        return await self._effects.verify_route(
            VerifyRouteInput(namespace=route[0], route=route[1], within_seconds=within)
        )

    def _record(self, state: ReplicaSetState) -> None:
        self._run.update(
            replicas=state.replicas,
            ready_replicas=state.ready,
            available_replicas=state.available,
            updated_replicas=state.replicas,
        )
