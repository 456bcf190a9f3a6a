"""A kulta worker for a test or benchmark: the production workflow and activities on a task
queue of its own, authenticated as kulta's worker ServiceAccount."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.client import Client
from temporalio.worker import Worker

from activities.adapters.cdevents_sink import HttpCDEventSink
from activities.adapters.occurrence_log import OccurrenceLog
from activities.adapters.prometheus import PrometheusClient
from activities.ports import ProportionSource
from kulta.worker import build_worker
from tests.support.kube import Kube


@asynccontextmanager
async def running_worker(
    client: Client,
    kube: Kube,
    proportions: ProportionSource | None = None,
    prometheus: PrometheusClient | None = None,
    min_window_seconds: int = 5,
    cdevents_url: str | None = None,
    occurrences: OccurrenceLog | None = None,
) -> AsyncIterator[Worker]:
    """A worker on a task queue of its own, with the production workflow and activities."""
    sink = HttpCDEventSink(cdevents_url) if cdevents_url else None
    worker = build_worker(
        client,
        kube.as_worker,
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        proportions=proportions,
        prometheus=prometheus,
        min_window_seconds=min_window_seconds,  # the test Prometheus scrapes every second
        cdevents=sink,
        occurrences=occurrences,
        sandboxed=True,  # the suite checks determinism at run time (kulta/worker.py)
        workflow_url="http://localhost:8233/namespaces/default/workflows/",
    )
    try:
        async with worker:
            yield worker
    finally:
        if sink is not None:
            await sink.aclose()
