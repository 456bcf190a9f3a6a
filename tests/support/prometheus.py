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


@contextmanager
def prometheus_scraping(*targets: str) -> Iterator[str]:
    """Runs Prometheus scraping `targets` (host:port) every second; yields its base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus not found: install Debian's package (see .ci/run)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kulta-prom-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL}\n"
            f"  evaluation_interval: {SCRAPE_INTERVAL}\n"
            "scrape_configs:\n"
            "- job_name: app\n"
            "  static_configs:\n"
            f"  - targets: [{', '.join(repr(t) for t in targets)}]\n"
        )
        log = open(Path(tmp) / "prometheus.log", "wb")  # noqa: SIM115 - the server writes it
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, proc)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


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
