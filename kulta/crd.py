"""Generates `deploy/crd.yaml` from the pydantic model (`python -m kulta.crd > deploy/crd.yaml`).

Pydantic emits JSON Schema 2020-12; Kubernetes wants a structural OpenAPI v3.0 subset. This module
inlines `$ref`s, folds `Optional[X]` into `X`, maps `int | str` to `x-kubernetes-int-or-string`,
converts numeric `exclusiveMinimum` to v3.0's boolean form, and adds the CEL rules the API
server enforces (exactly one strategy, non-empty steps, non-zero durations).
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import yaml
from pydantic import BaseModel

from activities.release_status import ReleaseStatus
from activities.rollout_status import RolloutStatus
from workflows.durations import DURATION_PATTERN
from workflows.model import (
    API_GROUP,
    API_VERSION,
    KIND,
    PLURAL,
    SEED_API_VERSION,
    TEMPLATE_OR_WORKLOAD,
    RolloutSpec,
)
from workflows.release_model import RELEASE_KIND, RELEASE_PLURAL, ReleaseSpec

Schema = dict[str, Any]

_KEEP = {
    "type",
    "properties",
    "items",
    "required",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "description",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-validations",
}

ZERO_DURATION = "^(0+[smhd])+$"

# CEL rules, by the JSON path (in the spec) of the object they apply to.
_RULES: dict[str, list[dict[str, str]]] = {
    "": [
        {
            "rule": "has(self.template) != has(self.workloadRef)",
            "message": TEMPLATE_OR_WORKLOAD,
            "fieldPath": ".template",
        }
    ],
    "strategy": [
        {
            "rule": "[has(self.canary), has(self.blueGreen), has(self.abTesting), "
            "has(self.simple)].filter(x, x).size() == 1",
            "message": "exactly one of canary, blueGreen, abTesting, simple must be set",
        }
    ],
    "strategy.canary": [
        {
            "rule": "self.stableService != self.canaryService",
            "message": "canaryService: must differ from stableService",
            "fieldPath": ".canaryService",
        },
        {
            "rule": "has(self.trafficRouting) || "
            "!self.steps.exists(s, has(s.setHeaderRoute) || has(s.setMirrorRoute))",
            "message": "trafficRouting: setHeaderRoute and setMirrorRoute need an HTTPRoute to "
            "change",
            "fieldPath": ".trafficRouting",
        },
    ],
    "strategy.blueGreen": [
        {
            "rule": "self.activeService != self.previewService",
            "message": "previewService: must differ from activeService",
            "fieldPath": ".previewService",
        },
        {
            "rule": "!has(self.autoPromotionSeconds) || !has(self.autoPromotionEnabled) "
            "|| self.autoPromotionEnabled",
            "message": "autoPromotionSeconds: set while autoPromotionEnabled is false, so it "
            "would never apply",
            "fieldPath": ".autoPromotionSeconds",
        },
    ],
    "strategy.abTesting": [
        {
            "rule": "self.variantAService != self.variantBService",
            "message": "variantBService: must differ from variantAService",
            "fieldPath": ".variantBService",
        }
    ],
    "strategy.canary.steps[]": [
        {
            "rule": "has(self.setHeaderRoute) || has(self.setMirrorRoute) || has(self.setWeight) "
            "|| has(self.analysis) || has(self.pause)",
            "message": "a step needs setHeaderRoute, setMirrorRoute, setWeight, analysis, pause, "
            "or several",
        }
    ],
    "strategy.abTesting.variantBMatch": [
        {
            "rule": "has(self.header) || has(self.cookie)",
            "message": "variantBMatch needs header or cookie",
        }
    ],
}


# A metric's bounds must leave room to pass, and it has one failure limit.
_METRIC_RULES = [
    {
        "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
        "message": "min: above max, so every value fails",
        "fieldPath": ".min",
    },
    {
        "rule": "!has(self.failureLimit) || !has(self.failureThreshold)",
        "message": "failureThreshold: give failureLimit or the deprecated failureThreshold, "
        "not both",
        "fieldPath": ".failureThreshold",
    },
]

# A Rollout never names a Prometheus address (the original kulta's analysis.prometheus).
_NO_ADDRESS = {
    "rule": "!has(self.prometheus)",
    "message": "prometheus: a Rollout cannot give a Prometheus address; name a provider the "
    "operator configured in metrics[].provider",
    "fieldPath": ".prometheus",
}
for _analysis in (
    "strategy.canary.analysis",
    "strategy.canary.steps[].analysis",
    "strategy.blueGreen.prePromotionAnalysis",
    "strategy.blueGreen.postPromotionAnalysis",
    "strategy.blueGreen.analysis",
    "strategy.abTesting.analysis",
    "strategy.simple.analysis",
):
    _RULES.setdefault(_analysis, []).append(_NO_ADDRESS)
    _RULES.setdefault(f"{_analysis}.metrics[]", []).extend(_METRIC_RULES)


def _inline(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs[node["$ref"].split("/")[-1]]
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _structural(node: Schema, path: str, rules: dict[str, list[dict[str, str]]]) -> Schema:
    node = dict(node)
    options = node.pop("anyOf", None)
    if options is not None:
        non_null = [o for o in options if o.get("type") != "null"]
        types = sorted(o.get("type", "") for o in non_null)
        if types == ["integer", "string"]:
            node["x-kubernetes-int-or-string"] = True
        elif len(non_null) == 1:
            node = {**non_null[0], **{k: v for k, v in node.items() if k != "default"}}
        else:
            raise ValueError(f"{path}: cannot express union {options} in a structural schema")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "exclusiveMinimum" in node and not isinstance(node["exclusiveMinimum"], bool):
        node["minimum"] = node.pop("exclusiveMinimum")
        node["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node and not isinstance(node["exclusiveMaximum"], bool):
        node["maximum"] = node.pop("exclusiveMaximum")
        node["exclusiveMaximum"] = True
    out: Schema = {k: v for k, v in node.items() if k in _KEEP or k.startswith("exclusive")}
    if node.get("type") == "object" or "properties" in node:
        out["type"] = "object"
    if "properties" in out:
        out["properties"] = {
            name: _structural(sub, f"{path}.{name}".lstrip("."), rules)
            for name, sub in out["properties"].items()
        }
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(out["additionalProperties"], path + "{}", rules)
    elif "additionalProperties" in out:
        del out["additionalProperties"]
    if "items" in out:
        out["items"] = _structural(out["items"], path + "[]", rules)
    if out.get("pattern") == DURATION_PATTERN:
        out.setdefault("x-kubernetes-validations", []).append(
            {
                "rule": f"!self.matches('{ZERO_DURATION}')",
                "message": "duration must be greater than zero",
            }
        )
    if path in rules:
        out.setdefault("x-kubernetes-validations", []).extend(rules[path])
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out = {
            k: v
            for k, v in out.items()
            if k in ("type", "description", "x-kubernetes-preserve-unknown-fields")
        }
    return out


# The Release's plan; a cycle of `after` is found by the model (kulta lint, the workflow).
_RELEASE_RULES: dict[str, list[dict[str, str]]] = {
    "stages": [
        {
            "rule": "self.all(s, self.exists_one(t, t.name == s.name))",
            "message": "stages: each stage needs a name of its own",
        },
        {
            "rule": "self.all(s, !has(s.after) || s.after.all(a, self.exists(t, t.name == a)))",
            "message": "stages: after names a stage that is not in the Release",
        },
    ],
    "stages[].rollouts[]": [
        {
            "rule": "has(self.images) != has(self.template)",
            "message": "images: give exactly one of images and template",
            "fieldPath": ".images",
        }
    ],
    "stages[].gate": [
        {
            "rule": "(has(self.type) && self.type == 'Soak') == has(self.duration)",
            "message": "duration: a Soak gate needs a duration, and only a Soak gate has one",
            "fieldPath": ".duration",
        }
    ],
}


def model_schema(
    model: type[BaseModel],
    rules: dict[str, list[dict[str, str]]] | None = None,
) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(_inline(raw, defs), "", rules or {})


def _version(name: str, spec: Schema, status: Schema, *, storage: bool) -> Schema:
    # Copies: the same objects twice would be written as YAML anchors and aliases.
    spec, status = copy.deepcopy(spec), copy.deepcopy(status)
    return {
        "name": name,
        "served": True,
        "storage": storage,
        # `scale`: `kubectl scale`, an HPA or KEDA set spec.replicas; they find the pods by the
        # selector string kulta publishes in status.
        "subresources": {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                # Not .status.replicas (the revision being rolled out, a canary's share): an
                # HPA that took that as current would shrink the Rollout mid-canary.
                "statusReplicasPath": ".status.hpaReplicas",
                "labelSelectorPath": ".status.selector",
            },
        },
        "additionalPrinterColumns": [
            {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Weight", "type": "integer", "jsonPath": ".status.currentWeight"},
            {"name": "Step", "type": "integer", "jsonPath": ".status.currentStepIndex"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "description": "A progressive rollout of a workload, driven by kulta.",
                "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": spec,
                    "status": status,
                },
            }
        },
    }


def crd() -> Schema:
    spec = model_schema(RolloutSpec, _RULES)
    status = model_schema(RolloutStatus)
    # The original kulta served (and stored) v1beta1: its manifests apply unchanged. The same
    # schema, so the API server converts by changing apiVersion alone (no webhook).
    seed_version = {
        **_version(SEED_API_VERSION, spec, status, storage=False),
        "deprecated": True,
        "deprecationWarning": f"{API_GROUP}/{SEED_API_VERSION} Rollout is served for manifests "
        f"of the original kulta; use {API_GROUP}/{API_VERSION}",
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["kro"],
                "categories": ["all"],
            },
            "versions": [_version(API_VERSION, spec, status, storage=True), seed_version],
        },
    }


def release_crd() -> Schema:
    version = {
        "name": API_VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
            {"name": "Observed", "type": "integer", "jsonPath": ".status.observedGeneration"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "description": "Several Rollouts, in one or more clusters, shipped as one plan "
                "of stages by kulta.",
                "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": model_schema(ReleaseSpec, _RELEASE_RULES),
                    "status": model_schema(ReleaseStatus),
                },
            }
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{RELEASE_PLURAL}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": RELEASE_KIND,
                "listKind": f"{RELEASE_KIND}List",
                "plural": RELEASE_PLURAL,
                "singular": RELEASE_KIND.lower(),
                "shortNames": ["krel"],
            },
            "versions": [version],
        },
    }


def render() -> str:
    header = (
        "# Generated from workflows/model.py and workflows/release_model.py by `make crd`; "
        "do not edit by hand.\n"
    )
    docs = [yaml.safe_dump(doc, sort_keys=False, width=100) for doc in (crd(), release_crd())]
    return header + "---\n".join(docs)


if __name__ == "__main__":
    sys.stdout.write(render())
