"""Debian's Prometheus, started by the tests on loopback with a generated config."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.exporter import free_port

SCRAPE_INTERVAL = "1s"


class PrometheusServer:
    """Debian's Prometheus scraping `targets` (host:port) every second, on a loopback port."""

    def __init__(self, *targets: str) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus not found: install Debian's package (see .ci/run)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="kulta-prom-")
        tmp = Path(self._dir.name)
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL}\n"
            f"  evaluation_interval: {SCRAPE_INTERVAL}\n"
            "scrape_configs:\n"
            "- job_name: app\n"
            "  static_configs:\n"
            f"  - targets: [{', '.join(repr(t) for t in targets)}]\n"
        )
        self._log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - the server writes it
        self._proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(self.url, self._proc)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        self._dir.cleanup()


@contextmanager
def prometheus_scraping(*targets: str) -> Iterator[str]:
    """Runs Prometheus scraping `targets` for the block; yields its base URL."""
    server = PrometheusServer(*targets)
    try:
        yield server.url
    finally:
        server.stop()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("prometheus did not become ready")
