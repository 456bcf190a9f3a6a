"""The local control plane behaves like a real cluster where kulta depends on it."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest

from activities.adapters.kube import KubeClient, KubeCredentials
from activities.errors import Conflict, Forbidden, Gone, NotFound
from tests.support import builders
from tests.support.kube import Kube, path_of

pytestmark = pytest.mark.cluster


def replicaset(name: str, replicas: int, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": builders.pod_template(name, "example/app:v1"),
        },
    }


async def test_replicaset_pods_are_scheduled_and_become_available(
    kube: Kube, namespace: str
) -> None:
    await kube.apply(namespace, replicaset("web", 3))
    rs = await kube.wait_for(
        "ReplicaSet",
        namespace,
        "web",
        lambda r: (r.get("status") or {}).get("availableReplicas") == 3,
        timeout=30,
        what="3 available replicas",
    )
    assert rs["status"]["readyReplicas"] == 3


async def test_deleting_the_owner_garbage_collects_the_replicaset(
    kube: Kube, namespace: str
) -> None:
    owner = await kube.apply(namespace, builders.rollout("owner"))
    await kube.apply(namespace, replicaset("owned", 1, owner=owner))
    await kube.client.delete(
        path_of("Rollout", namespace, "owner"), {"propagationPolicy": "Background"}
    )
    await kube.wait_deleted("ReplicaSet", namespace, "owned", timeout=30)


async def test_httproute_round_trips_through_the_gateway_api_crd(
    kube: Kube, namespace: str
) -> None:
    route = builders.httproute("r", "s", "c")
    await kube.apply(namespace, route)
    read = await kube.get("HTTPRoute", namespace, "r")
    assert read["spec"]["rules"][1]["backendRefs"][0] == {
        "group": "",
        "kind": "Service",
        "name": "s",
        "port": 8080,
        "weight": 100,
    }
    assert read["spec"]["rules"][1]["filters"] == route["spec"]["rules"][1]["filters"]


async def test_service_account_without_rbac_is_forbidden(kube: Kube, namespace: str) -> None:
    await kube.client.create(
        path_of("ServiceAccount", namespace),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}},
    )
    token_request = await kube.client.create(
        path_of("ServiceAccount", namespace, "nobody") + "/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )
    creds = kube.client.credentials
    as_sa = KubeClient(
        KubeCredentials(
            server=creds.server, ca_file=creds.ca_file, token=token_request["status"]["token"]
        )
    )
    try:
        with pytest.raises(Forbidden):
            await as_sa.get(path_of("Rollout", namespace))
        with pytest.raises(Forbidden):
            await as_sa.get(path_of("Secret", namespace))
    finally:
        await as_sa.aclose()


async def test_write_with_a_stale_resource_version_conflicts(kube: Kube, namespace: str) -> None:
    first = await kube.apply(namespace, builders.service("svc", "app"))
    await kube.patch("Service", namespace, "svc", {"metadata": {"labels": {"touched": "yes"}}})
    stale = {**first, "metadata": {**first["metadata"], "labels": {"stale": "write"}}}
    with pytest.raises(Conflict):
        await kube.client.replace(path_of("Service", namespace, "svc"), stale)


async def test_watch_from_a_compacted_resource_version_is_gone(kube: Kube, namespace: str) -> None:
    # ConfigMaps have no watch cache on the local API server (scripts/cluster), so this watch is
    # served by etcd, which forgets compacted revisions.
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "old"}}
    first = await kube.apply(namespace, configmap)
    await kube.patch("ConfigMap", namespace, "old", {"data": {"v": "2"}})
    await kube.patch("ConfigMap", namespace, "old", {"data": {"v": "3"}})
    # Compact etcd past the first write, as the API server does every few minutes; a watch from
    # before the compaction must then fail with 410 Gone.
    revision = int((await kube.get("ConfigMap", namespace, "old"))["metadata"]["resourceVersion"])
    port = os.environ.get("KULTA_ETCD_PORT", "23790")
    async with httpx.AsyncClient() as etcd:
        response = await etcd.post(
            f"http://127.0.0.1:{port}/v3/kv/compaction",
            json={"revision": str(revision), "physical": True},
        )
        response.raise_for_status()

    async def watch_old() -> None:
        async for _ in kube.client.watch(
            path_of("ConfigMap", namespace), resource_version=first["metadata"]["resourceVersion"]
        ):
            pass

    with pytest.raises(Gone):
        await asyncio.wait_for(watch_old(), 30)


async def test_reading_a_missing_object_is_not_found(kube: Kube, namespace: str) -> None:
    with pytest.raises(NotFound):
        await kube.get("Service", namespace, "absent")
