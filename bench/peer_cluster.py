"""A local control plane of the side-by-side benchmark's own: `scripts/cluster` on free ports and
a state directory apart from the default instance, with an audit log, and one client
certificate per controller process so the log tells their requests apart."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support.clusters import LocalCluster
from tests.support.kube import ROOT

IDENTITY_PREFIX = "bench-"


class PeerCluster(LocalCluster):
    def __init__(self, work: Path) -> None:
        self.audit_log = work / "audit.log"
        self.identities = work / "identities"
        super().__init__(work / "cluster", audit_log=self.audit_log)

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
