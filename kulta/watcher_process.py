"""The watcher process (`kulta-watcher`): Rollout events in, workflow starts and signals out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from activities.adapters.kube import KubeClient, load_credentials
from kulta import process
from kulta.settings import Settings
from kulta.temporal import connect
from watcher.census import Census
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

log = logging.getLogger("kulta.watcher")


async def run(settings: Settings) -> None:
    runtime, sdk_metrics_url = process.sdk_runtime()
    client = await connect(settings, runtime)
    kube = KubeClient(load_credentials(settings.kubeconfig))
    probes: dict[str, process.Probe] = {
        "temporal": client.service_client.check_health,
        "kubernetes": kube.version,
    }
    async with process.serving(settings, probes, sdk_metrics_url) as stopping:
        runner = Runner(client, kube, settings.task_queue)
        census = Census()
        source = RolloutSource(kube, settings.watch_namespace, on_list=census.replace_all)
        log.info("watching Rollouts in %s", settings.watch_namespace or "all namespaces")
        task = asyncio.create_task(watch_forever(runner, source, census))
        await stopping.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await kube.aclose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = process.parser("kulta-watcher", __doc__)
    parser.add_argument("--namespace", help="watch one namespace (overrides KULTA_WATCH_NAMESPACE)")
    args = parser.parse_args(argv)
    settings = process.settings_or_exit("kulta-watcher", args, watch_namespace=args.namespace)
    process.run_and_exit(run(settings))


if __name__ == "__main__":
    main()
