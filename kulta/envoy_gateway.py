"""Envoy Gateway as the local stack runs it (the demo's and the tests' instances): built by
`scripts/cluster gateway`, run out of cluster against the local control plane with a
configuration that lets several instances run side by side."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Unavailable(Exception):
    """Envoy Gateway cannot run on this machine (not built, or no certificate in /certs)."""


def binary() -> str:
    """Builds Envoy Gateway if needed (cached under ~/.cache/kulta), gives it its certificate
    and returns its path."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "cluster"), "gateway"], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise Unavailable(done.stderr.strip())
    return done.stdout.strip().splitlines()[-1]


def config(controller_name: str, admin_port: int) -> str:
    """Its configuration: leader election off (one instance per GatewayClass), and off too
    what listens on a fixed port and is not needed here: the proxies' topology webhook (:9443;
    the key is `disabled`) and the metrics server (:19001). The admin server takes
    `admin_port`. The xDS server's port (18000) cannot be set: a second instance logs that it
    is taken and goes on, as no proxy connects here. The provider logs at info: the tests read
    its "Starting workers"."""
    return f"""apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyGateway
gateway:
  controllerName: {controller_name}
provider:
  type: Kubernetes
  kubernetes:
    leaderElection:
      disable: true
    proxyTopologyInjector:
      disabled: true
telemetry:
  metrics:
    prometheus:
      disable: true
admin:
  address:
    host: 127.0.0.1
    port: {admin_port}
logging:
  level:
    default: warn
    provider: info
"""
