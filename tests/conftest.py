"""Shared fixtures: the local control plane, Temporal test servers, a namespace per test.

The control plane (scripts/cluster) and both Temporal servers are real processes, started once
per session. Each test gets its own Kubernetes namespace, task queue and workflow ids.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.adapters.cdevents_sink import HttpCDEventSink
from activities.adapters.kube import KubeClient, load_credentials
from activities.adapters.occurrence_log import OccurrenceLog
from activities.adapters.prometheus import PrometheusClient
from activities.ports import ProportionSource
from kulta.worker import build_worker
from tests.kube import Kube, cluster_up, install_rbac, path_of, service_account_credentials
from tests.support.temporal import start_dev_server, start_time_skipping


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    yield cluster_up()


@pytest.fixture(scope="session")
async def kube(kubeconfig: str) -> AsyncIterator[Kube]:
    client = KubeClient(load_credentials(kubeconfig))
    install_rbac(kubeconfig)
    as_worker = KubeClient(await service_account_credentials(client, "kulta-worker"))
    as_watcher = KubeClient(await service_account_credentials(client, "kulta-watcher"))
    yield Kube(client=client, kubeconfig=kubeconfig, as_worker=as_worker, as_watcher=as_watcher)
    for each in (client, as_worker, as_watcher):
        await each.aclose()


@pytest.fixture
async def namespace(kube: Kube) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await kube.client.create(
        path_of("Namespace", None),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    yield name
    await kube.client.delete(path_of("Namespace", None, name))


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, one per test: durable timers elapse in milliseconds.

    Per test because the server's clock and its time-skipping locks are shared by everything on
    it: one test's leftovers must not stop another's clock (it starts in well under a second).
    """
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server (real persistence, real time)."""
    env = await start_dev_server()
    yield env
    await env.shutdown()


@asynccontextmanager
async def running_worker(
    client: Client,
    kube: Kube,
    proportions: ProportionSource | None = None,
    prometheus: PrometheusClient | None = None,
    min_window_seconds: int = 5,
    cdevents_url: str | None = None,
    occurrences: OccurrenceLog | None = None,
) -> AsyncIterator[Worker]:
    """A worker on a task queue of its own, with the production workflow and activities."""
    sink = HttpCDEventSink(cdevents_url) if cdevents_url else None
    worker = build_worker(
        client,
        kube.as_worker,
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        proportions=proportions,
        prometheus=prometheus,
        min_window_seconds=min_window_seconds,  # the test Prometheus scrapes every second
        cdevents=sink,
        occurrences=occurrences,
    )
    try:
        async with worker:
            yield worker
    finally:
        if sink is not None:
            await sink.aclose()
