"""Canary planner for the steps that reach the canary outside the weights.

`setHeaderRoute`: kulta's HTTPRoute rule copies the route's rule that sends to the stable
Service (its matches, filters and timeouts), adds the header to every match and sends to the
canary Service; Gateway API prefers the more specific match, so requests with the header reach
the canary whatever the weights. `setMirrorRoute`: a RequestMirror filter on the split rules."""

from __future__ import annotations

from activities.contracts import ExperimentRuleInput, MirrorInput
from activities.routing import KULTA_RULE_PREFIX
from workflows.model import CanaryStrategy, HeaderMatch


def header_rule_name(rollout: str) -> str:
    return f"{KULTA_RULE_PREFIX}header-{rollout}"[:253]


def header_rule(
    route: tuple[str, str], rollout: str, canary: CanaryStrategy, match: HeaderMatch | None
) -> ExperimentRuleInput:
    """The rule for `match`, or (None) its removal."""
    return ExperimentRuleInput(
        namespace=route[0],
        route=route[1],
        rule_name=header_rule_name(rollout),
        present=match is not None,
        service=canary.canary_service,
        header_name=match.name if match else "",
        header_value=match.value if match else "",
        header_type=match.type if match else "Exact",
        variant_a_service=canary.stable_service,
    )


def uses_header_routes(canary: CanaryStrategy) -> bool:
    return any(step.set_header_route is not None for step in canary.steps)


def mirror_input(
    route: tuple[str, str], canary: CanaryStrategy, percent: int | None
) -> MirrorInput:
    return MirrorInput(
        namespace=route[0],
        route=route[1],
        stable_service=canary.stable_service,
        canary_service=canary.canary_service,
        percent=percent,
    )


def uses_mirror_routes(canary: CanaryStrategy) -> bool:
    return any(step.set_mirror_route is not None for step in canary.steps)
