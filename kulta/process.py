"""What every kulta process shares: its flags, settings, health endpoints and signal handling."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager

from kulta import settings as settings_module
from kulta.health import HealthServer


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """Flags every process takes; each overrides its environment variable."""
    parsed = argparse.ArgumentParser(prog=prog, description=description)
    parsed.add_argument("--temporal-address", help="overrides TEMPORAL_ADDRESS")
    parsed.add_argument("--task-queue", help="overrides KULTA_TASK_QUEUE")
    parsed.add_argument("--kubeconfig", help="overrides KUBECONFIG")
    parsed.add_argument("--http-port", type=int, help="overrides KULTA_HTTP_PORT")
    return parsed


def settings_or_exit(
    prog: str, args: argparse.Namespace, **overrides: object
) -> settings_module.Settings:
    """Settings from the environment and flags; a bad value exits 2 naming the variable."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return settings_module.load(
            None,
            temporal_address=args.temporal_address,
            task_queue=args.task_queue,
            kubeconfig=args.kubeconfig,
            http_port=args.http_port,
            **overrides,
        )
    except settings_module.ConfigError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        sys.exit(2)


@asynccontextmanager
async def serving(settings: settings_module.Settings) -> AsyncIterator[asyncio.Event]:
    """Health endpoints up, SIGTERM/SIGINT wired; yields the event that says "stop now".

    Readiness turns false as soon as a stop is requested, so traffic and new work drain first.
    """
    stopping = asyncio.Event()
    health = HealthServer(settings.http_port, ready=lambda: not stopping.is_set())
    await health.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        yield stopping
    finally:
        await health.stop()


def run_and_exit(main: Coroutine[object, object, None]) -> None:
    """Runs the coroutine and exits 0 explicitly (the SDK may abort at interpreter exit)."""
    asyncio.run(main)
    sys.exit(0)
