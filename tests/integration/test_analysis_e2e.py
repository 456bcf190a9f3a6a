"""Metric analysis end to end on the local stack: the Temporal dev server (real time), the
watcher and the worker, with a Prometheus address where nothing answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.adapters.prometheus import PrometheusClient, PrometheusConfig
from activities.naming import revision_of
from tests.conftest import running_worker
from tests.kube import Kube
from tests.support.exporter import free_port
from tests.workflow.scenario import Scenario
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
