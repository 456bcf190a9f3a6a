"""HTTPRoute surgery: only our backendRefs' weights change; someone else's edit is detected."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from activities.routing import (
    RouteMisconfigured,
    drifted,
    observed_weights,
    with_mirror,
    with_weights,
)
from tests.support.builders import httproute


def route() -> dict:
    r = httproute("r", "stable", "canary")
    r["metadata"]["namespace"] = "ns"
    return r


def test_sets_only_our_weights_and_keeps_everything_else() -> None:
    before = route()
    plan = with_weights(before, {"stable": 70, "canary": 30})
    assert plan.changed
    assert plan.observed == {"stable": 70, "canary": 30}  # what the route carries once written
    after = plan.route
    assert [ref["weight"] for ref in after["spec"]["rules"][1]["backendRefs"]] == [70, 30, 0]
    assert after["spec"]["rules"][0] == before["spec"]["rules"][0]
    expected = copy.deepcopy(before)
    expected["spec"]["rules"][1]["backendRefs"][0]["weight"] = 70
    expected["spec"]["rules"][1]["backendRefs"][1]["weight"] = 30
    assert after == expected
    assert before["spec"]["rules"][1]["backendRefs"][0]["weight"] == 100  # input untouched


def test_every_rule_naming_both_services_is_managed() -> None:
    r = route()
    r["spec"]["rules"].append(copy.deepcopy(r["spec"]["rules"][1]))
    plan = with_weights(r, {"stable": 10, "canary": 90})
    for rule in plan.route["spec"]["rules"][1:]:
        assert [ref["weight"] for ref in rule["backendRefs"][:2]] == [10, 90]


def test_same_weights_is_no_change() -> None:
    plan = with_weights(route(), {"stable": 100, "canary": 0})
    assert not plan.changed


def test_missing_weight_counts_as_one() -> None:
    r = route()
    del r["spec"]["rules"][1]["backendRefs"][0]["weight"]
    assert observed_weights(r, ["canary", "stable"]) == {"stable": 1, "canary": 0}


def test_rule_with_only_the_stable_service_is_misconfigured() -> None:
    r = route()
    r["spec"]["rules"][1]["backendRefs"].pop(1)
    with pytest.raises(RouteMisconfigured, match="references stable but not canary"):
        with_weights(r, {"stable": 100, "canary": 0})


def test_route_without_our_services_is_misconfigured() -> None:
    with pytest.raises(RouteMisconfigured, match="no rule whose backendRefs name"):
        with_weights(route(), {"other": 100, "canary2": 0})


def test_backend_in_another_namespace_is_not_ours() -> None:
    r = route()
    for ref in r["spec"]["rules"][1]["backendRefs"]:
        ref["namespace"] = "elsewhere"
    with pytest.raises(RouteMisconfigured):
        with_weights(r, {"stable": 100, "canary": 0})


def test_drift_is_an_edit_we_did_not_make() -> None:
    r = route()
    assert not drifted(r, {"stable": 100, "canary": 0})
    r["spec"]["rules"][1]["backendRefs"][1]["weight"] = 5
    assert drifted(r, {"stable": 100, "canary": 0})


def _split_route() -> dict[str, Any]:
    return {
        "metadata": {"name": "r", "namespace": "ns"},
        "spec": {
            "rules": [
                {
                    "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {}}],
                    "backendRefs": [
                        {"name": "stable", "port": 80, "weight": 100},
                        {"name": "canary", "port": 8080, "weight": 0},
                    ],
                },
                {"backendRefs": [{"name": "admin", "port": 9000}]},
            ]
        },
    }


def test_a_mirror_goes_on_the_split_rules_only_and_comes_off_leaving_the_rest() -> None:
    route = _split_route()
    mirrored = with_mirror(route, "stable", "canary", 20)
    assert mirrored.changed
    rule = mirrored.route["spec"]["rules"][0]
    assert rule["filters"] == [
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {}},
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "canary", "port": 8080}, "percent": 20},
        },
    ]
    assert mirrored.route["spec"]["rules"][1] == route["spec"]["rules"][1]
    again = with_mirror(mirrored.route, "stable", "canary", 50)  # replaced, not added
    assert [
        f.get("requestMirror", {}).get("percent")
        for f in again.route["spec"]["rules"][0]["filters"]
    ] == [None, 50]
    removed = with_mirror(again.route, "stable", "canary", None)
    assert removed.route == route
    assert not with_mirror(route, "stable", "canary", None).changed
