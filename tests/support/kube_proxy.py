"""A small HTTP proxy in front of the real API server that injects faults on request: error
statuses (409 conflicts, 500s), hangs, watch connections dropped mid-stream, and 410 Gone on a
watch resume. Everything else passes through unchanged (the client's own bearer token included),
so RBAC and validation stay real.

Plain HTTP on 127.0.0.1 towards the client, TLS towards the API server. Responses are always
chunked, which serves plain requests and streaming watches alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from dataclasses import dataclass, field
from typing import Literal

import httpx

from activities.adapters.kube import KubeCredentials

FaultKind = Literal["status", "hang", "drop", "gone"]
_REASONS = {
    409: "Conflict",
    500: "InternalError",
    503: "ServiceUnavailable",
    429: "TooManyRequests",
}
_FORWARDED = ("authorization", "content-type", "accept")


@dataclass
class Fault:
    """Injected on the next `times` requests whose verb is `verb` (GET, PUT, PATCH, POST, DELETE,
    or WATCH for watches) and whose path contains `path`."""

    kind: FaultKind
    verb: str
    path: str
    times: int = 1
    code: int = 500  # for "status"
    seconds: float = 5.0  # for "hang"
    every: int = 1  # inject on every n-th matching request only (the others pass)
    hits: int = 0
    matched: int = 0

    def matches(self, verb: str, path: str) -> bool:
        return self.hits < self.times and verb == self.verb and self.path in path


@dataclass
class FaultProxy:
    upstream: KubeCredentials
    faults: list[Fault] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # every request, as "VERB path"

    async def __aenter__(self) -> FaultProxy:
        context = ssl.create_default_context(cafile=self.upstream.ca_file)
        self._http = httpx.AsyncClient(
            base_url=self.upstream.server, verify=context, timeout=httpx.Timeout(30, read=None)
        )
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)
        await self._http.aclose()

    def credentials(self, token: str | None) -> KubeCredentials:
        """Credentials that reach the API server through this proxy with `token`."""
        return KubeCredentials(server=self.url, token=token, verify=False)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, httpx.HTTPError):
            pass  # either side went away: so does this connection
        finally:
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        line = await reader.readline()
        if not line:
            return False
        method, target, _ = line.decode().split(" ", 2)
        headers: dict[str, str] = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        path, _, query = target.partition("?")
        verb = "WATCH" if "watch=1" in query or "watch=true" in query else method
        self.seen.append(f"{verb} {path}")
        fault = self._fault_for(verb, path)
        if fault is not None:
            fault.hits += 1
            self.injected.append(
                f"{fault.kind} {fault.code if fault.kind == 'status' else ''} "
                f"{verb} {path}".replace("  ", " ")
            )
            return await self._inject(fault, method, target, headers, body, writer)
        await self._forward(method, target, headers, body, writer)
        return True

    def _fault_for(self, verb: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(verb, path):
                fault.matched += 1
                if fault.matched % fault.every == 0:
                    return fault
        return None

    async def _inject(
        self,
        fault: Fault,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if fault.kind == "status":
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "code": fault.code,
                "reason": _REASONS.get(fault.code, "InternalError"),
                "message": f"injected {fault.code} by the fault proxy",
            }
            await self._respond(writer, fault.code, [json.dumps(status).encode()])
            return True
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            return False  # then the connection just closes, without an answer
        if fault.kind == "gone":
            expired = {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "code": 410,
                    "reason": "Expired",
                    "message": "too old resource version (injected by the fault proxy)",
                },
            }
            await self._respond(writer, 200, [json.dumps(expired).encode() + b"\n"])
            return True
        # drop: pass the watch through until its first event, then cut the connection.
        await self._forward(method, target, headers, body, writer, cut_after_first=True)
        return False

    async def _forward(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
        *,
        cut_after_first: bool = False,
    ) -> None:
        upstream_headers = {k: v for k, v in headers.items() if k in _FORWARDED}
        request = self._http.build_request(
            method, target, headers=upstream_headers, content=body or None
        )
        response = await self._http.send(request, stream=True)
        try:
            writer.write(
                f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n"
                f"Content-Type: {response.headers.get('content-type', 'application/json')}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n".encode()
            )
            async for chunk in response.aiter_bytes():
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                if cut_after_first:
                    return  # no closing chunk: the client sees the stream break
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            await response.aclose()

    async def _respond(self, writer: asyncio.StreamWriter, code: int, chunks: list[bytes]) -> None:
        writer.write(
            f"HTTP/1.1 {code} {_REASONS.get(code, 'OK')}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for chunk in chunks:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
