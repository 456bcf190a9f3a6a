from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from workflows.model import CanaryStrategy, HeaderMatch
from workflows.steps import Analyze, Pause, SetHeaderRoute, SetMirrorRoute, SetWeight
from workflows.strategies.canary import plan

ROUTE = {"gatewayAPI": {"httpRoute": "r"}}


def canary(*steps: dict[str, Any], **more: Any) -> CanaryStrategy:
    return CanaryStrategy.model_validate(
        {"stableService": "s", "canaryService": "c", "steps": list(steps), **more}
    )


def test_a_header_route_comes_first_in_its_step_and_the_pause_still_follows_the_weight() -> None:
    header = {"name": "x-canary", "value": "yes"}
    steps = plan(
        canary(
            {"setHeaderRoute": header, "pause": {}},
            {"setHeaderRoute": header, "setWeight": 10, "pause": {}},
            trafficRouting=ROUTE,
        )
    )
    match = HeaderMatch(name="x-canary", value="yes")
    assert steps == [
        SetHeaderRoute(match=match, spec_index=0),
        Pause(seconds=None, spec_index=0),
        SetHeaderRoute(match=match, spec_index=1),
        SetWeight(weight=10, spec_index=1, pause=Pause(seconds=None, spec_index=1)),
    ]


@pytest.mark.parametrize(
    "step",
    [{"setHeaderRoute": {"name": "x-canary", "value": "yes"}}, {"setMirrorRoute": {"percent": 5}}],
)
def test_header_and_mirror_routes_need_a_route(step: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="trafficRouting: setHeaderRoute and setMirror"):
        canary(step)


def test_a_mirror_comes_before_the_weight_of_its_step() -> None:
    steps = plan(canary({"setMirrorRoute": {"percent": 20}, "setWeight": 5}, trafficRouting=ROUTE))
    assert steps == [SetMirrorRoute(percent=20, spec_index=0), SetWeight(weight=5, spec_index=0)]


def test_a_weight_carries_the_pause_of_its_step() -> None:
    steps = plan(
        canary({"setWeight": 20, "pause": {"duration": "5m"}}, {"pause": {}}, {"setWeight": 100})
    )
    assert steps == [
        SetWeight(weight=20, spec_index=0, pause=Pause(seconds=300, spec_index=0)),
        Pause(seconds=None, spec_index=1),
        SetWeight(weight=100, spec_index=2),
    ]
    assert isinstance(steps[1], Pause) and steps[1].manual


def test_a_pause_in_the_next_step_travels_with_the_weight_before_it() -> None:
    assert plan(canary({"setWeight": 20}, {"pause": {}})) == [
        SetWeight(weight=20, spec_index=0, pause=Pause(seconds=None, spec_index=1))
    ]


def test_an_analysis_between_weight_and_pause_keeps_them_apart() -> None:
    analysis = {"metrics": [{"name": "error-rate", "threshold": 0.05}]}
    steps = plan(canary({"setWeight": 20, "analysis": analysis, "pause": {}}))
    assert steps[0] == SetWeight(weight=20, spec_index=0)
    assert isinstance(steps[1], Analyze)
    assert steps[2] == Pause(seconds=None, spec_index=0)
