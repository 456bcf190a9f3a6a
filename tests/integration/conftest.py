"""Fixtures of the integration tier: a test-driven exporter and Debian's Prometheus scraping it,
one pair per test module (Prometheus takes about a second to start), and a worker with a
watcher for the tests that steer through the Kubernetes API only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support import builders
from tests.support.exporter import Exporter
from tests.support.gateways import EnvoyGateway, gateway_binary
from tests.support.kube import Kube
from tests.support.prometheus import prometheus_scraping
from tests.support.scenario import Scenario, watched


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    exp = Exporter()
    exp.start()
    yield exp
    exp.stop()


@pytest.fixture(scope="module")
def prometheus_url(exporter: Exporter) -> Iterator[str]:
    with prometheus_scraping(f"127.0.0.1:{exporter.port}") as url:
        yield url


@pytest.fixture
async def stack(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str
) -> AsyncIterator[Scenario]:
    """A worker and a watcher of the test's namespace, in this process."""
    async with watched(dev_env, kube, namespace) as scenario:
        yield scenario


@pytest.fixture
async def gateway(kube: Kube, namespace: str, tmp_path: Path) -> AsyncIterator[EnvoyGateway]:
    """A running Envoy Gateway of its own class, its Gateway `gw` in the test's namespace (the
    parent of the route `Scenario.create` makes), and the other backends that route names, so
    that the Gateway can resolve them all."""
    eg = EnvoyGateway(kube, gateway_binary(), tmp_path)
    try:
        await eg.start()
        await kube.apply(namespace, eg.gateway())
        admin = builders.service("admin", "admin")
        admin["spec"]["ports"] = [{"port": 9000, "targetPort": 9000}]
        await kube.apply(namespace, admin)
        await kube.apply(namespace, builders.service("mirror-sink", "mirror-sink"))
        yield eg
    finally:
        await eg.close()
