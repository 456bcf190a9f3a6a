"""`/healthz`, `/readyz` and `/metrics` on one port, served by asyncio alone.

Liveness means the process answers and its main loop moves (`alive`); readiness is a callable
the process sets (connected to Temporal and the API server, not shutting down). `/metrics` is
kulta's registry followed by `extra_metrics` (the Temporal SDK's own, which the SDK serves on a
loopback port of its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


class HealthServer:
    def __init__(
        self,
        port: int,
        ready: Callable[[], bool],
        host: str = "0.0.0.0",
        extra_metrics: Callable[[], Awaitable[bytes]] | None = None,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self._port = port
        self._alive = alive
        self._host = host
        self._ready = ready
        self._extra_metrics = extra_metrics
        self._server: asyncio.base_events.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path == "/healthz":
                status, body, ctype = (
                    (200, b"ok\n", "text/plain")
                    if self._alive()
                    else (503, b"stalled\n", "text/plain")
                )
            elif path == "/readyz":
                ok = self._ready()
                status, body, ctype = (
                    (200, b"ok\n", "text/plain") if ok else (503, b"not ready\n", "text/plain")
                )
            elif path == "/metrics":
                body = generate_latest(REGISTRY)
                if self._extra_metrics is not None:
                    body += await self._extra_metrics()
                status, ctype = 200, CONTENT_TYPE_LATEST
            else:
                status, body, ctype = 404, b"not found\n", "text/plain"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
