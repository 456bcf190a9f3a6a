"""CPU time and peak memory of a process, read from /proc (Linux): what benchmarks report for
kulta's processes, the Temporal server and the API server alike."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pids_running(executable: str) -> list[int]:
    """Processes whose executable's file name is `executable` (e.g. kube-apiserver)."""
    return pids_where(lambda argv0: Path(argv0).name == executable)


def pids_where(wanted: Callable[[str], bool]) -> list[int]:
    """Processes whose argv[0] satisfies `wanted`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if wanted(argv0):
            found.append(int(entry.name))
    return found


def children(pid: int) -> list[int]:
    """The process's direct children (from every thread's children list)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:  # the process ended
        pass
    return found
