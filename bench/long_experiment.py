"""Long experiment: a simulated A/B experiment of several days at a 10 s measurement interval, on
Temporal's time-skipping server (days pass in minutes), with real activities against the local
API server. The variants never differ, so it runs to its maxDuration.

Reports the workflow runs (continue-as-new keeps each history bounded), the longest history of a
run against Temporal's limits (50,000 events warns at 10,240), and the benchmark process's RSS
(worker in process) after the first simulated day and at the end.
"""

from __future__ import annotations

import asyncio
import resource
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.adapters.kube import KubeClient, load_credentials
from activities.contracts import Proportion, ProportionRequest
from bench.report import Row
from kulta.worker import build_worker
from tests.support.kube import Kube, cluster_up, path_of
from tests.support.scenario import Scenario
from tests.support.temporal import start_time_skipping

HISTORY_WARNING = 10_240


class EvenVariants:
    """Both variants at the same rate: never significant."""

    async def proportion(self, request: ProportionRequest) -> Proportion:
        return Proportion(successes=50, trials=1000)


async def _history_lengths(env: WorkflowEnvironment, workflow_id: str) -> list[int]:
    """Events per run, newest first, following each run's "continued from" link back (the
    time-skipping server has no visibility API to list them)."""
    lengths: list[int] = []
    run_id: str | None = None
    while True:
        history = await env.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return lengths


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(days: float = 7) -> list[Row]:
    kubeconfig = cluster_up()
    kube = Kube.admin_only(KubeClient(load_credentials(kubeconfig)), kubeconfig)
    env = await start_time_skipping()
    namespace = f"long-{uuid.uuid4().hex[:6]}"
    await kube.client.create(
        path_of("Namespace", None),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    loop = asyncio.get_running_loop()
    task_queue = f"long-{uuid.uuid4().hex[:6]}"
    try:
        async with build_worker(env.client, kube.client, task_queue, proportions=EvenVariants()):
            sc = Scenario(kube, env.client, namespace, task_queue, env=env)
            strategy = {
                "abTesting": {
                    "variantAService": "app-stable",
                    "variantBService": "app-canary",
                    "port": 8080,
                    "maxDuration": f"{round(days * 24)}h",
                    "variantBMatch": {"header": {"name": "X-Variant", "value": "B"}},
                    "trafficRouting": {"gatewayAPI": {"httpRoute": "app-route"}},
                    "analysis": {
                        "interval": "10s",
                        "minDuration": "1h",
                        "minSampleSize": 100,
                        "metrics": [{"name": "error-rate"}],
                    },
                }
            }
            await sc.create(replicas=1, strategy=strategy)
            assert (await (await sc.start()).result()).result == "completed"
            await sc.set_image("example/app:v2")
            handle = await sc.start()
            await sc.wait_phase("Experimenting")
            start = loop.time()
            rss_day_one = 0.0
            for hour in range(round(days * 24) + 1):
                await sc.skip(3600, handle)
                if hour == 23:
                    rss_day_one = rss_mb()
                if ((await sc.rollout()).get("status") or {}).get("phase") == "Concluded":
                    break
            concluded = await sc.wait_phase("Concluded", timeout=600)
            wall = loop.time() - start
            runs = await _history_lengths(env, handle.id)
            longest = max(runs)
            measurements = concluded["status"]["experiment"]["measurements"]
            await sc.close()
    finally:
        await kube.client.delete(path_of("Namespace", None, namespace))
        await env.shutdown()
        await kube.client.aclose()
    return [
        Row(
            "long experiment",
            f"{days:g} simulated days at 10 s",
            f"{measurements} measurements in {wall:.0f} s wall",
        ),
        Row("long experiment", "workflow runs (continue-as-new)", str(len(runs))),
        Row(
            "long experiment",
            "longest history of one run",
            f"{longest} events",
            f"< {HISTORY_WARNING}",
            longest < HISTORY_WARNING,
        ),
        Row(
            "long experiment",
            "bench process RSS after day 1 / at the end",
            f"{rss_day_one:.0f} / {rss_mb():.0f} MB",
        ),
    ]
