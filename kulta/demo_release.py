"""`make demo STRATEGY=release`: a three-service Release across two local clusters.

The first cluster (the demo's usual one) holds the backend (orders-api, payments-api) and the
Release; a second control plane, `east`, holds the web front, with a kulta worker and watcher
of its own on their own task queue. The Release ships the backend, waits at an approval gate
(the demo approves it the way a person would, `kulta release approve`), then ships web in
`east`. Each change of the Release's tree is printed; the Temporal UI link shows the Release's
workflow with the Rollouts' own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from activities.adapters.kube import KubeClient, load_credentials
from activities.errors import AlreadyExists, NotFound
from activities.naming import ANNOTATION_APPROVE, NAMESPACES, RELEASES, ROLLOUTS
from kulta import demo
from kulta.release_cli import render_release

EAST = "east"
EAST_STATE = Path(os.environ.get("KULTA_DEMO_EAST_DIR", "/tmp/kulta-cluster-east"))
# The second control plane's ports, beside the first one's defaults (scripts/cluster).
EAST_PORTS = {
    "KULTA_APISERVER_PORT": "16444",
    "KULTA_ETCD_PORT": "23792",
    "KULTA_KCM_PORT": "20357",
    "KULTA_SCHEDULER_PORT": "20359",
    "KULTA_KWOK_PORT": "20347",
}
EAST_PROCESSES = ("worker-east", "watcher-east")
RELEASE = "checkout"
MANIFESTS = demo.ROOT / "examples" / "release"


def east_cluster(command: str) -> str:
    env = {**os.environ, "KULTA_CLUSTER_DIR": str(EAST_STATE), **EAST_PORTS}
    out = subprocess.run(
        [str(demo.ROOT / "scripts" / "cluster"), command],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    return out.stdout


def start_east(kubeconfig: str) -> None:
    """A worker and a watcher for `east`: its own task queue, its own cluster name."""
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "TEMPORAL_ADDRESS": f"localhost:{demo.TEMPORAL_PORT}",
        "KULTA_TASK_QUEUE": f"kulta-{EAST}",
        "KULTA_CLUSTER_NAME": EAST,
        "KULTA_OCCURRENCE_DIR": str(demo.STATE / "occurrences-east"),
    }
    bindir = Path(sys.executable).parent
    demo.spawn("worker-east", [str(bindir / "kulta-worker"), "--http-port", "18082"], env)
    demo.spawn(
        "watcher-east",
        [str(bindir / "kulta-watcher"), "--http-port", "18083", "--namespace", demo.NAMESPACE],
        env,
    )


def stop_east() -> None:
    demo.stop_processes(EAST_PROCESSES)
    if EAST_STATE.exists():
        east_cluster("down")


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


async def _apply(kube: KubeClient, docs: list[dict[str, Any]]) -> dict[str, str]:
    """Applies the manifests (once); returns each Rollout's current image, flipped: what the
    Release ships this run."""
    with contextlib.suppress(AlreadyExists):
        await kube.create(
            NAMESPACES.path(),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": demo.NAMESPACE}},
        )
    await demo.apply_manifests(kube, [d for d in docs if d["kind"] != "Rollout"])
    targets = {}
    for doc in docs:
        if doc["kind"] != "Rollout":
            continue
        name = doc["metadata"]["name"]
        try:
            current = await kube.get(ROLLOUTS.path(demo.NAMESPACE, name))
        except NotFound:
            current = await kube.create(ROLLOUTS.path(demo.NAMESPACE), doc)
        targets[name] = demo.next_image(
            current["spec"]["template"]["spec"]["containers"][0]["image"]
        )
    return targets


async def _stable(kube: KubeClient, names: list[str], where: str) -> None:
    for name in names:
        await demo.follow(kube, name, demo.completed_as_applied)
        demo.say(f"{where}: Rollout {name} is stable")


async def run(first: KubeClient, east: KubeClient, docs: dict[str, list[dict[str, Any]]]) -> bool:
    backend = await _apply(first, docs["backend.yaml"])
    frontend = await _apply(east, docs["frontend.yaml"])
    await _stable(first, list(backend), "first cluster")
    await _stable(east, list(frontend), EAST)
    [release] = docs["release.yaml"]
    for stage in release["spec"]["stages"]:
        targets = frontend if stage.get("cluster") == EAST else backend
        for change in stage["rollouts"]:
            change["images"] = {"app": targets[change["name"]]}
    path = RELEASES.path(demo.NAMESPACE, RELEASE)
    with contextlib.suppress(NotFound):  # an earlier run's: this run is a new plan
        await first.delete(path)
        while True:
            await first.get(path)
            await asyncio.sleep(0.2)
    ships = ", ".join(f"{n} -> {i}" for n, i in {**backend, **frontend}.items())
    demo.say(f"applying Release {RELEASE}: {ships}")
    await first.create(RELEASES.path(demo.NAMESPACE), release)
    query = urllib.parse.quote(f'KultaRelease="{demo.NAMESPACE}/{RELEASE}"', safe="")
    demo.say(
        "the Release and its Rollouts' workflows in the Temporal UI:\n           "
        f"http://localhost:{demo.UI_PORT}/namespaces/default/workflows?query={query}"
    )
    return await _follow(first)


async def _follow(kube: KubeClient) -> bool:
    """Prints the Release's tree at each change; approves the gate like a person would."""
    last, approved = "", False
    path = RELEASES.path(demo.NAMESPACE, RELEASE)
    while True:
        release = await kube.get(path)
        frame = render_release(release)
        if frame != last:
            print(frame, flush=True)
            last = frame
        status = release.get("status") or {}
        waiting = [s for s in status.get("stages", []) if s.get("phase") == "WaitingForApproval"]
        if waiting and not approved:
            approved = True
            stage = waiting[0]["name"]
            demo.say(
                f"a person approves: kulta release approve {RELEASE} {stage} -n {demo.NAMESPACE}"
            )
            await kube.patch(path, {"metadata": {"annotations": {ANNOTATION_APPROVE: stage}}})
        if status.get("phase") in ("Completed", "RolledBack", "Aborted", "Failed"):
            demo.say(f"Release {RELEASE} ended {status['phase']}: {status.get('message')}")
            return bool(status["phase"] == "Completed")
        await asyncio.sleep(1)


async def run_demo(kubeconfig: str, east_kubeconfig: str) -> bool:
    docs = {name: _documents(name) for name in ("backend.yaml", "frontend.yaml", "release.yaml")}
    first = KubeClient(load_credentials(kubeconfig))
    east = KubeClient(load_credentials(east_kubeconfig))
    try:
        return await run(first, east, docs)
    finally:
        await first.aclose()
        await east.aclose()


def up(kubeconfig: str) -> None:
    demo.say(f"starting a second control plane, {EAST} (state in {EAST_STATE})")
    east_cluster("up")
    east_kubeconfig = str(EAST_STATE / "admin.kubeconfig")
    demo.say(f"starting a kulta worker and watcher for {EAST} (task queue kulta-{EAST})")
    start_east(east_kubeconfig)
    ok = asyncio.run(run_demo(kubeconfig, east_kubeconfig))
    print(
        f"\nInspect:  kulta release get {RELEASE} -n {demo.NAMESPACE}\n"
        f"          kubectl --kubeconfig {east_kubeconfig} -n {demo.NAMESPACE} get rollout\n"
        "Stop:     make demo-down\n",
        flush=True,
    )
    if not ok:
        sys.exit(1)
