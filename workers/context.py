"""The per-process WorkerContext, set once by the broker set-up before actors run."""

from __future__ import annotations

from workers.processing import WorkerContext

_current: WorkerContext | None = None


def set_context(context: WorkerContext) -> None:
    """Install the context this process's actors use."""
    global _current
    _current = context


def current_context() -> WorkerContext:
    """The installed context; a clear error when the broker was not set up through workers.broker."""
    if _current is None:
        raise RuntimeError("workers.broker.setup_broker() has not run in this process")
    return _current
