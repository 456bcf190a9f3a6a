"""Many Rollouts at once, for the load test and the scale benchmark: create them with bounded
concurrency, and wait (by watching) until all of them satisfy a condition."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tests.support import builders
from tests.support.kube import Kube, path_of

JsonObject = dict[str, Any]


async def bounded(
    items: Sequence[Any], work: Callable[[Any], Awaitable[None]], concurrency: int = 32
) -> None:
    """`work(item)` for every item, at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> None:
        async with gate:
            await work(item)

    await asyncio.gather(*(one(i) for i in items))


async def until_all(
    kube: Kube, namespace: str, count: int, predicate: Callable[[JsonObject], bool]
) -> float:
    """Seconds until `count` Rollouts satisfy `predicate` (a list, then a watch)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    path = path_of("Rollout", namespace)
    while True:
        listing = await kube.client.get(path)
        state = {r["metadata"]["name"]: r for r in listing["items"]}
        if sum(1 for r in state.values() if predicate(r)) >= count:
            return loop.time() - start
        try:
            async for event in kube.client.watch(
                path, resource_version=listing["metadata"]["resourceVersion"], timeout_seconds=60
            ):
                state[event.object["metadata"]["name"]] = event.object
                if sum(1 for r in state.values() if predicate(r)) >= count:
                    return loop.time() - start
        except Exception:  # an expired or broken watch: list again
            continue


def in_phase(phase: str, message: str = "") -> Callable[[JsonObject], bool]:
    def check(r: JsonObject) -> bool:
        status = r.get("status") or {}
        return status.get("phase") == phase and message in (status.get("message") or "")

    return check


def observed(r: JsonObject) -> bool:
    """The status is written for the Rollout's latest generation: kulta has taken the change up.
    (Right after an edit, the status left by the previous revision's run still reads Completed.)"""
    status = r.get("status") or {}
    return bool(status.get("observedGeneration") == r["metadata"].get("generation"))


def stable_on_its_latest_revision(r: JsonObject) -> bool:
    """Completed on the latest generation, and the stable revision is the one the current
    workflow rolled out."""
    status = r.get("status") or {}
    return (
        observed(r)
        and status.get("phase") == "Completed"
        and status.get("currentWeight") == 100
        and status.get("stableRevision")
        == status.get("workflowId", "").split("/")[-1].split(".")[0]
    )


async def create_canary(
    kube: Kube, namespace: str, name: str, steps: list[JsonObject], replicas: int = 1
) -> None:
    """A canary Rollout with its two Services and HTTPRoute."""
    await kube.apply(namespace, builders.service(f"{name}-stable", name))
    await kube.apply(namespace, builders.service(f"{name}-canary", name))
    await kube.apply(
        namespace, builders.httproute(f"{name}-route", f"{name}-stable", f"{name}-canary")
    )
    await kube.apply(
        namespace, builders.rollout(name, replicas=replicas, steps=steps, scale_down_delay=0)
    )


async def set_image(kube: Kube, namespace: str, name: str, image: str) -> None:
    template = builders.pod_template(name, image)
    await kube.patch("Rollout", namespace, name, {"spec": {"template": template}})
