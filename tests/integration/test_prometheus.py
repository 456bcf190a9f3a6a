"""The Prometheus adapter against Debian's real Prometheus scraping a test-controlled exporter.

Faults the real server cannot be made to produce on demand (a 503 with errorType, a body that is
not JSON) come from a local fake HTTP server, named as such.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from activities.adapters.prometheus import BadQuery, PrometheusClient, PrometheusConfig, Sample
from activities.contracts import (
    ExperimentMetric,
    MeasureMetricInput,
    MetricCheck,
    ProportionRequest,
    Variant,
)
from activities.errors import BadInput, Unavailable
from activities.metrics import MetricActivities
from activities.proportions import PrometheusProportions
from tests.support.exporter import Exporter, free_port


@pytest.fixture
async def prometheus(prometheus_url: str) -> AsyncIterator[PrometheusClient]:
    client = PrometheusClient(PrometheusConfig(address=prometheus_url, timeout_seconds=5))
    yield client
    await client.aclose()


async def scraped(client: PrometheusClient, query: str, timeout: float = 20) -> list[Sample]:
    """The query's samples once Prometheus has scraped them (it scrapes every second)."""

    async def run() -> list[Sample]:
        # Prometheus offers no notification of a scrape; asking again is how one learns of it.
        while not (samples := await client.query(query)):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        return samples

    return await asyncio.wait_for(run(), timeout)


async def test_error_ratio_from_scraped_counters(
    exporter: Exporter, prometheus: PrometheusClient
) -> None:
    exporter.serve("ns", "web", "r1", ok=90, errors=10)
    [sample] = await scraped(
        prometheus,
        'sum(http_requests_total{service="web",status="500"})'
        ' / sum(http_requests_total{service="web"})',
    )
    assert sample.value == pytest.approx(0.1)


async def test_empty_vector_is_no_samples(prometheus: PrometheusClient) -> None:
    assert await prometheus.query('http_requests_total{service="nobody"}') == []


async def test_nan_is_no_value(prometheus: PrometheusClient) -> None:
    [sample] = await prometheus.query("vector(0) / vector(0)")
    assert sample.value is None


async def test_syntax_error_is_a_bad_query(prometheus: PrometheusClient) -> None:
    with pytest.raises(BadQuery, match="rejected the query"):
        await prometheus.query("sum(rate(http_requests_total[1m]")


async def test_stopped_server_is_unavailable() -> None:
    client = PrometheusClient(
        PrometheusConfig(address=f"http://127.0.0.1:{free_port()}", timeout_seconds=2)
    )
    try:
        with pytest.raises(Unavailable, match="did not answer"):
            await client.query("up")
    finally:
        await client.aclose()


async def fake_prometheus(status: int, body: bytes) -> tuple[asyncio.Server, str]:
    """A fake HTTP server answering every request with `status` and `body`."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (503, b'{"status":"error","errorType":"unavailable","error":"overloaded"}', "unavailable"),
        (200, b"<html>proxy error</html>", "not JSON"),
        (200, b'{"status":"success","data":{"resultType":"matrix","result":[]}}', "instant vector"),
    ],
)
async def test_provider_faults_are_unavailable(status: int, body: bytes, match: str) -> None:
    server, url = await fake_prometheus(status, body)
    client = PrometheusClient(PrometheusConfig(address=url, timeout_seconds=2))
    try:
        with pytest.raises(Unavailable, match=match):
            await client.query("up")
    finally:
        await client.aclose()
        server.close()


async def test_measure_metric_judges_a_real_value(
    exporter: Exporter, prometheus: PrometheusClient
) -> None:
    exporter.serve("ns", "svc", "rev-bad", ok=90, errors=10)
    ratio = (
        'sum(http_requests_total{revision="{{revision}}",status="500"})'
        ' / sum(http_requests_total{revision="{{revision}}"})'
    )
    await scraped(prometheus, 'http_requests_total{revision="rev-bad"}')
    measure = MetricActivities(prometheus).measure
    failed = await measure(
        MeasureMetricInput(
            metric=MetricCheck(name="errors", query=ratio, max=0.05),
            variables={"revision": "rev-bad", "interval": "1m"},
        )
    )
    assert failed.verdict == "Failed" and failed.value == pytest.approx(0.1)
    assert failed.message == "metric errors value 0.1 above threshold 0.05"
    assert 'revision="rev-bad"' in failed.query


async def test_measure_metric_empty_vector_is_inconclusive(prometheus: PrometheusClient) -> None:
    result = await MetricActivities(prometheus).measure(
        MeasureMetricInput(
            metric=MetricCheck(name="error-rate", max=5),
            variables={"namespace": "ns", "revision": "no-such-revision", "interval": "1m"},
        )
    )
    assert result.verdict == "Inconclusive" and "no data" in result.message


async def test_measure_metric_rejected_query_is_invalid(prometheus: PrometheusClient) -> None:
    result = await MetricActivities(prometheus).measure(
        MeasureMetricInput(metric=MetricCheck(name="x", query="sum(up", max=1), variables={})
    )
    assert result.verdict == "Invalid" and "rejected the query" in result.message


async def test_experiment_counts_from_scraped_counters(
    exporter: Exporter, prometheus: PrometheusClient
) -> None:
    """Counts since the experiment started, by revision."""
    since = datetime.now(UTC)
    for revision in ("ab-a", "ab-b"):
        exporter.requests.labels("ns", "web", revision, "200").inc(0)  # series exist at 0 first
        exporter.requests.labels("ns", "web", revision, "500").inc(0)
    await scraped(prometheus, 'http_requests_total{revision="ab-b"}')
    await asyncio.sleep(1.2)  # one more scrape at 0
    exporter.serve("ns", "web", "ab-a", ok=900, errors=100)
    exporter.serve("ns", "web", "ab-b", ok=950, errors=50)
    exporter.serve("elsewhere", "web", "ab-b", ok=0, errors=1000)  # not this namespace: ignored
    await asyncio.sleep(2.5)  # scraped at least twice since
    source = PrometheusProportions(prometheus)

    def request(revision: str, name: str = "error-rate") -> ProportionRequest:
        return ProportionRequest(
            namespace="ns",
            rollout="web",
            metric=ExperimentMetric(name=name),
            variant=Variant(service="web", revision=revision),
            since=since.isoformat(),
        )

    a = await source.proportion(request("ab-a"))
    b = await source.proportion(request("ab-b"))
    assert a is not None and b is not None
    # increase() extrapolates to the window's edges: over a few seconds the counts run high (over
    # an experiment's hours that vanishes); the rates, which the Z-test compares, hold.
    assert 900 <= a.trials <= 1500 and a.rate == pytest.approx(0.10, abs=0.01)
    assert 900 <= b.trials <= 1500 and b.rate == pytest.approx(0.05, abs=0.01)
    assert await source.proportion(request("ab-nobody")) is None  # no requests: no data
    with pytest.raises(BadInput, match="not a built-in"):
        await source.proportion(request("ab-a", name="revenue"))
