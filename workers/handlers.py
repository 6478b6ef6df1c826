"""Handlers: plain callables registered for scope globs, loaded from modules named in configuration.

    from workers.handlers import handler

    @handler("store/order/*")
    def tag_big_orders(event, api):
        ...  # `api` is a service.bigcommerce.StoreApi: a handler may write back

A handler that raises is retried with backoff; handlers that already succeeded for that event are not run
again (their names are remembered in Redis for the dedup window).
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from workers.events import ProcessedEvent

HandlerFn = Callable[[ProcessedEvent, Any], None]


@dataclass(frozen=True)
class Registration:
    """One handler and the scope globs it runs for; `name` identifies it across retries."""

    name: str
    patterns: tuple[str, ...]
    function: HandlerFn

    def wants(self, scope: str) -> bool:
        """Whether this handler runs for `scope`."""
        return any(fnmatch.fnmatchcase(scope, pattern) for pattern in self.patterns)


@dataclass
class HandlerRegistry:
    """Handlers in registration order."""

    registrations: list[Registration] = field(default_factory=list)

    def add(self, function: HandlerFn, *patterns: str, name: str | None = None) -> None:
        """Register `function` for scope globs (default: every scope)."""
        handler_name = name or f"{function.__module__}.{function.__qualname__}"
        if any(r.name == handler_name for r in self.registrations):
            return  # a module imported twice registers once
        self.registrations.append(Registration(handler_name, patterns or ("store/*",), function))

    def for_scope(self, scope: str) -> list[Registration]:
        """The handlers that run for `scope`, in order."""
        return [r for r in self.registrations if r.wants(scope)]


REGISTRY = HandlerRegistry()


def handler(*patterns: str) -> Callable[[HandlerFn], HandlerFn]:
    """Decorator: register a function for scope globs in the global registry."""

    def register(function: HandlerFn) -> HandlerFn:
        REGISTRY.add(function, *patterns)
        return function

    return register


class HandlerModuleError(Exception):
    """A module named in BCWEBHOOKS_HANDLERS could not be imported."""


def load_handler_modules(modules: Iterable[str]) -> None:
    """Import the configured modules, whose @handler decorators fill the registry."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise HandlerModuleError(f"BCWEBHOOKS_HANDLERS: cannot import {module!r}: {error}") from error
