"""Budget arithmetic: what each verdict costs and when the rollout must act."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.contracts import MetricMeasurement
from workflows.analysis import AnalysisState, check_of
from workflows.analysis_spec import Analysis, Metric

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
    s.record(metric, m("Successful"), T0 + timedelta(seconds=60), T0)
    assert s.due(T0 + timedelta(seconds=80), T0) == []
    assert s.next_due(T0 + timedelta(seconds=80), T0) == T0 + timedelta(seconds=90)


def test_one_failure_beyond_the_limit_rolls_back_with_the_message() -> None:
    s = state(failureLimit=1)
    metric = s.metrics[0]
    failed = m("Failed", "metric error-rate value 10% above threshold 5%")
    assert s.record(metric, failed, T0, T0) is None
    verdict = s.record(metric, failed, T0, T0)
    assert verdict is not None and verdict.action == "rollback"
    assert verdict.message == "metric error-rate value 10% above threshold 5%"


def test_errors_and_no_data_spend_separate_budgets_then_pause() -> None:
    s = state(inconclusiveLimit=2)  # consecutiveErrorLimit defaults to 4, failurePolicy to Pause
    metric = s.metrics[0]
    for verdict in ("Error", "Inconclusive", "Error", "Inconclusive", "Error", "Error"):
        assert s.record(metric, m(verdict), T0, T0) is None
    assert (metric.errors, metric.inconclusive) == (4, 2)
    assert metric.failures == 0 and not s.passed_since(T0)
    paused = s.record(metric, m("Error", "Prometheus did not answer"), T0, T0)
    assert paused is not None and paused.action == "pause"
    assert paused.message == (
        "metric error-rate: 5 provider errors in a row (last: Prometheus did not answer)"
    )
    no_data = state(inconclusiveLimit=0)
    paused = no_data.record(no_data.metrics[0], m("Inconclusive", "no data"), T0, T0)
    assert paused is not None and "1 measurement in a row without data" in paused.message


def test_count_ends_a_run_and_a_run_without_a_pass_is_inconclusive() -> None:
    s = state(count=2, interval="10s", failureLimit=5)
    metric = s.metrics[0]
    start = T0 + timedelta(seconds=60)  # after the 1m warmup
    assert s.record(metric, m("Successful"), start, T0) is None
    assert s.record(metric, m("Inconclusive"), start + timedelta(seconds=5), T0) is None
    assert not s.finished(T0)  # no data is not a verdict: it does not count
    assert s.record(metric, m("Successful"), start + timedelta(seconds=10), T0) is None
    assert s.due(start + timedelta(seconds=30), T0) == []  # two verdicts: done for this traffic
    assert s.passed_since(T0) and s.finished(T0)
    # The traffic moves: a new run of two, whose verdicts are tolerated failures, no pass.
    later = T0 + timedelta(minutes=5)
    assert s.due(later + timedelta(seconds=60), later) == [metric]
    assert s.record(metric, m("Failed"), later + timedelta(seconds=60), later) is None
    verdict = s.record(metric, m("Failed"), later + timedelta(seconds=70), later)
    assert verdict is not None and verdict.action == "pause"
    assert "2 measurements without a pass" in verdict.message


def test_a_success_resets_the_error_streak() -> None:
    s = state(consecutiveErrorLimit=1)
    metric = s.metrics[0]
    s.record(metric, m("Error"), T0, T0)
    s.record(metric, m("Successful"), T0 + timedelta(seconds=1), T0)
    assert s.record(metric, m("Error"), T0 + timedelta(seconds=2), T0) is None
    assert s.passed_since(T0 + timedelta(seconds=1)) and not s.passed_since(
        T0 + timedelta(seconds=2)
    )


def test_failure_policy_decides_when_the_error_budget_is_spent() -> None:
    for policy, action in (("Rollback", "rollback"), ("Continue", "continue")):
        s = state(inconclusiveLimit=0, failurePolicy=policy)
        verdict = s.record(s.metrics[0], m("Inconclusive"), T0, T0)
        assert verdict is not None and verdict.action == action


def test_invalid_query_pauses_at_once() -> None:
    s = state()
    verdict = s.record(s.metrics[0], m("Invalid", "Prometheus rejected the query"), T0, T0)
    assert verdict is not None and (verdict.action, verdict.reason) == ("pause", "AnalysisInvalid")


def test_continue_waives_a_run_that_ended_without_a_pass() -> None:
    s = state(count=1, failurePolicy="Continue", failureLimit=1)
    verdict = s.record(s.metrics[0], m("Failed"), T0 + timedelta(seconds=60), T0)
    assert verdict is not None and verdict.action == "continue"
    assert s.passed_since(T0)  # the person chose Continue: no evidence is needed
