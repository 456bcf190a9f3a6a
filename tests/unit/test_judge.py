"""Judging one measured value: bounds, baseline, condition, and messages that name the bound."""

from __future__ import annotations

from activities.contracts import MetricCheck
from activities.metrics import BUILT_INS, judge
from activities.promql import render


def test_threshold_message_names_metric_value_and_bound() -> None:
    verdict = judge(MetricCheck(name="error-rate", max=5), 7.25)
    assert verdict.verdict == "Failed"
    assert verdict.message == "metric error-rate value 7.25% above threshold 5%"
    assert judge(MetricCheck(name="success-rate", min=99), 98.5).message == (
        "metric success-rate value 98.5% below threshold 99%"
    )


def test_condition() -> None:
    check = MetricCheck(name="ratio", condition="result < 0.05")
    assert judge(check, 0.01).verdict == "Successful"
    failed = judge(check, 0.2)
    assert failed.message == "metric ratio value 0.2 does not satisfy 'result < 0.05'"


def test_baseline_difference_and_ratio_in_the_metric_direction() -> None:
    worse = MetricCheck(name="error-rate", baseline_max_difference=1)
    assert judge(worse, 1.9, baseline=1.0).verdict == "Successful"
    failed = judge(worse, 3.0, baseline=1.0)
    assert failed.message == (
        "metric error-rate value 3% (stable 1%) worse than stable by 2%, more than 1%"
    )
    ratio = MetricCheck(name="latency-p95", baseline_max_ratio=1.5)
    assert judge(ratio, 140, baseline=100).verdict == "Successful"
    assert judge(ratio, 160, baseline=100).verdict == "Failed"
    higher = MetricCheck(name="success-rate", lower_is_better=False, baseline_max_ratio=1.1)
    assert judge(higher, 95, baseline=100).verdict == "Successful"
    assert judge(higher, 80, baseline=100).verdict == "Failed"
    assert judge(higher, 120, baseline=100).verdict == "Successful"  # better is never a failure


def test_condition_can_use_the_baseline() -> None:
    check = MetricCheck(name="p95", condition="result <= baseline * 1.2")
    assert check.needs_baseline
    assert judge(check, 110, baseline=100).verdict == "Successful"
    assert judge(check, 130, baseline=100).verdict == "Failed"


def test_built_in_queries_golden() -> None:
    variables = {"namespace": "shop", "revision": 'we"ird', "interval": "1m"}
    scope = 'namespace="shop",revision="we\\"ird"'  # one namespace's revision, not every one's
    assert render(BUILT_INS["error-rate"], variables) == (
        f'100 * (sum(rate(http_requests_total{{{scope},status=~"5.."}}[1m])) '
        f"or vector(0)) / sum(rate(http_requests_total{{{scope}}}[1m]))"
    )
    assert render(BUILT_INS["latency-p95"], variables) == (
        "1000 * histogram_quantile(0.95, sum by (le) "
        f"(rate(http_request_duration_seconds_bucket{{{scope}}}[1m])))"
    )
