"""kulta's own executables (`kulta-worker`, `kulta-watcher`) as real child processes, for tests
that send real signals and benchmarks that read memory and CPU from /proc."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import proc_stats
from tests.support.exporter import free_port
from tests.support.kube import Kube, service_account_credentials, write_token_kubeconfig


class KultaProcess:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        binary = Path(sys.executable).parent / name
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [str(binary)], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def peak_rss_mb(self) -> float:
        return proc_stats.peak_rss_mb(self.proc.pid)

    def cpu_seconds(self) -> float:
        return proc_stats.cpu_seconds(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when a node dies."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited in `timeout`; the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


class WorkerProcesses:
    """Starts real `kulta-worker` processes one after another on one task queue (`env`), each
    on a free health port, logging to `tmp`."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env, self.tmp, self.started = env, tmp, 0

    def start(self) -> tuple[KultaProcess, int]:
        self.started += 1
        port = free_port()
        worker = KultaProcess(
            "kulta-worker",
            {**self.env, "KULTA_HTTP_PORT": str(port)},
            self.tmp / f"worker-{self.started}.log",
        )
        return worker, port


async def until_ready(port: int, timeout: float = 30, probe: str = "/readyz") -> None:
    """Returns once the process on `port` answers `probe` (/readyz, or /healthz: alive)
    with 200."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            try:
                if (await http.get(f"http://127.0.0.1:{port}{probe}")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"process on port {port} never answered {probe}"
            await asyncio.sleep(0.2)


async def until_logged(processes: list[KultaProcess], text: str, timeout: float = 30) -> None:
    """Returns once every process has logged `text`."""
    deadline = time.monotonic() + timeout
    while not all(text in p.output() for p in processes):
        assert time.monotonic() < deadline, f"no {text!r} in: " + " | ".join(
            p.output()[-500:] for p in processes
        )
        await asyncio.sleep(0.2)


async def worker_environment(
    kube: Kube, temporal_address: str, task_queue: str, tmp: Path
) -> dict[str, str]:
    """The environment of a `kulta-worker` child: this Temporal, this task queue, and the
    kulta-worker ServiceAccount's token (RBAC as deployed)."""
    credentials = await service_account_credentials(kube.client, "kulta-worker")
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_address,
        "KUBECONFIG": str(write_token_kubeconfig(credentials, tmp / "worker.kubeconfig")),
        "KULTA_TASK_QUEUE": task_queue,
        "KULTA_OCCURRENCE_DIR": str(tmp / "occurrences"),
    }
