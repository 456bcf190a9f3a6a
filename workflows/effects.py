"""Every effect a rollout has on the world: one method per activity, with its name, input,
result type and options together. No other workflow module schedules an activity.

Activity names are part of running histories: never rename one. Writes of a moving rollout run
as local activities (one history event instead of three and a workflow task); a worker that dies
mid-write loses the task, and the next one replays it and writes again, which is safe because
every activity is idempotent. Writes a person may act on stay regular activities (see
`publish_status`).

An activity that fails for good (a non-retryable error, or a bounded retry that ran out) comes
out of here as `ActionFailed`, a domain error the run rolls back on: the one place where "an
activity error never fails the workflow in Temporal" is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    TimeoutError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        Announcement,
        CheckTargetsInput,
        CheckTargetsResult,
        ClaimInput,
        ClaimResult,
        EnsureReplicaSetInput,
        ExperimentMeasurement,
        ExperimentRuleInput,
        MeasureExperimentInput,
        MeasureMetricInput,
        MetricMeasurement,
        MirrorInput,
        PublishStatusInput,
        ReplicaSetState,
        ScaleAndWaitInput,
        ScaleAndWaitResult,
        ScaleDownOthersInput,
        ScaleInput,
        SelectRevisionInput,
        SetWeightsInput,
        SetWeightsResult,
        VerifyRouteInput,
        VerifyRouteResult,
        WaitAvailableInput,
        WaitAvailableResult,
    )
    from workflows import options
    from workflows.run import ActionFailed, Interrupted

T = TypeVar("T")


def _pod_wait_timeout(progress_deadline_seconds: int) -> timedelta:
    # The activity itself gives up at the deadline; this only bounds a lost worker.
    return timedelta(seconds=progress_deadline_seconds + 300)


class TroubleReporter(Protocol):
    """Told when an action keeps failing with a retryable error, and when it works again."""

    def deadline_seconds(self) -> int:
        """How long an action may keep failing before the rollout rolls back."""
        ...

    async def retrying(self, action: str, detail: str) -> None: ...

    async def recovered(self, action: str) -> None: ...


class Effects:
    """The activities of one run; callers build each input.

    A retryable error is retried in rounds (`options.RETRY_BEFORE_REPORT`, then
    `RETRY_WHILE_DEGRADED`): after the first round the reporter is told (status condition
    Degraded, a Warning Event), after `deadline_seconds` of failing the action fails for good,
    with the last error, and when it works again the reporter is told that too. Nothing is
    retried in silence.
    """

    def __init__(self) -> None:
        self._reporter: TroubleReporter | None = None

    def report_to(self, reporter: TroubleReporter) -> None:
        self._reporter = reporter

    async def claim(self, inp: ClaimInput) -> ClaimResult:
        return await self._run(
            "claim_rollout",
            inp,
            ClaimResult,
            "claim rollout",
            timeout=options.CLAIM_TIMEOUT,
            heartbeat=options.HEARTBEAT,
        )

    async def check_targets(self, inp: CheckTargetsInput) -> CheckTargetsResult:
        return await self._run(
            "check_traffic_targets", inp, CheckTargetsResult, "check services and route"
        )

    async def ensure_replicaset(self, inp: EnsureReplicaSetInput, name: str) -> ReplicaSetState:
        return await self._run(
            "ensure_replicaset", inp, ReplicaSetState, f"scale {name} to {inp.replicas}"
        )

    async def scale(self, inp: ScaleInput) -> ReplicaSetState:
        return await self._run(
            "scale_replicaset", inp, ReplicaSetState, f"scale {inp.name} to {inp.replicas}"
        )

    async def scale_and_wait(
        self, inp: ScaleAndWaitInput, name: str, interrupted: Callable[[], bool] | None = None
    ) -> ScaleAndWaitResult:
        """Raises `Interrupted` as soon as `interrupted()` holds (the wait is cancelled)."""
        return await self._run(
            "scale_replicaset_and_wait",
            inp,
            ScaleAndWaitResult,
            f"scale {name} to {inp.replicaset.replicas} and wait for its pods",
            timeout=_pod_wait_timeout(inp.progress_deadline_seconds),
            heartbeat=options.HEARTBEAT,
            interrupted=interrupted,
        )

    async def wait_available(
        self, inp: WaitAvailableInput, interrupted: Callable[[], bool] | None = None
    ) -> WaitAvailableResult:
        """Raises `Interrupted` as soon as `interrupted()` holds (the wait is cancelled)."""
        return await self._run(
            "wait_replicaset_available",
            inp,
            WaitAvailableResult,
            f"wait for {inp.want} pods of {inp.name}",
            timeout=_pod_wait_timeout(inp.progress_deadline_seconds),
            heartbeat=options.HEARTBEAT,
            interrupted=interrupted,
        )

    async def select(self, inp: SelectRevisionInput) -> None:
        await self._run(
            "select_revision",
            inp,
            type(None),
            f"service {inp.service} -> {inp.revision or 'all revisions'}",
        )

    async def scale_deployment(self, inp: ScaleInput) -> str:
        return await self._run(
            "scale_deployment", inp, str, f"scale Deployment {inp.name} to {inp.replicas}"
        )

    async def scale_down_others(self, inp: ScaleDownOthersInput) -> None:
        await self._run("scale_down_other_revisions", inp, list, "scale down other revisions")

    async def set_weights(self, inp: SetWeightsInput) -> SetWeightsResult:
        """A step's weights: a local write (the rollout moves by itself here)."""
        shown = " / ".join(f"{name} {weight}" for name, weight in inp.weights.items())
        return await self._run(
            "set_route_weights", inp, SetWeightsResult, f"weights {shown}", local=True
        )

    async def set_weights_for_rollback(self, inp: SetWeightsInput) -> SetWeightsResult:
        """Traffic back to stable: retried for a bounded time (DESIGN §2.4), after which the
        caller reports the rollback as incomplete; a regular activity, in the history before
        anyone sees its write."""
        return await self._run(
            "set_route_weights",
            inp,
            SetWeightsResult,
            "weights stable 100 / canary 0",
            retry=options.ROLLBACK_ROUTE_RETRY,
        )

    async def verify_route(self, inp: VerifyRouteInput) -> VerifyRouteResult:
        """A regular activity: it may wait for the Gateways for a while, heartbeating."""
        return await self._run(
            "verify_route",
            inp,
            VerifyRouteResult,
            f"wait for the Gateways to accept HTTPRoute {inp.route}",
            timeout=timedelta(seconds=inp.within_seconds) + options.KUBE_TIMEOUT,
            heartbeat=options.VERIFY_HEARTBEAT,
        )

    async def publish_status(
        self, inp: PublishStatusInput, summary: str, *, local: bool, reported: bool = True
    ) -> None:
        """Status (and with `inp.event`, an Event and an occurrence). `local` only while the
        rollout moves by itself: a local write can be seen before the history holds it, and
        after a worker crash a promote sent on seeing "Paused" would be replayed as arriving
        before the pause and be ignored. A regular activity is in the history first."""
        await self._run("publish_status", inp, bool, summary, local=local, reported=reported)

    async def measure_metric(self, inp: MeasureMetricInput) -> MetricMeasurement:
        return await self._run(
            "measure_metric", inp, MetricMeasurement, f"measure {inp.metric.name}"
        )

    async def measure_experiment(self, inp: MeasureExperimentInput) -> ExperimentMeasurement:
        return await self._run(
            "measure_experiment", inp, ExperimentMeasurement, "measure both variants"
        )

    async def set_mirror_route(self, inp: MirrorInput) -> str:
        what = f"mirror {inp.percent}% to" if inp.percent is not None else "stop mirroring to"
        return await self._run("set_mirror_route", inp, str, f"{what} {inp.canary_service}")

    async def set_experiment_rule(self, inp: ExperimentRuleInput) -> str:
        verb = "add" if inp.present else "remove"
        return await self._run("set_experiment_rule", inp, str, f"{verb} rule {inp.rule_name}")

    def announce(self, announcement: Announcement) -> workflow.ActivityHandle[Any]:
        """Started, not awaited: a sink that is down never holds a rollout up. The activity
        retries on its own and drops the event (counted, logged) after its attempts."""
        return workflow.start_activity(
            "announce_transition",
            announcement,
            start_to_close_timeout=options.ANNOUNCE_TIMEOUT,
            retry_policy=options.ANNOUNCE_RETRY,
            summary=f"CDEvent service.{announcement.kind}",
        )

    async def _run(
        self,
        name: str,
        arg: Any,
        result_type: type[T],
        summary: str,
        *,
        timeout: timedelta = options.KUBE_TIMEOUT,
        heartbeat: timedelta | None = None,
        retry: RetryPolicy | None = None,
        local: bool = False,
        interrupted: Callable[[], bool] | None = None,
        reported: bool = True,
        task_queue: str | None = None,
    ) -> T:
        """One activity; see the class for how its failures are told. `retry` (a bounded
        policy of the caller's own) and `reported=False` (the reporter's own writes) opt out.
        With `task_queue` (another cluster's worker) a task no worker takes within
        `options.REMOTE_PICKUP` is a timeout, retried and told like any other."""
        reporter = self._reporter if reported and retry is None else None
        policy = retry or (options.RETRY if reporter is None else options.RETRY_BEFORE_REPORT)
        failing_since = None
        while True:
            try:
                result = await _attempt(
                    name,
                    arg,
                    result_type,
                    summary,
                    timeout=timeout,
                    heartbeat=heartbeat,
                    retry=policy,
                    local=local,
                    interrupted=interrupted,
                    task_queue=task_queue,
                )
            except ActivityError as err:
                if is_cancelled_exception(err):
                    # The run itself is being cancelled (superseded): its own handler undoes.
                    raise asyncio.CancelledError() from err
                failure = failure_of(summary, err)
                if reporter is None or not _retryable(err):
                    raise failure from None
                now = workflow.now()
                if failing_since is None:  # the first round ran out: tell it once
                    failing_since = now
                    await reporter.retrying(summary, failure.detail)
                failing = int((now - failing_since).total_seconds())
                if failing >= reporter.deadline_seconds():
                    raise ActionFailed(
                        summary, "ProgressDeadlineExceeded", f"{failure.detail} (for {failing}s)"
                    ) from None
                policy = options.RETRY_WHILE_DEGRADED
                continue
            if failing_since is not None and reporter is not None:
                await reporter.recovered(summary)
            return result


def _retryable(err: ActivityError) -> bool:
    """The retries ran out on an error that may go away (not one the activity called final)."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return not cause.non_retryable
    return isinstance(cause, TimeoutError)


async def _attempt(
    name: str,
    arg: Any,
    result_type: type[T],
    summary: str,
    *,
    timeout: timedelta,
    heartbeat: timedelta | None,
    retry: RetryPolicy,
    local: bool,
    interrupted: Callable[[], bool] | None,
    task_queue: str | None = None,
) -> T:
    if local:
        assert heartbeat is None and interrupted is None, "not for a local activity"
        local_result = await workflow.execute_local_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timeout,
            retry_policy=retry,
            summary=summary,
        )
        return local_result  # type: ignore[no-any-return]
    # Started, then awaited: the commands of `execute_activity`, so histories replay the same;
    # raced against `interrupted` when given, and cancelled when the race is lost.
    handle = workflow.start_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=timeout,
        heartbeat_timeout=heartbeat,
        retry_policy=retry,
        summary=summary,
        task_queue=task_queue,
        schedule_to_start_timeout=options.REMOTE_PICKUP if task_queue else None,
    )
    if interrupted is not None:
        await workflow.wait_condition(lambda: handle.done() or interrupted())
        if not handle.done():
            handle.cancel()
            # Its cancellation is expected: retrieved here, so asyncio does not report it.
            handle.add_done_callback(lambda h: h.cancelled() or h.exception())
            raise Interrupted(summary)
    return await handle  # type: ignore[no-any-return]


def failure_of(action: str, err: ActivityError) -> ActionFailed:
    """The domain error for an activity that failed for good, with the API server's words."""
    cause = err.cause
    while isinstance(cause, ActivityError):  # pragma: no cover - the SDK nests at most once
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return ActionFailed(action, cause.type or "ApplicationError", cause.message)
    if cause is None:
        return ActionFailed(action, "ActivityError", err.message)
    return ActionFailed(action, type(cause).__name__, str(cause) or err.message)
