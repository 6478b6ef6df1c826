"""Where a running `bcwebhooks dev` keeps its Redis and sandbox: a small file the other commands read.

`dev` writes `dev.json` in its data dir while it runs and removes it on exit. `tail`, `dlq`, `hooks`,
`doctor`, `trigger`, `serve` and `worker` started beside it (same working directory, or the same
BCWEBHOOKS_DATA_DIR) take from it whatever their environment leaves unset: REDIS_URL, and the sandbox's
settings when dev runs one. A file left by a dev that died is ignored.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.embedded_redis import process_alive
from service.settings import DEFAULT_DATA_DIR

STATE_FILENAME = "dev.json"
DEV_DATA_DIR = os.path.join(DEFAULT_DATA_DIR, "dev")
DATA_DIR_ENV = "BCWEBHOOKS_DATA_DIR"
# Read by `trigger` (its --sandbox default) when dev runs the sandbox store.
SANDBOX_URL_ENV = "BCWEBHOOKS_SANDBOX_URL"


@dataclass(frozen=True)
class DevState:
    """A running dev stack: its PID, receiver URL and the settings that reach it from elsewhere."""

    pid: int
    receiver_url: str
    environ: dict[str, str] = field(default_factory=dict)

    def exports(self) -> str:
        """A shell line that points another terminal (or machine user) at this stack."""
        return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in self.environ.items())


def dev_data_dir(environ: Mapping[str, str]) -> Path:
    """Where `dev` keeps its data: BCWEBHOOKS_DATA_DIR, else .bcwebhooks/dev."""
    return Path(environ.get(DATA_DIR_ENV) or DEV_DATA_DIR)


def write_dev_state(data_dir: Path, state: DevState) -> Path:
    """Write the state file (readable by its owner only) atomically; returns its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / STATE_FILENAME
    partial = path.with_suffix(".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"pid": state.pid, "receiver_url": state.receiver_url, "environ": state.environ}, out)
    partial.replace(path)
    return path


def find_dev_state(environ: Mapping[str, str]) -> DevState | None:
    """The state of a dev stack running beside us, or None."""
    configured = environ.get(DATA_DIR_ENV)
    base = Path(configured) if configured else Path(DEFAULT_DATA_DIR)
    for candidate in (base / STATE_FILENAME, base / "dev" / STATE_FILENAME):
        state = _read(candidate)
        if state is not None and process_alive(state.pid):
            return state
    return None


def with_dev_state(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ`, with what a running dev stack provides filled in where `environ` leaves it unset."""
    merged = dict(environ)
    state = find_dev_state(environ)
    if state is None or merged.get("REDIS_URL"):
        return merged
    for name, value in state.environ.items():
        if not merged.get(name):
            merged[name] = value
    return merged


def _read(path: Path) -> DevState | None:
    try:
        raw = json.loads(path.read_text())
        environ = {str(k): str(v) for k, v in dict(raw["environ"]).items()}
        return DevState(pid=int(raw["pid"]), receiver_url=str(raw["receiver_url"]), environ=environ)
    except (OSError, ValueError, KeyError, TypeError):
        return None
