"""`setHeaderRoute` and `setMirrorRoute` steps on the local stack. Requests with the header go to
the canary through kulta's own rule (a copy of the route's rule with the header added), and a
share of the stable traffic is mirrored to it, whatever the weight. Both leave the route at
completion and at an abort (before the weights move back), and no recorded write ever sends
requests to a canary without an available pod."""

from __future__ import annotations

from typing import Any

import pytest

from activities.naming import ANNOTATION_ABORT, ANNOTATION_PROMOTE, revision_of
from tests.support.invariants import (
    RECORDED_KINDS,
    WriteRecorder,
    terminal_problems,
    violations,
)
from tests.support.scenario import Scenario

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

RULE = "kulta-header-app"
STEPS: list[dict[str, Any]] = [
    {"setHeaderRoute": {"name": "x-canary", "value": "yes"}, "pause": {}},
    {"setWeight": 50, "pause": {}},
    {"setWeight": 100},
]


def _rules(route: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """kulta's rules by name (the user's rules here have none)."""
    return {r["name"]: r for r in route["spec"]["rules"] if r.get("name")}


def _canary_weight(route: dict[str, Any]) -> int:
    return next(
        ref["weight"]
        for rule in route["spec"]["rules"]
        if not rule.get("name")
        for ref in rule["backendRefs"]
        if ref["name"] == "app-canary"
    )


async def _paused_with_the_header_rule(sc: Scenario, writes: WriteRecorder) -> tuple[int, str, str]:
    """The resourceVersion from which invariants hold (the first revision is up), v1 and v2."""
    await sc.create(steps=STEPS, scale_down_delay=1, abort_delay=1, replicas=4)
    v1 = (await sc.wait_phase("Completed"))["status"]["stableRevision"]
    await writes.caught_up()
    armed = max(w.resource_version for w in writes.history)
    await sc.set_image("example/app:v2")
    v2 = revision_of((await sc.rollout())["spec"]["template"])
    paused = await sc.wait_phase("Paused", "waiting for promotion")
    assert paused["status"]["currentWeight"] == 0
    rule = _rules(await sc.route())[RULE]
    # The user's rule, copied: its path match and filter, the header added, the canary alone.
    assert rule["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"type": "Exact", "name": "x-canary", "value": "yes"}],
        }
    ]
    assert rule["filters"][0]["type"] == "RequestHeaderModifier"
    assert [(ref["name"], ref["port"]) for ref in rule["backendRefs"]] == [("app-canary", 8080)]
    assert (await sc.replicaset(v2))["status"]["availableReplicas"] >= 1
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    return armed, v1, v2


async def test_a_header_route_lasts_through_the_steps_and_leaves_at_completion(
    stack: Scenario,
) -> None:
    sc = stack
    async with WriteRecorder(sc.kube, sc.namespace, kinds=RECORDED_KINDS).running() as writes:
        armed, v1, v2 = await _paused_with_the_header_rule(sc, writes)
        await sc.annotate(ANNOTATION_PROMOTE)
        await sc.wait_paused_at(50)
        assert RULE in _rules(await sc.route())  # it stays while the weights move
        await sc.annotate(ANNOTATION_PROMOTE)
        await sc.wait_phase("Completed", f"revision {v2} is stable")
        assert RULE not in _rules(await sc.route())
        await sc.wait_rs_replicas(v1, 0, timeout=30)
        await writes.caught_up()
    assert violations(writes.history, sc.name, from_version=armed) == []
    assert terminal_problems(writes.history, sc.name, user_rules=2) == []


async def test_an_abort_takes_the_header_route_off_before_the_weights(stack: Scenario) -> None:
    sc = stack
    async with WriteRecorder(sc.kube, sc.namespace, kinds=RECORDED_KINDS).running() as writes:
        armed, _, v2 = await _paused_with_the_header_rule(sc, writes)
        await sc.annotate(ANNOTATION_PROMOTE)
        await sc.wait_paused_at(50)
        await sc.annotate(ANNOTATION_ABORT)
        await sc.wait_phase("Failed", "aborted by annotation")
        await sc.wait_rs_replicas(v2, 0, timeout=30)
        await writes.caught_up()
    assert RULE not in _rules(await sc.route())
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    # From the last write at 50%, the rule goes before (or with) the weight's return to 0.
    at_half = writes.first("HTTPRoute", "app-route", lambda r: _canary_weight(r) == 50)
    rule_gone = writes.first(
        "HTTPRoute", "app-route", lambda r: RULE not in _rules(r), after=at_half.resource_version
    )
    weight_zero = writes.first(
        "HTTPRoute", "app-route", lambda r: _canary_weight(r) == 0, after=at_half.resource_version
    )
    assert rule_gone.resource_version <= weight_zero.resource_version
    assert violations(writes.history, sc.name, from_version=armed) == []


MIRROR_STEPS: list[dict[str, Any]] = [
    {"setMirrorRoute": {"percent": 20}, "pause": {}},
    {"setWeight": 50, "pause": {}},
    {"setWeight": 100},
]


def _split_rule(route: dict[str, Any]) -> dict[str, Any]:
    return next(
        rule
        for rule in route["spec"]["rules"]
        if any(ref["name"] == "app-canary" for ref in rule["backendRefs"]) and not rule.get("name")
    )


def _mirrors(route: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in _split_rule(route).get("filters") or [] if f["type"] == "RequestMirror"]


async def test_a_mirror_stays_through_the_weights_and_an_abort_takes_it_off_first(
    stack: Scenario,
) -> None:
    sc = stack
    async with WriteRecorder(sc.kube, sc.namespace, kinds=RECORDED_KINDS).running() as writes:
        await sc.create(steps=MIRROR_STEPS, scale_down_delay=1, abort_delay=1, replicas=4)
        await sc.wait_phase("Completed")
        await writes.caught_up()
        armed = max(w.resource_version for w in writes.history)
        user_filters = _split_rule(await sc.route())["filters"]
        await sc.set_image("example/app:v2")
        v2 = revision_of((await sc.rollout())["spec"]["template"])
        await sc.wait_phase("Paused", "waiting for promotion")
        route = await sc.route()
        mirror = _mirrors(route)
        assert [m["requestMirror"]["percent"] for m in mirror] == [20]
        assert mirror[0]["requestMirror"]["backendRef"]["name"] == "app-canary"
        assert _split_rule(route)["filters"][0] == user_filters[0]  # the user's filter stays
        assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
        assert (await sc.replicaset(v2))["status"]["availableReplicas"] >= 1

        await sc.annotate(ANNOTATION_PROMOTE)
        await sc.wait_paused_at(50)
        assert len(_mirrors(await sc.route())) == 1
        await sc.annotate(ANNOTATION_ABORT)
        await sc.wait_phase("Failed", "aborted by annotation")
        await sc.wait_rs_replicas(v2, 0, timeout=30)
        await writes.caught_up()
    assert _split_rule(await sc.route())["filters"] == user_filters
    at_half = writes.first("HTTPRoute", "app-route", lambda r: _canary_weight(r) == 50)
    unmirrored = writes.first(
        "HTTPRoute", "app-route", lambda r: not _mirrors(r), after=at_half.resource_version
    )
    weight_zero = writes.first(
        "HTTPRoute", "app-route", lambda r: _canary_weight(r) == 0, after=at_half.resource_version
    )
    assert unmirrored.resource_version <= weight_zero.resource_version
    assert violations(writes.history, sc.name, from_version=armed) == []
