"""Retry behaviour is decided by the error classes, in one place (kulta/interceptors.py)."""

from __future__ import annotations

import pytest

from activities import errors
from kulta.interceptors import as_application_error
from workflows import options


def every_error_class() -> list[type[errors.KultaError]]:
    found: list[type[errors.KultaError]] = []
    pending = [errors.KultaError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda c: c.__name__)
def test_an_error_leaves_an_activity_with_its_own_retryability(
    cls: type[errors.KultaError],
) -> None:
    mapped = as_application_error(cls("the API server said no"))
    assert mapped.type == cls.__name__
    assert mapped.non_retryable is cls.non_retryable
    assert mapped.message == "the API server said no"


def test_bad_input_is_never_retried_and_transient_errors_are() -> None:
    for cls in every_error_class():
        assert cls.non_retryable is issubclass(cls, errors.BadInput), cls.__name__


def test_retry_policies_name_no_error_types() -> None:
    for policy in (options.RETRY, options.ROLLBACK_ROUTE_RETRY, options.ANNOUNCE_RETRY):
        assert not policy.non_retryable_error_types
