"""Surgical HTTPRoute edits: only the weights of backendRefs naming our Services change.

Pure functions over the route's JSON, so the rules (which rules we touch, what counts as someone
else's edit) are unit-tested without a cluster. Matches, filters, other rules and other backends
are carried through untouched.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]
# Gateway API: a backendRef without a weight has weight 1.
DEFAULT_BACKEND_WEIGHT = 1
# Rules kulta adds itself are named with this prefix (see workflows/strategies/ab_test.py).
KULTA_RULE_PREFIX = "kulta-"


class RouteMisconfigured(ValueError):
    """The route does not reference our Services the way a weighted split needs."""


@dataclass
class WeightPlan:
    route: JsonObject
    changed: bool
    observed: dict[str, int] = field(default_factory=dict)  # our weights on the new route


def _is_service_ref(ref: JsonObject, route_namespace: str) -> bool:
    return (
        ref.get("group", "") in ("", "core")
        and ref.get("kind", "Service") == "Service"
        and ref.get("namespace", route_namespace) == route_namespace
    )


def managed_rule_indexes(route: JsonObject, services: list[str]) -> list[int]:
    """Indexes of the rules that reference every one of `services`.

    Raises:
        RouteMisconfigured: no rule references them all, or a rule references only some.
    """
    namespace = route.get("metadata", {}).get("namespace", "")
    wanted = set(services)
    indexes = []
    for index, rule in enumerate(route.get("spec", {}).get("rules") or []):
        if str(rule.get("name", "")).startswith(KULTA_RULE_PREFIX):
            continue  # kulta's own A/B rule sends one variant its matches; it is not a split
        names = {
            ref.get("name")
            for ref in rule.get("backendRefs") or []
            if _is_service_ref(ref, namespace)
        }
        present = wanted & names
        if present and present != wanted:
            missing = ", ".join(sorted(wanted - present))
            raise RouteMisconfigured(
                f"HTTPRoute {route['metadata']['name']} rule {index} references "
                f"{', '.join(sorted(present))} but not {missing}; add a backendRef for it"
            )
        if present == wanted:
            indexes.append(index)
    if not indexes:
        raise RouteMisconfigured(
            f"HTTPRoute {route.get('metadata', {}).get('name')} has no rule whose backendRefs "
            f"name the Services {', '.join(services)}"
        )
    return indexes


def observed_weights(route: JsonObject, services: list[str]) -> dict[str, int]:
    """The weights our Services currently have (from the first managed rule)."""
    first = managed_rule_indexes(route, services)[0]
    namespace = route.get("metadata", {}).get("namespace", "")
    out: dict[str, int] = {}
    for ref in route["spec"]["rules"][first].get("backendRefs") or []:
        if _is_service_ref(ref, namespace) and ref.get("name") in services:
            out[ref["name"]] = int(ref.get("weight", DEFAULT_BACKEND_WEIGHT))
    return out


def with_weights(route: JsonObject, weights: dict[str, int]) -> WeightPlan:
    """A copy of `route` with `weights` set on our backendRefs in every managed rule."""
    services = sorted(weights)
    indexes = managed_rule_indexes(route, services)
    new_route = copy.deepcopy(route)
    namespace = route.get("metadata", {}).get("namespace", "")
    changed = False
    for index in indexes:
        for ref in new_route["spec"]["rules"][index]["backendRefs"]:
            if _is_service_ref(ref, namespace) and ref.get("name") in weights:
                want = weights[ref["name"]]
                if ref.get("weight", DEFAULT_BACKEND_WEIGHT) != want:
                    ref["weight"] = want
                    changed = True
    return WeightPlan(
        route=new_route, changed=changed, observed=observed_weights(new_route, services)
    )


def drifted(route: JsonObject, expected: dict[str, int]) -> bool:
    """True when any managed rule shows weights other than the ones we wrote last."""
    namespace = route.get("metadata", {}).get("namespace", "")
    for index in managed_rule_indexes(route, sorted(expected)):
        for ref in route["spec"]["rules"][index]["backendRefs"]:
            ours = _is_service_ref(ref, namespace) and ref.get("name") in expected
            if ours and int(ref.get("weight", DEFAULT_BACKEND_WEIGHT)) != expected[ref["name"]]:
                return True
    return False


# ------------------------------------------------------------------------------- A/B rules


def with_named_rule(route: JsonObject, rule: JsonObject) -> WeightPlan:
    """A copy of `route` with `rule` first (replacing a rule of the same name); the user's
    rules keep their order after it."""
    new_route = copy.deepcopy(route)
    rules = [r for r in new_route["spec"].get("rules") or [] if r.get("name") != rule["name"]]
    new_route["spec"]["rules"] = [rule, *rules]
    return WeightPlan(route=new_route, changed=new_route != route)


def without_named_rule(route: JsonObject, name: str) -> WeightPlan:
    """A copy of `route` without kulta's rule `name`; everything else untouched."""
    new_route = copy.deepcopy(route)
    rules = new_route["spec"].get("rules") or []
    new_route["spec"]["rules"] = [r for r in rules if r.get("name") != name]
    return WeightPlan(route=new_route, changed=new_route != route)


# --------------------------------------------------------------------------- mirror filters


def with_mirror(route: JsonObject, stable: str, canary: str, percent: int | None) -> WeightPlan:
    """A copy of `route` whose rules that split between `stable` and `canary` mirror `percent`
    of their requests to `canary` (a RequestMirror filter, on the port of the rule's canary
    backendRef), or (None) mirror nothing to it. Every other filter stays as it was.

    Raises:
        RouteMisconfigured: as `managed_rule_indexes`.
    """
    new_route = copy.deepcopy(route)
    rules = new_route["spec"].get("rules") or []
    for index in managed_rule_indexes(route, [stable, canary]):
        rule = rules[index]
        filters = [f for f in rule.get("filters") or [] if not _mirrors_to(f, canary)]
        if percent is not None:
            backend: JsonObject = {"name": canary}
            port = next(
                (ref.get("port") for ref in rule["backendRefs"] if ref.get("name") == canary), None
            )
            if port is not None:
                backend["port"] = port
            mirror = {"backendRef": backend, "percent": percent}
            filters.append({"type": "RequestMirror", "requestMirror": mirror})
        if filters:
            rule["filters"] = filters
        else:
            rule.pop("filters", None)
    return WeightPlan(route=new_route, changed=new_route != route)


def _mirrors_to(filter_: JsonObject, service: str) -> bool:
    mirror = filter_.get("requestMirror") or {}
    return filter_.get("type") == "RequestMirror" and (
        (mirror.get("backendRef") or {}).get("name") == service
    )
