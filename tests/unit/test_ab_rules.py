"""kulta's A/B rules on an HTTPRoute: copies of the user's rule for variant A, placed first,
removed cleanly, cookies matched exactly."""

from __future__ import annotations

import re

from activities.routing import with_named_rule, without_named_rule
from activities.traffic import experiment_rules
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


def test_kultas_rule_copies_the_users_rule_for_variant_a() -> None:
    """B's requests are handled as A's are: the same path match, filters and port, with the
    variant's header added; header OR cookie are two rules."""
    route = httproute("r", "a", "b")
    both = variant_rule(
        "ns",
        "ns",
        "r",
        "app",
        ab(
            {
                "header": {"name": "X-Variant", "value": "B"},
                "cookie": {"name": "group", "value": "b"},
            }
        ).model_copy(update={"port": None}),
    )
    header_rule, cookie_rule = experiment_rules(route, both)
    user_rule = route["spec"]["rules"][1]
    assert header_rule == {
        "name": "kulta-ab-app",
        "matches": [
            {
                "path": {"type": "PathPrefix", "value": "/"},
                "headers": [{"type": "Exact", "name": "X-Variant", "value": "B"}],
            }
        ],
        "filters": user_rule["filters"],
        "backendRefs": [{"name": "b", "port": 8080}],  # the port variant A is reached on
    }
    assert cookie_rule["name"] == "kulta-ab-app-cookie"
    assert cookie_rule["matches"][0]["headers"] == [
        {"type": "RegularExpression", "name": "Cookie", "value": cookie_pattern("group", "b")}
    ]
    assert cookie_rule["filters"] == user_rule["filters"]


def test_without_a_rule_for_variant_a_the_variant_match_stands_alone() -> None:
    route = httproute("r", "x", "y")
    rule = variant_rule("ns", "ns", "r", "app", ab({"header": {"name": "X-Variant", "value": "B"}}))
    [only] = experiment_rules(route, rule)
    assert only["matches"] == [{"headers": [{"type": "Exact", "name": "X-Variant", "value": "B"}]}]
    assert "filters" not in only
