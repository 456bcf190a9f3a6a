"""Shared fixtures: the local control plane, Temporal test servers, a namespace per test.

The control plane (scripts/cluster) and both Temporal servers are real processes, started once
per session. Each test gets its own Kubernetes namespace, task queue and workflow ids.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.adapters.kube import KubeClient, load_credentials
from tests.support.kube import Kube, cluster_up, install_rbac, path_of, service_account_credentials
from tests.support.temporal import start_dev_server, start_time_skipping

# Worker processes the tests start run workflows in the SDK's sandbox too (kulta/worker.py).
os.environ["KULTA_WORKFLOW_SANDBOX"] = "true"


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


async def _fresh_namespace(kube: Kube) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await kube.client.create(
        path_of("Namespace", None),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    yield name
    await kube.client.delete(path_of("Namespace", None, name))


@pytest.fixture
async def namespace(kube: Kube) -> AsyncIterator[str]:
    async for name in _fresh_namespace(kube):
        yield name


@pytest.fixture
async def other_namespace(kube: Kube) -> AsyncIterator[str]:
    """A second namespace, another team's."""
    async for name in _fresh_namespace(kube):
        yield name


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
