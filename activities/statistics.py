"""A/B statistics: the two-proportion Z-test per metric, made safe to look at repeatedly by a
sequential test, and the verdict across metrics.

An experiment is measured every interval and concludes at the first significant look. A fixed-
horizon test read that way ("peeking") declares a false winner far more often than
`1 - confidenceLevel`. `sequential_test` uses a mixture sequential probability ratio test
(mSPRT, normal approximation to the difference of rates, mixing over effects
N(0, tau^2)): the probability that its ratio ever reaches 1/alpha, over any number of looks, is
at most alpha when A and B do not differ. `tests/unit/test_statistics.py` measures both rates
on simulated A/A experiments.

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
    z, p_value = _z(a, b)
    return _judged(a, b, name, z, p_value, confidence_level, min_samples, direction)


# The mixing spread: effects of about a tenth of the pooled rate are the ones the test is most
# sensitive to (e.g. 5.0% against 5.5%); larger ones are found sooner, smaller ones later.
RELATIVE_EFFECT = 0.1


def sequential_test(
    a: Proportion,
    b: Proportion,
    *,
    confidence_level: float,
    min_samples: int,
    direction: Direction,
    name: str,
) -> ExperimentMetricStatus:
    """The Z-test's figures, with significance (and the p-value shown) from the mSPRT, so that
    an experiment may be measured as often as it likes: `p_value` is the always-valid one,
    min(1, 1/ratio)."""
    z, _ = _z(a, b)
    ratio = mixture_ratio(a, b)
    p_value = min(1.0, 1.0 / ratio) if ratio > 0 else 1.0
    return _judged(a, b, name, z, p_value, confidence_level, min_samples, direction)


def mixture_ratio(a: Proportion, b: Proportion) -> float:
    """The mSPRT ratio for B's rate minus A's: sqrt(V / (V + t2)) * exp(t2 d^2 / (2 V (V + t2)))
    with V the variance of the difference and t2 the mixing variance."""
    pooled, variance = _pooled(a, b)
    if variance <= 0 or math.isinf(variance):
        return 0.0
    tau2 = (RELATIVE_EFFECT * pooled) ** 2
    difference = b.rate - a.rate
    exponent = tau2 * difference**2 / (2 * variance * (variance + tau2))
    return math.sqrt(variance / (variance + tau2)) * math.exp(min(exponent, 700.0))


def _pooled(a: Proportion, b: Proportion) -> tuple[float, float]:
    """The pooled rate, and the variance of the difference of rates under it (inf without
    trials on a side)."""
    trials = a.trials + b.trials
    pooled = (a.successes + b.successes) / trials if trials else 0.0
    return pooled, pooled * (1 - pooled) * (_inverse(a.trials) + _inverse(b.trials))


def _z(a: Proportion, b: Proportion) -> tuple[float, float]:
    """z of B's rate against A's, and its two-sided fixed-horizon p-value."""
    _, variance = _pooled(a, b)
    if variance <= 0 or math.isinf(variance):
        return 0.0, 1.0
    z = (b.rate - a.rate) / math.sqrt(variance)
    return z, math.erfc(abs(z) / math.sqrt(2))


def _judged(
    a: Proportion,
    b: Proportion,
    name: str,
    z: float,
    p_value: float,
    confidence_level: float,
    min_samples: int,
    direction: Direction,
) -> ExperimentMetricStatus:
    """The status of one metric: significant below alpha with enough samples on both sides;
    then the better variant in the metric's direction wins."""
    enough = a.trials >= min_samples and b.trials >= min_samples
    significant = enough and p_value < 1 - confidence_level
    winner: Literal["A", "B"] | None = None
    if significant:
        b_better = b.rate < a.rate if direction == "lower" else b.rate > a.rate
        winner = "B" if b_better else "A"
    return ExperimentMetricStatus(
        name=name,
        rate_a=a.rate,
        rate_b=b.rate,
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
