"""Recorded histories replay on the current workflow code.

A change that would break running rollouts raises NondeterminismError here; guard it with
`workflow.patched(...)`, then record a history of the new code beside the old ones (rename the
file the canary test writes to after the new patch):
`KULTA_RECORD_HISTORY=1 make test PYTEST_ARGS="tests/workflow -k 5m"`. Delete an old history only
when no run of that code can still be open.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.release import ReleaseWorkflow
from workflows.rollout import RolloutWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
TEXTS = {path.stem: path.read_text() for path in HISTORIES}


@pytest.mark.parametrize("name", sorted(TEXTS))
async def test_recorded_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json(f"replay-{name}", TEXTS[name])
    replayer = Replayer(
        workflows=[RolloutWorkflow, ReleaseWorkflow], data_converter=pydantic_data_converter
    )
    await replayer.replay_workflow(history)


def test_there_is_a_recorded_history() -> None:
    assert HISTORIES, "no recorded histories in tests/workflow/histories"
