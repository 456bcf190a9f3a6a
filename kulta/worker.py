"""The worker process: runs rollout workflows and the activities that touch the cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.adapters.kube import KubeClient, load_credentials
from activities.ownership import OwnershipActivities
from activities.replicasets import ReplicaSetActivities
from activities.status import StatusActivities
from activities.traffic import TrafficActivities
from kulta import settings as settings_module
from kulta.health import HealthServer
from kulta.temporal import connect, ensure_search_attributes
from workflows.rollout import RolloutWorkflow

log = logging.getLogger("kulta.worker")


def build_worker(client: Client, kube: KubeClient, task_queue: str) -> Worker:
    """The worker with every workflow and activity kulta has; tests use the same function."""
    replicasets = ReplicaSetActivities(kube)
    traffic = TrafficActivities(kube)
    status = StatusActivities(kube)
    ownership = OwnershipActivities(kube, client)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RolloutWorkflow],
        activities=[
            replicasets.ensure_replicaset,
            replicasets.scale_replicaset,
            replicasets.scale_down_other_revisions,
            replicasets.wait_available,
            traffic.check_targets,
            traffic.select_revision,
            traffic.set_route_weights,
            status.publish_status,
            ownership.claim_rollout,
            ownership.await_workflow_closed,
        ],
        max_concurrent_activities=200,
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


async def run(settings: settings_module.Settings) -> None:
    client = await connect(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    kube = KubeClient(load_credentials(settings.kubeconfig))
    stopping = asyncio.Event()
    health = HealthServer(settings.http_port, ready=lambda: not stopping.is_set())
    await health.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    worker = build_worker(client, kube, settings.task_queue)
    log.info("worker polling task queue %s on %s", settings.task_queue, settings.temporal_address)
    async with worker:
        await stopping.wait()
        log.info("shutting down: finishing running activities")
    await kube.aclose()
    await health.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kulta-worker", description=__doc__)
    parser.add_argument("--temporal-address")
    parser.add_argument("--task-queue")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--http-port", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = settings_module.load(
            temporal_address=args.temporal_address,
            task_queue=args.task_queue,
            kubeconfig=args.kubeconfig,
            http_port=args.http_port,
        )
    except settings_module.ConfigError as err:
        print(f"kulta-worker: {err}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(run(settings))
    sys.exit(0)


if __name__ == "__main__":
    main()
