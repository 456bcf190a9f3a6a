"""Fixtures of the integration tier: a test-driven exporter and Debian's Prometheus scraping it,
one pair per test module (Prometheus takes about a second to start)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.exporter import Exporter
from tests.support.prometheus import prometheus_scraping


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    exp = Exporter()
    exp.start()
    yield exp
    exp.stop()


@pytest.fixture(scope="module")
def prometheus_url(exporter: Exporter) -> Iterator[str]:
    with prometheus_scraping(f"127.0.0.1:{exporter.port}") as url:
        yield url
