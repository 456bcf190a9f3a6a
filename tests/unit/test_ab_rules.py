"""kulta's A/B rule on an HTTPRoute: placed first, removed cleanly, cookies matched exactly."""

from __future__ import annotations

import re

from activities.routing import with_named_rule, without_named_rule
from tests.support.builders import httproute
from workflows.model import ABTestingStrategy
from workflows.strategies.ab_rule import cookie_pattern, rule_name, variant_rule

RULE = {"name": "kulta-ab-app", "matches": [{"headers": [{"name": "X-Variant", "value": "B"}]}]}


def test_rule_goes_first_and_the_users_rules_keep_their_order() -> None:
    route = httproute("r", "a", "b")
    plan = with_named_rule(route, RULE)
    assert plan.changed
    assert plan.route["spec"]["rules"][0] == RULE
    assert plan.route["spec"]["rules"][1:] == route["spec"]["rules"]


def test_adding_twice_keeps_one_rule_and_removal_restores_the_route() -> None:
    route = httproute("r", "a", "b")
    once = with_named_rule(route, RULE).route
    twice = with_named_rule(once, RULE)
    assert not twice.changed
    assert without_named_rule(once, "kulta-ab-app").route == route
    assert not without_named_rule(route, "kulta-ab-app").changed


def test_cookie_pattern_matches_exactly_that_cookie() -> None:
    pattern = re.compile(cookie_pattern("exp.id", "b+1"))
    assert pattern.match("exp.id=b+1")
    assert pattern.match("session=x; exp.id=b+1; theme=dark")
    assert not pattern.match("exp.id=b+12")
    assert not pattern.match("xexp.id=b+1")
    assert not pattern.match("expXid=b+1")  # the dot is literal, not "any character"
    assert not pattern.match("exp.id=bb1")  # the plus is literal too


def ab(match: dict[str, object]) -> ABTestingStrategy:
    return ABTestingStrategy.model_validate(
        {
            "variantAService": "a",
            "variantBService": "b",
            "port": 8080,
            "variantBMatch": match,
            "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}},
        }
    )


def test_header_and_cookie_rules_from_the_spec() -> None:
    rule = variant_rule("ns", "ns", "r", "app", ab({"header": {"name": "X-Variant", "value": "B"}}))
    assert (rule.header_name, rule.header_value, rule.header_type) == ("X-Variant", "B", "Exact")
    assert rule.rule_name == rule_name("app") == "kulta-ab-app"
    assert (rule.service, rule.port) == ("b", 8080)
    rule = variant_rule("ns", "ns", "r", "app", ab({"cookie": {"name": "group", "value": "b"}}))
    assert rule.header_name == "Cookie" and rule.header_type == "RegularExpression"
    assert rule.header_value == cookie_pattern("group", "b")
