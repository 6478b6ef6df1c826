"""hooks.toml: which scopes go to which receiver, validated before any API call."""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from service.bigcommerce.webhook_scopes import close_matches, is_documented

DELIVERY_EXCEPTION_SCOPE = "store/hook/deliveryException"
MAX_HOOKS_PER_SCOPE = 10
ENV_PREFIX = "env:"


class DeclarationError(Exception):
    """hooks.toml cannot be applied; the message says what to change."""


@dataclass(frozen=True)
class DeclaredHook:
    """One hook we want: scope, destination, whether active, and the headers to send (secrets resolved)."""

    scope: str
    destination: str
    active: bool
    headers: dict[str, str]


@dataclass(frozen=True)
class Declaration:
    """Every hook we own, and the destinations that make a hook ours."""

    receiver: str
    exception_receiver: str | None
    hooks: tuple[DeclaredHook, ...]

    def owns(self, destination: str) -> bool:
        """A hook is ours when it points at our receiver (or our delivery-exception receiver)."""
        return destination in (self.receiver, self.exception_receiver)


def load_declaration(path: Path, environ: Mapping[str, str], allow_http: bool = False) -> Declaration:
    """Read and validate hooks.toml; raises DeclarationError naming what is wrong."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise DeclarationError(
            f"{path}: not found (copy hooks.toml from the repository and edit it)"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise DeclarationError(f"{path}: not valid TOML: {error}") from None
    return parse_declaration(raw, environ, allow_http, source=str(path))


def parse_declaration(
    raw: Mapping[str, Any], environ: Mapping[str, str], allow_http: bool, source: str
) -> Declaration:
    """Validate a parsed hooks.toml."""
    receiver = _destination(raw.get("receiver"), "receiver", allow_http, source)
    headers = _headers(raw.get("headers", {}), environ, source)
    hooks = [
        _hook(entry, index, receiver, headers, source)
        for index, entry in enumerate(_list(raw.get("hook"), source))
    ]
    exception_receiver = None
    exceptions = raw.get("delivery_exception", {})
    if exceptions.get("enabled", False):
        exception_receiver = _destination(
            exceptions.get("receiver"), "delivery_exception.receiver", allow_http, source
        )
        if exception_receiver == receiver:
            raise DeclarationError(
                f"{source}: delivery_exception.receiver must differ from receiver "
                "(BigCommerce requires the deliveryException hook to have a destination of its own)"
            )
        hooks.append(DeclaredHook(DELIVERY_EXCEPTION_SCOPE, exception_receiver, True, headers))
    _check_limits(hooks, source)
    return Declaration(receiver, exception_receiver, tuple(hooks))


def _list(value: Any, source: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not value:
        raise DeclarationError(f"{source}: declare at least one [[hook]] with a scope")
    return value


def _hook(
    entry: Mapping[str, Any], index: int, receiver: str, headers: dict[str, str], source: str
) -> DeclaredHook:
    scope = entry.get("scope")
    if not isinstance(scope, str) or not is_documented(scope):
        suggestion = ", ".join(close_matches(str(scope))) or "see the webhook events documentation"
        raise DeclarationError(
            f"{source}: hook {index + 1}: unknown scope {scope!r}; closest documented: {suggestion}"
        )
    if scope == DELIVERY_EXCEPTION_SCOPE:
        raise DeclarationError(
            f"{source}: declare {DELIVERY_EXCEPTION_SCOPE} under [delivery_exception], not [[hook]]"
        )
    active = entry.get("active", True)
    if not isinstance(active, bool):
        raise DeclarationError(f"{source}: hook {index + 1} ({scope}): active must be true or false")
    return DeclaredHook(scope, receiver, active, headers)


def _destination(value: Any, field: str, allow_http: bool, source: str) -> str:
    if not isinstance(value, str) or not value:
        raise DeclarationError(f"{source}: {field} is required: the public URL BigCommerce posts to")
    parts = urlsplit(value)
    if allow_http and parts.scheme in ("http", "https") and parts.hostname:
        return value
    if parts.scheme != "https" or not parts.hostname or parts.port not in (None, 443):
        raise DeclarationError(
            f"{source}: {field} {value!r} must be https on port 443: BigCommerce delivers nowhere else "
            "(use --allow-http only against the sandbox store)"
        )
    return value


def _headers(raw: Any, environ: Mapping[str, str], source: str) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise DeclarationError(f"{source}: [headers] must map header names to values")
    headers = {}
    for name, value in raw.items():
        if not isinstance(value, str) or not value.startswith(ENV_PREFIX):
            raise DeclarationError(
                f"{source}: header {name}: write its value as 'env:VARIABLE'; secrets never go in this file"
            )
        variable = value.removeprefix(ENV_PREFIX)
        if not environ.get(variable):
            raise DeclarationError(f"{source}: header {name}: environment variable {variable} is not set")
        headers[str(name)] = environ[variable]
    return headers


def _check_limits(hooks: list[DeclaredHook], source: str) -> None:
    pairs = Counter((hook.scope, hook.destination) for hook in hooks)
    for (scope, destination), count in pairs.items():
        if count > 1:
            raise DeclarationError(
                f"{source}: {scope} is declared {count} times for {destination}; BigCommerce allows "
                "one hook per scope and destination for an API account"
            )
