"""Metric analysis end to end on the local stack: the Temporal dev server (real time), the
watcher and the worker, measuring in Debian's Prometheus, which scrapes an exporter whose request
counts the test drives (or, for the outage case, a Prometheus address where nothing answers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.adapters.prometheus import PrometheusClient, PrometheusConfig
from activities.naming import replicaset_name, revision_of
from tests.conftest import running_worker
from tests.kube import Kube
from tests.support.exporter import Exporter, free_port
from tests.support.prometheus import prometheus_scraping
from tests.workflow.scenario import Scenario, WriteRecorder
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]


async def stack(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str, prometheus_address: str
) -> AsyncIterator[Scenario]:
    prometheus = PrometheusClient(PrometheusConfig(address=prometheus_address, timeout_seconds=3))
    async with running_worker(dev_env.client, kube, prometheus=prometheus) as worker:
        runner = Runner(dev_env.client, kube.client, worker.task_queue)
        watcher = asyncio.create_task(watch_forever(runner, RolloutSource(kube.client, namespace)))
        try:
            yield Scenario(kube, dev_env.client, namespace, worker.task_queue)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    await prometheus.aclose()


def analysis(**metric: Any) -> dict[str, Any]:
    return {"interval": "2s", "metrics": [{"name": "error-rate", "threshold": 5, **metric}]}


async def canary(sc: Scenario, steps: list[dict[str, Any]], **metric: Any) -> str:
    await sc.create(steps=steps, replicas=4, abort_delay=1, scale_down_delay=1)
    await sc.wait_phase("Completed")
    rollout = await sc.rollout()
    rollout["spec"]["strategy"]["canary"]["analysis"] = analysis(**metric)
    await sc.patch_spec(strategy=rollout["spec"]["strategy"])
    await sc.wait_phase("Completed")  # the stable revision absorbs the spec edit
    await sc.set_image("example/app:v2")
    return revision_of((await sc.rollout())["spec"]["template"])


@pytest.fixture
async def sc_without_prometheus(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str
) -> AsyncIterator[Scenario]:
    async for scenario in stack(dev_env, kube, namespace, f"http://127.0.0.1:{free_port()}"):
        yield scenario


async def test_unreachable_prometheus_pauses_after_the_error_budget_and_never_promotes(
    sc_without_prometheus: Scenario,
) -> None:
    sc = sc_without_prometheus
    steps = [{"setWeight": 20, "pause": {"duration": "1s"}}, {"setWeight": 100}]
    await canary(sc, steps, consecutiveErrorLimit=2)
    paused = await sc.wait_phase("Paused", "without a verdict", timeout=60)
    assert paused["status"]["conditions"][0]["reason"] == "AnalysisInconclusive"
    assert "Prometheus did not answer" in paused["status"]["message"]
    assert paused["status"]["currentWeight"] == 20  # the 1s pause ended long ago: no promotion
    assert await sc.weights() == {"app-stable": 80, "app-canary": 20, "mirror-sink": 0}


@dataclass
class Traffic:
    """Requests to the canary revision, recorded on the exporter four times a second."""

    exporter: Exporter
    revision: str = ""
    error_percent: int = 0

    async def run(self) -> None:
        while True:
            if self.revision:
                errors = self.error_percent
                self.exporter.serve("app-canary", self.revision, ok=100 - errors, errors=errors)
            await asyncio.sleep(0.25)


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
async def traffic(exporter: Exporter) -> AsyncIterator[Traffic]:
    traffic = Traffic(exporter)
    task = asyncio.create_task(traffic.run())
    yield traffic
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def sc_with_prometheus(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str, prometheus_url: str
) -> AsyncIterator[Scenario]:
    async for scenario in stack(dev_env, kube, namespace, prometheus_url):
        yield scenario


STEPS: list[dict[str, Any]] = [
    {"setWeight": 20, "pause": {"duration": "6s"}},
    {"setWeight": 50, "pause": {"duration": "20s"}},
    {"setWeight": 100},
]


async def test_healthy_canary_completes(sc_with_prometheus: Scenario, traffic: Traffic) -> None:
    sc = sc_with_prometheus
    revision = await canary(sc, STEPS)
    traffic.revision = revision
    done = await sc.wait_phase("Completed", f"revision {revision} is stable", timeout=120)
    [measured] = done["status"]["analysis"]["metrics"]
    assert measured["failures"] == 0, measured
    assert measured["measurements"][-1]["verdict"] == "Successful", measured


async def test_errors_at_step_two_roll_back_traffic_first(
    sc_with_prometheus: Scenario, traffic: Traffic
) -> None:
    sc = sc_with_prometheus
    revision = await canary(sc, STEPS)
    traffic.revision = revision
    await sc.wait_phase("Paused", "pausing for 20s", timeout=60)  # step 2: 50% on the canary
    async with WriteRecorder(sc.kube, sc.namespace).running() as writes:
        traffic.error_percent = 10
        failed = await sc.wait_phase("Failed", timeout=60)
        await sc.wait_rs_replicas(revision, 0)
    assert failed["status"]["conditions"][0]["reason"] == "AnalysisFailed"
    message = failed["status"]["message"]
    assert "metric error-rate value" in message and "above threshold 5%" in message, message
    assert "at step 2" in message, message
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    weight_zero = writes.first(
        "HTTPRoute", "app-route", lambda r: _canary_weight(r) == 0
    ).resource_version
    scaled_down = writes.first(
        "ReplicaSet", replicaset_name(sc.name, revision), lambda rs: rs["spec"]["replicas"] == 0
    ).resource_version
    assert weight_zero < scaled_down


def _canary_weight(route: dict[str, Any]) -> int:
    refs = route["spec"]["rules"][1]["backendRefs"]
    return next(int(ref["weight"]) for ref in refs if ref["name"] == "app-canary")
