"""What every kulta process shares: its flags, settings, logs, health endpoints, readiness
probes, metrics (kulta's and the Temporal SDK's) and signal handling."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager

import httpx
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from kulta import logs
from kulta import settings as settings_module
from kulta.health import HealthServer

log = logging.getLogger("kulta.process")


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
    """Settings from the environment and flags; a bad value exits 2 naming the variable.
    Logging is configured from them (KULTA_LOG_FORMAT, KULTA_LOG_LEVEL)."""
    try:
        loaded = settings_module.load(
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
    logs.configure(loaded.log_format, loaded.log_level)
    return loaded


Probe = Callable[[], Awaitable[object]]
PROBE_INTERVAL = 5.0


@asynccontextmanager
async def serving(
    settings: settings_module.Settings,
    probes: dict[str, Probe] | None = None,
    sdk_metrics_url: str | None = None,
    alive: Callable[[], bool] = lambda: True,
    recheck: asyncio.Event | None = None,
) -> AsyncIterator[asyncio.Event]:
    """Health endpoints up, SIGTERM/SIGINT wired; yields the event that says "stop now".

    Ready while every probe (Temporal, the API server) answered within the last interval, and
    not once a stop is requested, so traffic and new work drain first. Setting `recheck` runs
    the probes at once (a connection just made is ready now, not an interval later).
    """
    stopping = asyncio.Event()
    failing: set[str] = set(probes or {})
    http = httpx.AsyncClient(timeout=2)

    async def sdk_metrics() -> bytes:
        try:
            return (await http.get(sdk_metrics_url or "")).content
        except httpx.HTTPError:
            return b""

    health = HealthServer(
        settings.http_port,
        ready=lambda: not stopping.is_set() and not failing,
        extra_metrics=sdk_metrics if sdk_metrics_url else None,
        alive=alive,
    )
    await health.start()
    prober = asyncio.create_task(_probe_forever(probes or {}, failing, recheck or asyncio.Event()))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        yield stopping
    finally:
        prober.cancel()
        await asyncio.gather(prober, return_exceptions=True)
        await health.stop()
        await http.aclose()


async def _probe_forever(
    probes: dict[str, Probe], failing: set[str], recheck: asyncio.Event
) -> None:
    while True:
        for name, probe in probes.items():
            try:
                await asyncio.wait_for(probe(), PROBE_INTERVAL)
            except Exception as err:  # any failure means "not ready"; say which and why
                if name not in failing:
                    log.warning("not ready: %s probe failed: %r", name, err)
                failing.add(name)
            else:
                if name in failing:
                    log.info("%s reachable", name)
                failing.discard(name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recheck.wait(), PROBE_INTERVAL)
        recheck.clear()


def sdk_runtime() -> tuple[Runtime, str]:
    """A Temporal runtime exporting the SDK's metrics on a free loopback port; its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"127.0.0.1:{port}",
                counters_total_suffix=True,
                durations_as_seconds=True,
            )
        )
    )
    return runtime, f"http://127.0.0.1:{port}/metrics"


async def unless_stopped(work: Awaitable[None], stopping: asyncio.Event) -> bool:
    """Awaits `work` unless a stop comes first (then cancels it); True when `work` finished."""
    task = asyncio.ensure_future(work)
    stop = asyncio.create_task(stopping.wait())
    await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, stop):
        pending.cancel()
    await asyncio.gather(task, stop, return_exceptions=True)
    if task.cancelled():
        return False
    if (failure := task.exception()) is not None:
        raise failure
    return True


def run_and_exit(main: Coroutine[object, object, int | None]) -> None:
    """Runs the coroutine, then exits with its status without finalizing the interpreter.

    By then everything was shut down in order (the worker drained, connections closed). What
    is left are the Temporal SDK's native threads, which may still call into Python: during
    interpreter finalization that aborted the process ("PyGILState_Release ... finalizing",
    or SIGSEGV) after about one SIGTERM in eight. `os._exit` after flushing skips finalization,
    so a clean stop is always exit 0.
    """
    try:
        status = asyncio.run(main) or 0
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        logging.getLogger("kulta").exception("stopped by an error")
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
