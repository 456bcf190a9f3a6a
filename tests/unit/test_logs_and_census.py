"""JSON log lines carry the rollout; the rollouts gauge follows what the watcher sees."""

from __future__ import annotations

import json
import logging

from activities import telemetry
from kulta.logs import JsonFormatter
from watcher.census import Census


def test_json_line_names_the_rollout_from_the_workflow_id() -> None:
    record = logging.LogRecord("kulta", logging.INFO, __file__, 1, "scaled %s", ("rs",), None)
    record.temporal_activity = {"workflow_id": "rollout/shop/web/abc123.deadbeef"}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "scaled rs" and line["level"] == "info"
    assert (line["namespace"], line["rollout"], line["revision"]) == ("shop", "web", "abc123")
    assert line["workflowId"] == "rollout/shop/web/abc123.deadbeef"


def rollout(name: str, phase: str | None, strategy: str = "canary") -> dict[str, object]:
    return {
        "metadata": {"namespace": "census", "name": name},
        "spec": {"strategy": {strategy: {}}},
        "status": {"phase": phase} if phase else {},
    }


def gauge(phase: str, strategy: str) -> float:
    return telemetry.ROLLOUTS.labels(phase, strategy)._value.get()


def test_census_counts_and_forgets() -> None:
    census = Census()
    census.replace_all(
        [rollout("a", "Paused"), rollout("b", "Paused"), rollout("c", None, "simple")]
    )
    assert gauge("Paused", "canary") == 2 and gauge("Pending", "simple") == 1
    census.observe(rollout("a", "Completed"), deleted=False)
    census.observe(rollout("b", "Paused"), deleted=True)
    assert gauge("Paused", "canary") == 0 and gauge("Completed", "canary") == 1
    census.replace_all([])  # a relist after deletions the watch missed
    assert gauge("Completed", "canary") == 0 and gauge("Pending", "simple") == 0
