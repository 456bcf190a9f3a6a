"""Where a rollout stops and why: checkpoints between steps, pauses held for a reason until
something changes, the reactions to analysis verdicts, and the wait for a retry.

Every hold publishes its reason before it waits, and every wait an abort can end calls
`Inbox.raise_if_aborted()` afterwards. Deterministic workflow code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.analysis_loop import AnalysisLoop
    from workflows.model import InvalidSpec, RolloutSpec, seed_fields
    from workflows.run import Inbox, RollbackRequired, Run
    from workflows.transitions import Transitions


class Holds:
    def __init__(
        self, run: Run, inbox: Inbox, transitions: Transitions, analysis: AnalysisLoop
    ) -> None:
        self._run = run
        self._inbox = inbox
        self._transitions = transitions
        self._analysis = analysis

    @property
    def user_paused(self) -> bool:
        return self._inbox.paused or self._run.current_spec.paused

    def must_stop(self) -> bool:
        """An abort or a rollback verdict is waiting: long waits are cut short for it."""
        return self._inbox.aborted or self._analysis.rollback_pending

    async def stop_now(self) -> NoReturn:
        """Raises the rollback that `must_stop` saw (the abort first)."""
        self._inbox.raise_if_aborted()
        await self.react_to_analysis()
        raise AssertionError("stopped with neither an abort nor a rollback verdict")

    async def checkpoint(self) -> None:
        """Between actions: honour analysis verdicts, an abort, an edit and a user's pause."""
        await self.react_to_analysis()
        self._inbox.raise_if_aborted()
        await self.tell_edits()
        if self.user_paused:
            before = self._run.status.phase or "Progressing"
            await self._transitions.transition("Paused", "PausedByUser", "rollout paused by user")
            await workflow.wait_condition(lambda: not self.user_paused or self._inbox.aborted)
            self._inbox.raise_if_aborted()
            await self._transitions.transition(before, "Resumed", "rollout resumed by user")

    async def tell_edits(self) -> None:
        """Takes a waiting edit (see `Run.take_edit`) and tells with an Event how it went."""
        self._run.take_edit()
        await self._transitions.tell_edit()

    async def pause_until(
        self,
        end: Callable[[], datetime | None],
        *,
        summary: str,
        interrupted: Callable[[], bool] = lambda: False,
        after_edit: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """An open pause (`Inbox.open_pause`) until a promotion, an abort, `interrupted()` or
        `end()` (None: no end). An edit that arrives meanwhile is taken and told at once, and
        the pause goes on towards `end()` as it now is. `after_edit` applies what an edit
        changes in the pause; it must be idempotent, as it also runs once at the start (an
        edit may have been taken just before the pause). Returns whether a person promoted."""
        run, inbox = self._run, self._inbox
        follow = True
        while True:
            run.take_edit()
            if follow or run.untold_edit is not None:
                follow = False
                await self._transitions.tell_edit()
                if after_edit is not None:
                    await after_edit()
                continue  # another edit may have come during those writes
            until = end()
            if run.untold_edit is not None:
                continue  # reading the end took an edit
            seconds = None if until is None else max(0.0, (until - workflow.now()).total_seconds())
            promoted = await inbox.wait_for_promotion(
                interrupted=lambda: interrupted() or run.spec_changed,
                seconds=seconds,
                summary=summary,
            )
            if promoted or interrupted() or not run.spec_changed:
                return promoted
            inbox.open_pause()

    async def react_to_analysis(self) -> None:
        """Acts on the latest analysis verdict: roll back, or pause until resumed."""
        verdict = self._analysis.verdict
        if verdict is None:
            return
        self._analysis.verdict = None
        run = self._run
        where = f" at step {(run.status.current_step_index or 0) + 1}"
        if verdict.action == "rollback":
            raise RollbackRequired(verdict.reason, verdict.message + where)
        if verdict.action == "continue":
            run.decide("analysis-continue", verdict.message)
            return
        self._inbox.resume_requested = False
        before = run.status.phase or "Progressing"
        await self._transitions.transition(
            "Paused",
            verdict.reason,
            f"{verdict.message}{where}; paused until resumed",
            event_type="Warning",
            decision=("analysis-pause", verdict.message),
        )
        await workflow.wait_condition(
            lambda: (
                self._inbox.resume_requested
                or self._inbox.aborted
                or self._analysis.rollback_pending
            ),
            timeout_summary="wait for resume",
        )
        self._inbox.raise_if_aborted()
        if self._analysis.rollback_pending:
            await self.react_to_analysis()
            return
        # Pauses the background analysis asked for while paused are what the person resumed past.
        self._analysis.verdict = None
        if self._analysis.state is not None:
            self._analysis.state.resume()
        await self._transitions.transition(before, "Resumed", "analysis resumed by user")

    async def await_analysis_pass(self) -> None:
        """No promotion without evidence: every metric must have passed since the traffic moved."""
        analysis, since = self._analysis.state, self._run.traffic_since
        if analysis is None or since is None:
            return
        while not analysis.passed_since(since):
            await self.react_to_analysis()
            await workflow.wait_condition(
                lambda: (
                    analysis.passed_since(since)
                    or self._analysis.verdict is not None
                    or self._inbox.aborted
                ),
                timeout_summary="wait for a passing measurement",
            )
            self._inbox.raise_if_aborted()

    async def hold(self, reason: str, message: str, recheck: timedelta) -> None:
        """Paused with a reason; returns on resume, a spec change, or the recheck timer."""
        run = self._run
        if run.status.phase != "Paused" or run.status.message != message:
            await self._transitions.transition(
                "Paused",
                reason,
                f"{message}; rollout paused, nothing was scaled down",
                event_type="Warning",
            )
        self._inbox.paused = False
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: run.spec_changed or self._inbox.aborted,
                timeout=recheck,
                timeout_summary="recheck",
            )
        self._inbox.raise_if_aborted()
        self._run.raise_if_restructured()  # a fixed Service or route name, before any pod
        await self.tell_edits()

    async def hold_until_resumed(self, reason: str, message: str) -> None:
        """Paused with a reason until resumed (`kulta resume`), the spec changes, or an abort."""
        self._inbox.resume_requested = False
        await self._transitions.transition(
            "Paused",
            reason,
            f"{message}; rollout paused until resumed, the route is left as it is",
            event_type="Warning",
            decision=("hold", message),
        )
        await workflow.wait_condition(
            lambda: self._inbox.resume_requested or self._run.spec_changed or self._inbox.aborted,
            timeout_summary="wait for resume",
        )
        self._inbox.raise_if_aborted()
        await self.tell_edits()
        self._run.decide("resume", "resumed: kulta owns the route's weights again")

    async def valid_spec(self) -> RolloutSpec:
        """The parsed spec; an invalid one is reported and waited on until it is fixed."""
        while True:
            try:
                spec = self._run.parse()
            except InvalidSpec as err:
                await self._transitions.transition(
                    "Failed",
                    "InvalidSpec",
                    f"invalid spec, nothing was changed: {err}",
                    event_type="Warning",
                    condition=("Valid", "False"),
                )
                await workflow.wait_condition(
                    lambda: self._run.spec_changed, timeout_summary="wait for a valid spec"
                )
                continue
            # The original kulta's fields are accepted; a Warning says what they are read as.
            if deprecated := seed_fields(self._run.start.spec):
                await self._transitions.warn("DeprecatedFields", "; ".join(deprecated))
            return spec

    async def wait_for_retry(self) -> NoReturn:
        """A Failed run waits, at no cost, for a retry; then the revision runs again from its
        first step as the next attempt."""
        await workflow.wait_condition(lambda: self._inbox.retry, timeout_summary="wait for retry")
        await self._transitions.settle()
        start = self._run.start
        # A new attempt starts from the latest spec with a status of its own.
        workflow.continue_as_new(
            start.model_copy(update={"attempt": start.attempt + 1, "status": None, "pending": None})
        )
