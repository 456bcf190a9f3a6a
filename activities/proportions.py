"""Experiment counts from Prometheus: for each variant, events out of trials since the experiment
started, as the two-proportion Z-test needs them.

Built-in experiment metrics, over the same conventional series as canary analysis:
  error-rate  events: 5xx responses        trials: requests   (http_requests_total)
  conversion  events: conversions_total    trials: requests
A custom metric gives `query` (the events) and optionally `trialsQuery` (default: requests).
In these templates `{{interval}}` is the time since the experiment started, so that
`increase(...[{{interval}}])` counts the whole experiment.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from activities.adapters.prometheus import PrometheusClient
from activities.contracts import Proportion, ProportionRequest
from activities.errors import BadInput
from activities.promql import render

_SCOPE = 'namespace="{{namespace}}",revision="{{revision}}"'  # as in activities/metrics.py
_REQUESTS = "sum(increase(http_requests_total{" + _SCOPE + "}[{{interval}}]))"
EVENTS = {
    "error-rate": "sum(increase(http_requests_total{" + _SCOPE + ',status=~"5.."}'
    "[{{interval}}])) or vector(0)",
    "conversion": "sum(increase(conversions_total{" + _SCOPE + "}[{{interval}}])) or vector(0)",
}


class PrometheusProportions:
    """A ProportionSource over one Prometheus."""

    def __init__(self, prometheus: PrometheusClient) -> None:
        self._prometheus = prometheus

    async def proportion(self, request: ProportionRequest) -> Proportion | None:
        """None when the variant has no requests yet; Unavailable/BadQuery propagate."""
        metric = request.metric
        events_template = metric.query or EVENTS.get(metric.name)
        if events_template is None:
            raise BadInput(
                f"experiment metric {metric.name} has no query and is not a built-in "
                f"({', '.join(sorted(EVENTS))})"
            )
        elapsed = datetime.now(UTC) - datetime.fromisoformat(request.since)
        variables = {
            "namespace": request.namespace,
            "rollout": request.rollout,
            "revision": request.variant.revision,
            "service": request.variant.service,
            "interval": f"{max(1, math.ceil(elapsed.total_seconds()))}s",
        }
        trials = await self._count(render(metric.trials_query or _REQUESTS, variables))
        if not trials:
            return None
        events = await self._count(render(events_template, variables)) or 0
        # increase() extrapolates to the window's edges: counts are estimates, kept consistent.
        return Proportion(successes=min(events, trials), trials=trials)

    async def _count(self, query: str) -> int | None:
        samples = await self._prometheus.query(query)
        values = [s.value for s in samples if s.value is not None]
        if not values:
            return None
        if len(values) > 1:
            raise BadInput(f"experiment query returned {len(values)} series, not one: {query}")
        return round(values[0])
