"""The local stack for benchmarks: the control plane (scripts/cluster), a Temporal dev server,
a namespace of its own, and kulta's worker and watcher running in this process, each with its
own Kubernetes client so their API requests can be counted apart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.adapters.kube import KubeClient, load_credentials
from activities.adapters.prometheus import PrometheusClient
from kulta.worker import build_worker
from tests.support import builders
from tests.support.kube import Kube, cluster_up, path_of
from tests.support.temporal import start_dev_server
from watcher.loop import watch_forever
from watcher.releases import ReleaseSource, decide_release
from watcher.runner import Runner
from watcher.source import RolloutSource


@dataclass
class Stack:
    kube: Kube  # the benchmark's own client
    worker_kube: KubeClient  # the worker's client: its requests are the ones counted
    client: Client
    env: WorkflowEnvironment
    namespace: str
    task_queue: str
    kubeconfig: str

    async def app(self, name: str, **rollout: Any) -> None:
        """Services, HTTPRoute and Rollout `name` (a canary by default, see tests/builders)."""
        ns = self.namespace
        await self.kube.apply(ns, builders.service(f"{name}-stable", name))
        await self.kube.apply(ns, builders.service(f"{name}-canary", name))
        await self.kube.apply(
            ns, builders.httproute(f"{name}-route", f"{name}-stable", f"{name}-canary")
        )
        await self.kube.apply(ns, builders.rollout(name, **rollout))

    async def set_image(self, name: str, image: str) -> None:
        template = builders.pod_template(name, image)
        await self.kube.patch("Rollout", self.namespace, name, {"spec": {"template": template}})

    async def wait_phase(
        self, name: str, phase: str, message: str = "", timeout: float = 120
    ) -> dict[str, Any]:
        return await self.kube.wait_for(
            "Rollout",
            self.namespace,
            name,
            lambda r: (
                (r.get("status") or {}).get("phase") == phase
                and message in ((r.get("status") or {}).get("message") or "")
            ),
            timeout=timeout,
            what=f"phase {phase} {message!r}",
        )


@asynccontextmanager
async def local_stack(
    prometheus: PrometheusClient | None = None, min_window_seconds: int = 5
) -> AsyncIterator[Stack]:
    kubeconfig = cluster_up()
    kube = Kube.admin_only(KubeClient(load_credentials(kubeconfig)), kubeconfig)
    worker_kube = KubeClient(load_credentials(kubeconfig))
    watcher_kube = KubeClient(load_credentials(kubeconfig))
    env = await start_dev_server()
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    await kube.client.create(
        path_of("Namespace", None),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    worker = build_worker(
        env.client,
        worker_kube,
        task_queue,
        prometheus=prometheus,
        min_window_seconds=min_window_seconds,
    )
    try:
        async with worker:
            runner = Runner(env.client, watcher_kube, task_queue)
            watchers = [
                asyncio.create_task(watch_forever(runner, RolloutSource(watcher_kube, namespace))),
                asyncio.create_task(
                    watch_forever(
                        runner,
                        ReleaseSource(watcher_kube, namespace),
                        decider=lambda r, deleted: decide_release(
                            r, cluster="default", deleted=deleted
                        ),
                    )
                ),
            ]
            try:
                yield Stack(kube, worker_kube, env.client, env, namespace, task_queue, kubeconfig)
            finally:
                for watcher in watchers:
                    watcher.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
    finally:
        await kube.client.delete(path_of("Namespace", None, namespace))
        await env.shutdown()
        for client in (kube.client, worker_kube, watcher_kube):
            await client.aclose()


async def first_route_change(
    stack: Stack, route: str, predicate: Callable[[dict[str, Any]], bool]
) -> float:
    """The monotonic time a watch sees `route` modified so that `predicate` holds."""
    return await route_change(stack.kube.client, stack.namespace, route, predicate)


async def route_change(
    client: KubeClient, namespace: str, route: str, predicate: Callable[[dict[str, Any]], bool]
) -> float:
    """The monotonic time a watch sees `route` modified so that `predicate` holds."""
    loop = asyncio.get_running_loop()
    path = path_of("HTTPRoute", namespace)
    listing = await client.get(path)
    async for event in client.watch(
        path,
        resource_version=listing["metadata"]["resourceVersion"],
        params={"fieldSelector": f"metadata.name={route}"},
    ):
        if event.type == "MODIFIED" and predicate(event.object):
            return loop.time()
    raise RuntimeError("the HTTPRoute watch ended")
