"""`kulta get` rendering, snapshot per phase (no colour: the same on any terminal)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from activities.rollout_status import RolloutStatus
from kulta import cli, rendering, steering


def rollout(status: dict[str, Any], strategy: str = "canary") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": "web"},
        "spec": {"replicas": 4, "strategy": {strategy: {}}},
        "status": status,
    }


@pytest.fixture(autouse=True)
def ui(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_UI_URL", "http://ui")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "default")


def test_paused_canary_with_analysis() -> None:
    status = {
        "phase": "Paused",
        "message": "pausing for 60s",
        "currentStepIndex": 1,
        "stepCount": 3,
        "currentWeight": 50,
        "availableReplicas": 6,
        "stableRevision": "old",
        "canaryRevision": "new",
        "workflowId": "rollout/shop/web/new.1234",
        "analysis": {
            "metrics": [
                {
                    "name": "error-rate",
                    "measurements": [
                        {
                            "time": "T0",
                            "verdict": "Successful",
                            "message": "metric error-rate value 0.5%",
                        }
                    ],
                }
            ]
        },
        "decisions": [{"time": "T1", "action": "set-weight", "reason": "canary weight set to 50%"}],
    }
    assert rendering.render(rollout(status)) == "\n".join(
        [
            "Name:        shop/web",
            "Strategy:    canary",
            "Phase:       Paused  pausing for 60s",
            "Step:        2/3",
            "Weight:      50",
            "Replicas:    6 available / 4 desired",
            "Stable:      old",
            "Canary:      new",
            "Workflow:    rollout/shop/web/new.1234",
            "Temporal UI: http://ui/namespaces/default/workflows/rollout%2Fshop%2Fweb%2Fnew.1234",
            "Analysis:",
            "  error-rate       Successful   metric error-rate value 0.5%",
            "Decisions:",
            "  T1  set-weight      canary weight set to 50%",
        ]
    )


def test_concluded_experiment_shows_statistics() -> None:
    experiment = {
        "startedAt": "2026-12-01T10:00:00Z",
        "measurements": 42,
        "winner": "B",
        "concluded": True,
        "metrics": [
            {
                "name": "conversion",
                "rateA": 0.05,
                "samplesA": 10000,
                "rateB": 0.06,
                "samplesB": 10000,
                "z": 3.24,
                "pValue": 0.0012,
                "confidence": 0.9988,
                "significant": True,
            }
        ],
    }
    text = rendering.render(rollout({"phase": "Concluded", "experiment": experiment}, "abTesting"))
    assert "Experiment:  42 measurements, winner B (concluded)" in text
    assert "  conversion       A 0.0500 (10000)  B 0.0600 (10000)  p=0.0012  significant" in text


def test_new_rollout_without_status() -> None:
    text = rendering.render(rollout({}))
    assert "Phase:       -" in text and "Step:        -" in text and "Decisions" not in text


def _replicaset(
    revision: str, image: str, ready: int, desired: int, created: str
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"web-{revision}",
            "creationTimestamp": created,
            "labels": {"pod-template-hash": revision},
        },
        "spec": {
            "replicas": desired,
            "template": {"spec": {"containers": [{"name": "app", "image": image}]}},
        },
        "status": {"readyReplicas": ready},
    }


def test_timed_pause_counts_down_and_revisions_show_images_and_ready_pods() -> None:
    status = {
        "phase": "Progressing",
        "message": "step 1/2: canary weight 25%, pausing for 300s",
        "currentStepIndex": 0,
        "stepCount": 2,
        "currentWeight": 25,
        "stableRevision": "old",
        "canaryRevision": "new",
        "pauseStartTime": "2026-12-01T10:00:00Z",
        "pauseEndTime": "2026-12-01T10:05:00Z",
    }
    replicasets = [
        _replicaset("new", "shop/web:v2", 1, 1, "2026-12-01T09:59:00Z"),
        _replicaset("old", "shop/web:v1", 4, 4, "2026-11-30T08:00:00Z"),
        _replicaset("older", "shop/web:v0", 0, 0, "2026-11-29T08:00:00Z"),
    ]
    now = datetime(2026, 12, 1, 10, 3, 30, tzinfo=UTC)
    text = rendering.render(rollout(status), replicasets, now=now)
    assert "Pause:       1m30s left (ends 2026-12-01T10:05:00Z)" in text.splitlines()
    assert text.split("Revisions:\n", 1)[1].splitlines()[:3] == [
        "  old     older       shop/web:v0                  0/0 ready",
        "  stable  old         shop/web:v1                  4/4 ready",
        "  canary  new         shop/web:v2                  1/1 ready",
    ]
    later = rendering.render(rollout(status), replicasets, now=now + timedelta(minutes=5))
    assert "Pause:       ended 2026-12-01T10:05:00Z" in later.splitlines()


@pytest.mark.parametrize(
    ("phase", "minutes_after_start", "seen_as"),
    [
        ("Progressing", 3, rendering.TIMED_PAUSE),
        ("Progressing", 6, "Progressing"),  # the pause ended; the next step's write is due
        ("Paused", 3, "Paused"),
    ],
)
def test_a_running_timed_pause_may_be_promoted(
    phase: str, minutes_after_start: int, seen_as: str
) -> None:
    status = {"phase": phase, "pauseEndTime": "2026-12-01T10:05:00Z"}
    now = datetime(2026, 12, 1, 10, tzinfo=UTC) + timedelta(minutes=minutes_after_start)
    assert rendering.situation(RolloutStatus.model_validate(status), now) == seen_as
    assert (seen_as in steering.PROMOTABLE) == (minutes_after_start < 5)


def test_manual_pause_says_how_to_continue() -> None:
    status = {"phase": "Paused", "pauseStartTime": "2026-12-01T10:00:00Z"}
    assert (
        "Pause:       waiting for promotion since 2026-12-01T10:00:00Z (kulta promote)"
        in rendering.render(rollout(status)).splitlines()
    )


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (90, "1m30s"), (3600, "1h0m0s"), (0, "0s")]
)
def test_format_seconds(seconds: int, text: str) -> None:
    assert rendering.format_seconds(seconds) == text


def test_get_takes_the_kubectl_form_and_refuses_two_names() -> None:
    result = CliRunner().invoke(cli.app, ["get", "web", "shop"])
    assert result.exit_code == 1
    assert "kulta get takes one Rollout name, got 'web' and 'shop'" in result.output


def test_a_status_kulta_cannot_read_is_shown_as_such() -> None:
    text = rendering.render(rollout({"phase": "Exploded", "currentWeight": "lots"}))
    assert "Phase:       -  status not readable: 2 problems" in text.splitlines()
