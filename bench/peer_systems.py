"""The two systems of the side-by-side benchmark, behind one interface: how each is started,
what its Rollout looks like, how it is promoted, and what its processes cost."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from activities.adapters.kube import KubeClient
from activities.errors import AlreadyExists
from activities.naming import ANNOTATION_PROMOTE
from bench import argo
from bench.peer_cluster import IDENTITY_PREFIX, PeerCluster
from tests.support import builders, proc_stats
from tests.support.exporter import free_port
from tests.support.fleet import in_phase, stable_on_its_latest_revision
from tests.support.kube import KULTA_NAMESPACE, path_of
from tests.support.processes import KultaProcess
from tests.support.temporal import DevServerProcess

ARGO_VERSION = "v1.10.2"
Predicate = Callable[[dict[str, Any]], bool]
_KULTA = Path(sys.executable).parent / "kulta"


def _promote_argv(command: Path, name: str, namespace: str, kubeconfig: Path) -> list[str]:
    """`kulta promote` and `kubectl-argo-rollouts promote` take the same arguments."""
    return [str(command), "promote", name, "-n", namespace, "--kubeconfig", str(kubeconfig)]


class System(Protocol):
    name: str
    users: list[str]  # audit usernames of its processes

    async def start(self, namespace: str) -> None: ...
    def stop(self) -> None: ...
    def rollout(self, name: str, steps: list[dict[str, Any]], replicas: int) -> dict[str, Any]: ...
    def rollouts_path(self, namespace: str) -> str: ...
    def stable(self) -> Predicate: ...
    def paused(self) -> Predicate: ...
    def paused_at(self, pause: int, weight: int) -> Predicate: ...
    def completed(self, before: dict[str, dict[str, Any]]) -> Predicate: ...
    async def promote(self, name: str) -> None: ...
    def promote_command(self, name: str) -> list[str]: ...
    def command_env(self) -> dict[str, str]: ...
    def version_command(self) -> list[str]: ...
    def cpu(self) -> dict[str, float]: ...
    def rss(self) -> dict[str, float]: ...


@dataclass
class Kulta:
    """kulta's worker and watcher as their processes, and a Temporal dev server of its own."""

    cluster: PeerCluster
    kube: KubeClient
    work: Path
    name: str = "kulta"
    users: list[str] = field(
        default_factory=lambda: [
            f"{IDENTITY_PREFIX}kulta-worker",
            f"{IDENTITY_PREFIX}kulta-watcher",
        ]
    )
    processes: dict[str, KultaProcess] = field(default_factory=dict)
    temporal: DevServerProcess | None = None
    namespace: str = ""

    async def start(self, namespace: str) -> None:
        self.namespace = namespace
        with contextlib.suppress(AlreadyExists):  # the watcher's Lease lives there
            await self.kube.create(path_of("Namespace", None), namespace_object(KULTA_NAMESPACE))
        self.temporal = DevServerProcess(None, self.work / "temporal.log")
        await self.temporal.start()
        base = {
            **os.environ,
            "TEMPORAL_ADDRESS": self.temporal.address,
            "KULTA_TASK_QUEUE": f"peer-{uuid.uuid4().hex[:6]}",
            "KULTA_WATCH_NAMESPACE": namespace,
            "KULTA_OCCURRENCE_DIR": str(self.work / "occurrences"),
        }
        base.pop("KULTA_WORKFLOW_SANDBOX", None)  # as deployed
        for process in ("kulta-worker", "kulta-watcher"):
            env = {
                **base,
                "KUBECONFIG": str(self.cluster.identity(process)),
                "KULTA_HTTP_PORT": str(free_port()),
            }
            self.processes[process] = KultaProcess(process, env, self.work / f"{process}.log")

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        if self.temporal is not None:
            self.temporal.stop()

    def rollout(self, name: str, steps: list[dict[str, Any]], replicas: int) -> dict[str, Any]:
        return builders.rollout(name, replicas=replicas, steps=steps, scale_down_delay=0)

    def rollouts_path(self, namespace: str) -> str:
        return path_of("Rollout", namespace)

    def stable(self) -> Predicate:
        return in_phase("Completed")

    def paused(self) -> Predicate:
        return in_phase("Paused", "waiting for promotion")

    def paused_at(self, pause: int, weight: int) -> Predicate:
        waiting = self.paused()
        return lambda r: waiting(r) and (r.get("status") or {}).get("currentWeight") == weight

    def completed(self, before: dict[str, dict[str, Any]]) -> Predicate:
        return stable_on_its_latest_revision

    async def promote(self, name: str) -> None:
        annotation = {"metadata": {"annotations": {ANNOTATION_PROMOTE: "true"}}}
        await self.kube.patch(f"{self.rollouts_path(self.namespace)}/{name}", annotation)

    def promote_command(self, name: str) -> list[str]:
        return _promote_argv(_KULTA, name, self.namespace, self.cluster.admin_kubeconfig)

    def version_command(self) -> list[str]:
        return [str(_KULTA), "version"]

    def command_env(self) -> dict[str, str]:
        assert self.temporal is not None
        return {**os.environ, "TEMPORAL_ADDRESS": self.temporal.address}

    def cpu(self) -> dict[str, float]:
        out = {name: p.cpu_seconds() for name, p in self.processes.items()}
        if self.temporal is not None:
            out["Temporal dev server"] = proc_stats.cpu_seconds(self.temporal.pid)
        return out

    def rss(self) -> dict[str, float]:
        out = {name: p.peak_rss_mb() for name, p in self.processes.items()}
        if self.temporal is not None:
            out["Temporal dev server"] = proc_stats.peak_rss_mb(self.temporal.pid)
        return out


@dataclass
class Argo:
    cluster: PeerCluster
    kube: KubeClient
    controller: argo.ArgoController
    cli: Path | None
    name: str = "Argo Rollouts"
    users: list[str] = field(default_factory=lambda: [f"{IDENTITY_PREFIX}argo-controller"])
    namespace: str = ""

    async def start(self, namespace: str) -> None:
        self.namespace = namespace
        await self.controller.configure(self.kube)
        await self.controller.start(namespace)

    def stop(self) -> None:
        self.controller.stop()

    def rollout(self, name: str, steps: list[dict[str, Any]], replicas: int) -> dict[str, Any]:
        return argo.rollout(name, steps, replicas)

    def rollouts_path(self, namespace: str) -> str:
        return argo.rollouts_path(namespace)

    def stable(self) -> Predicate:
        return argo.stable

    def paused(self) -> Predicate:
        return argo.paused

    def paused_at(self, pause: int, weight: int) -> Predicate:
        index = 2 * pause + 1  # a weight and a pause are two steps in Argo
        return lambda r: argo.paused(r) and (r.get("status") or {}).get("currentStepIndex") == index

    def completed(self, before: dict[str, dict[str, Any]]) -> Predicate:
        stable_rs = {n: (r.get("status") or {}).get("stableRS", "") for n, r in before.items()}
        return argo.completed_after(stable_rs)

    async def promote(self, name: str) -> None:
        await argo.promote(self.kube, self.namespace, name)

    def promote_command(self, name: str) -> list[str]:
        assert self.cli is not None
        return _promote_argv(self.cli, name, self.namespace, self.cluster.admin_kubeconfig)

    def version_command(self) -> list[str]:
        assert self.cli is not None
        return [str(self.cli), "version", "--short"]

    def command_env(self) -> dict[str, str]:
        return dict(os.environ)

    def cpu(self) -> dict[str, float]:
        return {"controller + plugin": self.controller.cpu_seconds()}

    def rss(self) -> dict[str, float]:
        controller, plugin = self.controller.peak_rss_mb()
        return {"controller": controller, "plugin": plugin}


def argo_binaries() -> tuple[Path, Path, Path, Path | None] | str:
    """(controller, plugin, CRD folder, kubectl plugin or None), or why Argo cannot run."""
    cache = Path(os.environ.get("KULTA_CACHE_DIR", Path.home() / ".cache" / "kulta"))
    built = cache / f"argo-rollouts-{ARGO_VERSION}"
    controller = Path(
        os.environ.get("KULTA_ARGO_CONTROLLER", built / "bin" / "rollouts-controller")
    )
    plugin = Path(os.environ.get("KULTA_ARGO_PLUGIN", built / "bin" / "gatewayapi-plugin"))
    crds = Path(os.environ.get("KULTA_ARGO_CRDS", built / "crds"))
    cli = built / "bin" / "kubectl-argo-rollouts"
    if not controller.is_file() or not any(crds.glob("*.yaml")):
        return f"no Argo Rollouts in {built}: run scripts/argo-build"
    if not plugin.is_file():
        return (
            f"no Gateway API plugin at {plugin}: set KULTA_ARGO_PLUGIN, or build one with "
            "PLUGIN_SRC=<checkout> scripts/argo-build (README, Performance)"
        )
    return controller, plugin, crds, cli if cli.is_file() else None


def namespace_object(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
