"""The worker process (`kulta-worker`): runs rollout workflows and the activities that touch the
cluster. Workers are stateless; run as many as you like on one task queue."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.adapters.cdevents_sink import HttpCDEventSink
from activities.adapters.kube import KubeClient, load_credentials
from activities.adapters.occurrence_log import OccurrenceLog
from activities.adapters.prometheus import PrometheusClient, PrometheusConfig
from activities.announce import AnnounceActivities, CDEventSink
from activities.experiments import ExperimentActivities
from activities.metrics import MetricActivities
from activities.naming import cluster_task_queue
from activities.ownership import OwnershipActivities
from activities.ports import NoMetricsProvider, ProportionSource
from activities.proportions import PrometheusProportions
from activities.releases import ReleaseMemberActivities, ReleaseStatusActivities
from activities.replicasets import ReplicaSetActivities
from activities.status import StatusActivities
from activities.traffic import TrafficActivities
from kulta import process, prometheus_providers
from kulta.interceptors import CountFailures, MapErrors
from kulta.settings import ConfigError, Settings
from kulta.temporal import TemporalConnection, ensure_search_attributes
from workflows.release import ReleaseWorkflow
from workflows.rollout import RolloutWorkflow

log = logging.getLogger("kulta.worker")


def build_worker(
    client: Client,
    kube: KubeClient,
    task_queue: str,
    proportions: ProportionSource | None = None,
    prometheus: PrometheusClient | None = None,
    min_window_seconds: int = 60,
    providers: Mapping[str, PrometheusClient] | None = None,
    cdevents: CDEventSink | None = None,
    occurrences: OccurrenceLog | None = None,
    cluster: str = "default",
    shutdown_grace_seconds: float = 20.0,
    max_cached_workflows: int = 1000,
    sandboxed: bool = False,
    workflow_url: str = "",
) -> Worker:
    """The worker with every workflow and activity kulta has; tests use the same function."""
    if proportions is None:
        proportions = PrometheusProportions(prometheus) if prometheus else NoMetricsProvider()
    experiments = ExperimentActivities(proportions)
    metrics = MetricActivities(prometheus, min_window_seconds, providers)
    replicasets = ReplicaSetActivities(kube)
    traffic = TrafficActivities(kube)
    status = StatusActivities(kube, occurrences, cluster)
    announce = AnnounceActivities(cdevents, workflow_url)
    ownership = OwnershipActivities(kube, client)
    members = ReleaseMemberActivities(kube)
    releases = ReleaseStatusActivities(kube)
    return Worker(
        client,
        task_queue=task_queue,
        # The sandbox checks at run time that workflow code is deterministic, at a cost: at 200
        # rollouts it took a fifth of the worker's CPU and 40% of the first revisions' time.
        # The test suite runs every workflow in it (and replays recorded histories), so a
        # non-deterministic call fails there; production may turn it off.
        workflow_runner=SandboxedWorkflowRunner() if sandboxed else UnsandboxedWorkflowRunner(),
        workflows=[RolloutWorkflow, ReleaseWorkflow],
        activities=[
            replicasets.ensure_replicaset,
            replicasets.scale_replicaset,
            replicasets.scale_down_other_revisions,
            replicasets.scale_deployment,
            replicasets.wait_available,
            replicasets.scale_and_wait,
            traffic.check_targets,
            traffic.select_revision,
            traffic.set_route_weights,
            traffic.set_experiment_rule,
            traffic.set_mirror_route,
            traffic.verify_route,
            experiments.measure,
            metrics.measure,
            status.publish_status,
            announce.announce,
            announce.announce_release,
            ownership.claim_rollout,
            *_member_activities(members),
            releases.publish,
        ],
        # Outermost first: failures are counted by their own class, then mapped.
        interceptors=[MapErrors(), CountFailures()],
        max_concurrent_activities=200,
        max_cached_workflows=max_cached_workflows,
        # On shutdown, running activities get this long to finish before they are cancelled
        # (and retried by another worker); new tasks stop at once.
        graceful_shutdown_timeout=timedelta(seconds=shutdown_grace_seconds),
    )


def _member_activities(members: ReleaseMemberActivities) -> list[Callable[..., Any]]:
    return [
        members.claim,
        members.release,
        members.read,
        members.apply,
        members.follow,
        members.promote,
    ]


def build_cluster_worker(client: Client, kube: KubeClient, cluster: str) -> Worker:
    """The activities a Release held in another cluster asks of this one's Rollouts, on this
    cluster's own queue (`cluster_task_queue`): only this cluster's workers poll it."""
    return Worker(
        client,
        task_queue=cluster_task_queue(cluster),
        activities=_member_activities(ReleaseMemberActivities(kube)),
        interceptors=[MapErrors(), CountFailures()],
        max_concurrent_activities=100,
    )


async def run(settings: Settings, named: Mapping[str, PrometheusConfig]) -> None:
    runtime, sdk_metrics_url = process.sdk_runtime()
    temporal = TemporalConnection(
        settings,
        runtime,
        prepare=lambda client: ensure_search_attributes(client, settings.temporal_namespace),
    )
    kube = KubeClient(load_credentials(settings.kubeconfig))
    default = prometheus_providers.default_provider(settings)
    prometheus = PrometheusClient(default) if default else None
    providers = {name: PrometheusClient(config) for name, config in named.items()}
    sink = (
        HttpCDEventSink(settings.cdevents_sink_url)
        if settings.cdevents_enabled and settings.cdevents_sink_url
        else None
    )
    probes: dict[str, process.Probe] = {
        "temporal": temporal.check_health,
        "kubernetes": kube.version,
    }
    # Health endpoints first: while Temporal is unreachable the worker is alive and not ready.
    async with process.serving(
        settings, probes, sdk_metrics_url, recheck=temporal.just_connected
    ) as stopping:
        if await process.unless_stopped(temporal.establish(), stopping):
            assert temporal.client is not None
            await _poll_until_stopped(
                build_cluster_worker(temporal.client, kube, settings.cluster_name),
                build_worker(
                    temporal.client,
                    kube,
                    settings.task_queue,
                    prometheus=prometheus,
                    min_window_seconds=settings.analysis_min_window_seconds,
                    providers=providers,
                    cdevents=sink,
                    occurrences=OccurrenceLog(Path(settings.occurrence_dir)),
                    cluster=settings.cluster_name,
                    shutdown_grace_seconds=settings.shutdown_grace_seconds,
                    max_cached_workflows=settings.max_cached_workflows,
                    sandboxed=settings.workflow_sandbox,
                    workflow_url=f"{settings.temporal_ui_url.rstrip('/')}/namespaces/"
                    f"{settings.temporal_namespace}/workflows/",
                ),
                settings,
                stopping,
            )
    await kube.aclose()
    if sink is not None:
        await sink.aclose()
    for client_ in [*providers.values(), *([prometheus] if prometheus else [])]:
        await client_.aclose()


async def _poll_until_stopped(
    cluster_worker: Worker, worker: Worker, settings: Settings, stopping: asyncio.Event
) -> None:
    async with cluster_worker, worker:
        log.info(
            "worker polling task queue %s (and %s) on %s",
            settings.task_queue,
            cluster_worker.task_queue,
            settings.temporal_address,
        )
        await stopping.wait()
        log.info("shutting down: finishing running activities")


def main(argv: Sequence[str] | None = None) -> None:
    args = process.parser("kulta-worker", __doc__).parse_args(argv)
    settings = process.settings_or_exit("kulta-worker", args)
    try:  # read at start, so a broken providers file stops the worker before it takes work
        named = prometheus_providers.named_providers(settings)
    except ConfigError as err:
        print(f"kulta-worker: {err}", file=sys.stderr)
        sys.exit(2)
    process.run_and_exit(run(settings, named))


if __name__ == "__main__":
    main()
