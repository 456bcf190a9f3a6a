"""Recorded workflow histories: every scenario that records one also proves it replays.

`KULTA_RECORD_HISTORY=1 make test PYTEST_ARGS=tests/workflow` (re)writes the files in
`tests/workflow/histories/`; `tests/workflow/test_replay.py` replays all of them on the current
code, so a change that would break a running rollout fails there (guard it with
`workflow.patched(...)`, or, for runs that cannot exist anywhere any more, re-record).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer

HISTORIES = Path(__file__).parent.parent / "workflow" / "histories"


async def replay_and_record(
    client: Client, handle: WorkflowHandle[Any, Any], name: str, *, run_id: str | None = None
) -> None:
    """Replays the run's history on the current code; writes it to `HISTORIES/<name>.json`
    when KULTA_RECORD_HISTORY is set. `run_id` picks a run other than the latest."""
    from workflows.release import ReleaseWorkflow
    from workflows.rollout import RolloutWorkflow

    if run_id is not None:
        handle = client.get_workflow_handle(handle.id, run_id=run_id)
    history = await handle.fetch_history()
    replayer = Replayer(
        workflows=[RolloutWorkflow, ReleaseWorkflow], data_converter=client.data_converter
    )
    await replayer.replay_workflow(history)
    if os.environ.get("KULTA_RECORD_HISTORY"):
        HISTORIES.mkdir(parents=True, exist_ok=True)
        (HISTORIES / f"{name}.json").write_text(history.to_json())
