"""Occurrences: type, ids, the error block naming metric and value, and the rotating log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from activities import occurrences
from activities.adapters.occurrence_log import NAME, OccurrenceLog
from activities.contracts import EventSpec, RolloutRef
from activities.rollout_status import RolloutStatus

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
REF = RolloutRef(namespace="shop", name="web", uid="u-1")


def status(**extra: object) -> RolloutStatus:
    return RolloutStatus.model_validate(
        {
            "phase": "Failed",
            "strategy": "canary",
            "canaryRevision": "abc",
            "stableRevision": "old",
            "workflowId": "rollout/shop/web/abc.u-1",
            "decisions": [
                {"time": "2026-12-01T10:00:00Z", "action": "rollback", "reason": "error-rate 9%"}
            ],
            "analysis": {
                "metrics": [
                    {
                        "name": "error-rate",
                        "measurements": [
                            {"time": "2026-12-01T09:58:00Z", "verdict": "Successful", "value": 1.0},
                            {
                                "time": "2026-12-01T09:59:00Z",
                                "verdict": "Failed",
                                "value": 9.0,
                                "message": "above 5%",
                            },
                        ],
                    }
                ]
            },
            **extra,
        }
    )


def event(reason: str = "AnalysisFailed") -> EventSpec:
    return EventSpec(type="Warning", reason=reason, message="rolled back", transition_id="t/1/7")


def test_failure_has_an_error_block_naming_the_metric_and_value() -> None:
    o = occurrences.build(REF, status(), event(), AT, "prod-eu")
    assert o["type"] == "canary.rollout.failed" and o["severity"] == "error"
    assert o["context"] == {
        "namespace": "shop",
        "cluster": "prod-eu",
        "correlation": {
            "rolloutUid": "u-1",
            "workflowId": "rollout/shop/web/abc.u-1",
            "transitionId": "t/1/7",
            "revision": "abc",
        },
    }
    error = o["error"]
    assert (error["metric"], error["value"], error["verdict"]) == ("error-rate", 9.0, "Failed")
    assert "regression in revision abc" in error["likelyCauses"][0]
    assert "pod-template-hash=abc" in error["suggestedFix"]
    assert o["reasoning"]["decision"]["action"] == "rollback"
    assert o["history"] == [
        {
            "time": "2026-12-01T10:00:00Z",
            "action": "rollback",
            "reason": "error-rate 9%",
            "step": None,
        }
    ]


def test_types_by_strategy_and_phase() -> None:
    ok = EventSpec(type="Normal", reason="StepAdvanced", message="m", transition_id="t/1/1")
    for strategy, phase, expected in [
        ("blueGreen", "Preview", "bluegreen.rollout.paused"),
        ("abTesting", "Experimenting", "abtesting.rollout.progressing"),
        ("simple", "Completed", "rolling.rollout.completed"),
    ]:
        shown = RolloutStatus.model_validate({"strategy": strategy, "phase": phase})
        o = occurrences.build(REF, shown, ok, AT, "c")
        assert o["type"] == expected and "error" not in o and o["severity"] == "info"


def test_ids_are_ulids_derived_from_the_transition() -> None:
    a = occurrences.ulid(AT, "t/1/7")
    assert len(a) == 26 and a == occurrences.ulid(AT, "t/1/7") != occurrences.ulid(AT, "t/1/8")
    assert occurrences.ulid(AT, "x") < occurrences.ulid(datetime(2027, 1, 1, tzinfo=UTC), "x")


def test_log_rotates_between_lines_and_skips_repeats(tmp_path: Path) -> None:
    log = OccurrenceLog(tmp_path, max_bytes=300, keep=2)
    for n in range(12):
        assert log.write({"id": f"id-{n}", "pad": "x" * 60})
    assert not log.write({"id": "id-11", "pad": "again"})  # a retried write of the same one
    files = {p.name for p in tmp_path.iterdir()}
    assert files == {NAME, "occurrences.1.jsonl", "occurrences.2.jsonl"}
    lines = [json.loads(line) for p in tmp_path.iterdir() for line in p.read_text().splitlines()]
    assert all(line["pad"] for line in lines)  # whole lines only
    assert all(p.stat().st_size <= 300 for p in tmp_path.iterdir())
