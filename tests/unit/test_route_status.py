"""Judging a route's `status.parents[]` for its current generation."""

from __future__ import annotations

from typing import Any

from activities.route_status import judge_route

EG = "gateway.envoyproxy.io/gatewayclass-controller"


def condition(kind: str, status: str, generation: int | None, reason: str = "") -> dict[str, Any]:
    c: dict[str, Any] = {"type": kind, "status": status, "reason": reason or kind, "message": "m"}
    if generation is not None:
        c["observedGeneration"] = generation
    return c


def report(gateway: str, *conditions: dict[str, Any], namespace: str | None = None) -> dict:
    ref: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway}
    if namespace:
        ref["namespace"] = namespace
    return {"parentRef": ref, "controllerName": EG, "conditions": list(conditions)}


def route(generation: int, *reports: dict, parents: tuple[str, ...] = ("gw",)) -> dict:
    return {
        "metadata": {"name": "r", "namespace": "ns", "generation": generation},
        "spec": {"parentRefs": [{"name": p} for p in parents]},
        "status": {"parents": list(reports)},
    }


def accepted(gateway: str, generation: int | None, **kw: Any) -> dict:
    return report(
        gateway,
        condition("Accepted", "True", generation),
        condition("ResolvedRefs", "True", generation),
        **kw,
    )


def test_every_report_on_the_current_generation_accepting_is_verified() -> None:
    judged = judge_route(route(3, accepted("gw", 3, namespace="ns")))
    assert judged.verdict == "verified"
    assert judged.generation == 3
    assert "Gateway gw" in judged.message and EG in judged.message


def test_a_report_about_an_earlier_generation_is_pending() -> None:
    judged = judge_route(route(4, accepted("gw", 3)))
    assert judged.verdict == "pending"
    assert "has not reported on generation 4" in judged.message


def test_one_pending_parent_of_two_keeps_it_pending() -> None:
    judged = judge_route(route(4, accepted("a", 4), accepted("b", 3), parents=("a", "b")))
    assert judged.verdict == "pending"
    assert "Gateway b" in judged.message and "Gateway a" not in judged.message


def test_accepted_false_is_refused_with_the_controllers_reason() -> None:
    refused = report(
        "gw",
        condition("Accepted", "False", 5, reason="UnsupportedValue"),
        condition("ResolvedRefs", "True", 5),
    )
    judged = judge_route(route(5, refused))
    assert judged.verdict == "refused"
    assert "Accepted=False (UnsupportedValue: m)" in judged.message
    assert "refused generation 5 of HTTPRoute ns/r" in judged.message


def test_unresolved_backends_are_refused() -> None:
    bad = report(
        "gw",
        condition("Accepted", "True", 2),
        condition("ResolvedRefs", "False", 2, reason="BackendNotFound"),
    )
    assert judge_route(route(2, bad)).verdict == "refused"


def test_partially_invalid_now_is_refused_but_an_old_one_says_nothing() -> None:
    now = report(
        "gw",
        condition("Accepted", "True", 2),
        condition("ResolvedRefs", "True", 2),
        condition("PartiallyInvalid", "True", 2),
    )
    assert judge_route(route(2, now)).verdict == "refused"
    old = report(
        "gw",
        condition("Accepted", "True", 3),
        condition("ResolvedRefs", "True", 3),
        condition("PartiallyInvalid", "True", 2),
    )
    assert judge_route(route(3, old)).verdict == "verified"


def test_a_route_no_controller_reports_on_is_unobserved() -> None:
    assert judge_route(route(1)).verdict == "unobserved"
    no_status = route(1)
    del no_status["status"]
    assert judge_route(no_status).verdict == "unobserved"


def test_reports_for_parents_the_route_no_longer_names_are_ignored() -> None:
    assert judge_route(route(2, accepted("old-gw", 1), parents=("gw",))).verdict == "unobserved"


def test_a_parent_in_another_namespace_is_matched_with_its_namespace() -> None:
    r = route(2, accepted("gw", 2, namespace="infra"))
    r["spec"]["parentRefs"] = [{"name": "gw", "namespace": "infra"}]
    assert judge_route(r).verdict == "verified"
    r["spec"]["parentRefs"] = [{"name": "gw"}]  # the route's own namespace: another Gateway
    assert judge_route(r).verdict == "unobserved"


def test_a_controller_that_does_not_set_observed_generation_is_taken_as_current() -> None:
    assert judge_route(route(7, accepted("gw", None))).verdict == "verified"


def test_a_report_without_accepted_yet_is_pending() -> None:
    judged = judge_route(route(1, report("gw", condition("ResolvedRefs", "True", 1))))
    assert judged.verdict == "pending"
