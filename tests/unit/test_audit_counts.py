"""The side-by-side benchmark's request counts: one per request, by identity and time window."""

from __future__ import annotations

import json

from bench import audit


def _event(audit_id: str, stage: str, user: str, verb: str, at: str, **ref: str) -> str:
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": audit_id,
            "stage": stage,
            "verb": verb,
            "user": {"username": user, "groups": ["system:masters"]},
            "objectRef": ref,
            "requestReceivedTimestamp": at,
            "stageTimestamp": at,
        }
    )


LOG = [
    _event(
        "a",
        "ResponseComplete",
        "bench-argo",
        "update",
        "2026-12-02T10:00:01.000000Z",
        resource="httproutes",
        name="r",
    ),
    # A watch is logged when its response starts and again when it ends: one request.
    _event(
        "b",
        "ResponseStarted",
        "bench-argo",
        "watch",
        "2026-12-02T10:00:02.000000Z",
        resource="replicasets",
    ),
    _event(
        "b",
        "ResponseComplete",
        "bench-argo",
        "watch",
        "2026-12-02T10:00:02.000000Z",
        resource="replicasets",
    ),
    _event(
        "c",
        "ResponseComplete",
        "bench-kulta-worker",
        "patch",
        "2026-12-02T10:00:03.000000Z",
        resource="rollouts",
        subresource="status",
    ),
    _event(
        "d",
        "ResponseComplete",
        "bench-argo",
        "patch",
        "2026-12-02T10:00:09.000000Z",
        resource="rollouts",
        subresource="status",
    ),
    '{"kind": "Event", "auditID": "e", "verb": "cut off',  # the line being written
]


def _at(clock: str) -> float:
    return audit.parse([_event("x", "ResponseComplete", "u", "get", f"2026-12-02T{clock}Z")])[0].at


def test_each_request_counts_once_by_identity_and_window() -> None:
    requests = audit.parse(LOG)
    assert len(requests) == 4

    argo = audit.count(requests, ["bench-argo"], _at("10:00:00"), _at("10:00:05"))
    assert (argo.writes, argo.reads) == (1, 1)
    assert argo.by_resource == {"update httproutes": 1}

    kulta = audit.count(requests, ["bench-kulta-worker"], _at("10:00:00"), _at("10:00:10"))
    assert (kulta.writes, kulta.reads) == (1, 0)
    assert kulta.by_resource == {"patch rollouts/status": 1}

    later = audit.count(requests, ["bench-argo"], _at("10:00:05"), _at("10:00:10"))
    assert (later.writes, later.reads) == (1, 0)
