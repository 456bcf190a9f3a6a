"""`kubectl kulta ...`: kubectl finds the `kubectl-kulta` entry point on PATH and runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_kubectl_runs_kulta_as_a_plugin() -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(BIN / "kubectl"), "kulta", "version"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    direct = subprocess.run([str(BIN / "kulta"), "version"], capture_output=True, text=True)
    assert done.stdout == direct.stdout != ""
