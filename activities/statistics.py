"""A/B statistics: the two-proportion Z-test per metric, and the verdict across metrics.

Pure functions, run in an activity. The normal tail comes from `math.erfc` (two-sided
p = erfc(|z| / sqrt 2)), exact to double precision, so the worker does not load scipy (about
50 MB of resident memory) for one function.
"""

from __future__ import annotations

import math
from typing import Literal

from activities.contracts import Proportion
from activities.rollout_status import ExperimentMetricStatus

Direction = Literal["lower", "higher"]


def z_test(
    a: Proportion,
    b: Proportion,
    *,
    confidence_level: float,
    min_samples: int,
    direction: Direction,
    name: str,
) -> ExperimentMetricStatus:
    """Two-sided two-proportion Z-test of B's rate against A's.

    z > 0 means B's rate is higher. Below `min_samples` trials on either side the result is
    never significant, whatever the rates say.
    """
    rate_a, rate_b = a.rate, b.rate
    pooled_trials = a.trials + b.trials
    pooled = (a.successes + b.successes) / pooled_trials if pooled_trials else 0.0
    variance = pooled * (1 - pooled) * (_inverse(a.trials) + _inverse(b.trials))
    if variance <= 0 or math.isinf(variance):
        z, p_value = 0.0, 1.0
    else:
        z = (rate_b - rate_a) / math.sqrt(variance)
        p_value = math.erfc(abs(z) / math.sqrt(2))
    enough = a.trials >= min_samples and b.trials >= min_samples
    significant = enough and p_value < 1 - confidence_level
    winner: Literal["A", "B"] | None = None
    if significant:
        b_better = rate_b < rate_a if direction == "lower" else rate_b > rate_a
        winner = "B" if b_better else "A"
    return ExperimentMetricStatus(
        name=name,
        rate_a=rate_a,
        rate_b=rate_b,
        samples_a=a.trials,
        samples_b=b.trials,
        z=z,
        p_value=p_value,
        confidence=1 - p_value,
        significant=significant,
        winner=winner,
    )


def overall_winner(verdicts: list[ExperimentMetricStatus]) -> Literal["A", "B"] | None:
    """The winner when every significant metric agrees (and at least one is significant)."""
    winners = {v.winner for v in verdicts if v.significant}
    return winners.pop() if len(winners) == 1 else None


def _inverse(trials: int) -> float:
    return 1 / trials if trials else math.inf
