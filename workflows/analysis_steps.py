"""Metric analysis inside the workflow: measurements as activities on durable timers.

Two shapes share one measuring step:
- background, while a canary runs: each metric is measured every `interval` from the moment the
  step's traffic is in place; verdicts go to `_analysis_verdict`, which the steps act on;
- inline, where a step asks for it (a canary step's `analysis`, blue-green pre/post-promotion,
  the simple strategy's): the step waits until every metric took `count` measurements (default 1)
  and acts on each verdict as it comes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import MeasureMetricInput, MetricMeasurement
    from workflows.analysis import AnalysisState, Verdict
    from workflows.machinery import RolloutMachinery, iso_time
    from workflows.model import Analysis, AnalysisStatus, MeasurementStatus, MetricAnalysisStatus


class AnalysisSteps(RolloutMachinery):
    async def _measure_due(
        self, analysis: AnalysisState, since: datetime, variables: dict[str, str]
    ) -> Verdict | None:
        """Measures the metrics that are due; returns the gravest verdict (rollback first)."""
        gravest: Verdict | None = None
        for metric in analysis.due(workflow.now(), since):
            result = await self._activity(
                "measure_metric",
                MeasureMetricInput(
                    metric=metric.check, variables={**variables, "interval": f"{metric.interval}s"}
                ),
                MetricMeasurement,
                summary=f"measure {metric.check.name}",
            )
            verdict = analysis.record(metric, result, workflow.now(), since)
            if verdict is not None and (gravest is None or verdict.action == "rollback"):
                gravest = verdict
        return gravest

    async def _until_due(
        self, analysis: AnalysisState, since: datetime, stop: Callable[[], bool]
    ) -> None:
        """Sleeps (durably) until the next measurement is due, or `stop()` holds."""
        now = workflow.now()
        wait = max(timedelta(seconds=1), analysis.next_due(now, since) - now)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                stop,
                timeout=wait,
                timeout_summary="next measurement",
            )

    async def _analysis_loop(self, variables: dict[str, str]) -> None:
        """Background analysis of the canary, until `_analysis_stop`."""
        analysis = self._analysis
        assert analysis is not None
        while not self._analysis_stop:
            since = self._traffic_since
            if since is None:
                await workflow.wait_condition(
                    lambda: self._traffic_since is not None or self._analysis_stop
                )
                continue
            if not analysis.due(workflow.now(), since):

                def interrupted(since: datetime = since) -> bool:
                    return self._analysis_stop or self._traffic_since != since

                await self._until_due(analysis, since, interrupted)
                continue
            verdict = await self._measure_due(analysis, since, variables)
            if verdict is not None and (
                self._analysis_verdict is None or verdict.action == "rollback"
            ):
                self._analysis_verdict = verdict
            if self._analysis_stop:
                return
            self._show_analysis(background=analysis)
            await self._publish_quietly()

    async def _run_inline_analysis(
        self, spec: Analysis, variables: dict[str, str], what: str
    ) -> None:
        """Measures until every metric took its `count` measurements with a pass. A failure
        beyond its limit raises RollbackRequired (from `_react_to_analysis`); a spent budget
        acts by `failurePolicy`. After a person resumes a paused run, it starts again:
        promotion needs fresh evidence."""
        analysis = AnalysisState(spec, default_count=1)
        names = ", ".join(m.check.name for m in analysis.metrics)
        await self._transition("Progressing", "AnalysisRunning", f"{what}: measuring {names}")
        since = workflow.now()
        background, self._analysis = self._analysis, analysis  # a resume resets this run
        try:
            while not analysis.finished(since):
                if not analysis.due(workflow.now(), since):
                    await self._until_due(analysis, since, lambda: self._abort is not None)
                    await self._checkpoint()
                    continue
                verdict = await self._measure_due(analysis, since, variables)
                self._show_analysis(inline=analysis)
                await self._publish_quietly()
                if verdict is None:
                    continue
                self._analysis_verdict = verdict
                await self._react_to_analysis()
                if verdict.action == "pause":
                    since = workflow.now()
        finally:
            self._analysis = background
        self._decide("analysis-passed", f"{what}: {names} passed")

    def _show_analysis(
        self, *, background: AnalysisState | None = None, inline: AnalysisState | None = None
    ) -> None:
        shown = self._status.analysis or AnalysisStatus()
        if background is not None:
            shown = shown.model_copy(update={"metrics": _metric_statuses(background)})
        if inline is not None:
            shown = shown.model_copy(update={"inline": _metric_statuses(inline)})
        self._status = self._status.model_copy(update={"analysis": shown})


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
