"""Argo Rollouts with its Gateway API traffic-router plugin, for the side-by-side benchmark.

`rollouts-controller` runs out of cluster, namespaced on the benchmark's namespace (as kulta's
watcher watches one namespace there), with its client's rate limits lifted: as shipped, the
plugin's client allows 5 requests a second and the controller 40, and that throttle, not the
controller, is then what is measured. The plugin is named in the `argo-rollouts-config`
ConfigMap by a file:// location; the controller copies it into `plugin-bin/` of its working
directory and runs it as a child process, whose CPU is counted with the controller's.

Facts relied on (Argo Rollouts v1.10): `status.phase` Healthy/Paused, `status.stableRS` and
`status.currentPodHash`, a manual pause shows a `CanaryPauseStep` pause condition, and
`kubectl argo rollouts promote` clears `status.pauseConditions`. With traffic routing and
`scaleDownDelaySeconds: 0` the controller never scales the old ReplicaSet down and requeues the
rollout at once, forever (argoproj/argo-rollouts#1992), so Argo runs with 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from activities.adapters.kube import KubeClient
from activities.errors import AlreadyExists
from tests.support import builders, proc_stats
from tests.support.exporter import free_port
from tests.support.kube import path_of

API = "argoproj.io/v1alpha1"
PLUGIN = "argoproj-labs/gatewayAPI"
CONTROLLER_NAMESPACE = "argo-rollouts"
SCALE_DOWN_DELAY_SECONDS = 1
TUNED_CONTROLLER_ARGS = ["--qps", "500", "--burst", "1000", "--rollout-threads", "32"]
TUNED_PLUGIN_ARGS = ["-kubeClientQPS=500", "-kubeClientBurst=1000"]
JsonObject = dict[str, Any]


def rollouts_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts"
    return f"{base}/{name}" if name else base


def steps_of(kulta_steps: list[JsonObject]) -> list[JsonObject]:
    """kulta's `{setWeight, pause}` steps as Argo's, where a weight and a pause are two steps."""
    steps: list[JsonObject] = []
    for step in kulta_steps:
        if "setWeight" in step:
            steps.append({"setWeight": step["setWeight"]})
        if "pause" in step:
            steps.append({"pause": step["pause"]})
    return steps


def rollout(name: str, kulta_steps: list[JsonObject], replicas: int) -> JsonObject:
    return {
        "apiVersion": API,
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": builders.pod_template(name, "example/app:v1"),
            "strategy": {
                "canary": {
                    "stableService": f"{name}-stable",
                    "canaryService": f"{name}-canary",
                    "scaleDownDelaySeconds": SCALE_DOWN_DELAY_SECONDS,
                    "trafficRouting": {"plugins": {PLUGIN: {"httpRoute": f"{name}-route"}}},
                    "steps": steps_of(kulta_steps),
                }
            },
        },
    }


def stable(r: JsonObject) -> bool:
    s = r.get("status") or {}
    return (
        s.get("phase") == "Healthy"
        and bool(s.get("stableRS"))
        and (s.get("stableRS") == s.get("currentPodHash"))
    )


def paused(r: JsonObject) -> bool:
    s = r.get("status") or {}
    return s.get("phase") == "Paused" and any(
        c.get("reason") == "CanaryPauseStep" for c in s.get("pauseConditions") or []
    )


def completed_after(before: dict[str, str]) -> Callable[[JsonObject], bool]:
    """Healthy on a stable ReplicaSet other than the one each Rollout had in `before`."""

    def check(r: JsonObject) -> bool:
        s = r.get("status") or {}
        return stable(r) and s.get("stableRS") != before.get(r["metadata"]["name"])

    return check


async def promote(kube: KubeClient, namespace: str, name: str) -> None:
    """What `kubectl argo rollouts promote` sends for a canary pause: clear pauseConditions."""
    await kube.patch(
        rollouts_path(namespace, name) + "/status", {"status": {"pauseConditions": None}}
    )


class ArgoController:
    """One `rollouts-controller` process (and the plugin process it starts)."""

    def __init__(self, binary: Path, plugin: Path, kubeconfig: Path, work: Path) -> None:
        self.binary, self.plugin, self.kubeconfig, self.work = binary, plugin, kubeconfig, work
        self.proc: subprocess.Popen[bytes] | None = None
        self._plugin_pids: set[int] = set()
        self._cpu_of_ended = 0.0
        self._peak_rss: dict[int, float] = {}

    async def configure(self, kube: KubeClient) -> None:
        """The controller's namespace and the ConfigMap naming the plugin."""
        namespace: JsonObject = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": CONTROLLER_NAMESPACE},
        }
        plugins = [{"name": PLUGIN, "location": f"file://{self.plugin}", "args": TUNED_PLUGIN_ARGS}]
        config: JsonObject = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "argo-rollouts-config", "namespace": CONTROLLER_NAMESPACE},
            "data": {"trafficRouterPlugins": yaml.safe_dump(plugins, sort_keys=False)},
        }
        for path, body in (
            (path_of("Namespace", None), namespace),
            (path_of("ConfigMap", CONTROLLER_NAMESPACE), config),
        ):
            try:
                await kube.create(path, body)
            except AlreadyExists:
                await kube.replace(f"{path}/{body['metadata']['name']}", body)

    async def start(self, namespace: str) -> None:
        """Starts the controller on `namespace` and waits for its rollout workers."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["contexts"][0]["context"]["namespace"] = namespace  # --namespaced watches this
        self.work.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.work / "controller.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        log = self.work / "controller.log"
        args = [
            str(self.binary),
            "--kubeconfig",
            str(kubeconfig),
            "--namespaced",
            "--leader-elect=false",
            "--metricsPort",
            str(free_port()),
            "--healthzPort",
            str(free_port()),
            *TUNED_CONTROLLER_ARGS,
        ]
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": CONTROLLER_NAMESPACE}
        self.proc = self._launch(args, env, log)
        deadline = time.monotonic() + 120
        while "Started rollout workers" not in log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rollouts-controller did not start:\n{log.read_text()[-3000:]}")
            await asyncio.sleep(0.2)

    def _launch(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(args, cwd=self.work, env=env, stdout=out, stderr=out)

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        self._plugin_pids |= set(proc_stats.children(self.proc.pid))
        return [self.proc.pid, *sorted(self._plugin_pids)]

    def cpu_seconds(self) -> float:
        """The controller's and its plugin processes' CPU time so far."""
        total = 0.0
        for pid in self.pids():
            try:
                total += proc_stats.cpu_seconds(pid)
                self._peak_rss[pid] = proc_stats.peak_rss_mb(pid)
            except OSError:
                self._plugin_pids.discard(pid)
        return total

    def peak_rss_mb(self) -> tuple[float, float]:
        """Peak RSS of the controller, and of its plugin (the largest plugin process)."""
        self.cpu_seconds()
        if self.proc is None:
            return 0.0, 0.0
        plugin = [mb for pid, mb in self._peak_rss.items() if pid != self.proc.pid]
        return self._peak_rss.get(self.proc.pid, 0.0), max(plugin, default=0.0)

    def stop(self) -> None:
        if self.proc is None:
            return
        plugins = self.pids()[1:]
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        # The controller stops its plugin on SIGTERM, but a worker still reconciling may start
        # it again; every plugin process it started goes too.
        folder = f"{self.work / 'plugin-bin'}/"
        for pid in [*plugins, *proc_stats.pids_where(lambda argv0: argv0.startswith(folder))]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self.proc = None
