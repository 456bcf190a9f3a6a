"""The rollout workflow: one run per Rollout revision, interpreting the planned steps.

Deterministic code only: time comes from `workflow.now()`, waiting from durable timers and
conditions, and every effect on the world is an activity. A run ends when its revision is
stable (Completed); a Failed run stays open, costing nothing, until a retry or a newer revision.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        CheckTargetsInput,
        CheckTargetsResult,
        ClaimInput,
        ClaimResult,
        EnsureReplicaSetInput,
        EventSpec,
        PublishStatusInput,
        ReplicaSetState,
        RolloutRef,
        ScaleDownOthersInput,
        ScaleInput,
        SelectRevisionInput,
        SetWeightsInput,
        SetWeightsResult,
        WaitAvailableInput,
        WaitAvailableResult,
    )
    from activities.naming import (
        SA_NAMESPACE,
        SA_PHASE,
        SA_ROLLOUT,
        SA_STRATEGY,
        WORKFLOW_NAME,
        replicaset_name,
    )
    from workflows import options
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
        CanaryStrategy,
        Condition,
        Decision,
        InvalidSpec,
        Phase,
        RolloutSpec,
        RolloutStatus,
        parse_spec,
    )
    from workflows.steps import Pause, SetWeight
    from workflows.strategies import canary as canary_planner
    from workflows.weights import canary_replicas_for_weight, replica_split_without_routing

T = TypeVar("T")

KEY_ROLLOUT = SearchAttributeKey.for_keyword(SA_ROLLOUT)
KEY_NAMESPACE = SearchAttributeKey.for_keyword(SA_NAMESPACE)
KEY_STRATEGY = SearchAttributeKey.for_keyword(SA_STRATEGY)
KEY_PHASE = SearchAttributeKey.for_keyword(SA_PHASE)


class RollbackRequired(Exception):
    """Raised inside a step when the canary must be rolled back; carries the reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@workflow.defn(name=WORKFLOW_NAME)
class RolloutWorkflow:
    def __init__(self) -> None:
        self._start: RolloutStart | None = None
        self._spec: RolloutSpec | None = None
        self._status = RolloutStatus()
        self._seq = 0
        self._promotions = 0
        self._promote_full = False
        self._abort: AbortRequest | None = None
        self._signal_paused = False
        self._retry = False
        self._spec_changed = False
        self._expected_weights: dict[str, int] | None = None
        self._canary_touched = False
        self._in_pause = False
        self._done = False

    # -------------------------------------------------------------------------------- handlers

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

    # -------------------------------------------------------------------------------- main

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

    # -------------------------------------------------------------------------------- canary

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
        await self._ensure_targets(spec, canary)
        await self._ensure_rs(0)
        self._canary_touched = True
        await self._select(canary.canary_service, self._input.revision)
        if self._route(canary) is None:
            # Without a route, traffic follows pod counts: the stable Service must span both.
            await self._select(canary.stable_service, None)
        try:
            for step in steps:
                spec = self._current_spec
                canary = spec.strategy.canary or canary
                await self._checkpoint()
                match step:
                    case SetWeight(weight=weight):
                        await self._set_weight(spec, canary, weight, step.spec_index)
                    case Pause():
                        await self._pause(step)
                if self._promote_full:
                    self._decide("promote-full", "promoted fully: remaining steps skipped")
                    break
            await self._checkpoint()
            await self._promote_canary(
                self._current_spec, self._current_spec.strategy.canary or canary
            )
        except RollbackRequired as rollback:
            await self._rollback(canary, rollback.reason, rollback.message)
            return await self._wait_for_retry()
        return RolloutOutcome(result="completed", phase="Completed")

    async def _checkpoint(self) -> None:
        """Between actions: honour abort and user pauses."""
        if self._abort is not None:
            raise RollbackRequired("Aborted", self._abort.reason)
        if self._user_paused:
            before = self._status.phase or "Progressing"
            await self._transition("Paused", "PausedByUser", "rollout paused by user")
            await workflow.wait_condition(lambda: not self._user_paused or self._abort is not None)
            if self._abort is not None:
                raise RollbackRequired("Aborted", self._abort.reason)
            await self._transition(before, "Resumed", "rollout resumed by user")

    async def _set_weight(
        self, spec: RolloutSpec, canary: CanaryStrategy, weight: int, index: int
    ) -> None:
        self._status = self._status.model_copy(update={"current_step_index": index})
        route = self._route(canary)
        if route is None:
            split = replica_split_without_routing(spec.replicas, weight)
            await self._scale_canary_and_wait(spec, split.canary)
            stable = self._status.stable_revision
            assert stable is not None
            await self._scale(replicaset_name(self._input.name, stable), split.stable)
        else:
            need = canary_replicas_for_weight(spec.replicas, weight)
            await self._scale_canary_and_wait(spec, need)
            await self._write_weights(canary, 100 - weight, weight)
        self._status = self._status.model_copy(update={"current_weight": weight})
        await self._transition(
            "Progressing",
            "StepAdvanced",
            f"step {index + 1}/{len(canary.steps)}: canary weight {weight}%",
            decision=("set-weight", f"canary weight set to {weight}%"),
        )

    async def _scale_canary_and_wait(self, spec: RolloutSpec, replicas: int) -> None:
        state = await self._ensure_rs(replicas)
        self._record_replicas(state)
        if replicas == 0:
            return
        result = await self._activity(
            "wait_replicaset_available",
            WaitAvailableInput(
                namespace=self._input.namespace,
                name=self._own_replicaset,
                want=replicas,
                progress_deadline_seconds=spec.progress_deadline_seconds,
            ),
            WaitAvailableResult,
            timeout=timedelta(seconds=spec.progress_deadline_seconds + 300),
            heartbeat=options.HEARTBEAT,
            summary=f"wait for {replicas} canary pods",
        )
        if not result.met:
            raise RollbackRequired("ProgressDeadlineExceeded", result.message)
        self._status = self._status.model_copy(
            update={"available_replicas": result.available, "ready_replicas": result.available}
        )

    async def _pause(self, step: Pause) -> None:
        now = workflow.now()
        self._promotions = 0
        self._in_pause = True
        if step.manual:
            self._status = self._status.model_copy(
                update={"pause_start_time": _iso(now), "pause_end_time": None}
            )
            await self._transition("Paused", "PausedForPromotion", "waiting for promotion")
            await workflow.wait_condition(
                lambda: self._promotions > 0 or self._promote_full or self._abort is not None,
                timeout_summary="wait for promotion",
            )
        else:
            assert step.seconds is not None
            end = now + timedelta(seconds=step.seconds)
            self._status = self._status.model_copy(
                update={"pause_start_time": _iso(now), "pause_end_time": _iso(end)}
            )
            await self._transition("Paused", "Pausing", f"pausing for {step.seconds}s")
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._promotions > 0 or self._promote_full or self._abort is not None,
                    timeout=timedelta(seconds=step.seconds),
                    timeout_summary=f"pause {step.seconds}s",
                )
        if self._abort is not None:
            raise RollbackRequired("Aborted", self._abort.reason)
        promoted = self._promotions > 0
        self._promotions = 0
        self._in_pause = False
        self._status = self._status.model_copy(
            update={"pause_start_time": None, "pause_end_time": None}
        )
        why = "promoted" if promoted or self._promote_full else "pause elapsed"
        await self._transition(
            "Progressing", "PauseEnded", why, decision=("resume", why), event_type="Normal"
        )

    async def _promote_canary(self, spec: RolloutSpec, canary: CanaryStrategy) -> None:
        """The canary becomes stable: full scale, stable Service follows, weights 100/0."""
        await self._scale_canary_and_wait(spec, spec.replicas)
        route = self._route(canary)
        await self._select(canary.stable_service, self._input.revision if route else None)
        if route is not None:
            await self._write_weights(canary, 100, 0)
        old = self._status.stable_revision
        await self._mark_stable(len(canary.steps), "promoted to stable")
        if old is not None:
            await workflow.sleep(
                timedelta(seconds=canary.scale_down_delay_seconds),
                summary=f"scale-down delay {canary.scale_down_delay_seconds}s",
            )
            await self._activity(
                "scale_down_other_revisions",
                ScaleDownOthersInput(rollout=self._ref, keep_revisions=[self._input.revision]),
                list,
                summary="scale down old revisions",
            )

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
        route = self._route(canary)
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
                    namespace=route[0],
                    route=route[1],
                    weights={canary.stable_service: 100, canary.canary_service: 0},
                ),
                SetWeightsResult,
                retry=options.ROLLBACK_ROUTE_RETRY,
                summary="weights stable 100 / canary 0",
            )
        except ActivityError:
            return False
        if result.outcome in ("applied", "unchanged"):
            self._expected_weights = {canary.stable_service: 100, canary.canary_service: 0}
            return True
        return False

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

    async def _wait_for_retry(self) -> RolloutOutcome:
        await workflow.wait_condition(lambda: self._retry, timeout_summary="wait for retry")
        assert self._start is not None
        workflow.continue_as_new(
            self._start.model_copy(update={"attempt": self._start.attempt + 1})
        )

    # -------------------------------------------------------------------------------- stable

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
            await self._ensure_targets(spec, canary)
            pin = self._input.revision if self._route(canary) else None
            await self._select(canary.stable_service, pin)
            await self._select(canary.canary_service, self._input.revision)
            if self._route(canary) is not None:
                await self._write_weights(canary, 100, 0, force=True)
        await self._mark_stable(len(canary.steps) if canary else None, "is stable")
        await self._activity(
            "scale_down_other_revisions",
            ScaleDownOthersInput(rollout=self._ref, keep_revisions=[self._input.revision]),
            list,
            summary="scale down other revisions",
        )

    async def _mark_stable(self, step_count: int | None, how: str) -> None:
        """This revision is stable now: recorded in status, and compensation no longer applies."""
        self._done = True
        self._status = self._status.model_copy(
            update={
                "stable_revision": self._input.revision,
                "canary_revision": None,
                "current_weight": 100,
                "current_step_index": step_count,
                "step_count": step_count,
            }
        )
        await self._transition(
            "Completed",
            "RolloutCompleted",
            f"revision {self._input.revision} is stable",
            decision=("promote", f"revision {self._input.revision} {how}"),
        )

    # -------------------------------------------------------------------------------- pieces

    async def _valid_spec(self) -> RolloutSpec:
        """The parsed spec; an invalid one is reported and waited on until it is fixed."""
        while True:
            assert self._start is not None
            try:
                self._spec = parse_spec(self._start.spec)
                self._spec_changed = False
                return self._spec
            except InvalidSpec as err:
                await self._transition(
                    "Failed",
                    "InvalidSpec",
                    f"invalid spec, nothing was changed: {err}",
                    event_type="Warning",
                    condition=("Valid", "False"),
                )
                await workflow.wait_condition(
                    lambda: self._spec_changed, timeout_summary="wait for a valid spec"
                )

    @property
    def _current_spec(self) -> RolloutSpec:
        """The latest valid spec: a valid edit mid-rollout applies from the next step on."""
        if self._spec_changed and self._start is not None:
            self._spec_changed = False
            try:
                self._spec = parse_spec(self._start.spec)
                self._status = self._status.model_copy(
                    update={"observed_generation": self._start.generation}
                )
            except InvalidSpec as err:
                self._decide("ignore-spec", f"ignored invalid spec update: {err}")
        assert self._spec is not None
        return self._spec

    @property
    def _user_paused(self) -> bool:
        return self._signal_paused or self._current_spec.paused

    async def _ensure_targets(self, spec: RolloutSpec, canary: CanaryStrategy) -> None:
        """Blocks (phase Paused, with the reason) until the Services and route are usable."""
        route = self._route(canary)
        wait = options.RECHECK_INITIAL
        while True:
            result = await self._activity(
                "check_traffic_targets",
                CheckTargetsInput(
                    namespace=self._input.namespace,
                    services=[canary.stable_service, canary.canary_service],
                    route=route[1] if route else None,
                    route_namespace=route[0] if route else None,
                ),
                CheckTargetsResult,
                summary="check services and route",
            )
            if result.ok:
                return
            await self._hold(result.reason, result.message, wait)
            wait = min(wait * 2, options.RECHECK_MAX)

    async def _hold(self, reason: str, message: str, recheck: timedelta) -> None:
        """Paused with a reason; returns on resume, a spec change, or the recheck timer."""
        if self._status.phase != "Paused" or self._status.message != message:
            await self._transition(
                "Paused",
                reason,
                f"{message}; rollout paused, nothing was scaled down",
                event_type="Warning",
            )
        self._signal_paused = False
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._spec_changed or self._abort is not None,
                timeout=recheck,
                timeout_summary="recheck",
            )
        if self._abort is not None:
            raise RollbackRequired("Aborted", self._abort.reason)

    async def _write_weights(
        self, canary: CanaryStrategy, stable_w: int, canary_w: int, *, force: bool = False
    ) -> None:
        route = self._route(canary)
        assert route is not None
        weights = {canary.stable_service: stable_w, canary.canary_service: canary_w}
        while True:
            result = await self._activity(
                "set_route_weights",
                SetWeightsInput(
                    namespace=route[0],
                    route=route[1],
                    weights=weights,
                    expected=None if force else self._expected_weights,
                ),
                SetWeightsResult,
                summary=f"weights stable {stable_w} / canary {canary_w}",
            )
            if result.outcome in ("applied", "unchanged"):
                self._expected_weights = weights
                return
            # Someone else's edit, or the route went away: pause instead of fighting.
            await self._hold(
                "HTTPRouteDrifted" if result.outcome == "drifted" else "HTTPRouteMisconfigured",
                result.message,
                options.RECHECK_MAX,
            )
            # Resumed: the user accepts the route as it is now, and kulta owns the weights again.
            if result.outcome == "drifted":
                self._expected_weights = None

    async def _ensure_rs(self, replicas: int) -> ReplicaSetState:
        assert self._start is not None and self._spec is not None
        return await self._activity(
            "ensure_replicaset",
            EnsureReplicaSetInput(
                rollout=self._ref,
                revision=self._input.revision,
                template=self._start.spec.get("template") or {},
                match_labels=self._spec.selector.match_labels or {},
                replicas=replicas,
                min_ready_seconds=self._spec.min_ready_seconds,
            ),
            ReplicaSetState,
            summary=f"scale {self._own_replicaset} to {replicas}",
        )

    async def _scale(self, name: str, replicas: int) -> None:
        await self._activity(
            "scale_replicaset",
            ScaleInput(namespace=self._input.namespace, name=name, replicas=replicas),
            ReplicaSetState,
            summary=f"scale {name} to {replicas}",
        )

    async def _select(self, service: str, revision: str | None) -> None:
        await self._activity(
            "select_revision",
            SelectRevisionInput(
                namespace=self._input.namespace, service=service, revision=revision
            ),
            type(None),
            summary=f"service {service} -> {revision or 'all revisions'}",
        )

    def _record_replicas(self, state: ReplicaSetState) -> None:
        self._status = self._status.model_copy(
            update={
                "replicas": state.replicas,
                "ready_replicas": state.ready,
                "available_replicas": state.available,
                "updated_replicas": state.replicas,
            }
        )

    def _decide(self, action: str, reason: str) -> None:
        decisions = [
            *self._status.decisions,
            Decision(
                time=_iso(workflow.now()),
                action=action,
                reason=reason,
                step=self._status.current_step_index,
            ),
        ][-options.MAX_DECISIONS :]
        self._status = self._status.model_copy(update={"decisions": decisions})

    async def _transition(
        self,
        phase: Phase,
        reason: str,
        message: str,
        *,
        event_type: str = "Normal",
        decision: tuple[str, str] | None = None,
        condition: tuple[str, str] | None = None,
    ) -> None:
        """Records a transition: status, conditions, a Kubernetes Event and search attributes."""
        if decision is not None:
            self._decide(*decision)
        conditions = _conditions(
            self._status.conditions, phase, reason, message, self._input.generation, condition
        )
        self._status = self._status.model_copy(
            update={"phase": phase, "message": message, "conditions": conditions}
        )
        self._seq += 1
        assert self._start is not None
        transition = f"{workflow.info().workflow_id}/{self._start.attempt}/{self._seq}"
        workflow.upsert_search_attributes([KEY_PHASE.value_set(phase)])
        await self._activity(
            "publish_status",
            PublishStatusInput(
                rollout=self._ref,
                status=self._status.model_dump(mode="json", by_alias=True),
                event=EventSpec(
                    type="Warning" if event_type == "Warning" else "Normal",
                    reason=reason,
                    message=message,
                    transition_id=transition,
                ),
            ),
            bool,
            summary=f"{phase}: {reason}",
        )

    async def _activity(
        self,
        name: str,
        arg: Any,
        result_type: type[T],
        *,
        timeout: timedelta = options.KUBE_TIMEOUT,
        heartbeat: timedelta | None = None,
        retry: Any = None,
        summary: str | None = None,
    ) -> T:
        result = await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timeout,
            heartbeat_timeout=heartbeat,
            retry_policy=retry or options.RETRY,
            summary=summary,
        )
        return result  # type: ignore[no-any-return]

    def _route(self, canary: CanaryStrategy) -> tuple[str, str] | None:
        """(namespace, name) of the HTTPRoute, or None without Gateway API routing."""
        routing = canary.traffic_routing
        if routing is None or routing.gateway_api is None:
            return None
        return (
            routing.gateway_api.namespace or self._input.namespace,
            routing.gateway_api.http_route,
        )

    @property
    def _input(self) -> RolloutStart:
        assert self._start is not None, "the run has not started"
        return self._start

    @property
    def _own_replicaset(self) -> str:
        return replicaset_name(self._input.name, self._input.revision)

    @property
    def _ref(self) -> RolloutRef:
        return RolloutRef(
            namespace=self._input.namespace, name=self._input.name, uid=self._input.uid
        )


def _iso(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


_PHASE_CONDITIONS: dict[str, tuple[str, str]] = {
    # phase -> (Progressing status, Available status)
    "Initializing": ("True", "False"),
    "Progressing": ("True", "False"),
    "Paused": ("Unknown", "False"),
    "Completed": ("False", "True"),
    "Failed": ("False", "False"),
}


def _conditions(
    current: list[Condition],
    phase: str,
    reason: str,
    message: str,
    generation: int,
    extra: tuple[str, str] | None,
) -> list[Condition]:
    progressing, available = _PHASE_CONDITIONS.get(phase, ("True", "False"))
    wanted = {
        "Progressing": progressing,
        "Paused": "True" if phase == "Paused" else "False",
        "Available": available,
        "Valid": "True",
    }
    if extra is not None:
        wanted[extra[0]] = extra[1]
    now = _iso(workflow.now())
    by_type = {c.type: c for c in current}
    out = []
    for ctype, status in wanted.items():
        old = by_type.get(ctype)
        changed = old is None or old.status != status
        out.append(
            Condition(
                type=ctype,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now if changed or old is None else old.last_transition_time,
                observed_generation=generation,
            )
        )
    return out
