"""The watcher process (`kulta-watcher`): Rollout events in, workflow starts and signals out.

With KULTA_LEADER_ELECTION=true only the holder of the `kulta-watcher` Lease acts; the other
replicas stand by, ready, and take over when the leader stops or its Lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Sequence

from activities.adapters.kube import KubeClient, load_credentials
from activities.config_copies import Kind
from activities.naming import RELEASE_WORKFLOW_NAME
from kulta import process
from kulta.settings import Settings
from kulta.temporal import TemporalConnection
from watcher.census import Census
from watcher.leader import LeaderElector, LeaseTiming
from watcher.loop import watch_forever
from watcher.releases import ReleaseSource, decide_release
from watcher.runner import Runner
from watcher.source import RolloutSource
from watcher.workloads import DataDigests, DeploymentTemplates

log = logging.getLogger("kulta.watcher")


def config_sources(kube: KubeClient, settings: Settings) -> list[DataDigests]:
    """ConfigMaps always (for trackConfig.configMaps); Secrets only when allowed."""
    kinds: list[Kind] = ["ConfigMap", "Secret"] if settings.track_secrets else ["ConfigMap"]
    return [DataDigests(kube, kind, settings.watch_namespace) for kind in kinds]


LEASE_NAME = "kulta-watcher"  # deploy/rbac.yaml grants get/update on this name only


def elector_for(settings: Settings, kube: KubeClient) -> LeaderElector:
    identity = settings.pod_name or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    timing = LeaseTiming(
        duration=settings.lease_duration_seconds,
        renew_deadline=settings.lease_renew_deadline_seconds,
        retry_period=settings.lease_retry_period_seconds,
    )
    return LeaderElector(kube, settings.pod_namespace, LEASE_NAME, identity, timing)


async def run(settings: Settings) -> int:
    """Exit status: 0 after a requested stop, 1 when leadership was lost (the pod restarts and
    stands by again, instead of acting beside a new leader)."""
    runtime, sdk_metrics_url = process.sdk_runtime()
    temporal = TemporalConnection(settings, runtime)
    kube = KubeClient(load_credentials(settings.kubeconfig))
    probes: dict[str, process.Probe] = {
        "temporal": temporal.check_health,
        "kubernetes": kube.version,
    }
    status = 0
    census = Census()
    standing_by = True  # a standby's loop does not run: it is alive while it waits
    source: RolloutSource | None = None

    def alive() -> bool:
        if standing_by or source is None:
            return True
        return time.monotonic() - source.progressed_at < settings.watch_stale_seconds

    # Health endpoints first: while Temporal is unreachable the watcher is alive and not ready.
    async with process.serving(
        settings, probes, sdk_metrics_url, alive=alive, recheck=temporal.just_connected
    ) as stopping:
        if await process.unless_stopped(temporal.establish(), stopping):
            assert temporal.client is not None
            runner = Runner(temporal.client, kube, settings.task_queue)
            source = RolloutSource(
                kube,
                settings.watch_namespace,
                on_list=census.replace_all,
                running=lambda: runner.running_workflows(settings.watch_namespace),
                templates=DeploymentTemplates(kube, settings.watch_namespace),
                configs=config_sources(kube, settings),
            )
            elector = elector_for(settings, kube) if settings.leader_election else None
            if elector is None or await process.unless_stopped(elector.acquire(), stopping):
                standing_by = False
                source.progressed_at = time.monotonic()
                status = await _lead(settings, runner, elector, stopping, source, census)
    await kube.aclose()
    return status


async def _lead(
    settings: Settings,
    runner: Runner,
    elector: LeaderElector | None,
    stopping: asyncio.Event,
    source: RolloutSource,
    census: Census,
) -> int:
    """Exit status 1 also when the loop itself ends (it never should): a loop that is gone
    must not keep the Lease, so the process exits and a standby takes over."""
    log.info("watching Rollouts and Releases in %s", settings.watch_namespace or "all namespaces")
    cluster = settings.cluster_name
    loops = [
        asyncio.create_task(watch_forever(runner, source, census)),
        # Releases in a loop of their own (a cluster without the Release CRD only logs that its
        # watch fails; the liveness check follows the Rollouts' loop alone).
        asyncio.create_task(
            watch_forever(
                runner,
                ReleaseSource(
                    runner.kube,
                    settings.watch_namespace,
                    running=lambda: runner.running_workflows(
                        settings.watch_namespace, RELEASE_WORKFLOW_NAME
                    ),
                ),
                decider=lambda release, deleted: decide_release(
                    release, cluster=cluster, deleted=deleted
                ),
            )
        ),
    ]
    holding = asyncio.create_task(elector.hold()) if elector else None
    stop = asyncio.create_task(stopping.wait())
    await asyncio.wait(
        {stop, *loops, *([holding] if holding else [])}, return_when="FIRST_COMPLETED"
    )
    ended = [loop for loop in loops if loop.done()]
    loop_ended = bool(ended)
    for loop in ended:
        failure = None if loop.cancelled() else loop.exception()
        log.error("a watch loop ended: %r; exiting so that the process is restarted", failure)
    for task in (*loops, stop, holding):
        if task is not None:
            task.cancel()
    await asyncio.gather(*loops, stop, *([holding] if holding else []), return_exceptions=True)
    if loop_ended:
        if elector is not None:
            await elector.release()
        return 1
    if elector is None or holding is None:
        return 0
    if not holding.cancelled() and holding.exception() is not None:
        log.error("stopping: %s", holding.exception())  # LostLeadership
        return 1
    await elector.release()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = process.parser("kulta-watcher", __doc__)
    parser.add_argument("--namespace", help="watch one namespace (overrides KULTA_WATCH_NAMESPACE)")
    parser.add_argument(
        "--leader-election",
        action="store_true",
        default=None,
        help="act only while holding the Lease (overrides KULTA_LEADER_ELECTION)",
    )
    args = parser.parse_args(argv)
    settings = process.settings_or_exit(
        "kulta-watcher",
        args,
        watch_namespace=args.namespace,
        leader_election=args.leader_election,
    )
    process.run_and_exit(run(settings))


if __name__ == "__main__":
    main()
