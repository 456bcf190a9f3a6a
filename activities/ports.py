"""The small interfaces activities depend on; adapters implement them."""

from __future__ import annotations

from typing import Protocol

from activities.contracts import Proportion, ProportionRequest


class ProportionSource(Protocol):
    """Counts for one metric of one variant since a moment: events out of trials.

    Returns None when there is no data (no traffic yet, or no provider configured): that is
    neither a pass nor a failure.
    """

    async def proportion(self, request: ProportionRequest) -> Proportion | None: ...


class NoMetricsProvider:
    """Used when no metrics provider is configured: every measurement has no data, so an
    experiment can only be concluded by hand or by its maxDuration."""

    async def proportion(self, request: ProportionRequest) -> Proportion | None:
        return None
