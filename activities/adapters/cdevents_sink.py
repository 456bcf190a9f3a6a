"""POSTs structured-mode CloudEvents to the configured sink, through one httpx client."""

from __future__ import annotations

from typing import Any

import httpx

from activities.cdevents import structured
from activities.errors import Unavailable


class HttpCDEventSink:
    def __init__(self, url: str, timeout_seconds: float = 5.0) -> None:
        self._url = url
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, cdevent: dict[str, Any]) -> None:
        """Raises Unavailable when the sink does not take the event (no answer, or not 2xx)."""
        headers, body = structured(cdevent)
        try:
            response = await self._http.post(self._url, content=body, headers=headers)
        except httpx.TransportError as err:
            raise Unavailable(f"CDEvents sink did not answer: {err!r}") from err
        if not response.is_success:
            raise Unavailable(f"CDEvents sink answered {response.status_code}")
