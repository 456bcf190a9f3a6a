"""The condition language: what parses, what it means, and errors that say what is wrong."""

from __future__ import annotations

import math

import pytest

from activities.conditions import ConditionError, parse


@pytest.mark.parametrize(
    ("source", "result", "holds"),
    [
        ("result < 0.05", 0.04, True),
        ("result < 0.05", 0.05, False),
        ("result <= 0.05", 0.05, True),
        ("result >= 99 && result <= 100", 99.5, True),
        ("result >= 99 and result <= 100", 100.5, False),
        ("result < 1 || result > 9", 10, True),
        ("result < 1 or result > 9", 5, False),
        ("!(result > 3)", 2, True),
        ("not result > 3", 4, False),
        ("(result - 1) * 2 < 3", 2.4, True),
        ("(result - 1) * 2 < 3", 2.6, False),
        ("result == 0", 0, True),
        ("result != 0", 0, False),
        ("-result > -1", 0.5, True),
        ("result < 1e-3", 0.0005, True),
        ("result<.5", 0.25, True),
        ("(result < 1) && (result > 0)", 0.5, True),
        ("result < 2 - 1 - 1 + 1", 0.5, True),  # left-associative: (2-1-1)+1
    ],
)
def test_meaning(source: str, result: float, holds: bool) -> None:
    assert parse(source).holds(result=result) is holds


def test_precedence_is_and_before_or() -> None:
    condition = parse("result > 5 || result > 1 && result < 2")
    assert condition.holds(result=6) and condition.holds(result=1.5)
    assert not condition.holds(result=3)


def test_baseline_comparison() -> None:
    condition = parse("result <= baseline * 1.2 + 0.5")
    assert condition.variables() == {"result", "baseline"}
    assert condition.holds(result=1.7, baseline=1.0)
    assert not condition.holds(result=1.8, baseline=1.0)


def test_nan_compares_false_like_promql() -> None:
    assert not parse("result < 1").holds(result=math.nan)
    assert parse("result / 0 > 1").holds(result=1)  # +Inf, never a crash


def test_missing_value_is_named() -> None:
    with pytest.raises(ConditionError, match="needs baseline"):
        parse("result < baseline").holds(result=1)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "empty"),
        ("result <", "ends too early"),
        ("result", "ends too early"),
        ("result 5", "expected a comparison"),
        ("result < 5 5", "unexpected '5'"),
        ("result < latency", "'latency' is not a number, result or baseline"),
        ("__import__('os') < 1", "cannot read"),
        ("result < 1 &", "cannot read '&'"),
        ("(result < 1", r"expected '\)'"),
        ("result < 1; drop", "cannot read ';"),
    ],
)
def test_errors_say_what_is_wrong(source: str, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        parse(source)
