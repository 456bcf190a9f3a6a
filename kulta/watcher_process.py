"""The watcher process (`kulta-watcher`): Rollout events in, workflow starts and signals out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from activities.adapters.kube import KubeClient, load_credentials
from kulta import process
from kulta.settings import Settings
from kulta.temporal import connect
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

log = logging.getLogger("kulta.watcher")


async def run(settings: Settings) -> None:
    client = await connect(settings)
    kube = KubeClient(load_credentials(settings.kubeconfig))
    async with process.serving(settings) as stopping:
        runner = Runner(client, kube, settings.task_queue)
        source = RolloutSource(kube, settings.watch_namespace)
        log.info("watching Rollouts in %s", settings.watch_namespace or "all namespaces")
        task = asyncio.create_task(watch_forever(runner, source))
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
