"""Measuring one metric in Prometheus and judging it against its bounds.

Verdicts: Successful and Failed need a value; an empty vector or NaN is Inconclusive and a
provider error is Error (both spend the error budget, neither passes nor fails); a query
Prometheus rejects is Invalid (a configuration error: the rollout pauses with the message).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from temporalio import activity

from activities import telemetry
from activities.adapters.prometheus import BadQuery, PrometheusClient
from activities.conditions import parse
from activities.contracts import MeasureMetricInput, MetricCheck, MetricMeasurement
from activities.errors import Unavailable
from activities.promql import TemplateError, render

# Scoped by namespace and revision: the same template (so the same revision hash) in two
# namespaces, staging and prod say, is two workloads whose traffic must not be mixed.
_SCOPE = 'namespace="{{namespace}}",revision="{{revision}}"'
_REQUESTS = "http_requests_total{" + _SCOPE + "}"
_ERRORS = "http_requests_total{" + _SCOPE + ',status=~"5.."}'
_BUCKETS = "http_request_duration_seconds_bucket{" + _SCOPE + "}"
_WINDOW = "[{{interval}}]"


def _error_percent() -> str:
    # A healthy revision may have no 5xx series at all: `or vector(0)` makes that 0%, while no
    # requests at all still divide to an empty vector (no data, never a pass).
    return f"100 * (sum(rate({_ERRORS}{_WINDOW})) or vector(0)) / sum(rate({_REQUESTS}{_WINDOW}))"


def _quantile_ms(q: float) -> str:
    return f"1000 * histogram_quantile({q}, sum by (le) (rate({_BUCKETS}{_WINDOW})))"


# Built-in metrics over the conventional request series, labelled by the pod's namespace and its
# revision (pod-template-hash); see the README's "label convention".
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


def judge(metric: MetricCheck, value: float, baseline: float | None = None) -> MetricMeasurement:
    """The verdict on one value: bounds, then the baseline comparison, then the condition. The
    message names the metric, the value and the bound it broke."""
    unit = UNITS.get(metric.name, "")
    shown = f"metric {metric.name} value {value:.4g}{unit}"
    if baseline is not None:
        shown += f" (stable {baseline:.4g}{unit})"
    failure = _broken_bound(metric, value, baseline, unit)
    verdict: Literal["Successful", "Failed"] = "Failed" if failure else "Successful"
    message = f"{shown} {failure}" if failure else shown
    return MetricMeasurement(verdict=verdict, value=value, baseline=baseline, message=message)


def _broken_bound(metric: MetricCheck, value: float, baseline: float | None, unit: str) -> str:
    if metric.max is not None and value > metric.max:
        return f"above threshold {metric.max:g}{unit}"
    if metric.min is not None and value < metric.min:
        return f"below threshold {metric.min:g}{unit}"
    if baseline is not None:
        worse_by = value - baseline if metric.lower_is_better else baseline - value
        limit = metric.baseline_max_difference
        if limit is not None and worse_by > limit:
            return f"worse than stable by {worse_by:.4g}{unit}, more than {limit:g}{unit}"
        ratio = metric.baseline_max_ratio
        if ratio is not None and worse_by > 0 and not _within_ratio(metric, value, baseline):
            return f"worse than stable by more than a ratio of {ratio:g}"
    if metric.condition is not None:
        values = {"result": value} if baseline is None else {"result": value, "baseline": baseline}
        if not parse(metric.condition).holds(**values):
            return f"does not satisfy {metric.condition!r}"
    return ""


def _within_ratio(metric: MetricCheck, value: float, baseline: float) -> bool:
    assert metric.baseline_max_ratio is not None
    if metric.lower_is_better:
        return value <= baseline * metric.baseline_max_ratio
    return value * metric.baseline_max_ratio >= baseline


def window(interval: str, min_window_seconds: int) -> str:
    """The range of `rate()` windows: the measurement interval, but never shorter than the
    floor, because a window must hold several scrapes (kulta cannot know the scrape interval)."""
    seconds = (
        int(interval.removesuffix("s")) if interval.endswith("s") and interval[:-1].isdigit() else 0
    )
    return f"{max(seconds, min_window_seconds)}s" if seconds else interval


class MetricActivities:
    """`prometheus` is the configured default; `providers` the ones the operator named."""

    def __init__(
        self,
        prometheus: PrometheusClient | None,
        min_window_seconds: int = 60,
        providers: Mapping[str, PrometheusClient] | None = None,
    ) -> None:
        self._prometheus = prometheus
        self._providers = dict(providers or {})
        self._min_window = min_window_seconds

    @activity.defn(name="measure_metric")
    async def measure(self, inp: MeasureMetricInput) -> MetricMeasurement:
        result = await self._measure(inp)
        telemetry.ANALYSIS_MEASUREMENTS.labels(result.verdict).inc()
        return result

    async def _measure(self, inp: MeasureMetricInput) -> MetricMeasurement:
        """One instant query (two with a baseline), judged. Read-only, so a retry is harmless;
        provider errors are returned as a verdict (they spend the analysis' error budget) rather
        than retried here."""
        variables = {**inp.variables}
        if "interval" in variables:
            variables["interval"] = window(variables["interval"], self._min_window)
        name = inp.metric.name
        try:
            query = render(template_of(inp.metric), variables)
            baseline_query = (
                render(template_of(inp.metric), _baseline_variables(variables))
                if inp.metric.needs_baseline
                else None
            )
        except TemplateError as err:
            return MetricMeasurement(verdict="Invalid", message=str(err))
        prometheus = self._provider(inp.metric.provider)
        if isinstance(prometheus, MetricMeasurement):
            return prometheus.model_copy(update={"query": query})
        value = await _one_value(prometheus, name, query)
        if isinstance(value, MetricMeasurement):
            return value
        baseline: float | None = None
        if baseline_query is not None:
            stable = await _one_value(prometheus, f"{name} (stable baseline)", baseline_query)
            if isinstance(stable, MetricMeasurement):
                return stable.model_copy(update={"value": value})
            baseline = stable
        return judge(inp.metric, value, baseline).model_copy(update={"query": query})

    def _provider(self, name: str | None) -> PrometheusClient | MetricMeasurement:
        if name is None:
            if self._prometheus is None:
                return MetricMeasurement(
                    verdict="Error",
                    message="no Prometheus is configured (set KULTA_PROMETHEUS_ADDRESS on the "
                    "worker)",
                )
            return self._prometheus
        if name not in self._providers:
            known = ", ".join(sorted(self._providers)) or "none"
            return MetricMeasurement(
                verdict="Invalid",
                message=f"no Prometheus provider named {name!r} is configured (known: {known})",
            )
        return self._providers[name]


def _baseline_variables(variables: dict[str, str]) -> dict[str, str]:
    """The same query about the stable revision: its revision and Service stand in."""
    stable = {**variables}
    if variables.get("stable_revision"):
        stable["revision"] = variables["stable_revision"]
    else:
        raise TemplateError("a baseline needs a stable revision, and there is none yet")
    if "stable_service" in variables:
        stable["service"] = variables["stable_service"]
    return stable


async def _one_value(
    prometheus: PrometheusClient, name: str, query: str
) -> float | MetricMeasurement:
    """The query's single value, or the verdict that says why there is none."""
    try:
        samples = await prometheus.query(query)
    except BadQuery as err:
        return MetricMeasurement(verdict="Invalid", query=query, message=str(err))
    except Unavailable as err:
        return MetricMeasurement(verdict="Error", query=query, message=str(err))
    values = [s.value for s in samples if s.value is not None]
    if not values:
        why = "no data" if not samples else "no usable value (NaN)"
        return MetricMeasurement(
            verdict="Inconclusive", query=query, message=f"metric {name}: {why}"
        )
    if len(values) > 1:
        return MetricMeasurement(
            verdict="Invalid",
            query=query,
            message=f"metric {name} returned {len(values)} series, not one",
        )
    return values[0]
