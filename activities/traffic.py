"""Traffic activities: Service selectors per revision and HTTPRoute backend weights."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

from temporalio import activity

from activities import telemetry
from activities.adapters.kube import KubeClient
from activities.contracts import (
    CheckTargetsInput,
    CheckTargetsResult,
    ExperimentRuleInput,
    MirrorInput,
    SelectRevisionInput,
    SetWeightsInput,
    SetWeightsResult,
    VerifyRouteInput,
    VerifyRouteResult,
)
from activities.errors import Conflict, NotFound
from activities.naming import (
    HTTPROUTES,
    LABEL_TEMPLATE_HASH,
    REFERENCE_GRANTS,
    ROLLOUTS,
    SERVICES,
)
from activities.route_status import judge_route
from activities.routing import (
    KULTA_RULE_PREFIX,
    RouteMisconfigured,
    WeightPlan,
    drifted,
    managed_rule_indexes,
    observed_weights,
    with_mirror,
    with_named_rule,
    with_weights,
    without_named_rule,
)

MAX_CONFLICT_RETRIES = 8
# How often the route's status is read while a Gateway has not reported: quickly at first
# (a controller usually takes a change in well under a second), then at most every second.
VERIFY_POLL_FIRST = 0.1
VERIFY_POLL_MAX = 1.0
JsonObject = dict[str, Any]


def _route_path(namespace: str, name: str) -> str:
    return HTTPROUTES.path(namespace, name)


class TrafficActivities:
    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    @activity.defn(name="check_traffic_targets")
    async def check_targets(self, inp: CheckTargetsInput) -> CheckTargetsResult:
        """Reports (does not raise) why the Services or the HTTPRoute cannot carry the rollout.

        Read-only, so trivially idempotent.
        """
        for service in inp.services:
            try:
                await self._kube.get(SERVICES.path(inp.namespace, service))
            except NotFound:
                return CheckTargetsResult(
                    ok=False,
                    reason="ServiceNotFound",
                    message=f"Service {inp.namespace}/{service} does not exist",
                )
        if inp.route:
            route_ns = inp.route_namespace or inp.namespace
            if route_ns != inp.namespace and not await self._granted(inp, route_ns):
                return CheckTargetsResult(
                    ok=False,
                    reason="HTTPRouteNotGranted",
                    message=(
                        f"HTTPRoute {route_ns}/{inp.route} is in another namespace, and no "
                        f"ReferenceGrant in {route_ns} lets Rollouts of {inp.namespace} use it"
                    ),
                )
            try:
                route = await self._kube.get(_route_path(route_ns, inp.route))
            except NotFound:
                return CheckTargetsResult(
                    ok=False,
                    reason="HTTPRouteNotFound",
                    message=f"HTTPRoute {route_ns}/{inp.route} does not exist",
                )
            try:
                if inp.require_split:
                    managed_rule_indexes(route, inp.services)
            except RouteMisconfigured as err:
                return CheckTargetsResult(
                    ok=False, reason="HTTPRouteMisconfigured", message=str(err)
                )
        return CheckTargetsResult(ok=True)

    async def _granted(self, inp: CheckTargetsInput, route_ns: str) -> bool:
        """Whether the route's namespace lets this Rollout's namespace steer the route: a
        ReferenceGrant there `from` kulta.io Rollouts of `inp.namespace` `to` HTTPRoutes (all,
        or this one by name). Without it, kulta's cluster-wide grant would let any tenant
        rewrite any team's route (a confused deputy)."""
        grants = (await self._kube.get(REFERENCE_GRANTS.path(route_ns))).get("items", [])
        for grant in grants:
            spec = grant.get("spec") or {}
            sources = spec.get("from") or []
            targets = spec.get("to") or []
            if any(
                f.get("group") == ROLLOUTS.group
                and f.get("kind") == "Rollout"
                and f.get("namespace") == inp.namespace
                for f in sources
            ) and any(
                t.get("group") == HTTPROUTES.group
                and t.get("kind") == "HTTPRoute"
                and t.get("name") in (None, "", inp.route)
                for t in targets
            ):
                return True
        return False

    @activity.defn(name="select_revision")
    async def select_revision(self, inp: SelectRevisionInput) -> None:
        """Pins a Service's selector to one revision (`pod-template-hash`), or unpins it.

        Idempotent: a merge patch of one selector key to an absolute value (or to null).
        """
        await self._kube.patch(
            SERVICES.path(inp.namespace, inp.service),
            {"spec": {"selector": {LABEL_TEMPLATE_HASH: inp.revision}}},
        )

    @activity.defn(name="set_route_weights")
    async def set_route_weights(self, inp: SetWeightsInput) -> SetWeightsResult:
        """Sets our backendRefs' weights; every other part of the route is kept as it is.

        Idempotent: weights are absolute, and a route already showing them is left alone. Writes
        carry the resourceVersion that was read, and a 409 re-reads and tries again. If the route
        shows weights that we did not write, it reports `drifted` instead of overwriting them.
        """
        path = _route_path(inp.namespace, inp.route)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                route = await self._kube.get(path)
            except NotFound:
                return SetWeightsResult(
                    outcome="missing",
                    message=f"HTTPRoute {inp.namespace}/{inp.route} does not exist",
                )
            services = sorted(inp.weights)
            try:
                current = observed_weights(route, services)
                if current == inp.weights and not drifted(route, inp.weights):
                    _show_weights(inp.namespace, inp.rollout, current)  # what the route has
                    return SetWeightsResult(outcome="unchanged", observed=current)
                if inp.expected is not None and drifted(route, inp.expected):
                    return SetWeightsResult(
                        outcome="drifted",
                        observed=current,
                        message=(
                            f"HTTPRoute {inp.namespace}/{inp.route} weights were changed outside "
                            f"kulta: expected {_fmt(inp.expected)}, found {_fmt(current)}"
                        ),
                    )
                plan = with_weights(route, inp.weights)
            except RouteMisconfigured as err:
                return SetWeightsResult(outcome="missing", message=str(err))
            try:
                # The body carries metadata.resourceVersion: a PUT is refused (409) if it moved.
                await self._kube.replace(path, plan.route)
            except Conflict:
                continue
            _show_weights(inp.namespace, inp.rollout, plan.observed)
            return SetWeightsResult(outcome="applied", observed=plan.observed)
        raise Conflict(f"HTTPRoute {inp.namespace}/{inp.route} kept changing; will retry")

    @activity.defn(name="verify_route")
    async def verify_route(self, inp: VerifyRouteInput) -> VerifyRouteResult:
        """Waits until the Gateways reporting on the route have judged its current generation
        (`activities/route_status.py`), for at most `within_seconds`. Read-only: a retry
        just looks again. Heartbeats while it waits."""
        path = _route_path(inp.namespace, inp.route)
        began = time.monotonic()
        deadline = began + inp.within_seconds
        pause = VERIFY_POLL_FIRST
        while True:
            try:
                judged = judge_route(await self._kube.get(path))
            except NotFound:
                return VerifyRouteResult(
                    outcome="missing",
                    message=f"HTTPRoute {inp.namespace}/{inp.route} does not exist",
                )
            pending = judged.verdict == "pending"
            if not pending or time.monotonic() >= deadline:
                waited = time.monotonic() - began
                outcome = "unreported" if pending else judged.verdict
                telemetry.ROUTE_VERIFICATIONS.labels(outcome).observe(waited)
                late = f" within {inp.within_seconds:g}s" if pending else ""
                return VerifyRouteResult(
                    outcome=outcome, generation=judged.generation, message=judged.message + late
                )
            activity.heartbeat(judged.generation)
            await asyncio.sleep(pause)
            pause = min(pause * 2, VERIFY_POLL_MAX)

    @activity.defn(name="set_experiment_rule")
    async def set_experiment_rule(self, inp: ExperimentRuleInput) -> str:
        """Adds (first, before the user's rules) or removes kulta's named A/B rule.

        Idempotent: the rule is replaced by name, and a route already in shape is not written.
        Returns "applied", "unchanged" or "missing" (the route does not exist).
        """

        def rewrite(route: JsonObject) -> JsonObject:
            plan = WeightPlan(route=route, changed=False)
            for name in [inp.rule_name, cookie_rule_name(inp.rule_name)]:
                plan = without_named_rule(plan.route, name)  # both go first; the cookie second
            if inp.present:
                for rule in reversed(experiment_rules(route, inp)):
                    plan = with_named_rule(plan.route, rule)
            return plan.route

        return await self._rewrite(inp.namespace, inp.route, rewrite)

    @activity.defn(name="set_mirror_route")
    async def set_mirror_route(self, inp: MirrorInput) -> str:
        """Mirrors `percent` of the split rules' requests to the canary (or stops).

        Idempotent: a mirror to the canary is replaced, and a route already in shape is not
        written. Returns "applied", "unchanged", "missing" (no route) or "misconfigured: ...".
        """

        def rewrite(route: JsonObject) -> JsonObject:
            return with_mirror(route, inp.stable_service, inp.canary_service, inp.percent).route

        try:
            return await self._rewrite(inp.namespace, inp.route, rewrite)
        except RouteMisconfigured as err:
            return f"misconfigured: {err}"

    async def _rewrite(
        self, namespace: str, name: str, rewrite: Callable[[JsonObject], JsonObject]
    ) -> str:
        """Reads the route, rewrites it and writes it back with the resourceVersion read
        (again from the read on a conflict): "applied", "unchanged" or "missing"."""
        path = _route_path(namespace, name)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                route = await self._kube.get(path)
            except NotFound:
                return "missing"
            new_route = rewrite(route)
            if new_route == route:
                return "unchanged"
            try:
                await self._kube.replace(path, new_route)
            except Conflict:
                continue
            return "applied"
        raise Conflict(f"HTTPRoute {namespace}/{name} kept changing; will retry")


def cookie_rule_name(rule_name: str) -> str:
    return f"{rule_name}-cookie"[:253]


def experiment_rules(route: JsonObject, inp: ExperimentRuleInput) -> list[JsonObject]:
    """kulta's rules sending variant B's requests to its Service: each a copy of the user's rule
    that sends to variant A (its matches, filters and timeouts, so B's requests are handled as
    A's are) with the variant's header match added to every match. One rule for the header,
    a second for the cookie when both are given (Gateway API ORs rules, ANDs within a match).
    Without such a rule, a rule with the variant match alone."""
    template = _user_rule_for(route, inp.variant_a_service) or {}
    backend: JsonObject = {"name": inp.service}
    port = inp.port if inp.port is not None else _port_of(template, inp.variant_a_service)
    if port is not None:
        backend["port"] = port
    variants = [(inp.rule_name, inp.header_type, inp.header_name, inp.header_value)]
    if inp.cookie_pattern is not None:
        variants.append(
            (cookie_rule_name(inp.rule_name), "RegularExpression", "Cookie", inp.cookie_pattern)
        )
    rules = []
    for name, kind, header, value in variants:
        added = {"type": kind, "name": header, "value": value}
        kept = copy.deepcopy(template).items()
        rule = {k: v for k, v in kept if k not in ("name", "backendRefs")}
        rule["name"] = name
        rule["matches"] = [
            {**match, "headers": [*(match.get("headers") or []), added]}
            for match in (rule.get("matches") or [{}])
        ]
        rule["backendRefs"] = [backend]
        rules.append(rule)
    return rules


def _user_rule_for(route: JsonObject, service: str) -> JsonObject | None:
    rules: list[JsonObject] = route.get("spec", {}).get("rules") or []
    for rule in rules:
        if str(rule.get("name", "")).startswith(KULTA_RULE_PREFIX):
            continue
        if any(ref.get("name") == service for ref in rule.get("backendRefs") or []):
            return rule
    return None


def _port_of(rule: JsonObject, service: str) -> int | None:
    for ref in rule.get("backendRefs") or []:
        if ref.get("name") == service and ref.get("port") is not None:
            return int(ref["port"])
    return None


def _fmt(weights: dict[str, int]) -> str:
    return ", ".join(f"{name}={weight}" for name, weight in sorted(weights.items()))


def _show_weights(namespace: str, rollout: str, weights: dict[str, int]) -> None:
    """The traffic gauge shows what the route carries, written now or found already there."""
    for backend, weight in weights.items():
        telemetry.TRAFFIC_WEIGHT.labels(namespace, rollout, backend).set(weight)
