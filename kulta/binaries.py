"""Finding the command-line tools that Python packages install (temporal, temporal-test-server).

They land beside the interpreter in a virtualenv, which is not on PATH unless it is activated
(make runs `.venv/bin/python` directly), so look there first.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)
