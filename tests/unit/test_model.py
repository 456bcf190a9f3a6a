"""The Rollout model accepts the seed's manifests unchanged and names bad fields precisely."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.model import InvalidSpec, parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE: dict[str, Any] = {
    "replicas": 3,
    "selector": {"matchLabels": {"app": "a"}},
    "template": {
        "metadata": {"labels": {"app": "a"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    },
}
SEED_STRATEGIES: dict[str, dict[str, Any]] = {
    "blueGreen": {
        "blueGreen": {
            "activeService": "my-app-active",
            "previewService": "my-app-preview",
            "port": 8080,
            "autoPromotionEnabled": False,
            "trafficRouting": {"gatewayAPI": {"httpRoute": "my-app-route"}},
        }
    },
    "abTesting": {
        "abTesting": {
            "variantAService": "checkout-control",
            "variantBService": "checkout-experiment",
            "port": 8080,
            "maxDuration": "24h",
            "variantBMatch": {"header": {"name": "X-Variant", "value": "B"}},
            "trafficRouting": {"gatewayAPI": {"httpRoute": "checkout-route"}},
            "analysis": {"minDuration": "1h", "minSampleSize": 1000, "confidenceLevel": 0.95},
        }
    },
    "simple": {"simple": {"analysis": {"metrics": [{"name": "error-rate", "threshold": 5.0}]}}},
}


def spec_with(strategy: dict[str, Any], **changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec["strategy"] = copy.deepcopy(strategy)
    spec.update(changes)
    return spec


def test_seed_canary_example_parses() -> None:
    docs = list(yaml.safe_load_all((EXAMPLES / "canary.yaml").read_text()))
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    spec = parse_spec(rollout["spec"])
    canary = spec.strategy.canary
    assert canary is not None and spec.strategy.kind == "canary"
    assert [s.set_weight for s in canary.steps] == [20, 50, 80, 100]
    assert canary.steps[2].pause is not None and canary.steps[2].pause.duration is None
    assert canary.traffic_routing is not None and canary.traffic_routing.gateway_api is not None
    assert canary.traffic_routing.gateway_api.http_route == "my-app-route"
    assert canary.analysis is not None and canary.analysis.metrics[1].threshold == 500


@pytest.mark.parametrize("kind", sorted(SEED_STRATEGIES))
def test_seed_strategy_examples_parse(kind: str) -> None:
    assert parse_spec(spec_with(SEED_STRATEGIES[kind])).strategy.kind == kind


CANARY = {"canary": {"stableService": "s", "canaryService": "c", "steps": [{"setWeight": 10}]}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (spec_with({}), "spec.strategy: exactly one of canary, blueGreen, abTesting, simple"),
        (spec_with({**CANARY, **SEED_STRATEGIES["simple"]}), "(found canary, simple)"),
        (
            spec_with(
                {
                    "canary": {
                        "stableService": "s",
                        "canaryService": "c",
                        "steps": [{"setWeight": 101}],
                    }
                }
            ),
            "spec.strategy.canary.steps[0].setWeight: Input should be less than or equal to 100",
        ),
        (
            spec_with(
                {
                    "canary": {
                        "stableService": "s",
                        "canaryService": "c",
                        "steps": [{"pause": {"duration": "0s"}}],
                    }
                }
            ),
            "spec.strategy.canary.steps[0].pause.duration: invalid duration '0s'",
        ),
        (
            spec_with({"canary": {"stableService": "s", "canaryService": "c", "steps": [{}]}}),
            "spec.strategy.canary.steps[0]: a step needs setHeaderRoute, setMirrorRoute, "
            "setWeight, analysis, pause, or several",
        ),
        (
            spec_with(
                {
                    "canary": {
                        "stableService": "s",
                        "canaryService": "c",
                        "steps": [{"setWeight": 5}] * 101,
                    }
                }
            ),
            "spec.strategy.canary.steps: List should have at most 100 items",
        ),
        (
            spec_with(CANARY, replicas=-1),
            "spec.replicas: Input should be greater than or equal to 0",
        ),
        (
            spec_with(CANARY, selector={"matchLabels": {"app": "b"}}),
            "spec.selector.matchLabels: app=b does not match template.metadata.labels",
        ),
        (
            spec_with({"canary": {"stableService": "S_bad", "canaryService": "c"}}),
            "spec.strategy.canary.stableService: String should match pattern",
        ),
        (spec_with(CANARY, replcas=3), "spec.replcas: Extra inputs are not permitted"),
    ],
)
def test_invalid_specs_name_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_spec(spec)
    assert message in str(err.value)


def _canary(**spec: Any) -> dict[str, Any]:
    metric = {"name": "error-rate", "threshold": 5, "failureThreshold": 3, "minSampleSize": 10}
    canary = {
        "stableService": "s",
        "canaryService": "c",
        "steps": [{"setWeight": 10}],
        "analysis": {"failurePolicy": "Rollback", "metrics": [metric]},
    }
    return {**BASE, "strategy": {"canary": canary}, **spec}


def test_the_original_kultas_fields_mean_what_kulta_reads_them_as() -> None:
    from workflows.analysis import AnalysisState
    from workflows.model import MAX_DEADLINE_SECONDS

    spec = parse_spec(_canary(progressDeadlineSeconds=0, advisor={"enabled": True}))
    assert spec.progress_deadline_seconds == MAX_DEADLINE_SECONDS  # 0: no deadline, the longest
    assert spec.strategy.canary is not None and spec.strategy.canary.analysis is not None
    state = AnalysisState(spec.strategy.canary.analysis)
    metric = state.metrics[0]
    assert (metric.failure_limit, metric.policy) == (2, "Rollback")  # rolls back at the 3rd
    blue_green = parse_spec(
        {
            **BASE,
            "strategy": {
                "blueGreen": {
                    "activeService": "a",
                    "previewService": "p",
                    "analysis": {"metrics": [{"name": "error-rate", "threshold": 5}]},
                }
            },
        }
    ).strategy.blue_green
    assert blue_green is not None and blue_green.before_promotion is blue_green.analysis


def test_seed_fields_are_listed_with_their_paths() -> None:
    from workflows.model import seed_fields

    found = seed_fields(_canary(maxSurge=1, progressDeadlineSeconds=0))
    assert [f.split(":")[0] for f in found] == [
        "spec.maxSurge",
        "spec.progressDeadlineSeconds",
        "spec.strategy.canary.analysis.metrics[0].failureThreshold",
        "spec.strategy.canary.analysis.metrics[0].minSampleSize",
    ]
    assert seed_fields({**BASE, "strategy": {"simple": {}}}) == []


def test_a_prometheus_address_is_refused_with_what_to_do_instead() -> None:
    raw = _canary()
    raw["strategy"]["canary"]["analysis"]["prometheus"] = {"address": "http://p:9090"}
    with pytest.raises(InvalidSpec, match=r"analysis.prometheus: .*metrics\[\]\.provider"):
        parse_spec(raw)
