"""The dashboard's queries against Debian's Prometheus scraping kulta's own metrics, after a
canary through a real Envoy Gateway: every query is valid PromQL that Prometheus evaluates, and
the panels a rollout feeds show data (the weight panel while the canary holds its weight)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY, start_http_server

from activities.naming import ANNOTATION_PROMOTE
from tests.support.dashboard import queries
from tests.support.exporter import free_port
from tests.support.gateways import EnvoyGateway
from tests.support.prometheus import prometheus_scraping
from tests.support.scenario import Scenario

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

# Panels a canary through a Gateway must feed; the others (analysis, failures, restarts) may
# rightly be empty here and are only required to evaluate.
FED = {
    "Rollouts ended (1h)",
    "Steps advanced",
    "Route changes: time to the Gateways' verdict (p50 / p90)",
    "Route changes by verdict",
    "Kubernetes API requests",
    "Memory (RSS)",
    "CPU",
}


@pytest.fixture
def kulta_metrics_url() -> Iterator[str]:
    """This process's registry (the in-process worker and watcher write to it), on HTTP."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(5)


async def test_every_dashboard_query_evaluates_and_a_canary_feeds_its_panels(
    stack: Scenario, gateway: EnvoyGateway, kulta_metrics_url: str
) -> None:
    sc = stack
    with prometheus_scraping(kulta_metrics_url) as prometheus:
        steps = [{"setWeight": 30}, {"pause": {}}, {"setWeight": 100}]
        await sc.create(steps=steps, scale_down_delay=1, abort_delay=1, replicas=4)
        await sc.wait_phase("Completed")
        await sc.set_image("example/app:v2")
        await sc.wait_phase("Paused", "waiting for promotion")
        async with httpx.AsyncClient(base_url=prometheus, timeout=10) as http:
            # The weight panel while the canary holds 30% (the series goes when it ends).
            canary = f'kulta_traffic_weight{{namespace="{sc.namespace}", backend="app-canary"}}'
            await _until_value(http, canary, 30.0)
            await sc.annotate(ANNOTATION_PROMOTE)
            await sc.wait_phase("Completed", "is stable", timeout=60)
            await _until_scraped(http)
            empty = []
            for title, expr in queries():
                answer = (await http.get("/api/v1/query", params={"query": expr})).json()
                assert answer["status"] == "success", (title, expr, answer)
                if title in FED and not answer["data"]["result"]:
                    empty.append((title, expr))
            assert empty == [], empty


async def _until_value(http: httpx.AsyncClient, expr: str, value: float) -> None:
    for _ in range(100):
        result = (await http.get("/api/v1/query", params={"query": expr})).json()["data"]["result"]
        if result and float(result[0]["value"][1]) == value:
            return
        await asyncio.sleep(0.2)
    seen = (await http.get("/api/v1/query", params={"query": "kulta_traffic_weight"})).json()
    raise AssertionError(f"Prometheus never showed {expr} = {value}; it has {seen['data']}")


async def _until_scraped(http: httpx.AsyncClient) -> None:
    """Two scrapes after the rollout ended, so that rates over its counters have two points."""
    query = {"query": "count_over_time(kulta_kube_requests_total[10s])"}
    for _ in range(100):
        result = (await http.get("/api/v1/query", params=query)).json()["data"]["result"]
        if result and min(float(r["value"][1]) for r in result) >= 3:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("Prometheus did not scrape kulta's metrics")
