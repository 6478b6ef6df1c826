"""The sandbox's refusals: a status, a title and field errors, rendered in each API generation's shape."""

from __future__ import annotations


class SandboxError(Exception):
    """A request the platform would refuse; the endpoint wrapper renders it as a v2 or v3 error body."""

    def __init__(self, status: int, title: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.errors = errors or {}


class ApiFailure(SandboxError):
    """Ends a request early (auth, scope, lookup, malformed input)."""


class ChangeError(SandboxError):
    """A write the platform would refuse (422 with field errors, 404, 409)."""


class HookError(SandboxError):
    """A refused /v3/hooks call."""
