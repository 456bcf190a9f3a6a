"""A/B experiment activities: measuring both variants and judging them with the sequential
test (safe to repeat at every measurement)."""

from __future__ import annotations

from temporalio import activity

from activities.contracts import (
    ExperimentMeasurement,
    MeasureExperimentInput,
    ProportionRequest,
)
from activities.errors import BadInput, Unavailable
from activities.ports import ProportionSource
from activities.rollout_status import ExperimentMetricStatus
from activities.statistics import overall_winner, sequential_test


class ExperimentActivities:
    def __init__(self, source: ProportionSource) -> None:
        self._source = source

    @activity.defn(name="measure_experiment")
    async def measure(self, inp: MeasureExperimentInput) -> ExperimentMeasurement:
        """Reads each metric for both variants and tests B against A.

        Read-only, so repeating it is harmless. A metric without data for either variant makes
        the whole measurement inconclusive (`has_data=False`), never a win or a loss.
        """
        verdicts: list[ExperimentMetricStatus] = []
        for metric in inp.metrics:
            counts = []
            for variant in (inp.variant_a, inp.variant_b):
                request = ProportionRequest(
                    namespace=inp.namespace,
                    rollout=inp.rollout,
                    metric=metric,
                    variant=variant,
                    since=inp.since,
                )
                try:
                    counts.append(await self._source.proportion(request))
                except (Unavailable, BadInput) as err:  # no verdict from a measurement that failed
                    return ExperimentMeasurement(
                        has_data=False, message=f"metric {metric.name}: {err}"
                    )
            a, b = counts
            if a is None or b is None:
                return ExperimentMeasurement(
                    has_data=False, message=f"no data for metric {metric.name}"
                )
            verdicts.append(
                sequential_test(
                    a,
                    b,
                    confidence_level=inp.confidence_level,
                    min_samples=inp.min_samples,
                    direction=metric.direction,
                    name=metric.name,
                )
            )
        return ExperimentMeasurement(
            has_data=bool(verdicts), verdicts=verdicts, winner=overall_winner(verdicts)
        )
