from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1m1s", 61),
        ("90s", 90),
    ],
)
def test_valid_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "0s", "0m0s", "-5m", "5", "m", "1.5h", "5 m", "5M", "5min", "1y", "abc", " 5m", "400d"],
)
def test_invalid_durations_are_rejected_with_a_message(text: str) -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=366 * 86400))
def test_format_then_parse_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
