"""Fixtures of the integration tier: a test-driven exporter and Debian's Prometheus scraping it,
one pair per test module (Prometheus takes about a second to start), and a worker with a
watcher for the tests that steer through the Kubernetes API only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.exporter import Exporter
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
