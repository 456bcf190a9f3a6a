"""What the delivery pipeline and people see, end to end on the local stack: CDEvents at a local
receiver, occurrence lines, and /metrics; the dev server (real time), watcher and worker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.adapters.occurrence_log import NAME, OccurrenceLog
from activities.naming import ANNOTATION_ABORT
from kulta import process
from kulta.health import HealthServer
from kulta.settings import load
from tests.support import builders
from tests.support.cdevents_check import problems
from tests.support.cdevents_receiver import CDEventReceiver
from tests.support.exporter import free_port
from tests.support.kube import Kube
from tests.support.scenario import Scenario
from tests.support.worker import running_worker
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

STEPS: list[dict[str, Any]] = [{"setWeight": 50, "pause": {"duration": "1s"}}, {"setWeight": 100}]


@dataclass
class Observed:
    sc: Scenario
    receiver: CDEventReceiver
    occurrences: Path

    @property
    def subject(self) -> str:
        return f"{self.sc.namespace}/{self.sc.name}"

    def lines(self) -> list[dict[str, Any]]:
        path = self.occurrences / NAME
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
async def seen(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str, tmp_path: Path
) -> AsyncIterator[Observed]:
    receiver = CDEventReceiver()
    await receiver.start()
    log = OccurrenceLog(tmp_path)
    async with running_worker(
        dev_env.client, kube, cdevents_url=receiver.url, occurrences=log
    ) as worker:
        runner = Runner(dev_env.client, kube.as_watcher, worker.task_queue)
        watcher = asyncio.create_task(
            watch_forever(runner, RolloutSource(kube.as_watcher, namespace))
        )
        try:
            yield Observed(
                Scenario(kube, dev_env.client, namespace, worker.task_queue), receiver, tmp_path
            )
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await receiver.stop()


def assert_conform(seen: Observed) -> None:
    """Every event received is a structured-mode CloudEvent carrying a conforming CDEvent."""
    for r in seen.receiver.received:
        assert r.content_type == "application/cloudevents+json"
        assert r.cloud_event["specversion"] == "1.0" and r.cloud_event["id"] == r.id
        assert r.cloud_event["type"] == r.cdevent["context"]["type"]
        assert problems(r.cdevent) == [], r.cdevent
        custom = r.cdevent["customData"]
        assert custom["rollout"] == seen.sc.name and custom["namespace"] == seen.sc.namespace


async def test_completed_canary_sends_deployed_upgraded_published(seen: Observed) -> None:
    sc = seen.sc
    await sc.create(steps=STEPS, replicas=2, scale_down_delay=1)
    await sc.wait_phase("Completed")
    await seen.receiver.wait_for(seen.subject, ["deployed", "published"])
    await sc.set_image("example/app:v2")
    await sc.wait_phase("Completed", "is stable", timeout=60)
    kinds = ["deployed", "published", "deployed", "upgraded", "upgraded", "published"]
    await seen.receiver.wait_for(seen.subject, kinds)
    assert_conform(seen)
    events = seen.receiver.accepted(seen.subject)
    assert len({e.id for e in events}) == len(events)
    second = events[2:]
    assert [e.cdevent["customData"]["weight"] for e in second[1:3]] == [50, 100]
    assert all(
        e.cdevent["customData"]["revision"] == second[0].cdevent["customData"]["revision"]
        for e in second
    )
    assert second[0].cdevent["subject"]["content"]["artifactId"] == (
        "pkg:oci/app?repository_url=example/app&tag=v2"
    )
    types = [line["type"] for line in seen.lines()]
    # Every transition has its occurrence, the steps too (they create no Kubernetes Event); a
    # timed pause stays Progressing.
    assert types == [
        "canary.rollout.progressing",  # first revision: started
        "canary.rollout.completed",
        "canary.rollout.progressing",  # v2: started
        "canary.rollout.progressing",  # 50% and the 1 s pause, one transition
        "canary.rollout.progressing",  # 100%
        "canary.rollout.completed",
    ]


async def test_aborted_canary_sends_rolledback_with_an_error_occurrence(seen: Observed) -> None:
    sc = seen.sc
    steps = [{"setWeight": 50, "pause": {}}, {"setWeight": 100}]
    await sc.create(steps=steps, replicas=2, abort_delay=1)
    await sc.wait_phase("Completed")
    await sc.set_image("example/app:v2")
    await sc.wait_phase("Paused", "waiting for promotion")
    # The step's CDEvent leaves with the pause's transition, so it may land after the status.
    await seen.receiver.wait_for(seen.subject, ["deployed", "published", "deployed", "upgraded"])
    seen.receiver.refuse = 2  # the sink loses its first two answers: retries, same id
    await sc.kube.patch(
        "Rollout", sc.namespace, sc.name, {"metadata": {"annotations": {ANNOTATION_ABORT: "true"}}}
    )
    await sc.wait_phase("Failed", "aborted by annotation")
    kinds = ["deployed", "published", "deployed", "upgraded", "rolledback"]
    await seen.receiver.wait_for(seen.subject, kinds, timeout=30)
    assert_conform(seen)
    refused = [r for r in seen.receiver.received if r.answered == 500]
    assert len(refused) == 2 and {r.id for r in refused} == {
        seen.receiver.accepted(seen.subject)[-1].id
    }
    rolled_back = seen.receiver.accepted(seen.subject)[-1].cdevent
    assert rolled_back["customData"]["reason"] == "Aborted"
    [failure] = [line for line in seen.lines() if line["type"] == "canary.rollout.failed"]
    assert failure["severity"] == "error" and failure["outcome"] == "failure"
    assert failure["error"]["reason"] == "Aborted" and failure["error"]["suggestedFix"]
    assert failure["history"][-1]["action"] == "rollback"
    assert failure["context"]["correlation"]["rolloutUid"] == failure["entity"]["uid"]


async def test_blue_green_sends_deployed_upgraded_published(seen: Observed) -> None:
    sc = seen.sc
    strategy = builders.blue_green(autoPromotionEnabled=True, scaleDownDelaySeconds=1)
    await sc.create(replicas=2, strategy=strategy)
    await sc.wait_phase("Completed")
    await sc.set_image("example/app:v2")
    v2 = await sc.revision()
    await sc.wait_phase("Completed", f"revision {v2} is stable", timeout=60)
    kinds = ["deployed", "published", "deployed", "upgraded", "published"]
    await seen.receiver.wait_for(seen.subject, kinds)
    assert_conform(seen)
    assert seen.lines()[-1]["type"] == "bluegreen.rollout.completed"


async def test_metrics_move(seen: Observed) -> None:
    health = HealthServer(0, ready=lambda: True, host="127.0.0.1")
    await health.start()
    try:
        async with httpx.AsyncClient() as http:
            before = (await http.get(f"http://127.0.0.1:{health.port}/metrics")).text
            sc = seen.sc
            await sc.create(steps=STEPS, replicas=2, scale_down_delay=1)
            await sc.wait_phase("Completed")
            await sc.set_image("example/app:v2")
            await sc.wait_phase("Completed", "is stable", timeout=60)
            await seen.receiver.wait_for(
                seen.subject,
                ["deployed", "published", "deployed", "upgraded", "upgraded", "published"],
            )
            after = (await http.get(f"http://127.0.0.1:{health.port}/metrics")).text
    finally:
        await health.stop()
    sent = 'kulta_cdevents_sent_total{result="sent",type="dev.cdevents.service.upgraded.0.2.0"}'
    assert value(after, sent) >= value(before, sent) + 2
    steps = 'kulta_step_transitions_total{strategy="canary"}'
    assert value(after, steps) >= value(before, steps) + 2
    completed = 'kulta_rollout_duration_seconds_count{result="completed",strategy="canary"}'
    assert value(after, completed) >= value(before, completed) + 1
    assert f'namespace="{sc.namespace}"' not in after.split("kulta_traffic_weight")[-1]


def value(exposition: str, series: str) -> float:
    """A series' value in Prometheus text exposition (0 when absent)."""
    for line in exposition.splitlines():
        name, _, number = line.rpartition(" ")
        if name == series:
            return float(number)
    return 0.0


async def test_readiness_follows_probes_and_metrics_include_the_sdk(
    dev_env: WorkflowEnvironment, kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/readyz is 503 while a probe fails and during shutdown; /metrics carries both kulta's
    and the Temporal SDK's series (the SDK's exporter runs on a loopback port of its own)."""
    monkeypatch.setattr(process, "PROBE_INTERVAL", 0.2)
    runtime, sdk_url = process.sdk_runtime()
    target = dev_env.client.service_client.config.target_host
    client = await Client.connect(target, runtime=runtime)
    kube_up = {"ok": False}

    async def flaky_kube() -> None:
        if not kube_up["ok"]:
            raise ConnectionError("API server down (simulated)")
        await kube.client.version()

    settings = load({"KULTA_HTTP_PORT": str(free_port())})
    probes: dict[str, process.Probe] = {
        "temporal": client.service_client.check_health,
        "kubernetes": flaky_kube,
    }
    base = f"http://127.0.0.1:{settings.http_port}"
    async with process.serving(settings, probes, sdk_url) as stopping, httpx.AsyncClient() as http:
        await asyncio.sleep(0.5)
        assert (await http.get(f"{base}/readyz")).status_code == 503
        assert (await http.get(f"{base}/healthz")).status_code == 200
        kube_up["ok"] = True
        await asyncio.sleep(0.6)
        assert (await http.get(f"{base}/readyz")).status_code == 200
        await client.count_workflows()  # some SDK traffic to count
        metrics = (await http.get(f"{base}/metrics")).text
        assert "kulta_cdevents_sent_total" in metrics or "kulta_step_transitions" in metrics
        assert "temporal_request" in metrics, metrics[-2000:]
        os.kill(os.getpid(), signal.SIGTERM)  # what the kubelet sends; the handler sets stopping
        await asyncio.wait_for(stopping.wait(), 5)
        assert (await http.get(f"{base}/readyz")).status_code == 503
