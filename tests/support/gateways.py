"""A real Gateway API implementation for the tests: Envoy Gateway, built from its Go module by
`scripts/cluster gateway` and run out of cluster against the local control plane.

Each instance serves a GatewayClass of its own (its own controllerName) and keeps its
infrastructure objects in a namespace of its own, with leader election off: instances of
several test runs, or the demo's, never judge each other's routes. It judges every HTTPRoute
change and writes `status.parents[]` as in production; the Envoy proxies it creates are kwok's
pods, so no request flows (route status does not depend on that).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from activities.errors import NotFound
from kulta import envoy_gateway
from tests.support.exporter import free_port
from tests.support.kube import Kube, path_of

GATEWAY_API = "gateway.networking.k8s.io/v1"


def gateway_binary() -> str:
    """Envoy Gateway, built and ready to start; fails with the reason when it cannot be."""
    try:
        return envoy_gateway.binary()
    except envoy_gateway.Unavailable as why:
        raise AssertionError(f"Envoy Gateway cannot run here:\n{why}") from None


class EnvoyGateway:
    def __init__(self, kube: Kube, binary: str, log_dir: Path) -> None:
        self.kube = kube
        self.binary = binary
        self.name = f"kulta-eg-{uuid.uuid4().hex[:8]}"
        self.controller_name = f"kulta.test/{self.name}"
        self.log_dir = log_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._starts = 0

    @property
    def class_name(self) -> str:
        return self.name

    async def start(self) -> None:
        """Starts it (again, after `stop`) and returns once it has accepted its GatewayClass."""
        if self._starts == 0:
            await self._arrange()
        self._starts += 1
        self._spawn()
        await self._until_class_accepted(time.monotonic() + 60)

    def _spawn(self) -> None:
        config = self.log_dir / f"{self.name}.yaml"
        config.write_text(envoy_gateway.config(self.controller_name, free_port()))
        with (self.log_dir / f"{self.name}-{self._starts}.log").open("wb") as log:
            self._proc = subprocess.Popen(
                [self.binary, "server", "--config-path", str(config)],
                env={
                    **os.environ,
                    "KUBECONFIG": self.kube.kubeconfig,
                    "ENVOY_GATEWAY_NAMESPACE": self.name,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL: from here no route is judged until `start`."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    async def close(self) -> None:
        self.stop()
        client = self.kube.client
        for path in (
            path_of("GatewayClass", None, self.name),
            path_of("Namespace", None, self.name),
        ):
            with contextlib.suppress(NotFound):
                await client.delete(path)

    def gateway(self, name: str = "gw") -> dict[str, Any]:
        """A Gateway of this instance's class with one HTTP listener (apply it in a test's
        namespace; routes name it as their parent)."""
        return {
            "apiVersion": GATEWAY_API,
            "kind": "Gateway",
            "metadata": {"name": name},
            "spec": {
                "gatewayClassName": self.class_name,
                "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
            },
        }

    def output(self) -> str:
        logs = sorted(self.log_dir.glob(f"{self.name}-*.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)

    async def _arrange(self) -> None:
        client = self.kube.client
        await client.create(
            path_of("Namespace", None),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.name}},
        )
        await client.create(
            path_of("GatewayClass", None),
            {
                "apiVersion": GATEWAY_API,
                "kind": "GatewayClass",
                "metadata": {"name": self.name},
                "spec": {"controllerName": self.controller_name},
            },
        )

    async def _until_class_accepted(self, deadline: float) -> None:
        path = path_of("GatewayClass", None, self.name)
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise AssertionError(f"Envoy Gateway exited:\n{self.output()[-3000:]}")
            gwc = await self.kube.client.get(path)
            conditions = (gwc.get("status") or {}).get("conditions") or []
            generation = gwc["metadata"].get("generation")
            if (
                any(
                    c.get("type") == "Accepted"
                    and c.get("status") == "True"
                    and c.get("observedGeneration") == generation
                    for c in conditions
                )
                and self._starts_logged()
            ):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Envoy Gateway did not accept {self.name}:\n{self.output()[-3000:]}"
                )
            await asyncio.sleep(0.2)

    def _starts_logged(self) -> bool:
        """This start's controller is up (the class may have been accepted by a former one)."""
        log = self.log_dir / f"{self.name}-{self._starts}.log"
        return "Starting workers" in log.read_text(errors="replace")
