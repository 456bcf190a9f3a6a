"""Steering as validated Temporal updates: accepted ones answer what happens next, refused ones
say why (and leave no trace in the history), on the time-skipping server with real activities."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.naming import UPDATE_ABORT, UPDATE_CONCLUDE, UPDATE_PROMOTE, UPDATE_RETRY
from tests.support.scenario import Scenario
from tests.workflow.test_canary_workflow import stable_v1
from workflows.messages import AbortRequest, PromoteRequest

pytestmark = pytest.mark.cluster


async def refusal(handle: WorkflowHandle[object, object], update: str, *args: object) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update(update, *args, result_type=str)
    cause = raised.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "Refused", cause
    return cause.message


async def test_promote_abort_and_retry_are_acknowledged_or_refused(scenario: Scenario) -> None:
    await stable_v1(
        scenario,
        steps=[{"setWeight": 20, "pause": {}}, {"setWeight": 40, "pause": {}}],
        abort_delay=1,
    )
    await scenario.set_image("example/app:v2")
    handle = await scenario.start()
    await scenario.wait_phase("Paused", "waiting for promotion")
    assert await refusal(handle, UPDATE_RETRY) == "not failed (phase Paused)"
    assert await refusal(handle, UPDATE_CONCLUDE) == "no experiment is running (phase Paused)"

    reply = await handle.execute_update(UPDATE_PROMOTE, PromoteRequest(), result_type=str)
    assert reply == "promoted: the current pause ends"
    paused_at_40 = await scenario.wait_paused_at(40)
    assert paused_at_40["status"]["message"] == "step 2/2: canary weight 40%, waiting for promotion"

    reply = await handle.execute_update(UPDATE_ABORT, AbortRequest(reason="bad"), result_type=str)
    assert reply.startswith("aborting: traffic goes back to stable")
    await scenario.wait_phase("Failed", "bad")
    assert await refusal(handle, UPDATE_ABORT, AbortRequest()) == (
        "it is already being rolled back (phase Failed)"
    )
    assert await refusal(handle, UPDATE_PROMOTE, PromoteRequest()) == (
        "it is being rolled back (phase Failed)"
    )

    # Refusals wrote nothing: the history holds the two accepted updates only.
    history = await handle.fetch_history()
    accepted = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert len(accepted) == 2

    reply = await handle.execute_update(UPDATE_RETRY, result_type=str)
    assert reply == "retrying: the revision runs again from its first step"
    again = scenario.client.get_workflow_handle(handle.id)
    await scenario.wait_phase("Paused", "waiting for promotion")
    assert await refusal(again, UPDATE_RETRY) == "not failed (phase Paused)"


async def test_promote_outside_a_pause_is_refused_but_full_is_not(scenario: Scenario) -> None:
    await stable_v1(scenario, steps=[{"setWeight": 20, "pause": {"duration": "1h"}}])
    await scenario.set_image("example/app:v2")
    handle = await scenario.start()
    await scenario.wait_phase("Progressing", "pausing for 3600s")
    reply = await handle.execute_update(UPDATE_PROMOTE, PromoteRequest(full=True), result_type=str)
    assert reply == "promoted fully: the remaining steps are skipped"
    await scenario.wait_phase("Completed")
    await scenario.skip(60, handle)
    assert (await handle.result()).result == "completed"
