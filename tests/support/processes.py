"""kulta's own executables (`kulta-worker`, `kulta-watcher`) as real child processes, for tests
that send real signals and benchmarks that read memory and CPU from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


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
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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
