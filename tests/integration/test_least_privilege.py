"""kulta's ServiceAccounts can do what the code needs and nothing else, with RBAC enforced by the
local API server. The "enough" half is the rest of the suite: every worker and watcher under test
authenticates as these accounts (tests/conftest.py). This module is the "nothing else" half."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.adapters.kube import KubeClient, resource_path
from activities.errors import Forbidden
from tests.support.kube import ROOT, Kube, kubectl, path_of

pytestmark = pytest.mark.cluster

Attempt = Callable[[KubeClient, str], Awaitable[Any]]

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {}}


def _deployment(namespace: str) -> str:
    return resource_path("apps/v1", "deployments", namespace)


ALWAYS_REFUSED: dict[str, Attempt] = {
    "list secrets": lambda c, ns: c.get(path_of("Secret", ns)),
    "get a secret": lambda c, ns: c.get(path_of("Secret", ns, "credentials")),
    "list secrets cluster-wide": lambda c, ns: c.get("/api/v1/secrets"),
    # trackConfig: ConfigMaps are read (the watcher lists, the worker gets and copies them)
    # but never changed.
    "update a configmap": lambda c, ns: c.replace(
        path_of("ConfigMap", ns, "x"), {"kind": "ConfigMap", "metadata": {"name": "x"}}
    ),
    "patch a configmap": lambda c, ns: c.patch(path_of("ConfigMap", ns, "x"), {}),
    "delete a configmap": lambda c, ns: c.delete(path_of("ConfigMap", ns, "x")),
    "list pods": lambda c, ns: c.get(resource_path("v1", "pods", ns)),
    "create a deployment": lambda c, ns: c.create(_deployment(ns), {"kind": "Deployment"}),
    # A Deployment a Rollout took over: the watcher reads templates, the worker sets its scale.
    "patch a deployment": lambda c, ns: c.patch(_deployment(ns) + "/x", {}),
    "delete a deployment": lambda c, ns: c.delete(_deployment(ns) + "/x"),
    "delete a rollout": lambda c, ns: c.delete(path_of("Rollout", ns, "x")),
    "delete a release": lambda c, ns: c.delete(path_of("Release", ns, "x")),
    "create a release": lambda c, ns: c.create(path_of("Release", ns), {"kind": "Release"}),
    "create a rollout": lambda c, ns: c.create(path_of("Rollout", ns), {"kind": "Rollout"}),
    "create a service": lambda c, ns: c.create(path_of("Service", ns), SERVICE),
    "delete a service": lambda c, ns: c.delete(path_of("Service", ns, "x")),
    "delete an httproute": lambda c, ns: c.delete(path_of("HTTPRoute", ns, "x")),
    "patch the rollout CRD": lambda c, ns: c.patch(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/rollouts.kulta.io",
        {"metadata": {"labels": {"x": "y"}}},
    ),
    "create a namespace": lambda c, ns: c.create(path_of("Namespace", None), {"kind": "Namespace"}),
    "read nodes": lambda c, ns: c.get("/api/v1/nodes"),
    "create a clusterrolebinding": lambda c, ns: c.create(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {"kind": "ClusterRoleBinding"}
    ),
    "create a lease outside kulta-system": lambda c, ns: c.create(
        resource_path("coordination.k8s.io/v1", "leases", ns), {"kind": "Lease"}
    ),
}

# Each process may not do what only the other one needs.
WATCHER_REFUSED: dict[str, Attempt] = {
    "delete a replicaset": lambda c, ns: c.delete(path_of("ReplicaSet", ns, "x")),
    "patch a replicaset": lambda c, ns: c.patch(path_of("ReplicaSet", ns, "x"), {}),
    "patch a service": lambda c, ns: c.patch(path_of("Service", ns, "x"), {}),
    "get an httproute": lambda c, ns: c.get(path_of("HTTPRoute", ns, "x")),
    "patch rollout status": lambda c, ns: c.patch(path_of("Rollout", ns, "x") + "/status", {}),
    "create an event": lambda c, ns: c.create(path_of("Event", ns), {"kind": "Event"}),
    "patch release status": lambda c, ns: c.patch(path_of("Release", ns, "x") + "/status", {}),
    "scale a deployment": lambda c, ns: c.patch(_deployment(ns) + "/x/scale", {}),
    "create a configmap": lambda c, ns: c.create(path_of("ConfigMap", ns), {"kind": "ConfigMap"}),
}
WORKER_REFUSED: dict[str, Attempt] = {
    "watch rollouts": lambda c, ns: c.get(path_of("Rollout", ns), params={"watch": "1"}),
    "list rollouts": lambda c, ns: c.get(path_of("Rollout", ns)),
    "list deployments": lambda c, ns: c.get(_deployment(ns)),
    "list configmaps": lambda c, ns: c.get(path_of("ConfigMap", ns)),
    "list releases": lambda c, ns: c.get(path_of("Release", ns)),
    "patch a release": lambda c, ns: c.patch(path_of("Release", ns, "x"), {}),
    "update a lease": lambda c, ns: c.replace(
        resource_path("coordination.k8s.io/v1", "leases", "kulta-system", "kulta-watcher"),
        {"kind": "Lease"},
    ),
}


async def _secret(kube: Kube, namespace: str) -> None:
    await kube.apply(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "credentials"},
            "stringData": {"password": "hunter2"},
        },
    )


@pytest.mark.parametrize("action", sorted(ALWAYS_REFUSED))
async def test_neither_account_can(kube: Kube, namespace: str, action: str) -> None:
    await _secret(kube, namespace)
    for client in (kube.as_worker, kube.as_watcher):
        with pytest.raises(Forbidden):
            await ALWAYS_REFUSED[action](client, namespace)


@pytest.mark.parametrize("action", sorted(WATCHER_REFUSED))
async def test_the_watcher_cannot(kube: Kube, namespace: str, action: str) -> None:
    with pytest.raises(Forbidden):
        await WATCHER_REFUSED[action](kube.as_watcher, namespace)


@pytest.mark.parametrize("action", sorted(WORKER_REFUSED))
async def test_the_worker_cannot(kube: Kube, namespace: str, action: str) -> None:
    with pytest.raises(Forbidden):
        await WORKER_REFUSED[action](kube.as_worker, namespace)


def _rules(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return [rule for d in docs if d["kind"] in ("ClusterRole", "Role") for rule in d["rules"]]


def test_the_rbac_has_no_wildcards_secrets_or_crd_writes() -> None:
    for rule in _rules(ROOT / "deploy" / "rbac.yaml"):
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
        assert "secrets" not in rule["resources"], rule
        assert "apiextensions.k8s.io" not in rule["apiGroups"], rule
        assert not {"deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
        # One delete: the worker's, of ReplicaSets beyond a Rollout's revisionHistoryLimit.
        assert "delete" not in rule["verbs"] or rule["resources"] == ["replicasets"], rule


def _grants(path: Path, resource: str) -> dict[str, set[str]]:
    """The verbs each ClusterRole of `path` grants on `resource`, by role name."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "ClusterRole"]
    return {
        d["metadata"]["name"]: {
            v for r in d["rules"] if resource in r["resources"] for v in r["verbs"]
        }
        for d in docs
    }


def test_the_secrets_opt_in_grants_for_secrets_what_configmaps_get_and_applies(kube: Kube) -> None:
    deploy = ROOT / "deploy"
    for rule in _rules(deploy / "rbac-track-secrets.yaml"):
        assert rule == {**rule, "apiGroups": [""], "resources": ["secrets"]}, rule
    configmaps = _grants(deploy / "rbac.yaml", "configmaps")
    secrets = _grants(deploy / "rbac-track-secrets.yaml", "secrets")
    assert secrets == {
        "kulta-watcher-track-secrets": configmaps["kulta-watcher"],
        "kulta-worker-track-secrets": configmaps["kulta-worker"],
    }
    # Valid for the API server (a dry run: the suite's accounts stay without Secrets).
    done = kubectl(
        kube.kubeconfig, "apply", "--dry-run=server", "-f", str(deploy / "rbac-track-secrets.yaml")
    )
    assert "created (server dry run)" in done.stdout or "configured (server dry run)" in done.stdout
