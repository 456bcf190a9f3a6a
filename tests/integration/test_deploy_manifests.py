"""`kubectl apply -k deploy/` on the local control plane, exactly as the README's install section
says: the API server validates every object, and the namespace enforces the restricted Pod
Security profile, so the pods kulta ships are admitted only if their securityContext meets it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.kube import KULTA_NAMESPACE, ROOT, Kube, kubectl

pytestmark = pytest.mark.cluster


@pytest.fixture
def installed(kube: Kube) -> Iterator[str]:
    result = kubectl(kube.kubeconfig, "apply", "-k", str(ROOT / "deploy"), check=False)
    try:
        yield result.stdout + result.stderr
        assert result.returncode == 0, result.stderr
    finally:  # the Deployments only; the CRD and RBAC serve the rest of the suite
        kubectl(
            kube.kubeconfig,
            "-n",
            KULTA_NAMESPACE,
            "delete",
            "deployment",
            "kulta-watcher",
            "kulta-worker",
            "--ignore-not-found",
        )


def _built(kubeconfig: str) -> list[dict[str, Any]]:
    out = kubectl(kubeconfig, "kustomize", str(ROOT / "deploy")).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


async def test_every_object_is_created_and_the_pods_are_admitted(
    kube: Kube, installed: str
) -> None:
    assert "error" not in installed.lower(), installed
    assert "PodSecurity" not in installed, installed  # no "would violate" warnings
    for obj in _built(kube.kubeconfig):
        kind, name = obj["kind"], obj["metadata"]["name"]
        namespace = obj["metadata"].get("namespace", "")
        args = ["get", kind, name, "-o", "name"] + (["-n", namespace] if namespace else [])
        assert kubectl(kube.kubeconfig, *args).stdout.strip(), f"{kind} {name} missing"
    for component in ("watcher", "worker"):
        await kube.wait_for(
            "Deployment",
            KULTA_NAMESPACE,
            f"kulta-{component}",
            lambda d: (d.get("status", {}).get("readyReplicas") or 0) >= 2,
            what="two ready pods, admitted under the restricted profile",
        )


def test_the_pods_run_unprivileged_on_a_read_only_root(kube: Kube) -> None:
    for obj in _built(kube.kubeconfig):
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["serviceAccountName"] == obj["metadata"]["name"]
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert container["resources"]["limits"]["memory"]
            assert container["readinessProbe"]["httpGet"]["port"] == "http"
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/tmp", "/var/lib/kulta/occurrences"} <= mounts
