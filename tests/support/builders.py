"""Manifests for tests: a Rollout with its Services and HTTPRoute, in the seed's shape."""

from __future__ import annotations

from typing import Any

CANARY_STEPS: list[dict[str, Any]] = [
    {"setWeight": 20, "pause": {"duration": "5m"}},
    {"setWeight": 50, "pause": {"duration": "10m"}},
    {"setWeight": 80, "pause": {}},
    {"setWeight": 100},
]


def pod_template(app: str, image: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def rollout(
    name: str,
    image: str = "example/app:v1",
    *,
    replicas: int = 5,
    steps: list[dict[str, Any]] | None = None,
    route: bool = True,
    abort_delay: int = 30,
    scale_down_delay: int = 30,
    strategy: dict[str, Any] | None = None,
    workload_ref: str | None = None,
    route_status_timeout: str | None = None,
) -> dict[str, Any]:
    """A Rollout named `name`; canary by default, or any `strategy` block given; with
    `workload_ref`, its template comes from that Deployment."""
    canary: dict[str, Any] = {
        "stableService": f"{name}-stable",
        "canaryService": f"{name}-canary",
        "port": 8080,
        "steps": CANARY_STEPS if steps is None else steps,
        "abortScaleDownDelaySeconds": abort_delay,
        "scaleDownDelaySeconds": scale_down_delay,
    }
    if route:
        canary["trafficRouting"] = {"gatewayAPI": {"httpRoute": f"{name}-route"}}
        if route_status_timeout is not None:
            canary["trafficRouting"]["gatewayAPI"]["statusTimeout"] = route_status_timeout
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "strategy": strategy or {"canary": canary},
    }
    if workload_ref is None:
        spec["template"] = pod_template(name, image)
    else:
        spec["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload_ref}
    return {
        "apiVersion": "kulta.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": spec,
    }


def deployment(name: str, app: str, image: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": pod_template(app, image),
        },
    }


def service(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 8080, "targetPort": 8080}]},
    }


def httproute(name: str, stable: str, canary: str) -> dict[str, Any]:
    """A route with a user's extra rule and filter that kulta must leave alone."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                    "backendRefs": [{"name": "admin", "port": 9000}],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"add": [{"name": "x-env", "value": "prod"}]},
                        }
                    ],
                    "backendRefs": [
                        {"name": stable, "port": 8080, "weight": 100},
                        {"name": canary, "port": 8080, "weight": 0},
                        {"name": "mirror-sink", "port": 8080, "weight": 0},
                    ],
                },
            ],
        },
    }


def blue_green(**settings: Any) -> dict[str, Any]:
    """A blueGreen strategy over the scenario's Services: app-stable active, app-canary preview."""
    return {
        "blueGreen": {
            "activeService": "app-stable",
            "previewService": "app-canary",
            "port": 8080,
            **settings,
        }
    }


def route_weight(route: dict[str, Any], backend: str) -> int:
    """The weight of `backend` in the weighted rule of a route built by `httproute`."""
    refs = route["spec"]["rules"][1]["backendRefs"]
    return next(int(ref.get("weight", 1)) for ref in refs if ref["name"] == backend)


def app(name: str, image: str = "example/app:v1", **rollout_args: Any) -> list[dict[str, Any]]:
    """A Rollout named `name` with its two Services and its route (apply them in order)."""
    return [
        service(f"{name}-stable", name),
        service(f"{name}-canary", name),
        httproute(f"{name}-route", f"{name}-stable", f"{name}-canary"),
        rollout(name, image, **rollout_args),
    ]


def release(name: str, stages: list[dict[str, Any]], rollback: str = "all") -> dict[str, Any]:
    return {
        "apiVersion": "kulta.io/v1alpha1",
        "kind": "Release",
        "metadata": {"name": name},
        "spec": {"stages": stages, "failurePolicy": {"rollback": rollback}},
    }


def stage(
    name: str, images: dict[str, str], *, gate: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    """A stage setting the `app` container of each named Rollout to its image."""
    out: dict[str, Any] = {
        "name": name,
        "rollouts": [
            {"name": rollout, "images": {"app": image}} for rollout, image in images.items()
        ],
        **fields,
    }
    if gate is not None:
        out["gate"] = gate
    return out
