"""The Dramatiq worker CLI as a child process: started by `worker` and `dev`, stopped by PID."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping

from service.metrics import MULTIPROC_DIR_ENV
from service.settings import RESOLVED_REDIS_URL_ENV

WORKER_STOP_TIMEOUT_SECONDS = 15
# Dramatiq reads an idle consumer's longest sleep between polls of its queue from this variable.
WORKER_POLL_ENV = "dramatiq_worker_timeout"
# Where Dramatiq's Prometheus middleware keeps its multiprocess files (read when it is imported).
DRAMATIQ_PROMETHEUS_DB_ENV = "dramatiq_prom_db"


def worker_command(processes: int, threads: int) -> list[str]:
    """The Dramatiq CLI invocation that runs our actors."""
    return [
        sys.executable,
        "-m",
        "dramatiq",
        "workers.broker:setup_broker",
        "workers.actors",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--skip-logging",
    ]


def start_worker_process(
    environ: Mapping[str, str],
    redis_url: str,
    processes: int,
    threads: int,
    poll_ms: int,
    metrics_dir: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start the Dramatiq worker CLI as a child process on `redis_url`.

    `poll_ms` caps how long an idle consumer sleeps between polls of its queue (Dramatiq's default of
    1000 ms would add up to a second to an event that arrives while the worker is idle). `metrics_dir`
    is the processes' Prometheus multiprocess directory (service/metrics.py), set before they start.
    """
    env = {**environ, RESOLVED_REDIS_URL_ENV: redis_url, WORKER_POLL_ENV: str(poll_ms)}
    if metrics_dir is not None:
        env[MULTIPROC_DIR_ENV] = env[DRAMATIQ_PROMETHEUS_DB_ENV] = metrics_dir
    return subprocess.Popen(worker_command(processes, threads), env=env)


def stop_process(process: subprocess.Popen[bytes], timeout: float = WORKER_STOP_TIMEOUT_SECONDS) -> int:
    """SIGTERM a child we started, then SIGKILL it if it has not exited within `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def wait_forwarding_signals(process: subprocess.Popen[bytes]) -> int:
    """Wait for `process`, passing SIGTERM on to it; Ctrl-C stops it the same way."""
    previous = signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGTERM))
    try:
        return process.wait()
    except KeyboardInterrupt:
        return stop_process(process)
    finally:
        signal.signal(signal.SIGTERM, previous)
