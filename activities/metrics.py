"""Measuring one metric in Prometheus and judging it against its bounds.

Verdicts: Successful and Failed need a value; an empty vector or NaN is Inconclusive and a
provider error is Error (both spend the error budget, neither passes nor fails); a query
Prometheus rejects is Invalid (a configuration error: the rollout pauses with the message).
"""

from __future__ import annotations

from temporalio import activity

from activities.adapters.prometheus import BadQuery, PrometheusClient
from activities.contracts import MeasureMetricInput, MetricCheck, MetricMeasurement
from activities.errors import Unavailable
from activities.promql import TemplateError, render

_REQUESTS = 'http_requests_total{revision="{{revision}}"}'
_ERRORS = 'http_requests_total{revision="{{revision}}",status=~"5.."}'
_BUCKETS = 'http_request_duration_seconds_bucket{revision="{{revision}}"}'
_WINDOW = "[{{interval}}]"


def _error_percent() -> str:
    # A healthy revision may have no 5xx series at all: `or vector(0)` makes that 0%, while no
    # requests at all still divide to an empty vector (no data, never a pass).
    return f"100 * (sum(rate({_ERRORS}{_WINDOW})) or vector(0)) / sum(rate({_REQUESTS}{_WINDOW}))"


def _quantile_ms(q: float) -> str:
    return f"1000 * histogram_quantile({q}, sum by (le) (rate({_BUCKETS}{_WINDOW})))"


# Built-in metrics over the conventional request series, labelled by revision (pod-template-hash).
BUILT_INS = {
    "error-rate": _error_percent(),
    "success-rate": f"100 - {_error_percent()}",
    "latency-p95": _quantile_ms(0.95),
    "latency-p99": _quantile_ms(0.99),
}
UNITS = {"error-rate": "%", "success-rate": "%", "latency-p95": "ms", "latency-p99": "ms"}


def template_of(metric: MetricCheck) -> str:
    if metric.query:
        return metric.query
    if metric.name in BUILT_INS:
        return BUILT_INS[metric.name]
    raise TemplateError(
        f"metric {metric.name} has no query and is not a built-in ({', '.join(sorted(BUILT_INS))})"
    )


def judge(metric: MetricCheck, value: float) -> MetricMeasurement:
    unit = UNITS.get(metric.name, "")
    shown = f"metric {metric.name} value {value:.4g}{unit}"
    if metric.max is not None and value > metric.max:
        message = f"{shown} above threshold {metric.max:g}{unit}"
        return MetricMeasurement(verdict="Failed", value=value, message=message)
    if metric.min is not None and value < metric.min:
        message = f"{shown} below threshold {metric.min:g}{unit}"
        return MetricMeasurement(verdict="Failed", value=value, message=message)
    return MetricMeasurement(verdict="Successful", value=value, message=shown)


def window(interval: str, min_window_seconds: int) -> str:
    """The range of `rate()` windows: the measurement interval, but never shorter than the
    floor, because a window must hold several scrapes (kulta cannot know the scrape interval)."""
    seconds = (
        int(interval.removesuffix("s")) if interval.endswith("s") and interval[:-1].isdigit() else 0
    )
    return f"{max(seconds, min_window_seconds)}s" if seconds else interval


class MetricActivities:
    def __init__(self, prometheus: PrometheusClient | None, min_window_seconds: int = 60) -> None:
        self._prometheus = prometheus
        self._min_window = min_window_seconds

    @activity.defn(name="measure_metric")
    async def measure(self, inp: MeasureMetricInput) -> MetricMeasurement:
        """One instant query, judged. Read-only, so a retry is harmless; provider errors are
        returned as a verdict (they spend the analysis' error budget) rather than retried here."""
        variables = {**inp.variables}
        if "interval" in variables:
            variables["interval"] = window(variables["interval"], self._min_window)
        try:
            query = render(template_of(inp.metric), variables)
        except TemplateError as err:
            return MetricMeasurement(verdict="Invalid", message=str(err))
        if self._prometheus is None:
            return MetricMeasurement(
                verdict="Error",
                query=query,
                message="no Prometheus is configured (set KULTA_PROMETHEUS_ADDRESS on the worker)",
            )
        try:
            samples = await self._prometheus.query(query)
        except BadQuery as err:
            return MetricMeasurement(verdict="Invalid", query=query, message=str(err))
        except Unavailable as err:
            return MetricMeasurement(verdict="Error", query=query, message=str(err))
        values = [s.value for s in samples if s.value is not None]
        if not values:
            why = "no data" if not samples else "no usable value (NaN)"
            return MetricMeasurement(
                verdict="Inconclusive", query=query, message=f"metric {inp.metric.name}: {why}"
            )
        if len(values) > 1:
            return MetricMeasurement(
                verdict="Invalid",
                query=query,
                message=f"metric {inp.metric.name} returned {len(values)} series, not one",
            )
        return judge(inp.metric, values[0]).model_copy(update={"query": query})
