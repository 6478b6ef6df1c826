"""The `bcwebhooks` command: serve, worker and dev."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

from service import __version__
from service.embedded_redis import EmbeddedRedis, resolve_redis_url
from service.registration.commands import add_commands as add_registration_commands
from service.sandbox.commands import add_sandbox_command, add_trigger_command
from service.settings import RESOLVED_REDIS_URL_ENV, ConfigError, load_settings
from workers.commands import add_commands as add_worker_commands

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
WORKER_STOP_TIMEOUT_SECONDS = 15

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="bcwebhooks",
        description="Receive BigCommerce webhooks, persist them in Redis and process them in Dramatiq "
        "workers. Configuration comes from environment variables (see .env.example).",
    )
    parser.add_argument("--version", action="version", version=f"bcwebhooks {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the webhook receiver (uvicorn)",
        description="Run the receiver: POST /webhooks/bigcommerce, GET /healthz, GET /readyz. "
        "Uses REDIS_URL, or starts an embedded Redis under BCWEBHOOKS_DATA_DIR when it is unset.",
    )
    _add_listen_arguments(serve)
    serve.add_argument(
        "--workers", type=_positive_int, default=1, help="uvicorn worker processes (default 1)"
    )
    serve.set_defaults(run=run_serve)

    worker = commands.add_parser(
        "worker",
        help="run Dramatiq workers that process persisted callbacks",
        description="Run Dramatiq worker processes on the same Redis broker as the receiver.",
    )
    _add_worker_arguments(worker)
    worker.set_defaults(run=run_worker)

    dev = commands.add_parser(
        "dev",
        help="run everything locally: sandbox store, embedded Redis, receiver and one worker",
        description="Local development. Without BIGCOMMERCE_ACCESS_TOKEN it starts the sandbox store, "
        "registers hooks on it for the receiver and fires a demo sequence of changes; with credentials it "
        "uses your store. Redis is embedded unless REDIS_URL is set. Ctrl-C stops everything.",
    )
    _add_listen_arguments(dev)
    dev.add_argument("--no-demo", action="store_true", help="do not fire the demo sequence")
    dev.add_argument(
        "--sandbox-port", type=_port, default=8200, help="sandbox store port, when it runs (default 8200)"
    )
    dev.set_defaults(run=run_dev)

    add_sandbox_command(commands)
    add_trigger_command(commands)
    add_worker_commands(commands)
    add_registration_commands(commands)
    return parser


def _add_listen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"interface to listen on (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})"
    )


def _add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", type=_positive_int, default=1, help="worker processes (default 1)")
    parser.add_argument("--threads", type=_positive_int, default=8, help="threads per process (default 8)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number between 0 and 65535")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bcwebhooks` console script."""
    args = build_parser().parse_args(argv)
    command: Command = args.run
    try:
        return command(args)
    except ConfigError as error:
        print(f"bcwebhooks: configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_serve(args: argparse.Namespace) -> int:
    """Run uvicorn with the receiver app."""
    import uvicorn

    settings = load_settings()
    redis_url, embedded = resolve_redis_url(settings.redis_url, settings.data_dir)
    os.environ[RESOLVED_REDIS_URL_ENV] = redis_url
    _announce(f"receiver listening on http://{args.host}:{args.port}/webhooks/bigcommerce", embedded)
    try:
        uvicorn.run(
            "service.asgi:create_app_from_environment",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            access_log=False,
            log_level="warning",
        )
    finally:
        _stop_embedded(embedded)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    """Run the Dramatiq CLI on our broker and actors until it exits or we are interrupted."""
    settings = load_settings()
    redis_url, embedded = resolve_redis_url(settings.redis_url, settings.data_dir)
    _announce(f"worker: {args.processes} process(es) x {args.threads} thread(s)", embedded)
    try:
        process = start_worker_process(
            dict(os.environ), redis_url, args.processes, args.threads, poll_ms=settings.worker_poll_ms
        )
        return _wait_forwarding_signals(process)
    finally:
        _stop_embedded(embedded)


WORKER_POLL_ENV = "dramatiq_worker_timeout"


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
    environ: Mapping[str, str], redis_url: str, processes: int, threads: int, poll_ms: int
) -> subprocess.Popen[bytes]:
    """Start the Dramatiq worker CLI as a child process on `redis_url`.

    `poll_ms` caps how long an idle consumer sleeps between polls of its queue (Dramatiq reads it from
    `dramatiq_worker_timeout`; its default of 1000 ms would add up to a second to an event that arrives
    while the worker is idle).
    """
    env = {**environ, RESOLVED_REDIS_URL_ENV: redis_url, WORKER_POLL_ENV: str(poll_ms)}
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


def _wait_forwarding_signals(process: subprocess.Popen[bytes]) -> int:
    previous = signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGTERM))
    try:
        return process.wait()
    except KeyboardInterrupt:
        return stop_process(process)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _announce(message: str, embedded: EmbeddedRedis | None) -> None:
    where = f"embedded Redis at {embedded.url} (data in {embedded.data_dir})" if embedded else "REDIS_URL"
    print(f"bcwebhooks: {message}; broker: {where}", file=sys.stderr, flush=True)


def _stop_embedded(embedded: EmbeddedRedis | None) -> None:
    if embedded is not None:
        embedded.stop()


def run_dev(args: argparse.Namespace) -> int:
    """Sandbox store (without credentials) + Redis + receiver + one worker, in the foreground."""
    from service.devserver import DevOptions, run_dev_stack

    options = DevOptions(
        host=args.host, port=args.port, sandbox_port=args.sandbox_port, demo=not args.no_demo
    )
    return run_dev_stack(os.environ, options)
