"""What every strategy's steps share: the run's state, status and Events, activity calls with
their options, pauses held for a reason, and the checks made between steps.

Deterministic workflow code (see `workflows/__init__.py`); strategies build on `RolloutMachinery`.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        CheckTargetsInput,
        CheckTargetsResult,
        EnsureReplicaSetInput,
        EventSpec,
        PublishStatusInput,
        ReplicaSetState,
        RolloutRef,
        ScaleAndWaitInput,
        ScaleAndWaitResult,
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
        replicaset_name,
    )
    from workflows import options
    from workflows.analysis import AnalysisState, Verdict
    from workflows.announcements import cdevent_kind
    from workflows.announcing import Announcer
    from workflows.messages import (
        AbortRequest,
        RolloutOutcome,
        RolloutStart,
        SpecUpdate,
    )
    from workflows.model import (
        Condition,
        Decision,
        InvalidSpec,
        Phase,
        RolloutSpec,
        RolloutStatus,
        TrafficRouting,
        parse_spec,
    )

T = TypeVar("T")

# Runs started before this patch replay their recorded steps unchanged: a scale and a wait as two
# activities, and every step's weight, pause start and pause end as transitions of their own.
STEP_PATCH = "one-write-per-step"

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


class RolloutMachinery:
    """State and helpers of one rollout run; the workflow class adds handlers and dispatch."""

    def __init__(self) -> None:
        self._start: RolloutStart | None = None
        self._spec: RolloutSpec | None = None
        self._status = RolloutStatus()
        self._seq = 0
        self._announcer = Announcer()
        self._reconciling = False  # the revision was already stable: nothing new to publish
        self._promotions = 0
        self._promote_full = False
        self._abort: AbortRequest | None = None
        self._signal_paused = False
        self._retry = False
        self._spec_changed = False
        self._early_spec: SpecUpdate | None = None  # an update-spec signal that beat `run`
        self._expected_weights: dict[str, int] | None = None
        self._canary_touched = False
        self._in_pause = False
        self._cut_over = False  # blue-green: the active Service selects this revision
        self._conclude_requested = False  # A/B: conclude the experiment at the next measurement
        self._resume_requested = False
        # Metric analysis (canary): its state, the verdict awaiting a reaction, and since when the
        # current step's traffic is in place (warmup and "passed since" count from there).
        self._analysis: AnalysisState | None = None
        self._analysis_verdict: Verdict | None = None
        self._analysis_stop = False
        self._traffic_since: datetime | None = None
        self._done = False
        self._one_write = False  # set by `run` from the STEP_PATCH marker
        # A canary weight was set but not yet told (status, CDEvent): the pause after it tells it.
        self._step_untold = False

    async def _checkpoint(self) -> None:
        """Between actions: honour abort, analysis verdicts and user pauses."""
        await self._react_to_analysis()
        if self._abort is not None:
            raise RollbackRequired("Aborted", self._abort.reason)
        if self._user_paused:
            before = self._status.phase or "Progressing"
            await self._transition("Paused", "PausedByUser", "rollout paused by user")
            await workflow.wait_condition(lambda: not self._user_paused or self._abort is not None)
            if self._abort is not None:
                raise RollbackRequired("Aborted", self._abort.reason)
            await self._transition(before, "Resumed", "rollout resumed by user")

    def _promoted_or_interrupted(self) -> bool:
        """What ends a wait for promotion: a promotion, an abort, or an analysis verdict."""
        return (
            self._promotions > 0
            or self._promote_full
            or self._abort is not None
            or self._analysis_verdict is not None
        )

    async def _react_to_analysis(self) -> None:
        """Acts on the analysis loop's latest verdict: roll back, or pause until resumed."""
        verdict = self._analysis_verdict
        if verdict is None:
            return
        self._analysis_verdict = None
        where = f" at step {(self._status.current_step_index or 0) + 1}"
        if verdict.action == "rollback":
            raise RollbackRequired(verdict.reason, verdict.message + where)
        if verdict.action == "continue":
            self._decide("analysis-continue", verdict.message)
            return
        self._resume_requested = False
        before = self._status.phase or "Progressing"
        await self._transition(
            "Paused",
            verdict.reason,
            f"{verdict.message}{where}; paused until resumed",
            event_type="Warning",
            decision=("analysis-pause", verdict.message),
        )

        def released() -> bool:
            failed = (
                self._analysis_verdict is not None and self._analysis_verdict.action == "rollback"
            )
            return self._resume_requested or self._abort is not None or failed

        await workflow.wait_condition(released, timeout_summary="wait for resume")
        if self._abort is not None:
            raise RollbackRequired("Aborted", self._abort.reason)
        if self._analysis_verdict is not None and self._analysis_verdict.action == "rollback":
            await self._react_to_analysis()
            return
        # Pauses the background analysis asked for while paused are what the person resumed past.
        self._analysis_verdict = None
        if self._analysis is not None:
            self._analysis.resume()
        await self._transition(before, "Resumed", "analysis resumed by user")

    async def _await_analysis_pass(self) -> None:
        """No promotion without evidence: every metric must have passed since the traffic moved."""
        analysis, since = self._analysis, self._traffic_since
        if analysis is None or since is None:
            return
        while not analysis.passed_since(since):
            await self._react_to_analysis()
            await workflow.wait_condition(
                lambda: (
                    analysis.passed_since(since)
                    or self._analysis_verdict is not None
                    or self._abort is not None
                ),
                timeout_summary="wait for a passing measurement",
            )
            if self._abort is not None:
                raise RollbackRequired("Aborted", self._abort.reason)

    async def _publish_quietly(self) -> None:
        """Status only (no Event): for measurements, which are not transitions."""
        await self._activity(
            "publish_status",
            PublishStatusInput(
                rollout=self._ref, status=self._status.model_dump(mode="json", by_alias=True)
            ),
            bool,
            summary="record measurements",
            local=self._one_write,
        )

    async def _scale_own_and_wait(self, spec: RolloutSpec, replicas: int) -> None:
        """This revision's ReplicaSet at `replicas`, with that many pods available; no progress
        for the deadline means the rollout must be rolled back."""
        if self._one_write:
            result = await self._activity(
                "scale_replicaset_and_wait",
                ScaleAndWaitInput(
                    replicaset=self._ensure_input(replicas),
                    progress_deadline_seconds=spec.progress_deadline_seconds,
                ),
                ScaleAndWaitResult,
                timeout=timedelta(seconds=spec.progress_deadline_seconds + 300),
                heartbeat=options.HEARTBEAT,
                summary=f"scale {self._own_replicaset} to {replicas} and wait for its pods",
            )
            self._record_replicas(result.state)
            if not result.wait.met:
                raise RollbackRequired("ProgressDeadlineExceeded", result.wait.message)
            if replicas > 0:
                available = result.wait.available
                self._status = self._status.model_copy(
                    update={"available_replicas": available, "ready_replicas": available}
                )
            return
        state = await self._ensure_rs(replicas)
        self._record_replicas(state)
        if replicas == 0:
            return
        available = await self._wait_available(spec, self._own_replicaset, replicas)
        self._status = self._status.model_copy(
            update={"available_replicas": available, "ready_replicas": available}
        )

    async def _wait_available(self, spec: RolloutSpec, name: str, want: int) -> int:
        """Waits for `want` available pods of ReplicaSet `name`; no progress for the deadline
        means the rollout must be rolled back."""
        result = await self._activity(
            "wait_replicaset_available",
            WaitAvailableInput(
                namespace=self._input.namespace,
                name=name,
                want=want,
                progress_deadline_seconds=spec.progress_deadline_seconds,
            ),
            WaitAvailableResult,
            timeout=timedelta(seconds=spec.progress_deadline_seconds + 300),
            heartbeat=options.HEARTBEAT,
            summary=f"wait for {want} pods of {name}",
        )
        if not result.met:
            raise RollbackRequired("ProgressDeadlineExceeded", result.message)
        return result.available

    async def _scale_down_others(self) -> None:
        """Every other revision of this Rollout to zero (this one is stable now)."""
        await self._activity(
            "scale_down_other_revisions",
            ScaleDownOthersInput(rollout=self._ref, keep_revisions=[self._input.revision]),
            list,
            summary="scale down other revisions",
        )

    async def _failed_after_rollback(self, rollback: RollbackRequired) -> RolloutOutcome:
        """Reports a finished rollback (phase Failed) and waits, at no cost, for a retry."""
        await self._transition(
            "Failed",
            rollback.reason,
            f"rolled back: {rollback.message}",
            event_type="Warning",
            decision=("rollback", rollback.message),
        )
        return await self._wait_for_retry()

    async def _wait_for_retry(self) -> RolloutOutcome:
        await workflow.wait_condition(lambda: self._retry, timeout_summary="wait for retry")
        assert self._start is not None
        await self._announcer.settle()
        workflow.continue_as_new(
            self._start.model_copy(update={"attempt": self._start.attempt + 1})
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

    async def _ensure_targets(
        self, services: list[str], routing: TrafficRouting | None, *, split: bool = True
    ) -> None:
        """Blocks (phase Paused, with the reason) until the Services and route are usable."""
        route = self._route(routing)
        wait = options.RECHECK_INITIAL
        while True:
            result = await self._activity(
                "check_traffic_targets",
                CheckTargetsInput(
                    namespace=self._input.namespace,
                    services=services,
                    require_split=split,
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

    async def _hold_until_resumed(self, reason: str, message: str) -> None:
        """Paused with a reason until resumed (`kulta resume`), the spec changes, or an abort."""
        self._resume_requested = False
        await self._transition(
            "Paused",
            reason,
            f"{message}; rollout paused until resumed, the route is left as it is",
            event_type="Warning",
            decision=("hold", message),
        )
        await workflow.wait_condition(
            lambda: self._resume_requested or self._spec_changed or self._abort is not None,
            timeout_summary="wait for resume",
        )
        if self._abort is not None:
            raise RollbackRequired("Aborted", self._abort.reason)
        self._decide("resume", "resumed: kulta owns the route's weights again")

    async def _write_weights(
        self, routing: TrafficRouting | None, weights: dict[str, int], *, force: bool = False
    ) -> None:
        """Sets our backends' weights; someone else's edit pauses the rollout instead."""
        route = self._route(routing)
        assert route is not None
        shown = " / ".join(f"{name} {weight}" for name, weight in weights.items())
        while True:
            result = await self._activity(
                "set_route_weights",
                SetWeightsInput(
                    rollout=self._input.name,
                    namespace=route[0],
                    route=route[1],
                    weights=weights,
                    expected=None if force else self._expected_weights,
                ),
                SetWeightsResult,
                summary=f"weights {shown}",
                local=self._one_write,
            )
            if result.outcome in ("applied", "unchanged"):
                self._expected_weights = weights
                return
            if result.outcome == "drifted" and workflow.patched("drift-waits-for-resume"):
                # Someone else's edit: leave the route as they made it until a person resumes
                # (earlier runs took the route back after the recheck timer, i.e. fought).
                await self._hold_until_resumed("HTTPRouteDrifted", result.message)
                self._expected_weights = None
                continue
            # The route went away or is misconfigured: pause instead of fighting.
            await self._hold(
                "HTTPRouteDrifted" if result.outcome == "drifted" else "HTTPRouteMisconfigured",
                result.message,
                options.RECHECK_MAX,
            )
            # Resumed: the user accepts the route as it is now, and kulta owns the weights again.
            if result.outcome == "drifted":
                self._expected_weights = None

    async def _ensure_rs(self, replicas: int) -> ReplicaSetState:
        return await self._activity(
            "ensure_replicaset",
            self._ensure_input(replicas),
            ReplicaSetState,
            summary=f"scale {self._own_replicaset} to {replicas}",
        )

    def _ensure_input(self, replicas: int) -> EnsureReplicaSetInput:
        assert self._start is not None and self._spec is not None
        return EnsureReplicaSetInput(
            rollout=self._ref,
            revision=self._input.revision,
            template=self._start.spec.get("template") or {},
            match_labels=self._spec.selector.match_labels or {},
            replicas=replicas,
            min_ready_seconds=self._spec.min_ready_seconds,
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
                time=iso_time(workflow.now()),
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
        event_on_phase_change_only: bool = False,
        announce_as: str | None = None,
    ) -> None:
        """Records a transition: status, conditions, a Kubernetes Event and search attributes.

        `event_on_phase_change_only`: a canary step within one phase writes status and its
        occurrence but no Kubernetes Event (a second API write per step); `kubectl describe`
        shows the phase changes, `kulta history` and the occurrences every step.
        `announce_as`: the reason the CDEvent is chosen by, when it differs (a step that
        advances and pauses for promotion in one transition is still an advanced step).
        """
        if decision is not None:
            self._decide(*decision)
        with_event = not event_on_phase_change_only or self._status.phase != phase
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
                    time=iso_time(workflow.now()),
                ),
                kubernetes_event=with_event,
            ),
            bool,
            summary=f"{phase}: {reason}",
            # Only while it moves by itself. A local write can be seen before the history holds
            # it: after a worker crash, a promote sent on seeing "Paused" would be replayed as
            # arriving before the pause and be ignored. A regular activity is in the history
            # before anyone can see its write.
            local=phase == "Progressing" and self._one_write,
        )
        kind = cdevent_kind(phase, announce_as or reason, reconciling=self._reconciling)
        if kind is not None:
            self._announcer.announce(
                kind,
                transition_id=transition,
                rollout=self._ref,
                revision=self._input.revision,
                spec=self._spec,
                status=self._status,
                reason=reason,
                message=message,
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
        local: bool = False,
    ) -> T:
        """`local`: a quick, idempotent Kubernetes write run by the worker inside the workflow
        task (one history event instead of three and a workflow task); a worker that dies
        mid-write loses the task, and the next one replays it and writes again."""
        if local:
            assert heartbeat is None, "a local activity cannot heartbeat"
            local_result = await workflow.execute_local_activity(
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=timeout,
                retry_policy=retry or options.RETRY,
                summary=summary,
            )
            return local_result  # type: ignore[no-any-return]
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

    def _route(self, routing: TrafficRouting | None) -> tuple[str, str] | None:
        """(namespace, name) of the HTTPRoute, or None without Gateway API routing."""
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


def iso_time(moment: Any) -> str:
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
    now = iso_time(workflow.now())
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
