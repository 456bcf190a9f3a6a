"""A local HTTP receiver for CDEvents: records every structured-mode CloudEvent POSTed to it.

`refuse` makes it answer 500 to that many requests first (recorded all the same, as a sink that
took the event but whose answer was lost), so tests can see retries repeat the same id.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    content_type: str
    cloud_event: dict[str, Any]
    answered: int

    @property
    def cdevent(self) -> dict[str, Any]:
        data: dict[str, Any] = self.cloud_event["data"]
        return data

    @property
    def id(self) -> str:
        return str(self.cdevent["context"]["id"])

    @property
    def kind(self) -> str:
        """deployed, upgraded, rolledback or published (a service event's predicate)."""
        return str(self.cdevent["context"]["type"]).split(".")[3]

    @property
    def subject_and_kind(self) -> str:
        """`pipelinerun.started`, `taskrun.finished`, `service.deployed`..."""
        return ".".join(str(self.cdevent["context"]["type"]).split(".")[2:4])


@dataclass
class CDEventReceiver:
    refuse: int = 0
    received: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/events"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def accepted(self, subject: str) -> list[Received]:
        """Events about `namespace/name` the receiver answered 2xx, in arrival order."""
        return [
            r for r in self.received if r.answered == 202 and r.cdevent["subject"]["id"] == subject
        ]

    async def wait_for(self, subject: str, kinds: list[str], timeout: float = 30) -> None:
        async def run() -> None:
            while [r.kind for r in self.accepted(subject)] != kinds:
                self._arrived.clear()
                await self._arrived.wait()

        try:
            await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            seen = [r.kind for r in self.accepted(subject)]
            raise AssertionError(f"CDEvents for {subject}: wanted {kinds}, got {seen}") from None

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers: dict[str, str] = {}
        await reader.readline()
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        status = 500 if self.refuse > 0 else 202
        self.refuse = max(0, self.refuse - 1)
        self.received.append(Received(headers.get("content-type", ""), json.loads(body), status))
        self._arrived.set()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()
