"""The A/B Z-test against the reference values the experiment semantics were specified with."""

from __future__ import annotations

import pytest

from activities.contracts import Proportion
from activities.statistics import overall_winner, z_test


def p(rate: float, n: int) -> Proportion:
    return Proportion(successes=round(rate * n), trials=n)


def test_large_difference_is_significant_and_lower_error_rate_wins() -> None:
    verdict = z_test(
        p(0.05, 10000),
        p(0.02, 10000),
        confidence_level=0.95,
        min_samples=1000,
        direction="lower",
        name="error-rate",
    )
    assert verdict.significant and verdict.winner == "B"
    assert verdict.z < -10


def test_tiny_difference_is_not_significant() -> None:
    verdict = z_test(
        p(0.05, 10000),
        p(0.049, 10000),
        confidence_level=0.95,
        min_samples=100,
        direction="lower",
        name="m",
    )
    assert verdict.confidence == pytest.approx(0.256, abs=0.002)
    assert not verdict.significant and verdict.winner is None


def test_reference_z_at_n_1000() -> None:
    verdict = z_test(
        p(0.05, 1000),
        p(0.03, 1000),
        confidence_level=0.95,
        min_samples=1000,
        direction="higher",
        name="conversion",
    )
    assert verdict.z == pytest.approx(-2.28, abs=0.01)
    assert verdict.significant and verdict.winner == "A"  # higher is better: A converts more


def test_below_the_minimum_sample_size_is_never_significant() -> None:
    verdict = z_test(
        p(0.05, 999),
        p(0.01, 999),
        confidence_level=0.95,
        min_samples=1000,
        direction="lower",
        name="m",
    )
    assert verdict.p_value < 0.001 and not verdict.significant


def test_no_data_is_not_a_result() -> None:
    verdict = z_test(
        Proportion(successes=0, trials=0),
        p(0.5, 10),
        confidence_level=0.95,
        min_samples=1,
        direction="lower",
        name="m",
    )
    assert verdict.p_value == 1.0 and not verdict.significant


def test_winner_needs_every_significant_metric_to_agree() -> None:
    b_wins = z_test(
        p(0.05, 10000),
        p(0.02, 10000),
        confidence_level=0.95,
        min_samples=1,
        direction="lower",
        name="errors",
    )
    a_wins = z_test(
        p(0.10, 10000),
        p(0.05, 10000),
        confidence_level=0.95,
        min_samples=1,
        direction="higher",
        name="conversion",
    )
    flat = z_test(
        p(0.05, 10000),
        p(0.049, 10000),
        confidence_level=0.95,
        min_samples=1,
        direction="lower",
        name="latency",
    )
    assert overall_winner([b_wins, flat]) == "B"
    assert overall_winner([b_wins, a_wins]) is None
    assert overall_winner([flat]) is None
