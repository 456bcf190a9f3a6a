"""Where analysis queries go: the default Prometheus (KULTA_PROMETHEUS_*) and the named providers
an operator lists in the file KULTA_PROMETHEUS_PROVIDERS points to. A Rollout names a provider;
it can never give a URL, so a tenant cannot make the controller query (or leak credentials to)
an address the operator did not choose.

The file, YAML (secrets come from files, so the provider file itself can be a plain ConfigMap):

    thanos:
      address: https://thanos-query.monitoring:9090
      timeoutSeconds: 10
      bearerTokenFile: /var/run/secrets/thanos/token
      caFile: /etc/kulta/thanos-ca.pem
    team-a:
      address: http://prometheus.team-a:9090
      username: kulta
      passwordFile: /var/run/secrets/team-a/password
      certFile: /etc/kulta/client.pem
      keyFile: /etc/kulta/client-key.pem
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from activities.adapters.prometheus import PrometheusConfig
from kulta.settings import ConfigError, Settings

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ProviderEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    address: Annotated[str, Field(pattern=r"^https?://")]
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    bearer_token_file: str | None = None
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def default_provider(settings: Settings) -> PrometheusConfig | None:
    if not settings.prometheus_address:
        return None
    basic = None
    if settings.prometheus_username:
        basic = (settings.prometheus_username, settings.prometheus_password or "")
    return PrometheusConfig(
        address=settings.prometheus_address,
        timeout_seconds=settings.prometheus_timeout_seconds,
        bearer_token=settings.prometheus_bearer_token,
        basic_auth=basic,
        ca_file=settings.prometheus_ca_file,
        cert_file=settings.prometheus_cert_file,
        key_file=settings.prometheus_key_file,
    )


def named_providers(settings: Settings) -> dict[str, PrometheusConfig]:
    if not settings.prometheus_providers:
        return {}
    return load(Path(settings.prometheus_providers))


def load(path: Path) -> dict[str, PrometheusConfig]:
    """The providers in `path`; any problem is a ConfigError naming the file and the entry."""
    where = f"KULTA_PROMETHEUS_PROVIDERS ({path})"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{where}: cannot read: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of provider name to settings")
    providers: dict[str, PrometheusConfig] = {}
    for name, entry in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: provider name {name!r} is not a DNS label")
        try:
            parsed = ProviderEntry.model_validate(entry)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()
            )
            raise ConfigError(f"{where}: provider {name}: {problems}") from None
        providers[name] = _config(name, parsed, where)
    return providers


def _config(name: str, entry: ProviderEntry, where: str) -> PrometheusConfig:
    def secret(path: str | None) -> str | None:
        if path is None:
            return None
        try:
            return Path(path).read_text().strip()
        except OSError as err:
            raise ConfigError(f"{where}: provider {name}: cannot read {path}: {err}") from None

    if (entry.cert_file is None) != (entry.key_file is None):
        raise ConfigError(f"{where}: provider {name}: certFile and keyFile go together")
    password = secret(entry.password_file)
    return PrometheusConfig(
        address=entry.address,
        timeout_seconds=entry.timeout_seconds,
        bearer_token=secret(entry.bearer_token_file),
        basic_auth=(entry.username, password or "") if entry.username else None,
        ca_file=entry.ca_file,
        cert_file=entry.cert_file,
        key_file=entry.key_file,
    )
