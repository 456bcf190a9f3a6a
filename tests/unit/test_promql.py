"""Query rendering, golden: hostile values stay inside their label matcher."""

from __future__ import annotations

import pytest

from activities.promql import TemplateError, escape, render

TEMPLATE = (
    'sum(rate(http_requests_total{service="{{service}}",revision="{{revision}}"}[{{interval}}]))'
)


def test_plain_values() -> None:
    assert render(TEMPLATE, {"service": "web", "revision": "abc", "interval": "1m"}) == (
        'sum(rate(http_requests_total{service="web",revision="abc"}[1m]))'
    )


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ('a"} or vector(1) or {x="', 'a\\"} or vector(1) or {x=\\"'),
        ("back\\slash", "back\\\\slash"),
        ("line\nbreak", "line\\nbreak"),
        ("tab\there", "tab\\there"),
        ("braces{}and[brackets]", "braces{}and[brackets]"),
        ("ünïcode ✓", "ünïcode ✓"),
        ("{{revision}}", "{{revision}}"),  # values are not templates themselves
    ],
)
def test_hostile_values_are_escaped(value: str, rendered: str) -> None:
    out = render(TEMPLATE, {"service": value, "revision": "r", "interval": "5m"})
    assert out == f'sum(rate(http_requests_total{{service="{rendered}",revision="r"}}[5m]))'
    assert escape(value) == rendered


def test_unknown_variable_names_what_is_available() -> None:
    with pytest.raises(TemplateError, match=r"\{\{pod\}\}, but only interval, revision, service"):
        render("up{pod='{{pod}}'}", {"service": "s", "revision": "r", "interval": "1m"})


def test_interval_must_be_a_duration() -> None:
    with pytest.raises(TemplateError, match="not a PromQL duration"):
        render("rate(x[{{interval}}])", {"interval": "1m] or vector(1) [1m"})
