"""JSON log lines carry the rollout, their level is configurable; the rollouts gauge follows
what the watcher sees."""

from __future__ import annotations

import json
import logging

import pytest

from activities import telemetry
from kulta.logs import JsonFormatter, configure
from kulta.settings import ConfigError, load
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


def test_log_level_comes_from_settings_and_a_bad_one_is_named() -> None:
    assert load({}).log_level == "info"
    settings = load({"KULTA_LOG_LEVEL": "DEBUG"})
    configure(settings.log_format, settings.log_level)
    assert logging.getLogger().level == logging.DEBUG
    # The HTTP client stays quiet below warnings even at debug: one line per request.
    assert logging.getLogger("httpx").level == logging.WARNING
    configure("text", "warning")
    assert logging.getLogger().level == logging.WARNING
    with pytest.raises(ConfigError, match="KULTA_LOG_LEVEL"):
        load({"KULTA_LOG_LEVEL": "loud"})
    configure("text", "info")
