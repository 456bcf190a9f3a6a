"""Worker interceptors: the one place activity errors get their retry behaviour, and the
count of activity attempts that raise, by activity and error class."""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities import telemetry
from activities.errors import KultaError


class CountFailures(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Counting(next)


class _Counting(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except Exception as err:
            telemetry.ACTIVITY_FAILURES.labels(
                activity.info().activity_type, type(err).__name__
            ).inc()
            raise


class MapErrors(Interceptor):
    """A KultaError leaves an activity as an ApplicationError whose type is the error's class
    name and whose `non_retryable` is the class's: retry policies list no error names, so a
    new error class cannot be forgotten in one of them."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Mapping(next)


def as_application_error(err: KultaError) -> ApplicationError:
    return ApplicationError(str(err), type=type(err).__name__, non_retryable=err.non_retryable)


class _Mapping(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except KultaError as err:
            raise as_application_error(err) from err
