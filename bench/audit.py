"""API requests per controller identity, from a kube-apiserver audit log (level Metadata).

The side-by-side benchmark gives every controller process a client certificate of its own, so
the log's `user.username` tells whose request each entry is. A request appears once per stage
(a watch twice: when its response starts and when it ends); it is counted once, by its auditID,
at the time the server received it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
READ_VERBS = frozenset({"get", "list", "watch"})


@dataclass(frozen=True)
class Request:
    user: str
    verb: str
    resource: str  # "rollouts", "rollouts/status", "httproutes", ...
    at: float  # seconds since the epoch, when the API server received it


@dataclass
class Tally:
    writes: int = 0
    reads: int = 0
    by_resource: Counter[str] = field(default_factory=Counter)

    def add(self, request: Request) -> None:
        if request.verb in WRITE_VERBS:
            self.writes += 1
            self.by_resource[f"{request.verb} {request.resource}"] += 1
        elif request.verb in READ_VERBS:
            self.reads += 1


def parse(lines: Iterable[str]) -> list[Request]:
    """One Request per auditID; lines that are not audit events (or cut off) are skipped."""
    seen: set[str] = set()
    requests = []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a log still being written
        audit_id = event.get("auditID")
        if event.get("kind") != "Event" or audit_id in seen:
            continue
        seen.add(audit_id)
        ref = event.get("objectRef") or {}
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource = f"{resource}/{ref['subresource']}"
        received = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        requests.append(
            Request(
                user=(event.get("user") or {}).get("username", ""),
                verb=event.get("verb", ""),
                resource=resource,
                at=received.timestamp(),
            )
        )
    return requests


def read(path: Path) -> list[Request]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        return parse(lines)


def count(requests: Iterable[Request], users: Iterable[str], start: float, end: float) -> Tally:
    """The requests of `users` received in [start, end)."""
    wanted = set(users)
    tally = Tally()
    for request in requests:
        if request.user in wanted and start <= request.at < end:
            tally.add(request)
    return tally
