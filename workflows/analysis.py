"""Analysis budgets: what each measurement verdict means for the rollout. Pure and deterministic.

- Successful resets the metric's error streak and counts as a pass.
- Failed counts against `failureLimit` (default 0); beyond it the rollout is rolled back.
- Inconclusive (no data, NaN) and Error (provider down) never pass and never fail: they extend the
  streak, and beyond `consecutiveErrorLimit` (default 4) `failurePolicy` decides (default Pause).
- Invalid (a query Prometheus rejects) is a configuration error: pause with its message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from activities.contracts import MetricCheck, MetricMeasurement
from workflows.durations import parse_duration
from workflows.model import Analysis, Metric

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
    policy: Literal["Rollback", "Pause", "Continue"]
    failures: int = 0
    streak: int = 0
    last_success: datetime | None = None
    last_measured: datetime | None = None
    recent: list[tuple[datetime, MetricMeasurement]] = field(default_factory=list)


def check_of(metric: Metric) -> MetricCheck:
    """Bounds from `max`/`min`, or from `threshold` in the direction the metric improves."""
    upper, lower = metric.max, metric.min
    if metric.threshold is not None and upper is None and lower is None:
        lower_is_better = LOWER_IS_BETTER.get(metric.name, metric.direction != "higher")
        upper, lower = (metric.threshold, None) if lower_is_better else (None, metric.threshold)
    return MetricCheck(name=metric.name, query=metric.query, max=upper, min=lower)


class AnalysisState:
    def __init__(self, analysis: Analysis) -> None:
        default = parse_duration(analysis.interval) if analysis.interval else DEFAULT_INTERVAL
        self.warmup = parse_duration(analysis.warmup_duration) if analysis.warmup_duration else 0
        self.metrics = [
            MetricState(
                check=check_of(m),
                interval=parse_duration(m.interval) if m.interval else default,
                failure_limit=m.failure_limit or 0,
                error_limit=DEFAULT_ERROR_LIMIT
                if m.consecutive_error_limit is None
                else m.consecutive_error_limit,
                policy=m.failure_policy or "Pause",
            )
            for m in analysis.metrics
        ]

    def due(self, now: datetime, traffic_since: datetime) -> list[MetricState]:
        """Metrics to measure now: warmup over, and their interval passed since the last one."""
        if now < traffic_since + timedelta(seconds=self.warmup):
            return []
        return [
            m
            for m in self.metrics
            if m.last_measured is None or now >= m.last_measured + timedelta(seconds=m.interval)
        ]

    def next_due(self, now: datetime, traffic_since: datetime) -> datetime:
        start = traffic_since + timedelta(seconds=self.warmup)
        moments = [
            max(
                start, m.last_measured + timedelta(seconds=m.interval) if m.last_measured else start
            )
            for m in self.metrics
        ]
        return max(now, min(moments))

    def record(
        self, metric: MetricState, result: MetricMeasurement, now: datetime
    ) -> Verdict | None:
        metric.last_measured = now
        metric.recent = [*metric.recent, (now, result)][-RECENT:]
        match result.verdict:
            case "Successful":
                metric.streak = 0
                metric.last_success = now
                return None
            case "Failed":
                metric.streak = 0
                metric.failures += 1
                if metric.failures > metric.failure_limit:
                    return Verdict("rollback", "AnalysisFailed", result.message)
                return None
            case "Invalid":
                return Verdict("pause", "AnalysisInvalid", result.message)
        metric.streak += 1
        if metric.streak <= metric.error_limit:
            return None
        message = (
            f"metric {metric.check.name}: {metric.streak} measurements in a row without a verdict "
            f"(last: {result.message})"
        )
        if metric.policy == "Continue":
            metric.streak = 0
            return Verdict("continue", "AnalysisInconclusive", message)
        action: Literal["rollback", "pause"] = (
            "rollback" if metric.policy == "Rollback" else "pause"
        )
        return Verdict(action, "AnalysisInconclusive", message)

    def passed_since(self, moment: datetime) -> bool:
        """Every metric had a successful measurement at or after `moment`."""
        return all(m.last_success is not None and m.last_success >= moment for m in self.metrics)

    def resume(self) -> None:
        """A person resumed a paused analysis: the error streaks start again."""
        for metric in self.metrics:
            metric.streak = 0
