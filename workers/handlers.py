"""Handlers: plain callables registered for scope globs, loaded from modules named in configuration.

    from workers.handlers import handler

    @handler("store/order/*", access={"orders": "write", "products": "read"})
    def tag_big_orders(event, api):
        ...  # `api` is a service.bigcommerce.StoreApi limited to the declared access

A handler declares what it may do with the API, per area, read or write (write implies read); without
`access=` it has no API access at all. Its StoreApi refuses anything else with AccessDenied before a
request leaves (the event is then dead-lettered with that reason: retrying cannot fix a handler), and
logs each call. A handler that raises anything else is retried with backoff; handlers that already
succeeded for that event are not run again (their names are remembered in Redis for the dedup window).
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.bigcommerce.access import NO_ACCESS, AccessDeclarationError, AccessPolicy, parse_access
from workers.events import ProcessedEvent

HandlerFn = Callable[[ProcessedEvent, Any], None]


@dataclass(frozen=True)
class Registration:
    """One handler, the scope globs it runs for and the API access it declared; `name` identifies it
    across retries."""

    name: str
    patterns: tuple[str, ...]
    function: HandlerFn
    access: AccessPolicy = NO_ACCESS

    def wants(self, scope: str) -> bool:
        """Whether this handler runs for `scope`."""
        return any(fnmatch.fnmatchcase(scope, pattern) for pattern in self.patterns)


@dataclass
class HandlerRegistry:
    """Handlers in registration order."""

    registrations: list[Registration] = field(default_factory=list)

    def add(
        self,
        function: HandlerFn,
        *patterns: str,
        name: str | None = None,
        access: AccessPolicy = NO_ACCESS,
    ) -> None:
        """Register `function` for scope globs (default: every scope) with the API access it declared."""
        handler_name = name or handler_name_of(function)
        if any(r.name == handler_name for r in self.registrations):
            return  # a module imported twice registers once
        self.registrations.append(Registration(handler_name, patterns or ("store/*",), function, access))

    def for_scope(self, scope: str) -> list[Registration]:
        """The handlers that run for `scope`, in order."""
        return [r for r in self.registrations if r.wants(scope)]


REGISTRY = HandlerRegistry()


def handler(*patterns: str, access: Mapping[str, str] | None = None) -> Callable[[HandlerFn], HandlerFn]:
    """Decorator: register a function for scope globs in the global registry.

    `access` maps seed-003 areas (service.bigcommerce.AREAS) to "read" or "write"; an unknown area or
    level raises AccessDeclarationError when the module is imported.
    """

    def register(function: HandlerFn) -> HandlerFn:
        REGISTRY.add(function, *patterns, access=parse_access(access, f"handler {handler_name_of(function)}"))
        return function

    return register


def handler_name_of(function: HandlerFn) -> str:
    """`module.qualname`: how logs, dead letters and doctor name a handler."""
    return f"{function.__module__}.{function.__qualname__}"


class HandlerModuleError(Exception):
    """A module named in BCWEBHOOKS_HANDLERS could not be imported."""


def load_handler_modules(modules: Iterable[str]) -> None:
    """Import the configured modules, whose @handler decorators fill the registry."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise HandlerModuleError(f"BCWEBHOOKS_HANDLERS: cannot import {module!r}: {error}") from error
        except AccessDeclarationError as error:
            raise HandlerModuleError(f"BCWEBHOOKS_HANDLERS: {module}: {error}") from error
