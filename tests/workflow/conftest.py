"""The workflow tier's fixture: a worker on its own time-skipping server and namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.kube import Kube
from tests.support.scenario import Scenario
from tests.support.worker import running_worker


@pytest.fixture
async def scenario(
    time_env: WorkflowEnvironment, kube: Kube, namespace: str
) -> AsyncIterator[Scenario]:
    async with running_worker(time_env.client, kube) as worker:
        scenario = Scenario(kube, time_env.client, namespace, worker.task_queue, env=time_env)
        try:
            yield scenario
        finally:
            await scenario.close()
