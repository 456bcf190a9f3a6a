"""Where a stable revision's traffic goes, per strategy: Services to pin and route weights."""

from __future__ import annotations

from dataclasses import dataclass, field

from workflows.model import Strategy, TrafficRouting


@dataclass(frozen=True)
class StableLayout:
    # Services that must exist before traffic is arranged.
    services: list[str] = field(default_factory=list)
    # Service -> True to pin it to the stable revision, False to let it span every revision.
    pins: dict[str, bool] = field(default_factory=dict)
    routing: TrafficRouting | None = None
    # Route weights once the revision is stable (None: leave the route's weights alone).
    weights: dict[str, int] | None = None
    # Whether a route rule must name every Service (weighted strategies) or only exist (A/B).
    split: bool = True


def layout(strategy: Strategy) -> StableLayout:
    routed = _routed
    if strategy.canary is not None:
        c = strategy.canary
        return StableLayout(
            services=[c.stable_service, c.canary_service],
            # Without a route, traffic follows pod counts, so stable spans every revision.
            pins={c.stable_service: routed(c.traffic_routing), c.canary_service: True},
            routing=c.traffic_routing,
            weights={c.stable_service: 100, c.canary_service: 0}
            if routed(c.traffic_routing)
            else None,
        )
    if strategy.blue_green is not None:
        b = strategy.blue_green
        return StableLayout(
            services=[b.active_service, b.preview_service],
            pins={b.active_service: True, b.preview_service: True},
            routing=b.traffic_routing,
            weights={b.active_service: 100, b.preview_service: 0}
            if routed(b.traffic_routing)
            else None,
        )
    if strategy.ab_testing is not None:
        a = strategy.ab_testing
        return StableLayout(
            services=[a.variant_a_service, a.variant_b_service],
            pins={a.variant_a_service: True, a.variant_b_service: True},
            routing=a.traffic_routing,
            split=False,
        )
    return StableLayout()


def _routed(routing: TrafficRouting | None) -> bool:
    return routing is not None and routing.gateway_api is not None
