"""A local control plane of the side-by-side benchmark's own: `scripts/cluster` on free ports and
a state directory apart from the default instance, with an audit log, and one client
certificate per controller process so the log tells their requests apart."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from types import TracebackType

import yaml

from tests.support.exporter import free_port
from tests.support.kube import ROOT

IDENTITY_PREFIX = "bench-"


class PeerCluster:
    def __init__(self, work: Path) -> None:
        self.state = work / "cluster"
        self.audit_log = work / "audit.log"
        self.identities = work / "identities"
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "KULTA_CLUSTER_DIR": str(self.state),
            "KULTA_AUDIT_LOG": str(self.audit_log),
            "KULTA_APISERVER_PORT": str(self.api_port),
            "KULTA_ETCD_PORT": str(_free_pair()),
            "KULTA_KCM_PORT": str(free_port()),
            "KULTA_SCHEDULER_PORT": str(free_port()),
            "KULTA_KWOK_PORT": str(free_port()),
        }

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    def __enter__(self) -> PeerCluster:
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

    def kubectl(self, *args: str) -> None:
        venv = ROOT / ".venv" / "bin" / "kubectl"
        binary = str(venv) if venv.exists() else "kubectl"
        subprocess.run(
            [binary, "--kubeconfig", str(self.admin_kubeconfig), *args],
            check=True,
            capture_output=True,
        )

    def identity(self, name: str) -> Path:
        """A kubeconfig for user `bench-<name>` (group system:masters, like the admin the other
        benchmarks give kulta: no RBAC cost difference between the systems)."""
        pki, out = self.state / "pki", self.identities
        out.mkdir(parents=True, exist_ok=True)
        key, csr, crt = (out / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
        user = f"{IDENTITY_PREFIX}{name}"
        subprocess.run(
            [
                "openssl",
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                f"/O=system:masters/CN={user}",
                "-keyout",
                str(key),
                "-out",
                str(csr),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                str(csr),
                "-CA",
                str(pki / "ca.crt"),
                "-CAkey",
                str(pki / "ca.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                str(pki / "client.ext"),
                "-out",
                str(crt),
            ],
            check=True,
            capture_output=True,
        )
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "peer",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.api_port}",
                        "certificate-authority": str(pki / "ca.crt"),
                    },
                }
            ],
            "users": [
                {"name": user, "user": {"client-certificate": str(crt), "client-key": str(key)}}
            ],
            "contexts": [{"name": "peer", "context": {"cluster": "peer", "user": user}}],
            "current-context": "peer",
        }
        path = out / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path


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
