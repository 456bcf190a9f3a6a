"""Verified traffic: after each change to the HTTPRoute, a step goes on only once the Gateway
reporting on the route (a real Envoy Gateway here, `tests/support/gateways.py`) has accepted
that generation. A refusal pauses the rollout with the Gateway's own message, a Gateway that
does not report within `statusTimeout` pauses it too, and a rollback whose traffic change is
not taken scales nothing down."""

from __future__ import annotations

from typing import Any

import pytest

from activities.naming import ANNOTATION_ABORT, ANNOTATION_PROMOTE, revision_of
from tests.support.gateways import EnvoyGateway
from tests.support.kube import path_of
from tests.support.scenario import Scenario

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]
UNKNOWN_FILTER = {
    "type": "ExtensionRef",
    "extensionRef": {"group": "example.com", "kind": "NoSuchFilter", "name": "x"},
}


def _reason(rollout: dict[str, Any], condition: str = "Paused") -> str | None:
    for c in (rollout.get("status") or {}).get("conditions") or []:
        if c["type"] == condition:
            return str(c["reason"])
    return None


def _report(route: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The one parent report's conditions, by type."""
    [parent] = route["status"]["parents"]
    return {c["type"]: c for c in parent["conditions"]}


def _accepted_now(route: dict[str, Any]) -> bool:
    conditions = _report(route)
    generation = route["metadata"]["generation"]
    return all(
        conditions[kind]["status"] == "True"
        and conditions[kind]["observedGeneration"] == generation
        for kind in ("Accepted", "ResolvedRefs")
    )


async def _stable_v1(sc: Scenario, eg: EnvoyGateway, **args: Any) -> str:
    await sc.create(steps=STEPS, scale_down_delay=1, abort_delay=1, replicas=4, **args)
    v1 = (await sc.wait_phase("Completed"))["status"]["stableRevision"]
    route = await sc.route()
    assert route["status"]["parents"][0]["controllerName"] == eg.controller_name
    assert _accepted_now(route)
    return str(v1)


async def _set_user_filter(sc: Scenario, filters: list[dict[str, Any]]) -> None:
    """The route's owner edits the filters of the rule kulta splits."""
    route = await sc.route()
    route["spec"]["rules"][1]["filters"] = filters
    await sc.kube.client.replace(path_of("HTTPRoute", sc.namespace, "app-route"), route)


async def test_a_step_waits_for_the_gateway_and_a_refusal_pauses_with_its_message(
    stack: Scenario, gateway: EnvoyGateway
) -> None:
    sc = stack
    await _stable_v1(sc, gateway)
    # The owner adds a filter this Gateway does not know to the rule kulta splits: the Gateway
    # drops that rule (the route is accepted only in part, the canary's share goes nowhere).
    await _set_user_filter(sc, [UNKNOWN_FILTER])
    await sc.set_image("example/app:v2")
    held = await sc.wait_until(
        lambda r: _reason(r) == "HTTPRouteRefused",
        "paused for the Gateway's refusal",
    )
    message = held["status"]["message"]
    assert held["status"]["phase"] == "Paused"
    assert gateway.controller_name in message
    assert "PartiallyInvalid=True" in message and "NoSuchFilter" in message  # its own words
    route = await sc.route()
    assert _report(route)["PartiallyInvalid"]["status"] == "True"
    events = await sc.kube.list("Event", sc.namespace)
    assert any(e.get("reason") == "HTTPRouteRefused" and e.get("type") == "Warning" for e in events)
    # The owner takes the filter off; on its recheck the rollout finds the change accepted and
    # only then starts the step's pause.
    await _set_user_filter(sc, [])
    paused = await sc.wait_phase("Paused", "waiting for promotion", timeout=40)
    assert paused["status"]["currentWeight"] == 20
    assert _accepted_now(await sc.route())
    await sc.annotate(ANNOTATION_PROMOTE)
    done = await sc.wait_phase("Completed", timeout=60)
    assert _accepted_now(await sc.route())
    decisions = [d["action"] for d in done["status"].get("decisions", [])]
    assert "traffic-unverified" not in decisions


async def test_a_gateway_that_does_not_report_holds_the_step_and_the_rollback(
    stack: Scenario, gateway: EnvoyGateway
) -> None:
    sc = stack
    v1 = await _stable_v1(sc, gateway, route_status_timeout="2s")
    gateway.stop()  # from here nothing judges the route
    await sc.set_image("example/app:v2")
    v2 = revision_of((await sc.rollout())["spec"]["template"])
    held = await sc.wait_until(
        lambda r: _reason(r) == "HTTPRouteNotAccepted",
        "paused: the Gateway has not reported",
    )
    route = await sc.route()
    generation = route["metadata"]["generation"]
    assert f"has not reported on generation {generation}" in held["status"]["message"]
    assert "within 2s" in held["status"]["message"]
    assert await sc.weights() == {"app-stable": 80, "app-canary": 20, "mirror-sink": 0}
    # The weight is written, but the step's pause did not start: it was not taken.
    assert held["status"]["phase"] == "Paused"
    await gateway.start()
    await sc.wait_phase("Paused", "waiting for promotion", timeout=40)
    assert _accepted_now(await sc.route())

    # An abort while the Gateway is down: the route is set back to stable, but as long as no
    # Gateway confirms it the canary may still get requests, so its pods are kept.
    gateway.stop()
    await sc.annotate(ANNOTATION_ABORT)
    failed = await sc.wait_phase("Failed", "could not be set back to stable", timeout=60)
    assert _reason(failed, "Progressing") == "RollbackIncomplete"
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    canary = await sc.replicaset(v2)
    assert canary["spec"]["replicas"] >= 1, "a canary still possibly serving was scaled down"
    assert (await sc.replicaset(v1))["spec"]["replicas"] == 4
    decisions = failed["status"].get("decisions", [])
    assert any(
        d["action"] == "rollback-incomplete" and "has not reported" in d["reason"]
        for d in decisions
    )


async def test_a_header_rule_the_gateway_refuses_holds_the_rollout_until_aborted(
    stack: Scenario, gateway: EnvoyGateway
) -> None:
    sc = stack
    steps = [
        {"setHeaderRoute": {"name": "x-canary", "value": "([", "type": "RegularExpression"}},
        {"pause": {}},
        {"setWeight": 100},
    ]
    await sc.create(steps=steps, scale_down_delay=1, abort_delay=1, replicas=4)
    await sc.wait_phase("Completed")
    await sc.set_image("example/app:v2")
    held = await sc.wait_until(
        lambda r: _reason(r) == "HTTPRouteRefused",
        "paused for the refused header rule",
    )
    assert "refused generation" in held["status"]["message"]
    names = [rule.get("name") for rule in (await sc.route())["spec"]["rules"]]
    assert "kulta-header-app" in names
    await sc.annotate(ANNOTATION_ABORT)
    await sc.wait_phase("Failed", "aborted by annotation", timeout=60)
    route = await sc.route()
    assert "kulta-header-app" not in [rule.get("name") for rule in route["spec"]["rules"]]
    assert _accepted_now(route)  # without kulta's rule, the route is accepted again
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
