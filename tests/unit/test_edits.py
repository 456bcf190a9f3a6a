"""Which edits a running revision takes mid-rollout, and which wait for the next revision."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from workflows.edits import FRAME_FIELDS, frame_changes
from workflows.model import parse_spec

BASE: dict[str, Any] = {
    "replicas": 3,
    "selector": {"matchLabels": {"app": "a"}},
    "template": {
        "metadata": {"labels": {"app": "a", "tier": "web"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    },
}
ROUTE = {"gatewayAPI": {"httpRoute": "r"}}
STRATEGIES: dict[str, dict[str, Any]] = {
    "canary": {
        "stableService": "s",
        "canaryService": "c",
        "trafficRouting": ROUTE,
        "steps": [{"setWeight": 20}, {"pause": {}}],
    },
    "blueGreen": {"activeService": "s", "previewService": "p", "trafficRouting": ROUTE},
    "abTesting": {
        "variantAService": "a",
        "variantBService": "b",
        "trafficRouting": ROUTE,
        "variantBMatch": {"header": {"name": "X-Variant", "value": "B"}},
    },
    "simple": {},
}
# A changed value for each frame field.
FRAME_EDITS: dict[str, Any] = {
    "stableService": "s2",
    "canaryService": "c2",
    "activeService": "s2",
    "previewService": "p2",
    "variantAService": "a2",
    "variantBService": "b2",
    "trafficRouting": {"gatewayAPI": {"httpRoute": "r2"}},
    "variantBMatch": {"cookie": {"name": "v", "value": "b"}},
}
# Fields every strategy applies from its next step.
LIVE_EDITS: dict[str, dict[str, Any]] = {
    "canary": {"steps": [{"setWeight": 50}], "scaleDownDelaySeconds": 5},
    "blueGreen": {"autoPromotionEnabled": False, "previewReplicaCount": 1},
    "abTesting": {"maxDuration": "2h", "analysis": {"minDuration": "5m"}},
    "simple": {"maxSurge": 1, "maxUnavailable": 0},
}


def spec(kind: str, replicas: int = 3, **fields: Any) -> Any:
    raw = copy.deepcopy(BASE)
    raw["replicas"] = replicas
    raw["strategy"] = {kind: {**copy.deepcopy(STRATEGIES[kind]), **fields}}
    return parse_spec(raw)


@pytest.mark.parametrize("kind", list(STRATEGIES))
def test_live_fields_and_replicas_are_no_frame_change(kind: str) -> None:
    assert frame_changes(spec(kind), spec(kind, replicas=7, **LIVE_EDITS[kind])) == []


@pytest.mark.parametrize(
    ("kind", "field"), [(kind, field) for kind, fields in FRAME_FIELDS.items() for field in fields]
)
def test_each_frame_field_is_named_when_it_changes(kind: str, field: str) -> None:
    changed = frame_changes(spec(kind), spec(kind, **{field: FRAME_EDITS[field]}))
    assert changed == [f"spec.strategy.{kind}.{field}"]


def test_a_new_strategy_kind_is_a_frame_change() -> None:
    assert frame_changes(spec("canary"), spec("blueGreen")) == [
        "spec.strategy (from canary to blueGreen)"
    ]


def test_a_new_selector_is_a_frame_change() -> None:
    after = spec("simple").model_copy(update={"selector": parse_spec(_with_tier()).selector})
    assert frame_changes(spec("simple"), after) == ["spec.selector"]


def _with_tier() -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw["selector"] = {"matchLabels": {"app": "a", "tier": "web"}}
    raw["strategy"] = {"simple": {}}
    return raw
