"""`status.selector`: the Rollout's selector in the API server's string form, which the scale
subresource gives an HPA to find the Rollout's pods."""

from __future__ import annotations

from workflows.spec_types import LabelSelector


def test_match_labels_are_joined_in_key_order() -> None:
    selector = LabelSelector.model_validate({"matchLabels": {"tier": "web", "app": "shop"}})
    assert selector.as_string() == "app=shop,tier=web"


def test_expressions_use_the_set_based_syntax() -> None:
    selector = LabelSelector.model_validate(
        {
            "matchLabels": {"app": "shop"},
            "matchExpressions": [
                {"key": "track", "operator": "In", "values": ["stable", "canary"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.as_string() == (
        "app=shop,track in (canary,stable),env notin (dev),owner,!legacy"
    )


def test_an_empty_selector_is_an_empty_string() -> None:
    assert LabelSelector().as_string() == ""
