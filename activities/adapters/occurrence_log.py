"""Occurrences as JSON lines in a directory, rotated by size.

A line is written whole with one `write` on a file opened for appending, so a reader never sees
half a line; rotation happens only between lines (`occurrences.jsonl` becomes `.1`, `.1` becomes
`.2`, ...), and the oldest file beyond `keep` is removed with a log line saying so. Ids written
recently are remembered, so a retried write of one transition adds no second line.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

log = logging.getLogger("kulta.occurrences")
NAME = "occurrences.jsonl"


class OccurrenceLog:
    def __init__(self, directory: Path, max_bytes: int = 10 * 1024 * 1024, keep: int = 5) -> None:
        self._dir = directory
        self._max = max_bytes
        self._keep = keep
        self._recent: OrderedDict[str, None] = OrderedDict()

    @property
    def path(self) -> Path:
        return self._dir / NAME

    def write(self, occurrence: dict[str, Any]) -> bool:
        """Appends one occurrence; False when its id was just written (a retry)."""
        oid = str(occurrence["id"])
        if oid in self._recent:
            return False
        line = (json.dumps(occurrence, separators=(",", ":"), default=str) + "\n").encode()
        self._dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size + len(line) > self._max:
            self._rotate()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        self._recent[oid] = None
        while len(self._recent) > 4096:
            self._recent.popitem(last=False)
        return True

    def _rotate(self) -> None:
        oldest = self._dir / f"occurrences.{self._keep}.jsonl"
        if oldest.exists():
            log.warning(
                "occurrence log: removing %s (keeping %d rotated files)", oldest, self._keep
            )
            oldest.unlink()
        for n in range(self._keep - 1, 0, -1):
            older = self._dir / f"occurrences.{n}.jsonl"
            if older.exists():
                older.rename(self._dir / f"occurrences.{n + 1}.jsonl")
        self.path.rename(self._dir / "occurrences.1.jsonl")
