from __future__ import annotations

from workflows.model import CanaryStrategy
from workflows.steps import Pause, SetWeight
from workflows.strategies import canary


def test_a_step_with_weight_and_pause_becomes_weight_then_pause() -> None:
    strategy = CanaryStrategy.model_validate(
        {
            "stableService": "s",
            "canaryService": "c",
            "steps": [
                {"setWeight": 20, "pause": {"duration": "5m"}},
                {"pause": {}},
                {"setWeight": 100},
            ],
        }
    )
    assert canary.plan(strategy) == [
        SetWeight(weight=20, spec_index=0),
        Pause(seconds=300, spec_index=0),
        Pause(seconds=None, spec_index=1),
        SetWeight(weight=100, spec_index=2),
    ]
    assert canary.plan(strategy)[2].manual  # type: ignore[union-attr]
