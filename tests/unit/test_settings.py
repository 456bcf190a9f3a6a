"""Configuration: environment first, flags override, a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

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


def test_a_missing_file_is_named_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TEMPORAL_TLS_CA: no such file '/no/ca.pem'"):
        load({"TEMPORAL_TLS_CA": "/no/ca.pem"})


def test_mtls_needs_both_halves(tmp_path: Path) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_text("cert")
    with pytest.raises(ConfigError, match="TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together"):
        load({"TEMPORAL_TLS_CERT": str(cert)})


@pytest.mark.parametrize(
    "environ",
    [
        {"KULTA_LEASE_DURATION_SECONDS": "5", "KULTA_LEASE_RENEW_DEADLINE_SECONDS": "5"},
        {"KULTA_LEASE_RENEW_DEADLINE_SECONDS": "3", "KULTA_LEASE_RETRY_PERIOD_SECONDS": "3"},
    ],
)
def test_lease_timing_must_be_ordered(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="KULTA_LEASE_RETRY_PERIOD_SECONDS < "):
        load(environ)


def test_leader_election_settings() -> None:
    settings = load(
        {"KULTA_LEADER_ELECTION": "true", "POD_NAME": "kulta-watcher-0", "POD_NAMESPACE": "ops"}
    )
    assert settings.leader_election and settings.pod_name == "kulta-watcher-0"
    assert settings.pod_namespace == "ops"
    with pytest.raises(ConfigError, match="KULTA_LEADER_ELECTION"):
        load({"KULTA_LEADER_ELECTION": "sometimes"})


def test_the_worker_cache_size() -> None:
    assert load({}).max_cached_workflows == 1000
    assert load({"KULTA_MAX_CACHED_WORKFLOWS": "0"}).max_cached_workflows == 0
    with pytest.raises(ConfigError, match="KULTA_MAX_CACHED_WORKFLOWS"):
        load({"KULTA_MAX_CACHED_WORKFLOWS": "-1"})
