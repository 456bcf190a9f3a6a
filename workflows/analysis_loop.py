"""Metric analysis inside the workflow: measurements as activities on durable timers.

Two shapes share one measuring step:
- background, while a canary runs: each metric is measured every `interval` from the moment the
  step's traffic is in place (`Run.traffic_since`); verdicts wait in `verdict`, which `Holds`
  acts on between steps and in every wait;
- inline, where a step asks for it (a canary step's `analysis`, blue-green pre/post-promotion,
  the simple strategy's): the step waits until every metric took `count` measurements (default
  1) and acts on each verdict as it comes.

The budgets themselves (what a verdict means) are pure, in `workflows/analysis.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import MeasureMetricInput
    from activities.rollout_status import AnalysisStatus, MeasurementStatus, MetricAnalysisStatus
    from workflows.analysis import AnalysisState, Verdict
    from workflows.analysis_spec import Analysis
    from workflows.durations import iso_time
    from workflows.effects import Effects
    from workflows.run import ActionFailed, Inbox, Run
    from workflows.transitions import Transitions

if TYPE_CHECKING:
    from workflows.holds import Holds


class AnalysisLoop:
    def __init__(self, run: Run, inbox: Inbox, effects: Effects, transitions: Transitions) -> None:
        self._run = run
        self._inbox = inbox
        self._effects = effects
        self._transitions = transitions
        # The analysis whose budgets a resume resets (the background one, or an inline run's).
        self.state: AnalysisState | None = None
        self.verdict: Verdict | None = None  # awaiting a reaction
        self.spec: Analysis | None = None  # the background analysis's spec, while it runs
        # The background analysis running now; a loop whose state is not this one has stopped
        # (stopped, or replaced by an edited analysis).
        self._background_state: AnalysisState | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def rollback_pending(self) -> bool:
        return self.verdict is not None and self.verdict.action == "rollback"

    def start_background(self, spec: Analysis, variables: dict[str, str]) -> None:
        """Starts (or, for an edited spec, restarts: the old loop ends) the background run."""
        self.state = self._background_state = AnalysisState(spec)
        self.spec = spec
        self._task = asyncio.create_task(self._supervised(self.state, variables))

    def stop(self) -> None:
        self._background_state = None
        self.spec = None

    def _stopped(self, analysis: AnalysisState) -> bool:
        return self._background_state is not analysis

    async def _supervised(self, analysis: AnalysisState, variables: dict[str, str]) -> None:
        """The background loop; a measurement that fails for good rolls the canary back
        (through the verdict every wait reacts to), never silently ends the analysis."""
        try:
            await self._background(analysis, variables)
        except ActionFailed as failed:
            self.verdict = Verdict("rollback", failed.reason, failed.message)

    async def _background(self, analysis: AnalysisState, variables: dict[str, str]) -> None:
        run = self._run
        while not self._stopped(analysis):
            since = run.traffic_since
            if since is None:
                await workflow.wait_condition(
                    lambda: run.traffic_since is not None or self._stopped(analysis)
                )
                continue
            if not analysis.due(workflow.now(), since):

                def interrupted(since: datetime = since) -> bool:
                    return self._stopped(analysis) or run.traffic_since != since

                await self._until_due(analysis, since, interrupted)
                continue
            verdict = await self._measure_due(analysis, since, variables)
            if verdict is not None and (self.verdict is None or verdict.action == "rollback"):
                self.verdict = verdict
            if self._stopped(analysis):
                return
            self._show(background=analysis)
            await self._transitions.publish_quietly()

    async def inline(
        self, spec: Analysis, variables: dict[str, str], what: str, holds: Holds
    ) -> None:
        """Measures until every metric took its `count` measurements with a pass. A failure
        beyond its limit raises RollbackRequired (from `holds.react_to_analysis`); a spent
        budget acts by `failurePolicy`. After a person resumes a paused run, it starts again:
        promotion needs fresh evidence."""
        analysis = AnalysisState(spec, default_count=1)
        names = ", ".join(m.check.name for m in analysis.metrics)
        await self._transitions.transition(
            "Progressing", "AnalysisRunning", f"{what}: measuring {names}"
        )
        since = workflow.now()
        background, self.state = self.state, analysis  # a resume resets this run
        try:
            while not analysis.finished(since):
                if not analysis.due(workflow.now(), since):
                    await self._until_due(analysis, since, lambda: self._inbox.aborted)
                    await holds.checkpoint()
                    continue
                verdict = await self._measure_due(analysis, since, variables)
                self._show(inline=analysis)
                await self._transitions.publish_quietly()
                if verdict is None:
                    continue
                self.verdict = verdict
                await holds.react_to_analysis()
                if verdict.action == "pause":
                    since = workflow.now()
        finally:
            self.state = background
        self._run.decide("analysis-passed", f"{what}: {names} passed")

    async def _measure_due(
        self, analysis: AnalysisState, since: datetime, variables: dict[str, str]
    ) -> Verdict | None:
        """Measures the metrics that are due; returns the gravest verdict (rollback first)."""
        gravest: Verdict | None = None
        for metric in analysis.due(workflow.now(), since):
            result = await self._effects.measure_metric(
                MeasureMetricInput(
                    metric=metric.check, variables={**variables, "interval": f"{metric.interval}s"}
                )
            )
            verdict = analysis.record(metric, result, workflow.now(), since)
            if verdict is not None and (gravest is None or verdict.action == "rollback"):
                gravest = verdict
        return gravest

    @staticmethod
    async def _until_due(
        analysis: AnalysisState, since: datetime, stop: Callable[[], bool]
    ) -> None:
        """Sleeps (durably) until the next measurement is due, or `stop()` holds."""
        now = workflow.now()
        wait = max(timedelta(seconds=1), analysis.next_due(now, since) - now)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(stop, timeout=wait, timeout_summary="next measurement")

    def _show(
        self, *, background: AnalysisState | None = None, inline: AnalysisState | None = None
    ) -> None:
        shown = self._run.status.analysis or AnalysisStatus()
        if background is not None:
            shown = shown.model_copy(update={"metrics": _metric_statuses(background)})
        if inline is not None:
            shown = shown.model_copy(update={"inline": _metric_statuses(inline)})
        self._run.update(analysis=shown)


def _metric_statuses(analysis: AnalysisState) -> list[MetricAnalysisStatus]:
    return [
        MetricAnalysisStatus(
            name=m.check.name,
            failures=m.failures,
            consecutive_errors=m.errors,
            consecutive_inconclusive=m.inconclusive,
            measurements=[
                MeasurementStatus(
                    time=iso_time(t),
                    verdict=r.verdict,
                    value=r.value,
                    baseline=r.baseline,
                    message=r.message,
                )
                for t, r in m.recent
            ],
        )
        for m in analysis.metrics
    ]
