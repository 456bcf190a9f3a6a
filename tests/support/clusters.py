"""A second local control plane: `scripts/cluster` on free ports with a state directory of its
own, beside the default instance (tests of Releases across clusters, the side-by-side
benchmark)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support.exporter import free_port
from tests.support.kube import ROOT


class LocalCluster:
    def __init__(self, state: Path, audit_log: Path | None = None) -> None:
        self.state = state
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "KULTA_CLUSTER_DIR": str(self.state),
            "KULTA_APISERVER_PORT": str(self.api_port),
            "KULTA_ETCD_PORT": str(_free_pair()),
            "KULTA_KCM_PORT": str(free_port()),
            "KULTA_SCHEDULER_PORT": str(free_port()),
            "KULTA_KWOK_PORT": str(free_port()),
        }
        if audit_log is not None:
            self.env["KULTA_AUDIT_LOG"] = str(audit_log)

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    def __enter__(self) -> Self:
        self._cluster("up")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._cluster("down")

    def _cluster(self, command: str) -> None:
        subprocess.run([str(ROOT / "scripts" / "cluster"), command], env=self.env, check=True)


def _free_pair() -> int:
    """A free port whose successor is free too (etcd's peer port is the client port + 1)."""
    while True:
        port = free_port()
        if port < 65535 and _is_free(port + 1):
            return port


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
