"""Connecting to Temporal the same way from every process (worker, watcher, CLI, tests)."""

from __future__ import annotations

import logging
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


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None
