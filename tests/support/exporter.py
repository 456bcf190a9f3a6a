"""A small HTTP exporter whose request counts and latencies the test sets, for Prometheus to scrape.

Series, labelled like a real workload's scraped by pod (kulta's label convention):
  http_requests_total{namespace, service, revision, status}
  http_request_duration_seconds_bucket{namespace, service, revision, le}
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Exporter:
    port: int = field(default_factory=free_port)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "http_requests",
            "Requests served, by status.",
            ["namespace", "service", "revision", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Request latency.",
            ["namespace", "service", "revision"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self._server: WSGIServer | None = None
        self._thread: Thread | None = None

    def start(self) -> None:
        self._server, self._thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def serve(
        self,
        namespace: str,
        service: str,
        revision: str,
        *,
        ok: int = 0,
        errors: int = 0,
        seconds: float = 0.01,
    ) -> None:
        """Records `ok` 200s and `errors` 500s, each taking `seconds`."""
        if ok:
            self.requests.labels(namespace, service, revision, "200").inc(ok)
        if errors:
            self.requests.labels(namespace, service, revision, "500").inc(errors)
        for _ in range(ok + errors):
            self.latency.labels(namespace, service, revision).observe(seconds)


@dataclass
class Traffic:
    """Requests by revision, recorded on the exporter every `period` seconds while `run` runs:
    100 each time, of which `error_percent[revision]` fail with 500."""

    exporter: Exporter
    namespace: str
    error_percent: dict[str, int] = field(default_factory=dict)
    service: str = "app"
    period: float = 0.25

    async def run(self) -> None:
        while True:
            for revision, errors in list(self.error_percent.items()):
                self.exporter.serve(
                    self.namespace, self.service, revision, ok=100 - errors, errors=errors
                )
            await asyncio.sleep(self.period)
