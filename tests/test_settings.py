"""Settings: defaults, and one clear line naming the variable when something is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import AliasChoices

from service.settings import AuthMode, ConfigError, Settings, load_settings

BASE = {"BIGCOMMERCE_STORE_HASH": "abc123", "BIGCOMMERCE_CLIENT_SECRET": "s"}


def test_defaults_are_documented_values() -> None:
    settings = load_settings(BASE)

    assert settings.effective_auth_mode is AuthMode.SIGNATURE
    assert settings.signature_tolerance_seconds == 300
    assert settings.max_body_bytes == 64 * 1024
    assert settings.dedup_window_seconds == 72 * 3600
    assert settings.body_timeout_seconds == 10.0
    assert settings.api_url == "https://api.bigcommerce.com"
    assert settings.redis_url is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"BIGCOMMERCE_CLIENT_SECRET": "s"}, "BIGCOMMERCE_STORE_HASH: not set"),
        ({**BASE, "BIGCOMMERCE_STORE_HASH": "Has Spaces"}, "BIGCOMMERCE_STORE_HASH: must be"),
        (
            {"BIGCOMMERCE_STORE_HASH": "abc"},
            "BIGCOMMERCE_CLIENT_SECRET: not set, and neither is BCWEBHOOKS_HEADER_SECRET",
        ),
        (
            {**BASE, "BCWEBHOOKS_AUTH": "header"},
            "BCWEBHOOKS_HEADER_SECRET: required by BCWEBHOOKS_AUTH=header",
        ),
        ({**BASE, "BCWEBHOOKS_AUTH": "sometimes"}, "BCWEBHOOKS_AUTH: Input should be"),
        (
            {**BASE, "BCWEBHOOKS_MAX_BODY_BYTES": "big"},
            "BCWEBHOOKS_MAX_BODY_BYTES: Input should be a valid integer",
        ),
        (
            {**BASE, "BCWEBHOOKS_DEDUP_WINDOW_SECONDS": "3600"},
            "BCWEBHOOKS_DEDUP_WINDOW_SECONDS: Input should be greater",
        ),
        ({**BASE, "BCWEBHOOKS_SIGNATURE_TOLERANCE_SECONDS": "0"}, "BCWEBHOOKS_SIGNATURE_TOLERANCE_SECONDS:"),
        (
            {**BASE, "BCWEBHOOKS_BODY_TIMEOUT_SECONDS": "0"},
            "BCWEBHOOKS_BODY_TIMEOUT_SECONDS: Input should be",
        ),
        (
            {**BASE, "BIGCOMMERCE_API_URL": "api.bigcommerce.com"},
            "BIGCOMMERCE_API_URL: must be an http(s) URL",
        ),
        (
            {**BASE, "BCWEBHOOKS_HEADER_NAME": "Bad Header"},
            "BCWEBHOOKS_HEADER_NAME: must be an HTTP header name",
        ),
    ],
)
def test_invalid_configuration_is_one_line_naming_the_variable(
    environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)

    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_header_and_signature_secrets_default_to_requiring_both() -> None:
    settings = load_settings({**BASE, "BCWEBHOOKS_HEADER_SECRET": "h"})

    assert settings.effective_auth_mode is AuthMode.BOTH


def test_rotation_secrets_follow_the_current_one() -> None:
    settings = load_settings({**BASE, "BIGCOMMERCE_PREVIOUS_CLIENT_SECRETS": " old1 ,old2,"})

    assert settings.signing_secrets == ("s", "old1", "old2")


def test_secrets_do_not_appear_in_the_settings_repr() -> None:
    settings = load_settings(
        {**BASE, "BIGCOMMERCE_CLIENT_SECRET": "topsecretvalue", "BIGCOMMERCE_ACCESS_TOKEN": "tok99"}
    )

    assert "topsecretvalue" not in repr(settings)
    assert "tok99" not in repr(settings)


def test_cli_prints_the_configuration_error_without_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve"],
        env={"PATH": "/usr/bin:/bin", "BIGCOMMERCE_STORE_HASH": "abc"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "bcwebhooks: configuration error: BIGCOMMERCE_CLIENT_SECRET: not set, and neither is "
        "BCWEBHOOKS_HEADER_SECRET; the receiver refuses to start without a way to authenticate callbacks"
    ]
    assert "Traceback" not in result.stderr


def _every_variable() -> list[str]:
    names = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.append(str(alias.choices[0]) if isinstance(alias, AliasChoices) else str(alias))
    return names


@pytest.mark.parametrize("name", _every_variable())
@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_a_blank_variable_is_the_same_as_an_unset_one(name: str, blank: str) -> None:
    environ = {**BASE, "BCWEBHOOKS_HEADER_SECRET": "h", "BCWEBHOOKS_AUTH": "either"}
    without = {key: value for key, value in environ.items() if key != name}

    try:
        expected: Settings | str = load_settings(without)
    except ConfigError as error:
        expected = str(error)
    try:
        got: Settings | str = load_settings({**without, name: blank})
    except ConfigError as error:
        got = str(error)

    assert got == expected


def test_a_blank_store_hash_is_refused_as_not_set() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "BIGCOMMERCE_STORE_HASH": " "})

    assert str(caught.value) == "BIGCOMMERCE_STORE_HASH: not set (required)"


def test_a_blank_client_secret_never_becomes_an_empty_signing_key() -> None:
    settings = load_settings({**BASE, "BIGCOMMERCE_CLIENT_SECRET": "", "BCWEBHOOKS_HEADER_SECRET": "h"})

    assert settings.client_secret is None
    assert settings.signing_secrets == ()
    assert settings.effective_auth_mode is AuthMode.HEADER


def test_blank_values_from_the_process_environment_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _every_variable():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BIGCOMMERCE_STORE_HASH", "abc123")
    monkeypatch.setenv("BCWEBHOOKS_HEADER_SECRET", "h")
    monkeypatch.setenv("BIGCOMMERCE_CLIENT_SECRET", "")
    monkeypatch.setenv("BIGCOMMERCE_ACCESS_TOKEN", "")
    monkeypatch.setenv("BCWEBHOOKS_MAX_BODY_BYTES", " ")

    settings = load_settings()

    assert settings.client_secret is None
    assert settings.access_token is None
    assert settings.max_body_bytes == 64 * 1024


def test_the_example_env_file_copied_as_is_does_not_authenticate_with_a_blank_secret() -> None:
    example = Path(__file__).parent.parent / ".env.example"
    environ = {}
    for line in example.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            environ[name] = value

    with pytest.raises(ConfigError) as caught:
        load_settings(environ)

    assert str(caught.value).startswith("BIGCOMMERCE_CLIENT_SECRET: not set")
