"""Analysis budgets: what each measurement verdict means for the rollout. Pure and deterministic.

- Successful resets the metric's streaks and counts as a pass.
- Failed counts against `failureLimit` (default 0); beyond it the rollout is rolled back.
- Error (provider down) and Inconclusive (no data, NaN) never pass and never fail: each extends its
  own streak, and beyond `consecutiveErrorLimit` / `inconclusiveLimit` (default 4 each)
  `failurePolicy` decides (default Pause).
- Invalid (a query Prometheus rejects) is a configuration error: pause with its message.
- A run is the measurements since the traffic last moved (or of one inline analysis). With
  `count`, a run ends after that many verdicts (passes or failures; no-data and errors do not
  count, they spend their budgets); a run that ends without a pass is inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from activities.contracts import MetricCheck, MetricMeasurement
from workflows.analysis_spec import Analysis, Metric
from workflows.durations import parse_duration

DEFAULT_INTERVAL = 60
DEFAULT_ERROR_LIMIT = 4
RECENT = 5
LOWER_IS_BETTER = {
    "error-rate": True,
    "latency-p95": True,
    "latency-p99": True,
    "success-rate": False,
}


@dataclass(frozen=True)
class Verdict:
    """What the rollout must do after a measurement."""

    action: Literal["rollback", "pause", "continue"]
    reason: str
    message: str


@dataclass
class MetricState:
    check: MetricCheck
    interval: int
    failure_limit: int
    error_limit: int
    inconclusive_limit: int
    policy: Literal["Rollback", "Pause", "Continue"]
    count: int | None = None
    failures: int = 0
    errors: int = 0  # provider errors in a row
    inconclusive: int = 0  # empty or NaN results in a row
    last_success: datetime | None = None
    waived: datetime | None = None  # a run ended without a pass and failurePolicy is Continue
    last_measured: datetime | None = None
    run_since: datetime | None = None
    taken: int = 0  # measurements in the current run
    recent: list[tuple[datetime, MetricMeasurement]] = field(default_factory=list)

    def in_run(self, since: datetime) -> int:
        """Measurements taken in the run that started at `since`."""
        return self.taken if self.run_since == since else 0


def check_of(metric: Metric) -> MetricCheck:
    """Bounds from `max`/`min`, or from `threshold` in the direction the metric improves."""
    upper, lower = metric.max, metric.min
    lower_is_better = LOWER_IS_BETTER.get(metric.name, metric.direction != "higher")
    if metric.threshold is not None and upper is None and lower is None:
        upper, lower = (metric.threshold, None) if lower_is_better else (None, metric.threshold)
    baseline = metric.baseline
    return MetricCheck(
        name=metric.name,
        query=metric.query,
        provider=metric.provider,
        max=upper,
        min=lower,
        condition=metric.condition,
        baseline_max_ratio=baseline.max_ratio if baseline else None,
        baseline_max_difference=baseline.max_difference if baseline else None,
        lower_is_better=lower_is_better,
    )


def _limit(value: int | None) -> int:
    return DEFAULT_ERROR_LIMIT if value is None else value


def _times(n: int) -> str:
    return f"{n} measurement{'' if n == 1 else 's'}"


class AnalysisState:
    def __init__(self, analysis: Analysis, default_count: int | None = None) -> None:
        """`default_count`: the run length of metrics without `count` (None: unbounded)."""
        default = parse_duration(analysis.interval) if analysis.interval else DEFAULT_INTERVAL
        self.warmup = parse_duration(analysis.warmup_duration) if analysis.warmup_duration else 0
        self.metrics = [
            MetricState(
                check=check_of(m),
                interval=parse_duration(m.interval) if m.interval else default,
                failure_limit=m.effective_failure_limit,
                error_limit=_limit(m.consecutive_error_limit),
                inconclusive_limit=_limit(m.inconclusive_limit),
                policy=analysis.policy_of(m),
                count=m.count or default_count,
            )
            for m in analysis.metrics
        ]

    def due(self, now: datetime, since: datetime) -> list[MetricState]:
        """Metrics to measure now: warmup over, run not finished, and their interval passed."""
        if now < since + timedelta(seconds=self.warmup):
            return []
        return [
            m
            for m in self.metrics
            if not self._run_over(m, since)
            and (m.last_measured is None or now >= m.last_measured + timedelta(seconds=m.interval))
        ]

    def finished(self, since: datetime) -> bool:
        """Every metric took its `count` measurements in the run that started at `since`."""
        return all(self._run_over(m, since) for m in self.metrics)

    def next_due(self, now: datetime, since: datetime) -> datetime:
        start = since + timedelta(seconds=self.warmup)
        moments = [
            max(
                start, m.last_measured + timedelta(seconds=m.interval) if m.last_measured else start
            )
            for m in self.metrics
            if not self._run_over(m, since)
        ]
        return max(now, min(moments, default=now))

    @staticmethod
    def _run_over(metric: MetricState, since: datetime) -> bool:
        return metric.count is not None and metric.in_run(since) >= metric.count

    def record(
        self, metric: MetricState, result: MetricMeasurement, now: datetime, since: datetime
    ) -> Verdict | None:
        """Books one measurement of the run that started at `since`; returns what to do."""
        # Only verdicts count towards `count`: no data and provider errors spend their own budgets.
        conclusive = result.verdict in ("Successful", "Failed")
        metric.taken = metric.in_run(since) + (1 if conclusive else 0)
        metric.run_since = since
        metric.last_measured = now
        metric.recent = [*metric.recent, (now, result)][-RECENT:]
        verdict = self._verdict(metric, result, now)
        if verdict is None and self._run_over(metric, since) and not self._passed(metric, since):
            verdict = self._policy(
                metric,
                f"metric {metric.check.name}: {_times(metric.taken)} without a pass "
                f"(last: {result.message})",
                now,
            )
        return verdict

    def _verdict(
        self, metric: MetricState, result: MetricMeasurement, now: datetime
    ) -> Verdict | None:
        name = metric.check.name
        match result.verdict:
            case "Successful":
                metric.errors = metric.inconclusive = 0
                metric.last_success = now
                return None
            case "Failed":
                metric.errors = metric.inconclusive = 0
                metric.failures += 1
                if metric.failures > metric.failure_limit:
                    return Verdict("rollback", "AnalysisFailed", result.message)
                return None
            case "Invalid":
                return Verdict("pause", "AnalysisInvalid", result.message)
            case "Error":
                metric.errors += 1
                if metric.errors <= metric.error_limit:
                    return None
                spent = f"{metric.errors} provider errors in a row"
                metric.errors = 0 if metric.policy == "Continue" else metric.errors
            case "Inconclusive":
                metric.inconclusive += 1
                if metric.inconclusive <= metric.inconclusive_limit:
                    return None
                spent = f"{_times(metric.inconclusive)} in a row without data"
                metric.inconclusive = 0 if metric.policy == "Continue" else metric.inconclusive
        return self._policy(metric, f"metric {name}: {spent} (last: {result.message})", now)

    @staticmethod
    def _policy(metric: MetricState, message: str, now: datetime) -> Verdict:
        """A budget is spent, or a run ended without a pass: `failurePolicy` decides."""
        if metric.policy == "Continue":
            metric.waived = now
            return Verdict("continue", "AnalysisInconclusive", message)
        action: Literal["rollback", "pause"] = (
            "rollback" if metric.policy == "Rollback" else "pause"
        )
        return Verdict(action, "AnalysisInconclusive", message)

    @staticmethod
    def _passed(metric: MetricState, moment: datetime) -> bool:
        return any(t is not None and t >= moment for t in (metric.last_success, metric.waived))

    def passed_since(self, moment: datetime) -> bool:
        """Every metric had a pass (or a waiver, under Continue) at or after `moment`."""
        return all(self._passed(m, moment) for m in self.metrics)

    def resume(self) -> None:
        """A person resumed a paused analysis: the streaks start again."""
        for metric in self.metrics:
            metric.errors = metric.inconclusive = 0
