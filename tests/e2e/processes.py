"""The real commands as the e2e tests start them: each a process of its own, its output in a file."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

BCWEBHOOKS = [sys.executable, "-m", "service"]
START_TIMEOUT_SECONDS = 30.0


class Process:
    """A command we started, its output in a file, stopped by its PID."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self._log.close()
        return self.popen.wait()


def ready(url: str) -> bool:
    """`url` answers 200."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
