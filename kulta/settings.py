"""Configuration from the environment, in one typed object; invalid values fail at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from activities.naming import TASK_QUEUE

# Environment variable -> field name. The README's configuration table mirrors this mapping.
ENVIRONMENT = {
    "TEMPORAL_ADDRESS": "temporal_address",
    "TEMPORAL_NAMESPACE": "temporal_namespace",
    "KULTA_TASK_QUEUE": "task_queue",
    "TEMPORAL_TLS_CERT": "temporal_tls_cert",
    "TEMPORAL_TLS_KEY": "temporal_tls_key",
    "TEMPORAL_TLS_CA": "temporal_tls_ca",
    "TEMPORAL_API_KEY": "temporal_api_key",
    "TEMPORAL_UI_URL": "temporal_ui_url",
    "KUBECONFIG": "kubeconfig",
    "KULTA_WATCH_NAMESPACE": "watch_namespace",
    "KULTA_TRACK_SECRETS": "track_secrets",
    "KULTA_HTTP_PORT": "http_port",
    "KULTA_PROMETHEUS_ADDRESS": "prometheus_address",
    "KULTA_PROMETHEUS_TIMEOUT_SECONDS": "prometheus_timeout_seconds",
    "KULTA_PROMETHEUS_BEARER_TOKEN": "prometheus_bearer_token",
    "KULTA_PROMETHEUS_USERNAME": "prometheus_username",
    "KULTA_PROMETHEUS_PASSWORD": "prometheus_password",
    "KULTA_PROMETHEUS_CA_FILE": "prometheus_ca_file",
    "KULTA_PROMETHEUS_CERT_FILE": "prometheus_cert_file",
    "KULTA_PROMETHEUS_KEY_FILE": "prometheus_key_file",
    "KULTA_PROMETHEUS_PROVIDERS": "prometheus_providers",
    "KULTA_ANALYSIS_MIN_WINDOW_SECONDS": "analysis_min_window_seconds",
    "KULTA_CDEVENTS_ENABLED": "cdevents_enabled",
    "KULTA_CDEVENTS_SINK_URL": "cdevents_sink_url",
    "KULTA_OCCURRENCE_DIR": "occurrence_dir",
    "KULTA_CLUSTER_NAME": "cluster_name",
    "KULTA_LOG_FORMAT": "log_format",
    "KULTA_LOG_LEVEL": "log_level",
    "KULTA_LEADER_ELECTION": "leader_election",
    "POD_NAME": "pod_name",
    "POD_NAMESPACE": "pod_namespace",
    "KULTA_LEASE_DURATION_SECONDS": "lease_duration_seconds",
    "KULTA_LEASE_RENEW_DEADLINE_SECONDS": "lease_renew_deadline_seconds",
    "KULTA_LEASE_RETRY_PERIOD_SECONDS": "lease_retry_period_seconds",
    "KULTA_SHUTDOWN_GRACE_SECONDS": "shutdown_grace_seconds",
    "KULTA_WATCH_STALE_SECONDS": "watch_stale_seconds",
    "KULTA_MAX_CACHED_WORKFLOWS": "max_cached_workflows",
    "KULTA_WORKFLOW_SANDBOX": "workflow_sandbox",
}


# Settings that name a file: it must exist when the process starts, not at first use.
_FILES = (
    "temporal_tls_cert",
    "temporal_tls_key",
    "temporal_tls_ca",
    "prometheus_ca_file",
    "prometheus_cert_file",
    "prometheus_key_file",
    "prometheus_providers",
)


class ConfigError(ValueError):
    """A setting that cannot work; the message names the environment variable."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = TASK_QUEUE
    temporal_tls_cert: str | None = None
    temporal_tls_key: str | None = None
    temporal_tls_ca: str | None = None
    temporal_api_key: str | None = None
    temporal_ui_url: str = "http://localhost:8233"
    kubeconfig: str | None = None
    watch_namespace: str | None = None
    # The watcher follows Secrets for Rollouts with trackConfig.secrets (needs
    # deploy/rbac-track-secrets.yaml); off by default, as listing Secrets is a big grant.
    track_secrets: bool = False
    http_port: int = Field(default=8080, ge=0, le=65535)
    # The Prometheus analysis queries by default; the providers file names others. A Rollout
    # cannot point kulta at another URL.
    prometheus_address: str | None = Field(default=None, pattern=r"^https?://")
    prometheus_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    prometheus_bearer_token: str | None = None
    prometheus_username: str | None = None
    prometheus_password: str | None = None
    prometheus_ca_file: str | None = None
    prometheus_cert_file: str | None = None
    prometheus_key_file: str | None = None
    prometheus_providers: str | None = None
    # The shortest rate() window of built-in metrics; keep it several scrape intervals long.
    analysis_min_window_seconds: int = Field(default=60, ge=1, le=86400)
    cdevents_enabled: bool = False
    cdevents_sink_url: str | None = Field(default=None, pattern=r"^https?://")
    occurrence_dir: str = "/tmp/kulta"
    cluster_name: str = Field(default="default", min_length=1, max_length=253)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    # Only the watcher elects a leader (one replica acts); workers share a task queue instead.
    leader_election: bool = False
    pod_name: str | None = Field(default=None, min_length=1, max_length=253)
    pod_namespace: str = Field(default="kulta-system", min_length=1, max_length=63)
    lease_duration_seconds: int = Field(default=15, ge=2, le=600)
    lease_renew_deadline_seconds: int = Field(default=10, ge=1, le=600)
    lease_retry_period_seconds: float = Field(default=2.0, gt=0, le=60)
    # How long running activities may take to finish after SIGTERM before they are cancelled
    # (keep it below the pod's terminationGracePeriodSeconds).
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)
    # The watcher's /healthz fails when its loop heard nothing from the API server (no event,
    # bookmark, listing or new watch) for this long; a watch is reopened every 5 minutes.
    watch_stale_seconds: float = Field(default=900.0, ge=10, le=86400)
    # Rollouts whose workflow state the worker keeps in memory between tasks; one that is not
    # cached replays its history on its next task (CPU instead of memory).
    max_cached_workflows: int = Field(default=1000, ge=0, le=100_000)
    # Run workflow code in the Temporal SDK's sandbox, which checks determinism at run time
    # (the test suite always does; off by default for its CPU cost, see kulta/worker.py).
    workflow_sandbox: bool = False

    @model_validator(mode="after")
    def _sink_when_enabled(self) -> Settings:
        if self.cdevents_enabled and not self.cdevents_sink_url:
            raise ValueError("KULTA_CDEVENTS_ENABLED=true needs KULTA_CDEVENTS_SINK_URL")
        return self

    @model_validator(mode="after")
    def _files_exist(self) -> Settings:
        by_field = {field: var for var, field in ENVIRONMENT.items()}
        for field in _FILES:
            path = getattr(self, field)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{by_field[field]}: no such file {path!r}")
        if bool(self.temporal_tls_cert) != bool(self.temporal_tls_key):
            raise ValueError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (mTLS)")
        return self

    @model_validator(mode="after")
    def _lease_timing(self) -> Settings:
        if not (
            self.lease_retry_period_seconds
            < self.lease_renew_deadline_seconds
            < self.lease_duration_seconds
        ):
            raise ValueError(
                "KULTA_LEASE_RETRY_PERIOD_SECONDS < KULTA_LEASE_RENEW_DEADLINE_SECONDS < "
                "KULTA_LEASE_DURATION_SECONDS must hold"
            )
        return self


def load(environ: Mapping[str, str] | None = None, /, **overrides: object) -> Settings:
    """Settings from `environ` (default: the process environment), then explicit overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {
        field: env[var] for var, field in ENVIRONMENT.items() if env.get(var, "") != ""
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as err:
        by_field = {field: var for var, field in ENVIRONMENT.items()}
        problems = [
            f"{by_field.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" if e["loc"] else e["msg"]
            for e in err.errors()
        ]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
