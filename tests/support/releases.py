"""Releases under test: three apps (Rollouts with their Services and routes) in a namespace,
waits on Release and Rollout phases, and steering as a person does it (annotations, the
`kulta` command)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from tests.support import builders
from tests.support.scenario import Scenario

QUICK: list[dict[str, Any]] = [{"setWeight": 50}, {"setWeight": 100}]
MANUAL: list[dict[str, Any]] = [{"setWeight": 50, "pause": {}}, {"setWeight": 100}]
APPS = ("orders", "payments", "web")


async def apps(sc: Scenario, steps: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """The three Rollouts on v1, each Completed."""
    for name in APPS:
        for obj in builders.app(
            name,
            replicas=2,
            steps=(steps or {}).get(name, QUICK),
            scale_down_delay=1,
            abort_delay=1,
        ):
            await sc.kube.apply(sc.namespace, obj)
    for name in APPS:
        await rollout_phase(sc, name, "Completed")


async def rollout_phase(sc: Scenario, name: str, phase: str, timeout: float = 90) -> dict[str, Any]:
    return await sc.kube.wait_for(
        "Rollout",
        sc.namespace,
        name,
        lambda r: (r.get("status") or {}).get("phase") == phase,
        timeout=timeout,
        what=f"phase {phase}",
    )


async def release_phase(
    sc: Scenario, phase: str, name: str = "shop", timeout: float = 120
) -> dict[str, Any]:
    return await sc.kube.wait_for(
        "Release",
        sc.namespace,
        name,
        lambda r: (r.get("status") or {}).get("phase") == phase,
        timeout=timeout,
        what=f"Release phase {phase}",
    )


async def paused_on(sc: Scenario, name: str, image: str) -> dict[str, Any]:
    """The Rollout once it waits for a promotion on a template with `image`."""
    return await sc.kube.wait_for(
        "Rollout",
        sc.namespace,
        name,
        lambda r: (r.get("status") or {}).get("phase") == "Paused" and image_of(r) == image,
        timeout=120,
        what=f"{name} paused on {image}",
    )


async def annotate(sc: Scenario, kind: str, name: str, key: str, value: str) -> None:
    """As `kubectl annotate` (what the watcher turns into a signal)."""
    await sc.kube.patch(kind, sc.namespace, name, {"metadata": {"annotations": {key: value}}})


async def kulta(sc: Scenario, *args: str, check: bool = True) -> str:
    """The `kulta` command as a person runs it (a child process: this test's watcher keeps
    running meanwhile, and takes the annotation the command sets)."""
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "kulta"),
        *args,
        "-n",
        sc.namespace,
        "--kubeconfig",
        sc.kube.kubeconfig,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode()
    assert (proc.returncode == 0) == check, text
    return text


def two_stages(**second: Any) -> list[dict[str, Any]]:
    return [
        builders.stage(
            "backend", {"orders": "example/orders:v2", "payments": "example/payments:v2"}
        ),
        builders.stage("frontend", {"web": "example/web:v2"}, **second),
    ]


def image_of(rollout: dict[str, Any]) -> str:
    """The image of the Rollout's first container."""
    return str(rollout["spec"]["template"]["spec"]["containers"][0]["image"])
