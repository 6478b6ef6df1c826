"""Configuration from environment variables, loaded and validated once at start-up."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_API_URL = "https://api.bigcommerce.com"
DEFAULT_HEADER_NAME = "X-Webhook-Secret"
DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300
DEFAULT_MAX_BODY_BYTES = 64 * 1024
# BigCommerce retries for ~48.07 h; the window must outlive the last retry.
MIN_DEDUP_WINDOW_SECONDS = 72 * 3600
DEFAULT_DEDUP_WINDOW_SECONDS = MIN_DEDUP_WINDOW_SECONDS
DEFAULT_DATA_DIR = ".bcwebhooks"
DEFAULT_STREAM = "bcwebhooks:events"
DEFAULT_STREAM_MAXLEN = 100_000
DEFAULT_MAX_RETRIES = 8
DEFAULT_MIN_BACKOFF_MS = 2_000

STORE_HASH_PATTERN = re.compile(r"^[a-z0-9]{1,32}$")
# Set by `bcwebhooks serve|worker|dev` for the processes they start: REDIS_URL, or the embedded server's URL.
RESOLVED_REDIS_URL_ENV = "BCWEBHOOKS_RESOLVED_REDIS_URL"


class AuthMode(enum.StrEnum):
    """Which authenticity checks a callback must pass."""

    SIGNATURE = "signature"
    HEADER = "header"
    BOTH = "both"
    EITHER = "either"


class LogFormat(enum.StrEnum):
    """How log lines are rendered: JSON for machines, console for people, auto picks by terminal."""

    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class ConfigError(Exception):
    """The environment does not describe a usable configuration; the message is one line for the user."""


class Settings(BaseSettings):
    """Every setting of the service; field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=None,
        extra="ignore",
        populate_by_name=True,
        case_sensitive=True,
    )

    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    data_dir: Path = Field(default=Path(DEFAULT_DATA_DIR), validation_alias="BCWEBHOOKS_DATA_DIR")
    store_hash: str = Field(validation_alias="BIGCOMMERCE_STORE_HASH")
    access_token: SecretStr | None = Field(default=None, validation_alias="BIGCOMMERCE_ACCESS_TOKEN")
    client_secret: SecretStr | None = Field(default=None, validation_alias="BIGCOMMERCE_CLIENT_SECRET")
    previous_client_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), validation_alias="BIGCOMMERCE_PREVIOUS_CLIENT_SECRETS"
    )
    header_secret: SecretStr | None = Field(default=None, validation_alias="BCWEBHOOKS_HEADER_SECRET")
    header_name: str = Field(default=DEFAULT_HEADER_NAME, validation_alias="BCWEBHOOKS_HEADER_NAME")
    auth_mode: AuthMode | None = Field(default=None, validation_alias="BCWEBHOOKS_AUTH")
    api_url: str = Field(default=DEFAULT_API_URL, validation_alias="BIGCOMMERCE_API_URL")
    signature_tolerance_seconds: int = Field(
        default=DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
        ge=1,
        le=3600,
        validation_alias="BCWEBHOOKS_SIGNATURE_TOLERANCE_SECONDS",
    )
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        le=16 * 1024 * 1024,
        validation_alias="BCWEBHOOKS_MAX_BODY_BYTES",
    )
    dedup_window_seconds: int = Field(
        default=DEFAULT_DEDUP_WINDOW_SECONDS,
        ge=MIN_DEDUP_WINDOW_SECONDS,
        validation_alias=AliasChoices("BCWEBHOOKS_DEDUP_WINDOW_SECONDS"),
    )
    handler_modules: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="BCWEBHOOKS_HANDLERS"
    )
    stream_name: str = Field(default=DEFAULT_STREAM, min_length=1, validation_alias="BCWEBHOOKS_STREAM")
    stream_maxlen: int = Field(
        default=DEFAULT_STREAM_MAXLEN, ge=100, validation_alias="BCWEBHOOKS_STREAM_MAXLEN"
    )
    max_retries: int = Field(
        default=DEFAULT_MAX_RETRIES, ge=0, le=50, validation_alias="BCWEBHOOKS_MAX_RETRIES"
    )
    min_backoff_ms: int = Field(
        default=DEFAULT_MIN_BACKOFF_MS, ge=10, le=3_600_000, validation_alias="BCWEBHOOKS_MIN_BACKOFF_MS"
    )
    coalesce_window_ms: int = Field(
        default=1000, ge=0, le=60_000, validation_alias="BCWEBHOOKS_COALESCE_WINDOW_MS"
    )
    coalesce_threshold: int = Field(default=20, ge=0, validation_alias="BCWEBHOOKS_COALESCE_THRESHOLD")
    worker_poll_ms: int = Field(default=100, ge=10, le=5_000, validation_alias="BCWEBHOOKS_WORKER_POLL_MS")
    api_reserve_share: float = Field(
        default=0.2, ge=0.0, le=0.9, validation_alias="BCWEBHOOKS_API_RESERVE_SHARE"
    )
    log_format: LogFormat = Field(default=LogFormat.AUTO, validation_alias="BCWEBHOOKS_LOG_FORMAT")
    log_level: str = Field(default="info", validation_alias="BCWEBHOOKS_LOG_LEVEL")

    @field_validator("store_hash")
    @classmethod
    def _store_hash_shape(cls, value: str) -> str:
        if not STORE_HASH_PATTERN.match(value):
            raise ValueError(
                "must be the lowercase letters and digits from the API path /stores/{store_hash}/"
            )
        return value

    @field_validator("previous_client_secrets", "handler_modules", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("header_name")
    @classmethod
    def _header_name_shape(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
            raise ValueError("must be an HTTP header name (letters, digits and dashes, at most 64)")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url_shape(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://api.bigcommerce.com")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _log_level_name(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()

    @model_validator(mode="after")
    def _auth_is_possible(self) -> Settings:
        mode = self.effective_auth_mode
        if mode in (AuthMode.SIGNATURE, AuthMode.BOTH, AuthMode.EITHER) and self.client_secret is None:
            raise ValueError(
                f"BIGCOMMERCE_CLIENT_SECRET: required by BCWEBHOOKS_AUTH={mode.value} "
                "(the API account's client secret, which signs callbacks)"
            )
        if mode in (AuthMode.HEADER, AuthMode.BOTH, AuthMode.EITHER) and self.header_secret is None:
            raise ValueError(
                f"BCWEBHOOKS_HEADER_SECRET: required by BCWEBHOOKS_AUTH={mode.value} "
                "(the value registered in the hook's custom headers)"
            )
        return self

    @property
    def effective_auth_mode(self) -> AuthMode:
        """The configured mode, or the default: signature when a client secret exists, both when both do."""
        if self.auth_mode is not None:
            return self.auth_mode
        if self.client_secret is not None and self.header_secret is not None:
            return AuthMode.BOTH
        if self.client_secret is not None:
            return AuthMode.SIGNATURE
        if self.header_secret is not None:
            return AuthMode.HEADER
        raise ValueError(
            "BIGCOMMERCE_CLIENT_SECRET: not set, and neither is BCWEBHOOKS_HEADER_SECRET; "
            "the receiver refuses to start without a way to authenticate callbacks"
        )

    def resolved_redis_url(self, environ: Mapping[str, str]) -> str | None:
        """The Redis URL a child process was handed by the CLI, else REDIS_URL."""
        return environ.get(RESOLVED_REDIS_URL_ENV) or self.redis_url

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        """Every client secret a valid signature may be made with, current first."""
        current = (self.client_secret,) if self.client_secret is not None else ()
        return tuple(secret.get_secret_value() for secret in (*current, *self.previous_client_secrets))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `environ` (default: the process environment) or raise ConfigError."""
    try:
        if environ is None:
            return Settings()  # type: ignore[call-arg]  # fields come from the environment
        return Settings.model_validate(_aliased_only(environ))
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def _aliased_only(environ: Mapping[str, str]) -> dict[str, Any]:
    aliases = {_alias_of(name) for name in Settings.model_fields}
    return {key: value for key, value in environ.items() if key in aliases}


def _alias_of(field_name: str) -> str:
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the first offending variable and what is wrong with it."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    if not location:
        return message
    if first["type"] == "missing":
        return f"{location}: not set (required)"
    return f"{location}: {message}"
