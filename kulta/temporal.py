"""Connecting to Temporal the same way from every process (worker, watcher, CLI, tests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from activities.naming import SEARCH_ATTRIBUTES
from kulta.settings import Settings

log = logging.getLogger(__name__)


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client with the pydantic converter (a client does not inherit one from anywhere);
    `runtime` carries the SDK's telemetry (see kulta.process.sdk_runtime)."""
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert or settings.temporal_tls_ca:
        tls = TLSConfig(
            client_cert=_read(settings.temporal_tls_cert),
            client_private_key=_read(settings.temporal_tls_key),
            server_root_ca_cert=_read(settings.temporal_tls_ca),
        )
    elif settings.temporal_api_key:
        tls = True
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=tls,
        api_key=settings.temporal_api_key,
        runtime=runtime,
    )


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Registers kulta's Keyword search attributes; a workflow that upserts an unknown one
    fails its task forever, so this runs before the worker takes work."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for name in SEARCH_ATTRIBUTES
        if name not in existing.custom_attributes
    }
    if missing:
        log.info("registering search attributes %s", ", ".join(sorted(missing)))
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )


class TemporalConnection:
    """A process's client, once Temporal answers.

    A worker or watcher may start before Temporal is reachable (a cluster booting, the server
    restarting, a new pod scheduled mid-outage). It then waits, saying so in its log and on
    /readyz, instead of exiting: an exit would put the pod into CrashLoopBackOff, whose back-off
    (up to five minutes) outlasts the outage. `prepare` runs once per connection before it
    counts as made (the worker registers its search attributes there).
    """

    MAX_DELAY_SECONDS = 10.0

    def __init__(
        self,
        settings: Settings,
        runtime: Runtime | None = None,
        prepare: Callable[[Client], Awaitable[None]] | None = None,
    ) -> None:
        self._settings, self._runtime, self._prepare = settings, runtime, prepare
        self.client: Client | None = None
        # Set on connecting, so the readiness probes run at once (kulta.process.serving clears it).
        self.just_connected = asyncio.Event()

    async def check_health(self) -> None:
        """The readiness probe: fails until connected, then asks the server."""
        if self.client is None:
            raise ConnectionError(f"not connected to Temporal at {self._settings.temporal_address}")
        await self.client.service_client.check_health()

    async def establish(self) -> None:
        """Connects, retrying with a doubling delay (up to MAX_DELAY_SECONDS) and a warning
        for every failed attempt; returns once `client` is set."""
        delay, failures = 0.5, 0
        while True:
            try:
                client = await connect(self._settings, self._runtime)
                if self._prepare is not None:
                    await self._prepare(client)
            except Exception as err:  # the SDK raises RuntimeError or RPCError: all mean "not yet"
                failures += 1
                log.warning(
                    "Temporal at %s not reachable (attempt %d: %s); retrying in %.1f s",
                    self._settings.temporal_address,
                    failures,
                    err,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.MAX_DELAY_SECONDS)
                continue
            if failures:
                log.info("connected to Temporal at %s", self._settings.temporal_address)
            self.client = client
            self.just_connected.set()
            return


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None
