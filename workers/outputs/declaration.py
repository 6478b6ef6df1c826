"""outputs.toml: the HTTP destinations processed events are forwarded to, validated at start-up."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from service.bigcommerce.webhook_scopes import STORE_SCOPES, close_matches
from service.settings import ConfigError

ENV_PREFIX = "env:"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
MIN_SECRET_BYTES = 16
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_TIMEOUT_SECONDS = 10.0
# The actors' time limit is 45 s (workers/ledger.py): an attempt must end well inside it.
MAX_TIMEOUT_SECONDS = 30.0
DEFAULT_RETRIES = 15
DEFAULT_MIN_BACKOFF_SECONDS = 5.0
DEFAULT_MAX_BACKOFF_SECONDS = 3600.0
# Dramatiq's delay queue takes delays below 7 days.
MAX_BACKOFF_LIMIT_SECONDS = 24 * 3600.0
DEFAULT_CONCURRENCY = 2
KEYS = frozenset(
    {"name", "url", "scopes", "secret", "timeout", "retries", "min_backoff", "max_backoff", "concurrency"}
)


class OutputsError(ConfigError):
    """outputs.toml cannot be used; the message is one line naming what to change."""


@dataclass(frozen=True)
class DeclaredOutput:
    """One HTTP destination: where, which scopes, its signing secret and its delivery policy.

    Parameters:
      name: names the destination in logs, ledger work ids and dead letters.
      url: where each matching event is POSTed.
      scopes: globs over the event's scope (`store/order/*`, `*`).
      secret: the Standard Webhooks secret (`whsec_` + base64), resolved from the environment.
      timeout: seconds one attempt may take.
      retries: attempts after the first, with exponential backoff, before the forward is dead-lettered.
      min_backoff_ms, max_backoff_ms: the first and the longest wait between attempts.
      concurrency: requests in flight to this destination at once, across every worker.
    """

    name: str
    url: str
    scopes: tuple[str, ...]
    secret: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    retries: int = DEFAULT_RETRIES
    min_backoff_ms: int = int(DEFAULT_MIN_BACKOFF_SECONDS * 1000)
    max_backoff_ms: int = int(DEFAULT_MAX_BACKOFF_SECONDS * 1000)
    concurrency: int = DEFAULT_CONCURRENCY

    def wants(self, scope: str) -> bool:
        """Whether events of `scope` go to this destination."""
        return any(fnmatch.fnmatchcase(scope, glob) for glob in self.scopes)


def load_outputs(path: Path | None, environ: Mapping[str, str]) -> tuple[DeclaredOutput, ...]:
    """Read and validate the outputs file (none when `path` is None); raises OutputsError."""
    if path is None:
        return ()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise OutputsError(f"{path}: not found (BCWEBHOOKS_OUTPUTS_FILE names it)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise OutputsError(f"{path}: cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise OutputsError(f"{path}: not valid TOML: {error}") from None
    return parse_outputs(raw, environ, source=str(path))


def parse_outputs(
    raw: Mapping[str, Any], environ: Mapping[str, str], source: str
) -> tuple[DeclaredOutput, ...]:
    """Validate a parsed outputs file."""
    unknown = sorted(set(raw) - {"output"})
    if unknown:
        raise OutputsError(
            f"{source}: unknown table or key {unknown[0]!r}; declare each output as [[output]]"
        )
    entries = raw.get("output")
    if not isinstance(entries, list) or not entries:
        raise OutputsError(f"{source}: declare at least one [[output]] with name, url, scopes and secret")
    outputs = [_output(entry, index, environ, source) for index, entry in enumerate(entries)]
    names = [output.name for output in outputs]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise OutputsError(f"{source}: output name {duplicate!r} is used twice; names must be unique")
    return tuple(outputs)


def _output(entry: Any, index: int, environ: Mapping[str, str], source: str) -> DeclaredOutput:
    where = f"{source}: output {index + 1}"
    if not isinstance(entry, Mapping):
        raise OutputsError(f"{where}: must be a table ([[output]])")
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise OutputsError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(KEYS))}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise OutputsError(f"{where}: name is required: 1 to 64 letters, digits, '-' or '_'")
    where = f"{source}: output {name!r}"
    limit = MAX_BACKOFF_LIMIT_SECONDS
    min_backoff = _number(entry, "min_backoff", DEFAULT_MIN_BACKOFF_SECONDS, 0.01, limit, where)
    max_backoff = _number(entry, "max_backoff", DEFAULT_MAX_BACKOFF_SECONDS, 0.01, limit, where)
    if max_backoff < min_backoff:
        raise OutputsError(
            f"{where}: max_backoff ({max_backoff:g} s) is below min_backoff ({min_backoff:g} s)"
        )
    return DeclaredOutput(
        name=name,
        url=_url(entry.get("url"), where),
        scopes=_scopes(entry.get("scopes"), where),
        secret=_secret(entry.get("secret"), environ, where),
        timeout=_number(entry, "timeout", DEFAULT_TIMEOUT_SECONDS, 0.1, MAX_TIMEOUT_SECONDS, where),
        retries=int(_number(entry, "retries", DEFAULT_RETRIES, 0, 100, where, whole=True)),
        min_backoff_ms=int(min_backoff * 1000),
        max_backoff_ms=int(max_backoff * 1000),
        concurrency=int(_number(entry, "concurrency", DEFAULT_CONCURRENCY, 1, 64, where, whole=True)),
    )


def _url(value: Any, where: str) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutputsError(f"{where}: url must be an http(s) URL such as https://crm.example.com/hooks")
    return str(value)


def _scopes(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(glob, str) for glob in value):
        raise OutputsError(f"{where}: scopes must be a list of globs, such as ['store/order/*'] (or ['*'])")
    for glob in value:
        if not any(fnmatch.fnmatchcase(scope, glob) for scope in STORE_SCOPES):
            suggestion = ", ".join(close_matches(glob)) or "see the webhook events documentation"
            raise OutputsError(f"{where}: scope {glob!r} matches no webhook scope; closest: {suggestion}")
    return tuple(value)


def _secret(value: Any, environ: Mapping[str, str], where: str) -> str:
    if not isinstance(value, str) or not value.startswith(ENV_PREFIX):
        raise OutputsError(f'{where}: write secret as "env:VARIABLE"; secrets never go in this file')
    variable = value.removeprefix(ENV_PREFIX)
    secret = environ.get(variable, "").strip()
    if not secret:
        raise OutputsError(f"{where}: environment variable {variable} (its secret) is not set")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < MIN_SECRET_BYTES:
        raise OutputsError(
            f"{where}: {variable} must be a Standard Webhooks secret, whsec_ then base64 of at least "
            f'{MIN_SECRET_BYTES} random bytes (make one: python -c "import base64, os; '
            "print('whsec_' + base64.b64encode(os.urandom(24)).decode())\")"
        )
    return secret


def _number(
    entry: Mapping[str, Any],
    key: str,
    default: float,
    low: float,
    high: float,
    where: str,
    whole: bool = False,
) -> float:
    value = entry.get(key, default)
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "a whole number" if whole else "a number of seconds"
        raise OutputsError(f"{where}: {key} must be {kind} from {low:g} to {high:g}, not {value!r}")
    return float(value)
