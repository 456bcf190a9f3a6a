"""The `kulta_rollouts{phase,strategy}` gauge, kept from what the watcher observes.

Counts are recomputed from the watcher's own view (replaced whole on every relist, updated per
event), so a Rollout deleted while the watch was down does not linger in the gauge.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from activities import telemetry

STRATEGIES = ("canary", "blueGreen", "abTesting", "simple")


class Census:
    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, str]] = {}
        self._published: set[tuple[str, str]] = set()

    def replace_all(self, rollouts: list[dict[str, Any]]) -> None:
        self._seen = {_key(r): _labels(r) for r in rollouts}
        self._publish()

    def observe(self, rollout: dict[str, Any], *, deleted: bool) -> None:
        if deleted:
            self._seen.pop(_key(rollout), None)
        else:
            self._seen[_key(rollout)] = _labels(rollout)
        self._publish()

    def _publish(self) -> None:
        counts = Counter(self._seen.values())
        for labels in self._published - counts.keys():
            telemetry.ROLLOUTS.labels(*labels).set(0)
        for labels, n in counts.items():
            telemetry.ROLLOUTS.labels(*labels).set(n)
        self._published |= counts.keys()


def _key(rollout: dict[str, Any]) -> str:
    meta = rollout.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _labels(rollout: dict[str, Any]) -> tuple[str, str]:
    phase = str((rollout.get("status") or {}).get("phase") or "Pending")
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    kind = next((k for k in STRATEGIES if k in strategy), "unknown")
    return phase, kind
