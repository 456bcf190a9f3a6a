"""Prometheus' HTTP query API, through one shared httpx client.

Errors are mapped here and nowhere else: a query Prometheus cannot parse (HTTP 400/422,
errorType bad_data) is `BadQuery`, a configuration error that retrying cannot fix; timeouts,
5xx, `errorType: unavailable` and malformed answers are `Unavailable`, which the analysis spends
from its error budget. NaN and empty vectors are data ("no value"), not errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import httpx

from activities.errors import BadInput, Unavailable


class BadQuery(BadInput):
    """Prometheus rejected the query itself (syntax, unknown function, bad duration)."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float | None  # None for NaN and infinities: there is no usable value


@dataclass(frozen=True)
class PrometheusConfig:
    address: str
    timeout_seconds: float = 10.0
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    ca_file: str | None = None
    cert_file: str | None = None  # a client certificate (mutual TLS), with key_file
    key_file: str | None = None


class PrometheusClient:
    def __init__(self, config: PrometheusConfig) -> None:
        headers = {"Accept": "application/json"}
        if config.bearer_token:
            headers["Authorization"] = f"Bearer {config.bearer_token}"
        self._http = httpx.AsyncClient(
            base_url=config.address.rstrip("/"),
            headers=headers,
            auth=httpx.BasicAuth(*config.basic_auth) if config.basic_auth else None,
            verify=config.ca_file or True,
            cert=(config.cert_file, config.key_file)
            if config.cert_file and config.key_file
            else config.cert_file,
            timeout=httpx.Timeout(config.timeout_seconds),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        """An instant query; a scalar result comes back as one sample without labels."""
        form = {"query": promql}
        if at is not None:
            form["time"] = f"{at.timestamp():.3f}"
        try:
            response = await self._http.post("/api/v1/query", data=form)
        except httpx.TransportError as err:
            raise Unavailable(f"Prometheus did not answer: {err!r}") from err
        try:
            body = response.json()
        except ValueError:
            raise Unavailable(
                f"Prometheus answered {response.status_code} with a body that is not JSON"
            ) from None
        if not isinstance(body, dict):
            raise Unavailable("Prometheus answered with unexpected JSON")
        if response.status_code in (400, 422) or body.get("errorType") == "bad_data":
            raise BadQuery(f"Prometheus rejected the query {promql!r}: {body.get('error', body)}")
        if response.status_code >= 300 or body.get("status") != "success":
            kind = body.get("errorType", response.status_code)
            raise Unavailable(f"Prometheus query failed ({kind}): {body.get('error', '')}")
        return _samples(body.get("data") or {})


def _samples(data: dict[str, object]) -> list[Sample]:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        return [Sample(labels={}, value=_number(result[1]))]
    if kind == "vector" and isinstance(result, list):
        return [
            Sample(labels=dict(item.get("metric") or {}), value=_number(item["value"][1]))
            for item in result
            if isinstance(item, dict)
        ]
    raise Unavailable(f"Prometheus returned a {kind} result; analysis needs an instant vector")


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return None if math.isnan(value) or math.isinf(value) else value
