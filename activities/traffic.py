"""Traffic activities: Service selectors per revision and HTTPRoute backend weights."""

from __future__ import annotations

from temporalio import activity

from activities import telemetry
from activities.adapters.kube import KubeClient
from activities.contracts import (
    CheckTargetsInput,
    CheckTargetsResult,
    ExperimentRuleInput,
    SelectRevisionInput,
    SetWeightsInput,
    SetWeightsResult,
)
from activities.errors import Conflict, NotFound
from activities.naming import (
    HTTPROUTES,
    LABEL_TEMPLATE_HASH,
    REFERENCE_GRANTS,
    ROLLOUTS,
    SERVICES,
)
from activities.routing import (
    RouteMisconfigured,
    drifted,
    managed_rule_indexes,
    observed_weights,
    with_named_rule,
    with_weights,
    without_named_rule,
)

MAX_CONFLICT_RETRIES = 8


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

    @activity.defn(name="set_experiment_rule")
    async def set_experiment_rule(self, inp: ExperimentRuleInput) -> str:
        """Adds (first, before the user's rules) or removes kulta's named A/B rule.

        Idempotent: the rule is replaced by name, and a route already in shape is not written.
        Returns "applied", "unchanged" or "missing" (the route does not exist).
        """
        path = _route_path(inp.namespace, inp.route)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                route = await self._kube.get(path)
            except NotFound:
                return "missing"
            if inp.present:
                plan = with_named_rule(route, experiment_rule(inp))
            else:
                plan = without_named_rule(route, inp.rule_name)
            if not plan.changed:
                return "unchanged"
            try:
                await self._kube.replace(path, plan.route)
            except Conflict:
                continue
            return "applied"
        raise Conflict(f"HTTPRoute {inp.namespace}/{inp.route} kept changing; will retry")


def experiment_rule(inp: ExperimentRuleInput) -> dict[str, object]:
    """The HTTPRoute rule that sends requests matching the header to variant B."""
    backend: dict[str, object] = {"name": inp.service}
    if inp.port is not None:
        backend["port"] = inp.port
    return {
        "name": inp.rule_name,
        "matches": [
            {
                "headers": [
                    {"type": inp.header_type, "name": inp.header_name, "value": inp.header_value}
                ]
            }
        ],
        "backendRefs": [backend],
    }


def _fmt(weights: dict[str, int]) -> str:
    return ", ".join(f"{name}={weight}" for name, weight in sorted(weights.items()))


def _show_weights(namespace: str, rollout: str, weights: dict[str, int]) -> None:
    """The traffic gauge shows what the route carries, written now or found already there."""
    for backend, weight in weights.items():
        telemetry.TRAFFIC_WEIGHT.labels(namespace, rollout, backend).set(weight)
