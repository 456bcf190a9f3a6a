"""What the Gateways say about an HTTPRoute: `status.parents[]`, judged for the route's
current generation.

A write to a route changes nothing until a Gateway controller has taken it: it may still be
translating, or it may refuse the change (an unsupported filter, a backend it cannot resolve)
and keep serving the old configuration, or none. Each controller reports per parent
(Gateway or listener) with `Accepted` and `ResolvedRefs` conditions carrying the
`observedGeneration` they judged. A route is *verified* when every report names the current
generation with both conditions True and no `PartiallyInvalid` (rules dropped: kulta's rule may
be one of them). Pure functions; the activity that polls is `TrafficActivities.verify_route`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

JsonObject = dict[str, Any]
Verdict = Literal["verified", "refused", "pending", "unobserved"]


@dataclass(frozen=True)
class RouteJudgement:
    verdict: Verdict
    generation: int
    message: str = ""


def judge_route(route: JsonObject) -> RouteJudgement:
    """The verdict on the route's current generation, from the reports of the parents it
    names. `unobserved`: no controller reports on any of them (no Gateway implementation
    serves them, so there is nothing to wait for). `pending`: a report is older than the
    generation. `refused`: a report for this generation says no; its message is the
    controller's own."""
    meta = route.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    where = f"HTTPRoute {meta.get('namespace', '')}/{meta.get('name', '')}"
    wanted = [_parent_key(ref, meta.get("namespace", "")) for ref in _spec_parents(route)]
    reports = [
        report
        for report in (route.get("status") or {}).get("parents") or []
        if _parent_key(report.get("parentRef") or {}, meta.get("namespace", "")) in wanted
    ]
    if not reports:
        return RouteJudgement("unobserved", generation, f"no Gateway reports on {where}")
    pending = []
    for report in reports:
        conditions = {c.get("type"): c for c in report.get("conditions") or []}
        parent = _describe(report)
        if any(_older(conditions[kind], generation) for kind in _REQUIRED if kind in conditions):
            pending.append(parent)
            continue
        for kind, bad_when in _JUDGED.items():
            condition = conditions.get(kind)
            if (
                condition is not None
                and condition.get("status") == bad_when
                and not _older(condition, generation)
            ):
                return RouteJudgement(
                    "refused",
                    generation,
                    f"{parent} refused generation {generation} of {where}: {kind}="
                    f"{condition.get('status')} ({condition.get('reason', '')}: "
                    f"{condition.get('message', '')})",
                )
        if "Accepted" not in conditions:
            pending.append(parent)  # a report without its verdict yet
    if pending:
        return RouteJudgement(
            "pending",
            generation,
            f"{', '.join(pending)} has not reported on generation {generation} of {where}",
        )
    return RouteJudgement(
        "verified",
        generation,
        f"generation {generation} of {where} accepted by {', '.join(map(_describe, reports))}",
    )


# The conditions judged, each with the status that means the change did not take. Every
# report carries the first two, so they must be current; `PartiallyInvalid` is only set while
# true, so one left from an earlier generation says nothing.
_JUDGED = {"Accepted": "False", "ResolvedRefs": "False", "PartiallyInvalid": "True"}
_REQUIRED = ("Accepted", "ResolvedRefs")


def _older(condition: JsonObject, generation: int) -> bool:
    """A condition about an earlier generation. One without `observedGeneration` (a controller
    that does not set it) cannot be placed, and is taken as current."""
    observed = condition.get("observedGeneration")
    return observed is not None and int(observed) < generation


def _spec_parents(route: JsonObject) -> list[JsonObject]:
    return list((route.get("spec") or {}).get("parentRefs") or [])


def _parent_key(ref: JsonObject, route_namespace: str) -> tuple[str, str, str, str, str, str]:
    """A parentRef as Gateway API compares them, defaults filled in."""
    return (
        str(ref.get("group") or "gateway.networking.k8s.io"),
        str(ref.get("kind") or "Gateway"),
        str(ref.get("namespace") or route_namespace),
        str(ref.get("name") or ""),
        str(ref.get("sectionName") or ""),
        str(ref.get("port") or ""),
    )


def _describe(report: JsonObject) -> str:
    ref = report.get("parentRef") or {}
    section = f" listener {ref['sectionName']}" if ref.get("sectionName") else ""
    return (
        f"Gateway {ref.get('name', '')}{section} ({report.get('controllerName', 'a controller')})"
    )
