"""Operator-configured Prometheus providers: what the file may say, and errors that name it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kulta import prometheus_providers, settings
from kulta.settings import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(text)
    return path


def test_providers_with_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    (tmp_path / "password").write_text("hunter2")
    path = write(
        tmp_path,
        f"thanos:\n  address: https://thanos:9090\n  bearerTokenFile: {tmp_path}/token\n"
        f"team-a:\n  address: http://prom:9090\n  timeoutSeconds: 3\n  username: kulta\n"
        f"  passwordFile: {tmp_path}/password\n",
    )
    providers = prometheus_providers.load(path)
    assert providers["thanos"].bearer_token == "s3cret"
    assert providers["team-a"].basic_auth == ("kulta", "hunter2")
    assert providers["team-a"].timeout_seconds == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping"),
        ("Bad_Name:\n  address: http://p\n", "'Bad_Name' is not a DNS label"),
        ("p:\n  address: ftp://p\n", "provider p: address"),
        ("p:\n  address: http://p\n  url: http://q\n", "provider p: url: Extra inputs"),
        ("p:\n  address: http://p\n  certFile: /c.pem\n", "certFile and keyFile go together"),
        ("p:\n  address: http://p\n  bearerTokenFile: /no/such/file\n", "cannot read /no/such"),
        ("p: [unclosed\n", "cannot read"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        prometheus_providers.load(write(tmp_path, text))
    assert "KULTA_PROMETHEUS_PROVIDERS" in str(raised.value)


def test_default_provider_from_the_environment(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("cert")
    key.write_text("key")
    loaded = settings.load(
        {
            "KULTA_PROMETHEUS_ADDRESS": "https://prom:9090",
            "KULTA_PROMETHEUS_USERNAME": "kulta",
            "KULTA_PROMETHEUS_PASSWORD": "pw",
            "KULTA_PROMETHEUS_CERT_FILE": str(cert),
            "KULTA_PROMETHEUS_KEY_FILE": str(key),
        }
    )
    config = prometheus_providers.default_provider(loaded)
    assert config is not None
    assert config.basic_auth == ("kulta", "pw")
    assert (config.cert_file, config.key_file) == (str(cert), str(key))
    assert prometheus_providers.default_provider(settings.load({})) is None


def test_the_default_address_must_be_http() -> None:
    with pytest.raises(ConfigError, match="KULTA_PROMETHEUS_ADDRESS"):
        settings.load({"KULTA_PROMETHEUS_ADDRESS": "prom:9090"})
