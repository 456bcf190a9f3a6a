"""`make demo`: a canary rollout end to end on the local stack, printed as it happens
(`STRATEGY=blue-green|ab-testing|simple` for the others; `STRATEGY=release` for a Release across
two local clusters, `kulta/demo_release.py`).

Starts (or reuses) the local control plane, a Temporal dev server with its UI, Envoy Gateway
(a real Gateway API controller, which judges each route change kulta makes), the kulta worker
and watcher; applies `examples/demo-canary.yaml`; waits for the first revision; changes the image;
prints every transition; promotes the manual pause the way a person would (an annotation); and
leaves the stack running so the rollout can be read in the Temporal UI (`make demo-down` stops it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from activities.adapters.kube import KubeClient, load_credentials
from activities.errors import AlreadyExists, Gone, Unavailable
from activities.naming import (
    ANNOTATION_CONCLUDE,
    ANNOTATION_PROMOTE,
    HTTPROUTES,
    NAMESPACES,
    RESOURCES,
    ROLLOUTS,
    SEARCH_ATTRIBUTES,
)
from activities.route_status import judge_route
from kulta import binaries, envoy_gateway

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("KULTA_DEMO_DIR", "/tmp/kulta-demo"))
TEMPORAL_PORT = int(os.environ.get("KULTA_DEMO_TEMPORAL_PORT", "7233"))
UI_PORT = int(os.environ.get("KULTA_DEMO_UI_PORT", "8233"))
NAMESPACE = "kulta-demo"
PROCESSES = ("temporal", "gateway", "worker", "watcher")
# The demo's Gateway: Envoy Gateway with its usual controller name, serving one GatewayClass.
GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
GATEWAY_CLASS = "kulta-demo"
GATEWAY_ADMIN_PORT = int(os.environ.get("KULTA_DEMO_GATEWAY_ADMIN_PORT", "18089"))
GATEWAY_NAMESPACE = "kulta-demo-gateway"  # Envoy Gateway's own objects (its proxies: kwok pods)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def cluster(command: str) -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "cluster"), command], check=True, stdout=subprocess.PIPE, text=True
    )
    return out.stdout


def pid_alive(name: str) -> bool:
    pid_file = STATE / f"{name}.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (ProcessLookupError, ValueError):
        return False
    return True


def spawn(name: str, argv: list[str], env: dict[str, str]) -> None:
    if pid_alive(name):
        return
    log = open(STATE / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    (STATE / f"{name}.pid").write_text(str(proc.pid))


def start_stack(kubeconfig: str) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    temporal = binaries.find("temporal")
    if temporal is None:
        sys.exit("demo: the temporal CLI is missing; run `make install` first")
    attrs = [arg for name in SEARCH_ATTRIBUTES for arg in ("--search-attribute", f"{name}=Keyword")]
    env = {**os.environ, "KUBECONFIG": kubeconfig, "TEMPORAL_ADDRESS": f"localhost:{TEMPORAL_PORT}"}
    spawn(
        "temporal",
        [
            temporal,
            "server",
            "start-dev",
            "--db-filename",
            str(STATE / "temporal.db"),
            "--port",
            str(TEMPORAL_PORT),
            "--ui-port",
            str(UI_PORT),
            "--log-level",
            "warn",
            *attrs,
        ],
        env,
    )
    wait_port(TEMPORAL_PORT, "Temporal dev server")
    start_gateway(kubeconfig)
    bindir = Path(sys.executable).parent
    spawn("worker", [str(bindir / "kulta-worker"), "--http-port", "18080"], env)
    # Only the demo's namespace: a watcher on all namespaces would also drive the test suite's
    # Rollouts through this dev server, racing the tests' own workers.
    watcher = [str(bindir / "kulta-watcher"), "--http-port", "18081", "--namespace", NAMESPACE]
    spawn("watcher", watcher, env)


def start_gateway(kubeconfig: str) -> None:
    """Envoy Gateway, out of cluster, so that every route change the demo's rollout makes is
    judged by a real Gateway API controller and verified by kulta. Skipped with the reason when
    it cannot run here (then route changes are not verified, and the rollout says so)."""
    try:
        binary = envoy_gateway.binary()
    except envoy_gateway.Unavailable as why:
        say(f"Envoy Gateway cannot run here, route changes go unverified: {why}")
        return
    config = STATE / "envoy-gateway.yaml"
    config.write_text(envoy_gateway.config(GATEWAY_CONTROLLER, GATEWAY_ADMIN_PORT))
    env = {**os.environ, "KUBECONFIG": kubeconfig, "ENVOY_GATEWAY_NAMESPACE": GATEWAY_NAMESPACE}
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "kubectl"), "--kubeconfig", kubeconfig, "apply", "-f", "-"],
        input=_gateway_objects(),
        text=True,
        check=True,
        capture_output=True,
    )
    spawn("gateway", [binary, "server", "--config-path", str(config)], env)


def _gateway_objects() -> str:
    return f"""apiVersion: v1
kind: Namespace
metadata: {{name: {GATEWAY_NAMESPACE}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {NAMESPACE}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: {GATEWAY_CLASS}}}
spec: {{controllerName: {GATEWAY_CONTROLLER}}}
""" + "".join(
        f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {gateway}, namespace: {NAMESPACE}}}
spec:
  gatewayClassName: {GATEWAY_CLASS}
  listeners: [{{name: http, protocol: HTTP, port: 80}}]
"""
        for gateway in ("demo-gateway", "my-gateway")  # the parents the examples' routes name
    )


def wait_port(port: int, what: str, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"demo: {what} did not open port {port}; see {STATE}")


def stop_processes(names: tuple[str, ...]) -> None:
    """SIGTERM to each one's process group, last started first."""
    for name in reversed(names):
        if pid_alive(name):
            pid = int((STATE / f"{name}.pid").read_text())
            os.killpg(pid, signal.SIGTERM)
            for _ in range(50):
                if not pid_alive(name):
                    break
                time.sleep(0.1)
        (STATE / f"{name}.pid").unlink(missing_ok=True)


def stop_stack() -> None:
    from kulta import demo_release

    demo_release.stop_east()
    stop_processes(PROCESSES)
    say("stopped the Temporal dev server, workers and watchers")
    cluster("down")


def describe(status: dict[str, Any]) -> str:
    step = status.get("currentStepIndex")
    total = status.get("stepCount")
    where = f"step {min(step + 1, total)}/{total}" if step is not None and total else ""
    weight = status.get("currentWeight")
    parts = [
        f"{status.get('phase', 'Initializing'):<12}",
        where,
        f"weight {weight}%" if weight is not None else "",
    ]
    return "  ".join(p for p in parts if p) + f"  {status.get('message', '')}"


async def apply_manifests(kube: KubeClient, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        resource = RESOURCES[doc["kind"]]
        try:
            await kube.create(resource.path(NAMESPACE), doc)
        except AlreadyExists:
            if doc["kind"] != "Rollout":
                # Left as they are: kulta owns the Services' selectors and the route's weights
                # now, and resetting them would be someone else's edit mid-rollout.
                continue
            await kube.patch(
                resource.path(NAMESPACE, doc["metadata"]["name"]),
                {"spec": doc["spec"]},
            )


async def follow(
    kube: KubeClient,
    name: str,
    until: Callable[[dict[str, Any]], bool],
    on_status: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    shown: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Prints each new status of the Rollout until `until(rollout)` holds; `shown` is the
    Rollout as last printed, so following again does not repeat it."""
    path = ROLLOUTS.path(NAMESPACE)
    last = describe(shown.get("status") or {}) if shown and shown.get("status") else ""
    while True:
        try:
            listing = await kube.get(path, params={"fieldSelector": f"metadata.name={name}"})
            items = listing["items"]
            stream = kube.watch(
                path,
                resource_version=listing["metadata"]["resourceVersion"],
                params={"fieldSelector": f"metadata.name={name}"},
            )
            pending = list(items)
            while True:
                if pending:
                    obj = pending.pop(0)
                else:
                    event = await anext(stream)
                    if event.type not in ("ADDED", "MODIFIED"):
                        continue
                    obj = event.object
                line = describe(obj.get("status") or {}) if obj.get("status") else last
                if line != last:
                    say(line)
                    last = line
                    if on_status is not None:
                        await on_status(obj)
                if until(obj):
                    found: dict[str, Any] = obj
                    return found
        except (Gone, Unavailable, StopAsyncIteration):
            continue


def completed_as_applied(rollout: dict[str, Any]) -> bool:
    """Completed on the spec just applied (a Rollout left by an earlier demo run is Completed
    on its old spec until kulta has seen the new one)."""
    status = rollout.get("status") or {}
    seen = status.get("observedGeneration")
    return status.get("phase") == "Completed" and seen == rollout["metadata"].get("generation")


# strategy -> (manifest in examples/, Rollout name)
STRATEGIES = {
    "canary": ("demo-canary.yaml", "demo"),
    "blue-green": ("blue-green.yaml", "bg-app"),
    "ab-testing": ("ab-testing.yaml", "checkout"),
    "simple": ("simple.yaml", "simple-app"),
}


def next_image(image: str) -> str:
    """Flips the tag between v1 and v2, so every demo run has a new revision to roll out."""
    repository, _, tag = image.rpartition(":")
    return f"{repository}:{'v2' if tag == 'v1' else 'v1'}"


class Steering:
    """Does what a person watching the rollout would do, and says so."""

    def __init__(self, kube: KubeClient, name: str, first_workflow: str | None) -> None:
        self._kube = kube
        self._name = name
        self._workflow = first_workflow
        self._concluded = False

    async def __call__(self, rollout: dict[str, Any]) -> None:
        status = rollout.get("status") or {}
        if status.get("workflowId") and status["workflowId"] != self._workflow:
            self._workflow = status["workflowId"]
            quoted = urllib.parse.quote(self._workflow, safe="")
            url = f"http://localhost:{UI_PORT}/namespaces/default/workflows/{quoted}"
            say(f"workflow {self._workflow}\n           Temporal UI: {url}")
        phase, message = status.get("phase"), status.get("message") or ""
        if phase in ("Paused", "Preview", "Concluded") and "waiting for promotion" in message:
            await self._annotate(ANNOTATION_PROMOTE, "a person promotes")
        elif phase == "Experimenting" and not self._concluded:
            self._concluded = True
            await self._annotate(
                ANNOTATION_CONCLUDE,
                "no metrics provider runs in the demo, so a person concludes the experiment",
            )

    async def _annotate(self, key: str, why: str) -> None:
        say(f"{why}: kubectl annotate rollout {self._name} {key}=true")
        await self._kube.patch(
            ROLLOUTS.path(NAMESPACE, self._name),
            {"metadata": {"annotations": {key: "true"}}},
        )


async def tell_route_verdict(kube: KubeClient, rollout: dict[str, Any]) -> None:
    """What the Gateway says about the route now, as kulta judged it after each change."""
    strategy = rollout["spec"]["strategy"]
    routing = next(iter(strategy.values())).get("trafficRouting") or {}
    route = (routing.get("gatewayAPI") or {}).get("httpRoute")
    if route:
        judged = judge_route(await kube.get(HTTPROUTES.path(NAMESPACE, route)))
        say(f"route: {judged.message}")


async def run_demo(kubeconfig: str, strategy: str) -> None:
    manifest_name, name = STRATEGIES[strategy]
    kube = KubeClient(load_credentials(kubeconfig))
    try:
        with contextlib.suppress(AlreadyExists):
            await kube.create(
                NAMESPACES.path(),
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            )
        manifest = ROOT / "examples" / manifest_name
        say(f"applying {manifest.relative_to(ROOT)} ({strategy}) in namespace {NAMESPACE}")
        await apply_manifests(kube, list(yaml.safe_load_all(manifest.read_text())))
        # Re-applying the manifest over an earlier run's Rollout is a rollout of its own, which
        # may stop at a manual pause: the same steering gets it through.
        steering = Steering(kube, name, None)
        first = await follow(kube, name, completed_as_applied, steering)
        image = first["spec"]["template"]["spec"]["containers"][0]["image"]
        say(f"first revision is stable; changing the image {image} -> {next_image(image)}")
        await kube.patch(
            ROLLOUTS.path(NAMESPACE, name),
            {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "app", "image": next_image(image)}]}
                    }
                }
            },
        )
        before = first["status"]["stableRevision"]

        def finished(rollout: dict[str, Any]) -> bool:
            status = rollout.get("status") or {}
            if status.get("phase") == "Failed":
                return True
            return status.get("phase") == "Completed" and status.get("stableRevision") != before

        done = await follow(kube, name, finished, steering, shown=first)
        await tell_route_verdict(kube, done)
        status = done["status"]
        if status["phase"] == "Completed":
            say(f"rollout completed: stable revision {status['stableRevision']}")
        else:
            say(f"rollout ended {status['phase']}: {status.get('message')}")
        print(
            f"\nTemporal UI:  http://localhost:{UI_PORT}/namespaces/default/workflows"
            f"?query=KultaNamespace%3D%22{NAMESPACE}%22\n"
            f"Inspect:      {cluster('env').strip()}; "
            f"kubectl -n {NAMESPACE} get rollout,rs,httproute\n"
            "Stop:         make demo-down\n",
            flush=True,
        )
        # Without metrics an experiment has no winner, so variant A staying is the expected end.
        expected = status["phase"] == "Completed" or (
            strategy == "ab-testing" and status["conditions"][0]["reason"] == "ExperimentLost"
        )
        if not expected:
            sys.exit(1)
    finally:
        await kube.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="kulta-demo", description=__doc__)
    parser.add_argument("command", nargs="?", default="up", choices=["up", "down"])
    parser.add_argument("--strategy", default="canary", choices=[*sorted(STRATEGIES), "release"])
    args = parser.parse_args()
    if args.command == "down":
        stop_stack()
        return
    say("starting the local control plane (first run builds it from Go modules)")
    cluster("up")
    kubeconfig = cluster("env").strip().split("=", 1)[1]
    say(
        f"starting Temporal dev server (UI http://localhost:{UI_PORT}), Envoy Gateway, kulta "
        "worker and watcher"
    )
    start_stack(kubeconfig)
    if args.strategy == "release":
        from kulta import demo_release

        demo_release.up(kubeconfig)
    else:
        asyncio.run(run_demo(kubeconfig, args.strategy))
    sys.stdout.flush()
    os._exit(0)  # see README: the SDK may abort at interpreter exit after the work is done


if __name__ == "__main__":
    main()
