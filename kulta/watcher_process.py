"""The watcher process: Rollout events in, workflow starts and signals out (`kulta-watcher`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from activities.adapters.kube import KubeClient, load_credentials
from kulta import settings as settings_module
from kulta.health import HealthServer
from kulta.temporal import connect
from watcher.loop import watch_forever
from watcher.runner import Runner
from watcher.source import RolloutSource

log = logging.getLogger("kulta.watcher")


async def run(settings: settings_module.Settings) -> None:
    client = await connect(settings)
    kube = KubeClient(load_credentials(settings.kubeconfig))
    stopping = asyncio.Event()
    health = HealthServer(settings.http_port, ready=lambda: not stopping.is_set())
    await health.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    runner = Runner(client, kube, settings.task_queue)
    source = RolloutSource(kube, settings.watch_namespace)
    scope = settings.watch_namespace or "all namespaces"
    log.info("watching Rollouts in %s", scope)
    task = asyncio.create_task(watch_forever(runner, source))
    await stopping.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await kube.aclose()
    await health.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kulta-watcher", description=__doc__)
    parser.add_argument("--temporal-address")
    parser.add_argument("--task-queue")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--namespace", help="watch one namespace (default: all)")
    parser.add_argument("--http-port", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = settings_module.load(
            temporal_address=args.temporal_address,
            task_queue=args.task_queue,
            kubeconfig=args.kubeconfig,
            watch_namespace=args.namespace,
            http_port=args.http_port,
        )
    except settings_module.ConfigError as err:
        print(f"kulta-watcher: {err}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(run(settings))
    sys.exit(0)


if __name__ == "__main__":
    main()
