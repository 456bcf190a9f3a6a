"""The A/B Z-test against the reference values the experiment semantics were specified with,
and the sequential test that makes repeated looks safe, measured on simulated experiments."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from activities.contracts import Proportion
from activities.statistics import overall_winner, sequential_test, z_test


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


def _aa_experiments(
    count: int, rate_a: float, rate_b: float, looks: int = 30, per_look: int = 500, seed: int = 7
) -> list[list[tuple[Proportion, Proportion]]]:
    """Simulated experiments: cumulative counts of both variants at each look (normal
    approximation to the binomial, per look)."""
    rng = random.Random(seed)

    def draw(n: int, p: float) -> int:
        return min(n, max(0, round(n * p + math.sqrt(n * p * (1 - p)) * rng.gauss(0, 1))))

    experiments = []
    for _ in range(count):
        a = b = Proportion(successes=0, trials=0)
        series = []
        for _ in range(looks):
            trials = a.trials + per_look
            a = Proportion(successes=a.successes + draw(per_look, rate_a), trials=trials)
            b = Proportion(successes=b.successes + draw(per_look, rate_b), trials=trials)
            series.append((a, b))
        experiments.append(series)
    return experiments


def _winner_rate(experiments: list[list[tuple[Proportion, Proportion]]], test: Any) -> float:
    """The share of experiments that declare a winner at some look (and stop there)."""
    declared = 0
    for series in experiments:
        for a, b in series:
            verdict = test(
                a, b, confidence_level=0.95, min_samples=100, direction="lower", name="error-rate"
            )
            if verdict.significant:
                declared += 1
                break
    return declared / len(experiments)


def test_repeated_looks_keep_the_false_winner_rate_at_one_minus_the_confidence() -> None:
    """2,000 A/A experiments (5% error rate on both sides), each looked at 30 times: reading the
    fixed-horizon Z-test at every look declares a false winner far more often than 5%; the
    sequential test stays at or below it."""
    experiments = _aa_experiments(2000, 0.05, 0.05)
    peeking = _winner_rate(experiments, z_test)
    sequential = _winner_rate(experiments, sequential_test)
    print(f"false winners over 30 looks: peeking {peeking:.1%}, sequential {sequential:.1%}")
    assert peeking > 0.15
    assert sequential <= 0.05


def test_the_sequential_test_still_finds_a_real_difference() -> None:
    experiments = _aa_experiments(500, 0.05, 0.04, seed=11)  # B fails 20% less often
    found = _winner_rate(experiments, sequential_test)
    assert found >= 0.8, found
