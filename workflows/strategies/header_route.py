"""Canary planner: kulta's HTTPRoute rule for a `setHeaderRoute` step. It copies the route's rule
that sends to the stable Service (its matches, filters and timeouts), adds the header to every
match and sends to the canary Service; Gateway API prefers the more specific match, so requests
with the header reach the canary whatever the weights."""

from __future__ import annotations

from activities.contracts import ExperimentRuleInput
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
