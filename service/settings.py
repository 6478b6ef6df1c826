"""Configuration from environment variables, loaded and validated once at start-up."""

from __future__ import annotations

import base64
import enum
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.redis_connection import check_redis_url as check_url_form

DEFAULT_API_URL = "https://api.bigcommerce.com"
DEFAULT_LOGIN_URL = "https://login.bigcommerce.com"
DEFAULT_HOOKS_FILE = Path("hooks.toml")
DEFAULT_HEADER_NAME = "X-Webhook-Secret"
DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_BODY_TIMEOUT_SECONDS = 10.0
# BigCommerce retries for ~48.07 h; the window must outlive the last retry.
MIN_DEDUP_WINDOW_SECONDS = 72 * 3600
DEFAULT_DEDUP_WINDOW_SECONDS = MIN_DEDUP_WINDOW_SECONDS
DEFAULT_DATA_DIR = ".bcwebhooks"
DEFAULT_STREAM = "bcwebhooks:events"
DEFAULT_STREAM_MAXLEN = 100_000
DEFAULT_MAX_RETRIES = 8
DEFAULT_MIN_BACKOFF_MS = 2_000
DEFAULT_REPLICA_TIMEOUT_MS = 500
# The workers' /metrics (Dramatiq's Prometheus port); 0 turns it off.
DEFAULT_METRICS_PORT = 9191
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_MONITOR_INTERVAL_SECONDS = 300
# BigCommerce's retry schedule (173,040 s): what it was still retrying when it deactivated a hook is lost.
DEFAULT_MONITOR_LOOKBACK_SECONDS = 173_040
MIN_ALERT_SECRET_BYTES = 24

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
    # Acknowledge a callback only once this many replicas confirmed it (Redis WAIT); 0: once the primary has.
    redis_min_replicas: int = Field(default=0, ge=0, le=16, validation_alias="BCWEBHOOKS_REDIS_MIN_REPLICAS")
    redis_replica_timeout_ms: int = Field(
        default=DEFAULT_REPLICA_TIMEOUT_MS,
        ge=1,
        le=30_000,
        validation_alias="BCWEBHOOKS_REDIS_REPLICA_TIMEOUT_MS",
    )
    data_dir: Path = Field(default=Path(DEFAULT_DATA_DIR), validation_alias="BCWEBHOOKS_DATA_DIR")
    store_hash: str | None = Field(default=None, validation_alias="BIGCOMMERCE_STORE_HASH")
    access_token: SecretStr | None = Field(default=None, validation_alias="BIGCOMMERCE_ACCESS_TOKEN")
    client_secret: SecretStr | None = Field(default=None, validation_alias="BIGCOMMERCE_CLIENT_SECRET")
    previous_client_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), validation_alias="BIGCOMMERCE_PREVIOUS_CLIENT_SECRETS"
    )
    header_secret: SecretStr | None = Field(default=None, validation_alias="BCWEBHOOKS_HEADER_SECRET")
    header_name: str = Field(default=DEFAULT_HEADER_NAME, validation_alias="BCWEBHOOKS_HEADER_NAME")
    auth_mode: AuthMode | None = Field(default=None, validation_alias="BCWEBHOOKS_AUTH")
    api_url: str = Field(default=DEFAULT_API_URL, validation_alias="BIGCOMMERCE_API_URL")
    # App mode (service/oauth.py, service/stores.py): see `mode` for the rule that selects it.
    client_id: str | None = Field(default=None, validation_alias="BIGCOMMERCE_CLIENT_ID")
    encryption_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), validation_alias="BCWEBHOOKS_ENCRYPTION_KEYS"
    )
    login_url: str = Field(default=DEFAULT_LOGIN_URL, validation_alias="BIGCOMMERCE_LOGIN_URL")
    app_url: str | None = Field(default=None, validation_alias="BCWEBHOOKS_APP_URL")
    hooks_file: Path = Field(default=DEFAULT_HOOKS_FILE, validation_alias="BCWEBHOOKS_HOOKS_FILE")
    hooks_allow_http: bool = Field(default=False, validation_alias="BCWEBHOOKS_HOOKS_ALLOW_HTTP")
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
    body_timeout_seconds: float = Field(
        default=DEFAULT_BODY_TIMEOUT_SECONDS,
        gt=0,
        le=300,
        validation_alias="BCWEBHOOKS_BODY_TIMEOUT_SECONDS",
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
    outputs_file: Path | None = Field(default=None, validation_alias="BCWEBHOOKS_OUTPUTS_FILE")
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
    metrics_port: int = Field(
        default=DEFAULT_METRICS_PORT, ge=0, le=65535, validation_alias="BCWEBHOOKS_METRICS_PORT"
    )
    metrics_host: str = Field(default=DEFAULT_METRICS_HOST, validation_alias="BCWEBHOOKS_METRICS_HOST")
    dashboard_token: SecretStr | None = Field(default=None, validation_alias="BCWEBHOOKS_DASHBOARD_TOKEN")
    # The hook monitor (workers/monitor.py): seconds between passes over every store; 0: the workers run none.
    monitor_interval: int = Field(
        default=DEFAULT_MONITOR_INTERVAL_SECONDS,
        ge=0,
        le=86_400,
        validation_alias="BCWEBHOOKS_MONITOR_INTERVAL",
    )
    monitor_ready_url: str | None = Field(default=None, validation_alias="BCWEBHOOKS_MONITOR_READY_URL")
    monitor_lookback_seconds: int = Field(
        default=DEFAULT_MONITOR_LOOKBACK_SECONDS,
        ge=0,
        le=30 * 86_400,
        validation_alias="BCWEBHOOKS_MONITOR_LOOKBACK_SECONDS",
    )
    alert_url: str | None = Field(default=None, validation_alias="BCWEBHOOKS_ALERT_URL")
    alert_secret: SecretStr | None = Field(default=None, validation_alias="BCWEBHOOKS_ALERT_SECRET")
    log_format: LogFormat = Field(default=LogFormat.AUTO, validation_alias="BCWEBHOOKS_LOG_FORMAT")
    log_level: str = Field(default="info", validation_alias="BCWEBHOOKS_LOG_LEVEL")

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url_shape(cls, value: object) -> object:
        return check_redis_url(value)

    @model_validator(mode="before")
    @classmethod
    def _blank_means_unset(cls, values: object) -> object:
        # `cp .env.example .env` leaves `NAME=` lines: a blank value must not count as a (blank) secret.
        if isinstance(values, dict):
            return {key: value for key, value in values.items() if not _is_blank(value)}
        return values

    @field_validator("store_hash")
    @classmethod
    def _store_hash_shape(cls, value: str | None) -> str | None:
        if value is not None and not STORE_HASH_PATTERN.match(value):
            raise ValueError(
                "must be the lowercase letters and digits from the API path /stores/{store_hash}/"
            )
        return value

    @field_validator("previous_client_secrets", "handler_modules", "encryption_keys", mode="before")
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

    @field_validator("alert_secret")
    @classmethod
    def _alert_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not is_standard_webhooks_secret(value.get_secret_value()):
            raise ValueError(
                "must be a Standard Webhooks secret: whsec_ then base64 of at least 24 random bytes "
                '(make one: python -c "import base64, os; '
                "print('whsec_' + base64.b64encode(os.urandom(24)).decode())\")"
            )
        return value

    @model_validator(mode="after")
    def _alert_secret_needs_url(self) -> Settings:
        if self.alert_secret is not None and self.alert_url is None:
            raise ValueError(
                "BCWEBHOOKS_ALERT_URL: not set, but BCWEBHOOKS_ALERT_SECRET is (where to send alerts)"
            )
        return self

    @field_validator("api_url", "login_url", "app_url", "alert_url", "monitor_ready_url")
    @classmethod
    def _api_url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://api.bigcommerce.com")
        return value.rstrip("/") if value is not None else None

    @field_validator("encryption_keys")
    @classmethod
    def _fernet_keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for position, key in enumerate(value, start=1):
            if not is_fernet_key(key.get_secret_value()):
                raise ValueError(
                    f"key {position} is not a Fernet key (32 url-safe base64 bytes); "
                    "make one with `bcwebhooks stores new-key`"
                )
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level_name(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()

    @model_validator(mode="after")
    def _auth_is_possible(self) -> Settings:
        check_mode(self)
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
    def app_mode(self) -> bool:
        """App mode (every store that installs the app) rather than one store: BCWEBHOOKS_ENCRYPTION_KEYS
        is set. `check_mode` refuses the combinations that would leave this ambiguous or incomplete."""
        return bool(self.encryption_keys)

    @property
    def single_store_hash(self) -> str:
        """The one store of single-store mode (ConfigError in app mode, which serves many)."""
        if self.store_hash is None:
            raise ConfigError(
                "this command needs one store: in app mode pass --store HASH (see `bcwebhooks stores list`)"
            )
        return self.store_hash

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        """Every client secret a valid signature may be made with, current first."""
        current = (self.client_secret,) if self.client_secret is not None else ()
        return tuple(secret.get_secret_value() for secret in (*current, *self.previous_client_secrets))


def check_mode(settings: Settings) -> None:
    """Refuse a configuration that is neither clearly single-store nor clearly app mode (ValueError).

    Single-store mode: BIGCOMMERCE_STORE_HASH (and BIGCOMMERCE_ACCESS_TOKEN for workers), exactly as before.
    App mode: BCWEBHOOKS_ENCRYPTION_KEYS set, with BIGCOMMERCE_CLIENT_ID, BIGCOMMERCE_CLIENT_SECRET and
    BCWEBHOOKS_APP_URL, and neither BIGCOMMERCE_ACCESS_TOKEN nor BIGCOMMERCE_STORE_HASH.
    """
    if not settings.app_mode:
        if settings.store_hash is None:
            if settings.client_id is not None:
                raise ValueError(
                    "BIGCOMMERCE_STORE_HASH: not set; for app mode (every store that installs the app) "
                    "set BCWEBHOOKS_ENCRYPTION_KEYS too"
                )
            raise ValueError("BIGCOMMERCE_STORE_HASH: not set (required)")
        return
    for name, value in (
        ("BIGCOMMERCE_ACCESS_TOKEN", settings.access_token),
        ("BIGCOMMERCE_STORE_HASH", settings.store_hash),
    ):
        if value is not None:
            raise ValueError(
                f"{name} and BCWEBHOOKS_ENCRYPTION_KEYS are both set: unset {name} for app mode (every "
                "store that installs the app), or unset BCWEBHOOKS_ENCRYPTION_KEYS for one store"
            )
    for name, value in (
        ("BIGCOMMERCE_CLIENT_ID", settings.client_id),
        ("BIGCOMMERCE_CLIENT_SECRET", settings.client_secret),
        ("BCWEBHOOKS_APP_URL", settings.app_url),
    ):
        if value is None:
            raise ValueError(f"{name}: required in app mode (BCWEBHOOKS_ENCRYPTION_KEYS is set)")


def is_standard_webhooks_secret(text: str) -> bool:
    """Whether `text` is `whsec_` (optional) then base64 of at least MIN_ALERT_SECRET_BYTES bytes."""
    encoded = text.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:
        return False
    return len(key) >= MIN_ALERT_SECRET_BYTES


def is_fernet_key(text: str) -> bool:
    """Whether `text` is a Fernet key: 32 bytes in url-safe base64."""
    try:
        return len(base64.urlsafe_b64decode(text.encode("ascii"))) == 32 and len(text) == 44
    except (ValueError, UnicodeEncodeError):
        return False


def check_redis_url(value: object) -> object:
    """A blank REDIS_URL means unset; any other must be a form service/redis_connection.py connects to."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    check_url_form(value)
    return value


class RedisSettings(BaseSettings):
    """What commands that only read Redis (`tail`, `dlq`) need: no store, no secrets."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, case_sensitive=True
    )

    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    data_dir: Path = Field(default=Path(DEFAULT_DATA_DIR), validation_alias="BCWEBHOOKS_DATA_DIR")
    stream_name: str = Field(default=DEFAULT_STREAM, min_length=1, validation_alias="BCWEBHOOKS_STREAM")

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url_shape(cls, value: object) -> object:
        return check_redis_url(value)

    def resolved_redis_url(self, environ: Mapping[str, str]) -> str | None:
        """The Redis URL a child process was handed by the CLI, else REDIS_URL."""
        return environ.get(RESOLVED_REDIS_URL_ENV) or self.redis_url


def load_redis_settings(environ: Mapping[str, str]) -> RedisSettings:
    """Build the Redis-only settings from `environ` or raise ConfigError."""
    names = {"REDIS_URL", "BCWEBHOOKS_DATA_DIR", "BCWEBHOOKS_STREAM"}
    try:
        return RedisSettings.model_validate({k: v for k, v in environ.items() if k in names})
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def _is_blank(value: object) -> bool:
    return isinstance(value, str) and not value.strip()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `environ` (default: the process environment) or raise ConfigError."""
    try:
        if environ is None:
            return Settings()
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
