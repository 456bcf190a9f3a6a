"""`kulta get` rendering, snapshot per phase (no colour: the same on any terminal)."""

from __future__ import annotations

from typing import Any

import pytest

from kulta import cli


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
                        {"verdict": "Successful", "message": "metric error-rate value 0.5%"}
                    ],
                }
            ]
        },
        "decisions": [{"time": "T1", "action": "set-weight", "reason": "canary weight set to 50%"}],
    }
    assert cli.render(rollout(status)) == "\n".join(
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
                "pValue": 0.0012,
                "significant": True,
            }
        ],
    }
    text = cli.render(rollout({"phase": "Concluded", "experiment": experiment}, "abTesting"))
    assert "Experiment:  42 measurements, winner B (concluded)" in text
    assert "  conversion       A 0.0500 (10000)  B 0.0600 (10000)  p=0.0012  significant" in text


def test_new_rollout_without_status() -> None:
    text = cli.render(rollout({}))
    assert "Phase:       -" in text and "Step:        -" in text and "Decisions" not in text
