"""Configuration: environment first, flags override, a bad value names its variable."""

from __future__ import annotations

import pytest

from kulta.settings import ConfigError, load


def test_defaults_and_environment() -> None:
    settings = load({"TEMPORAL_ADDRESS": "temporal:7233", "KULTA_WATCH_NAMESPACE": "shop"})
    assert settings.temporal_address == "temporal:7233"
    assert settings.watch_namespace == "shop"
    assert settings.task_queue == "kulta" and settings.http_port == 8080


def test_flags_override_the_environment() -> None:
    assert load({"KULTA_TASK_QUEUE": "a"}, task_queue="b").task_queue == "b"


def test_invalid_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="KULTA_HTTP_PORT"):
        load({"KULTA_HTTP_PORT": "eighty"})
