"""Budget arithmetic: what each verdict costs and when the rollout must act."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.contracts import MetricMeasurement
from workflows.analysis import AnalysisState, check_of
from workflows.model import Analysis, Metric

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(**metric: object) -> AnalysisState:
    return AnalysisState(
        Analysis.model_validate(
            {
                "warmupDuration": "1m",
                "interval": "30s",
                "metrics": [{"name": "error-rate", "threshold": 5, **metric}],
            }
        )
    )


def m(verdict: str, message: str = "") -> MetricMeasurement:
    return MetricMeasurement.model_validate({"verdict": verdict, "message": message, "value": 1.0})


def test_thresholds_follow_the_metric_direction() -> None:
    assert check_of(Metric(name="error-rate", threshold=5)).max == 5
    assert check_of(Metric(name="success-rate", threshold=99)).min == 99
    assert check_of(Metric(name="custom", query="q", threshold=3, direction="higher")).min == 3
    assert check_of(Metric(name="custom", query="q", max=1, min=0)).model_dump()["max"] == 1


def test_warmup_counts_from_the_traffic_and_intervals_space_measurements() -> None:
    s = state()
    assert s.due(T0 + timedelta(seconds=59), T0) == []
    [metric] = s.due(T0 + timedelta(seconds=60), T0)
    s.record(metric, m("Successful"), T0 + timedelta(seconds=60))
    assert s.due(T0 + timedelta(seconds=80), T0) == []
    assert s.next_due(T0 + timedelta(seconds=80), T0) == T0 + timedelta(seconds=90)


def test_one_failure_beyond_the_limit_rolls_back_with_the_message() -> None:
    s = state(failureLimit=1)
    metric = s.metrics[0]
    assert (
        s.record(metric, m("Failed", "metric error-rate value 10% above threshold 5%"), T0) is None
    )
    verdict = s.record(metric, m("Failed", "metric error-rate value 10% above threshold 5%"), T0)
    assert verdict is not None and verdict.action == "rollback"
    assert verdict.message == "metric error-rate value 10% above threshold 5%"


def test_errors_and_no_data_spend_their_own_budget_then_pause() -> None:
    s = state()  # consecutiveErrorLimit defaults to 4, failurePolicy to Pause
    metric = s.metrics[0]
    for verdict in ("Error", "Inconclusive", "Error", "Inconclusive"):
        assert s.record(metric, m(verdict), T0) is None
    assert metric.failures == 0 and not s.passed_since(T0)
    paused = s.record(metric, m("Error", "Prometheus did not answer"), T0)
    assert (
        paused is not None
        and paused.action == "pause"
        and "5 measurements in a row" in paused.message
    )


def test_a_success_resets_the_error_streak() -> None:
    s = state(consecutiveErrorLimit=1)
    metric = s.metrics[0]
    s.record(metric, m("Error"), T0)
    s.record(metric, m("Successful"), T0 + timedelta(seconds=1))
    assert s.record(metric, m("Error"), T0 + timedelta(seconds=2)) is None
    assert s.passed_since(T0 + timedelta(seconds=1)) and not s.passed_since(
        T0 + timedelta(seconds=2)
    )


def test_failure_policy_decides_when_the_error_budget_is_spent() -> None:
    for policy, action in (("Rollback", "rollback"), ("Continue", "continue")):
        s = state(consecutiveErrorLimit=0, failurePolicy=policy)
        verdict = s.record(s.metrics[0], m("Inconclusive"), T0)
        assert verdict is not None and verdict.action == action


def test_invalid_query_pauses_at_once() -> None:
    s = state()
    verdict = s.record(s.metrics[0], m("Invalid", "Prometheus rejected the query"), T0)
    assert verdict is not None and (verdict.action, verdict.reason) == ("pause", "AnalysisInvalid")
