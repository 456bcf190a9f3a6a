"""A/B planner: kulta's HTTPRoute rules for variant B, from `variantBMatch` (a header rule, and
a cookie rule too when both are given: header OR cookie)."""

from __future__ import annotations

import re

from activities.contracts import ExperimentRuleInput
from activities.routing import KULTA_RULE_PREFIX
from workflows.model import ABTestingStrategy


def rule_name(rollout: str) -> str:
    """The name of kulta's rule on the route (a DNS subdomain, at most 253 characters)."""
    return f"{KULTA_RULE_PREFIX}ab-{rollout}"[:253]


def cookie_pattern(name: str, value: str) -> str:
    """A regular expression for the Cookie header that matches exactly `name=value`, anchored
    and escaped so that neither can be mistaken for a pattern."""
    return rf"^(?:.*;\s*)?{re.escape(name)}={re.escape(value)}(?:;.*)?$"


def variant_rule(
    namespace: str, route_namespace: str, route: str, rollout: str, ab: ABTestingStrategy
) -> ExperimentRuleInput:
    match = ab.variant_b_match
    cookie = cookie_pattern(match.cookie.name, match.cookie.value) if match.cookie else None
    if match.header is not None:
        header_name, header_value, header_type = (
            match.header.name,
            match.header.value,
            match.header.type,
        )
    else:
        assert cookie is not None
        header_name, header_type, header_value = "Cookie", "RegularExpression", cookie
        cookie = None  # the cookie is the one match
    return ExperimentRuleInput(
        namespace=route_namespace,
        route=route,
        rule_name=rule_name(rollout),
        present=True,
        service=ab.variant_b_service,
        port=ab.port,
        header_name=header_name,
        header_value=header_value,
        header_type=header_type,
        cookie_pattern=cookie,
        variant_a_service=ab.variant_a_service,
    )
