"""Metric analysis end to end on the local stack: the Temporal dev server (real time), the
watcher and the worker, measuring in Debian's Prometheus, which scrapes an exporter whose request
counts the test drives (or, for the outage case, a Prometheus address where nothing answers)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.adapters.prometheus import PrometheusClient, PrometheusConfig
from activities.naming import replicaset_name, revision_of
from tests.integration.test_rollout_e2e import kulta
from tests.support import builders
from tests.support.exporter import Exporter, Traffic, free_port
from tests.support.invariants import WriteRecorder
from tests.support.kube import Kube
from tests.support.prometheus import PrometheusServer
from tests.support.scenario import Scenario
from tests.support.worker import running_worker
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]


async def stack(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str, prometheus_address: str
) -> AsyncIterator[Scenario]:
    prometheus = PrometheusClient(PrometheusConfig(address=prometheus_address, timeout_seconds=3))
    async with running_worker(dev_env.client, kube, prometheus=prometheus) as worker:
        runner = Runner(dev_env.client, kube.as_watcher, worker.task_queue)
        watcher = asyncio.create_task(
            watch_forever(runner, RolloutSource(kube.as_watcher, namespace))
        )
        try:
            yield Scenario(kube, dev_env.client, namespace, worker.task_queue)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    await prometheus.aclose()


running_stack = contextlib.asynccontextmanager(stack)


def analysis(**metric: Any) -> dict[str, Any]:
    return {
        "interval": "2s",
        "metrics": [{"name": "error-rate", "threshold": 5, **metric}],
    }


async def canary(
    sc: Scenario,
    steps: list[dict[str, Any]],
    images: tuple[str, str] = ("example/app:v1", "example/app:v2"),
    **metric: Any,
) -> str:
    """A canary Rollout at images[0], stable, given the analysis, then changed to images[1]."""
    await sc.create(image=images[0], steps=steps, replicas=4, abort_delay=1, scale_down_delay=1)
    await sc.wait_phase("Completed")
    rollout = await sc.rollout()
    rollout["spec"]["strategy"]["canary"]["analysis"] = analysis(**metric)
    await sc.patch_spec(strategy=rollout["spec"]["strategy"])
    await sc.wait_phase("Completed")  # the stable revision absorbs the spec edit
    await sc.set_image(images[1])
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
    steps: list[dict[str, Any]] = [
        {"setWeight": 20, "pause": {"duration": "1s"}},
        {"setWeight": 100},
    ]
    await canary(sc, steps, consecutiveErrorLimit=2)
    paused = await sc.wait_phase("Paused", "provider errors in a row", timeout=60)
    assert paused["status"]["conditions"][0]["reason"] == "AnalysisInconclusive"
    assert "Prometheus did not answer" in paused["status"]["message"]
    assert paused["status"]["currentWeight"] == 20  # the 1s pause ended long ago: no promotion
    assert await sc.weights() == {"app-stable": 80, "app-canary": 20, "mirror-sink": 0}
    # `kulta resume` measures again: the streak starts over, and without Prometheus it pauses again.
    resumed = await kulta(sc, "resume", "app")
    assert resumed.exit_code == 0, resumed.output

    def paused_again(r: dict[str, Any]) -> bool:
        actions = [d["action"] for d in (r.get("status") or {}).get("decisions", [])]
        return actions.count("analysis-pause") >= 2 and r["status"]["phase"] == "Paused"

    again = await sc.kube.wait_for(
        "Rollout", sc.namespace, sc.name, paused_again, timeout=60, what="paused again"
    )
    assert again["status"]["currentWeight"] == 20
    events = await sc.kube.list("Event", sc.namespace)
    assert any(
        e["reason"] == "Resumed" for e in events
    )  # resumed, not re-paused by a stale verdict


def revision_for(image: str) -> str:
    """The revision a Rollout will have once its image is `image` (known before the change, so
    its traffic can be in Prometheus by the time kulta measures)."""
    return revision_of(builders.pod_template("app", image))


@pytest.fixture
def images() -> tuple[str, str]:
    """Images unique to the test: revisions (hence the exporter's series) are not shared with
    another test's, whose counters stay in the module's exporter."""
    tag = uuid.uuid4().hex[:8]
    return f"example/app:{tag}-v1", f"example/app:{tag}-v2"


@pytest.fixture
async def traffic(exporter: Exporter, namespace: str) -> AsyncIterator[Traffic]:
    traffic = Traffic(exporter, namespace)
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


async def test_healthy_canary_completes(
    sc_with_prometheus: Scenario, traffic: Traffic, images: tuple[str, str]
) -> None:
    sc = sc_with_prometheus
    traffic.error_percent[revision_for(images[1])] = 0
    revision = await canary(sc, STEPS, images)
    done = await sc.wait_phase("Completed", f"revision {revision} is stable", timeout=120)
    [measured] = done["status"]["analysis"]["metrics"]
    assert measured["failures"] == 0, measured
    assert measured["measurements"][-1]["verdict"] == "Successful", measured


async def test_errors_at_step_two_roll_back_traffic_first(
    sc_with_prometheus: Scenario, traffic: Traffic, images: tuple[str, str]
) -> None:
    sc = sc_with_prometheus
    traffic.error_percent[revision_for(images[1])] = 0
    revision = await canary(sc, STEPS, images)
    await sc.wait_phase("Progressing", "pausing for 20s", timeout=60)  # step 2: 50% on the canary
    async with WriteRecorder(sc.kube, sc.namespace).running() as writes:
        traffic.error_percent[revision] = 10
        failed = await sc.wait_phase("Failed", timeout=60)
        await sc.wait_rs_replicas(revision, 0)
    assert failed["status"]["conditions"][0]["reason"] == "AnalysisFailed"
    message = failed["status"]["message"]
    assert "metric error-rate value" in message and "above threshold 5%" in message, message
    assert "at step 2" in message, message
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    weight_zero = writes.first(
        "HTTPRoute", "app-route", lambda r: builders.route_weight(r, "app-canary") == 0
    ).resource_version
    scaled_down = writes.first(
        "ReplicaSet", replicaset_name(sc.name, revision), lambda rs: rs["spec"]["replicas"] == 0
    ).resource_version
    assert weight_zero < scaled_down


async def test_an_analysis_edited_in_a_pause_judges_from_then_on(
    sc_with_prometheus: Scenario, traffic: Traffic, images: tuple[str, str]
) -> None:
    sc = sc_with_prometheus
    revision = revision_for(images[1])
    traffic.error_percent[revision] = 3  # within the first threshold (5%)
    steps: list[dict[str, Any]] = [{"setWeight": 20, "pause": {}}, {"setWeight": 100}]
    await canary(sc, steps, images)
    await sc.wait_paused_at(20, timeout=60)

    def measured(r: dict[str, Any]) -> bool:
        return bool(_measurements(r))

    await sc.wait_until(measured, "a measurement of the first analysis")
    strategy = (await sc.rollout())["spec"]["strategy"]
    strategy["canary"]["analysis"]["metrics"][0]["threshold"] = 1
    await sc.patch_spec(strategy=strategy)  # the watcher signals it
    failed = await sc.wait_phase("Failed", timeout=90)
    assert "above threshold 1%" in failed["status"]["message"], failed["status"]["message"]
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    decisions = [d["action"] for d in failed["status"]["decisions"]]
    assert "analysis-edited" in decisions


async def test_the_same_template_in_two_namespaces_is_judged_by_its_own_traffic(
    dev_env: WorkflowEnvironment,
    kube: Kube,
    namespace: str,
    other_namespace: str,
    exporter: Exporter,
    prometheus_url: str,
    images: tuple[str, str],
) -> None:
    """staging and prod run the same manifest (so the same revision hash) against one
    Prometheus: prod's canary fails, staging's is healthy; only prod rolls back."""
    staging_traffic, prod_traffic = Traffic(exporter, namespace), Traffic(exporter, other_namespace)
    revision = revision_for(images[1])
    staging_traffic.error_percent[revision] = 0
    prod_traffic.error_percent[revision] = 20
    tasks = [asyncio.create_task(t.run()) for t in (staging_traffic, prod_traffic)]
    try:
        async with contextlib.AsyncExitStack() as stacks:
            staging = await stacks.enter_async_context(
                running_stack(dev_env, kube, namespace, prometheus_url)
            )
            prod = await stacks.enter_async_context(
                running_stack(dev_env, kube, other_namespace, prometheus_url)
            )
            await asyncio.gather(canary(staging, STEPS, images), canary(prod, STEPS, images))
            failed = await prod.wait_phase("Failed", timeout=90)
            assert "metric error-rate value" in failed["status"]["message"]
            done = await staging.wait_phase("Completed", f"revision {revision}", timeout=120)
            assert done["status"]["stableRevision"] == revision
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_inline_step_analysis_takes_its_count(
    sc_with_prometheus: Scenario, traffic: Traffic, images: tuple[str, str]
) -> None:
    sc = sc_with_prometheus
    inline = {
        "warmupDuration": "2s",
        "interval": "1s",
        "metrics": [{"name": "error-rate", "threshold": 5, "count": 3}],
    }
    steps = [{"setWeight": 20, "analysis": inline}, {"setWeight": 100}]
    await sc.create(image=images[0], steps=steps, replicas=4)
    await sc.wait_phase("Completed")
    revision = revision_for(images[1])
    traffic.error_percent[revision] = 0
    await sc.set_image(images[1])
    done = await sc.wait_phase("Completed", f"revision {revision} is stable", timeout=60)
    [measured] = done["status"]["analysis"]["inline"]
    assert [m["verdict"] for m in measured["measurements"]] == ["Successful"] * 3, measured
    assert any(d["action"] == "analysis-passed" for d in done["status"]["decisions"])


async def test_canary_worse_than_stable_by_more_than_the_baseline_rolls_back(
    sc_with_prometheus: Scenario, traffic: Traffic, images: tuple[str, str]
) -> None:
    sc = sc_with_prometheus
    steps = [{"setWeight": 50, "pause": {"duration": "60s"}}, {"setWeight": 100}]
    await sc.create(image=images[0], steps=steps, replicas=4, abort_delay=1, scale_down_delay=1)
    stable = (await sc.wait_phase("Completed"))["status"]["stableRevision"]
    traffic.error_percent[stable] = 1
    traffic.error_percent[revision_for(images[1])] = 3
    baseline = {
        "warmupDuration": "3s",
        "interval": "1s",
        "metrics": [{"name": "error-rate", "baseline": {"maxDifference": 1}}],
    }
    strategy = (await sc.rollout())["spec"]["strategy"]
    strategy["canary"]["analysis"] = baseline
    await sc.patch_spec(strategy=strategy, template=builders.pod_template("app", images[1]))
    failed = await sc.wait_phase("Failed", timeout=60)
    message = failed["status"]["message"]
    assert "(stable 1%) worse than stable by 2%, more than 1%" in message, message
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}


INLINE = {
    "interval": "1s",
    "warmupDuration": "3s",
    "metrics": [{"name": "error-rate", "threshold": 5}],
}


async def failing_second_revision(
    sc: Scenario, traffic: Traffic, images: tuple[str, str], strategy: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    """A Rollout made stable at images[0], then changed to images[1] whose traffic is 10% 5xx;
    returns the stable revision, the new one, and the Rollout once it has Failed."""
    await sc.create(image=images[0], replicas=2, strategy=strategy)
    stable = (await sc.wait_phase("Completed"))["status"]["stableRevision"]
    revision = revision_for(images[1])
    traffic.error_percent[revision] = 10
    await sc.set_image(images[1])
    failed = await sc.wait_phase("Failed", timeout=60)
    assert "metric error-rate value 10% above threshold 5%" in failed["status"]["message"]
    await sc.wait_rs_replicas(revision, 0)
    assert (await sc.replicaset(stable))["spec"]["replicas"] == 2
    return stable, revision, failed


async def test_blue_green_pre_promotion_failure_never_touches_active(
    sc_with_prometheus: Scenario, traffic: Traffic, images: tuple[str, str]
) -> None:
    sc = sc_with_prometheus
    strategy = builders.blue_green(
        autoPromotionEnabled=False, scaleDownDelaySeconds=1, prePromotionAnalysis=INLINE
    )
    stable, _, _ = await failing_second_revision(sc, traffic, images, strategy)
    assert await sc.selector("app-stable") == {"app": "app", "pod-template-hash": stable}


async def test_simple_analysis_failure_restores_the_previous_revision(
    sc_with_prometheus: Scenario, traffic: Traffic, images: tuple[str, str]
) -> None:
    _, _, failed = await failing_second_revision(
        sc_with_prometheus, traffic, images, {"simple": {"analysis": INLINE}}
    )
    assert failed["status"]["strategy"] == "simple"


async def test_empty_vector_is_inconclusive_and_pauses(
    sc_with_prometheus: Scenario, traffic: Traffic, images: tuple[str, str]
) -> None:
    sc = sc_with_prometheus
    nothing = 'sum(rate(no_such_series_total{revision="{{revision}}"}[{{interval}}]))'
    steps: list[dict[str, Any]] = [
        {"setWeight": 20, "pause": {"duration": "2s"}},
        {"setWeight": 100},
    ]
    traffic.error_percent[revision_for(images[1])] = 0
    await canary(sc, steps, images, name="custom", query=nothing, max=1, inconclusiveLimit=1)
    paused = await sc.wait_phase("Paused", "without data", timeout=60)
    assert paused["status"]["conditions"][0]["reason"] == "AnalysisInconclusive"
    assert "metric custom: 2 measurements in a row without data" in paused["status"]["message"]
    assert await sc.weights() == {"app-stable": 80, "app-canary": 20, "mirror-sink": 0}


async def test_prometheus_stopped_mid_rollout_pauses_and_never_promotes(
    dev_env: WorkflowEnvironment,
    kube: Kube,
    namespace: str,
    exporter: Exporter,
    traffic: Traffic,
    images: tuple[str, str],
) -> None:
    own = PrometheusServer(f"127.0.0.1:{exporter.port}")
    try:
        async for sc in stack(dev_env, kube, namespace, own.url):
            steps: list[dict[str, Any]] = [
                {"setWeight": 20, "pause": {"duration": "15s"}},
                {"setWeight": 100},
            ]
            traffic.error_percent[revision_for(images[1])] = 0
            await canary(sc, steps, images, consecutiveErrorLimit=2)
            await sc.kube.wait_for(
                "Rollout",
                namespace,
                sc.name,
                lambda r: any(m["verdict"] == "Successful" for m in _measurements(r)),
                what="a successful measurement",
            )
            own.stop()
            paused = await sc.wait_phase("Paused", "provider errors in a row", timeout=60)
            assert "3 provider errors in a row" in paused["status"]["message"]
            # Past the end of the 15s pause: a timer alone never promotes.
            pause_end = datetime.fromisoformat(paused["status"]["pauseEndTime"])
            await asyncio.sleep((pause_end - datetime.now(UTC)).total_seconds() + 2)
            rollout = await sc.rollout()
            assert rollout["status"]["phase"] == "Paused"
            assert rollout["status"]["currentWeight"] == 20, rollout["status"]
            assert await sc.weights() == {"app-stable": 80, "app-canary": 20, "mirror-sink": 0}
    finally:
        own.stop()


def _measurements(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    metrics = ((rollout.get("status") or {}).get("analysis") or {}).get("metrics") or []
    return [m for metric in metrics for m in metric.get("measurements", [])]
