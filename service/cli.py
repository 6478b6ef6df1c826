"""The `bcwebhooks` command: argument parsing, and `serve`, `worker` and `dev`; other commands live with
their concept (`service/doctor.py`, `service/registration/`, `service/sandbox/`, `workers/commands.py`)."""

from __future__ import annotations

import _thread
import argparse
import errno
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

import redis

from service import __version__
from service.backfill_command import add_backfill_command
from service.devstate import SANDBOX_URL_ENV, with_dev_state
from service.doctor import add_doctor_command
from service.embedded_redis import EmbeddedRedis, EmbeddedRedisError, resolve_redis_url
from service.incident_commands import add_incidents_command
from service.metrics import MULTIPROC_DIR_ENV, multiprocess_directory
from service.registration.commands import add_commands as add_registration_commands
from service.sandbox.commands import (
    DEFAULT_SANDBOX_PORT,
    DEFAULT_SANDBOX_URL,
    add_sandbox_command,
    add_trigger_command,
)
from service.settings import RESOLVED_REDIS_URL_ENV, ConfigError, load_settings
from service.store_commands import add_stores_command
from service.worker_process import start_worker_process, wait_forwarding_signals
from workers.commands import add_commands as add_worker_commands
from workers.handlers import HandlerModuleError, load_handler_modules
from workers.monitor_command import add_commands as add_monitor_commands
from workers.outputs import load_outputs

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
LISTEN_TIMEOUT_SECONDS = 60.0
# Commands that run their own stack, and so never take settings from a running `dev`.
OWN_STACK_COMMANDS = frozenset({"dev", "sandbox"})

Command = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A mistake the user can fix (a busy port, say); the message is one line naming the fix."""


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The argument parser for every subcommand; `environ` supplies defaults such as dev's sandbox URL."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="bcwebhooks",
        description="Receive BigCommerce webhooks, persist them in Redis and process them in Dramatiq "
        "workers. Configuration comes from environment variables (see .env.example); commands started "
        "beside a running `bcwebhooks dev` use its Redis and sandbox by themselves.",
    )
    parser.add_argument("--version", action="version", version=f"bcwebhooks {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the webhook receiver (uvicorn)",
        description="Run the receiver: POST /webhooks/bigcommerce, GET /healthz, GET /readyz, GET /metrics "
        "(Prometheus, all processes together), and GET /dashboard when BCWEBHOOKS_DASHBOARD_TOKEN is set. "
        "Uses REDIS_URL (redis://, rediss://, unix:// or redis+sentinel://sentinel:26379,.../mymaster/0), "
        "or starts an embedded Redis under BCWEBHOOKS_DATA_DIR when it is unset. Run as many as you "
        "like on one Redis.",
    )
    _add_listen_arguments(serve)
    serve.add_argument("--workers", type=positive_int, default=1, help="uvicorn worker processes (default 1)")
    serve.set_defaults(run=run_serve)

    worker = commands.add_parser(
        "worker",
        help="run Dramatiq workers that process persisted callbacks",
        description="Run Dramatiq worker processes on the same Redis broker as the receiver (REDIS_URL, "
        "a Sentinel URL included); run as many as you like on one Redis. They also POST processed events to "
        "the HTTP outputs declared in BCWEBHOOKS_OUTPUTS_FILE (checked before start). Their Prometheus "
        "metrics are served on BCWEBHOOKS_METRICS_HOST:BCWEBHOOKS_METRICS_PORT (default 127.0.0.1:9191; "
        "0 turns them off).",
    )
    worker.add_argument("--processes", type=positive_int, default=1, help="worker processes (default 1)")
    worker.add_argument("--threads", type=positive_int, default=8, help="threads per process (default 8)")
    worker.set_defaults(run=run_worker)

    dev = commands.add_parser(
        "dev",
        help="run everything locally: sandbox store, embedded Redis, receiver and one worker",
        description="Local development. Without BIGCOMMERCE_ACCESS_TOKEN it starts the sandbox store, "
        "registers hooks on it for the receiver and fires a demo sequence of changes; with credentials it "
        "uses your store. Redis is embedded unless REDIS_URL is set. Commands started beside it (tail, "
        "dlq, hooks, doctor, trigger) find its Redis and sandbox by themselves. Ctrl-C stops everything.",
    )
    _add_listen_arguments(dev)
    dev.add_argument("--no-demo", action="store_true", help="do not fire the demo sequence")
    dev.add_argument(
        "--stores",
        type=positive_int,
        help="app mode: the sandbox runs N stores, the app is installed on each through the OAuth flow "
        "(hooks registered per store by the workers), and the demo fires in every store",
    )
    dev.add_argument(
        "--sandbox-port",
        type=port_number,
        default=DEFAULT_SANDBOX_PORT,
        help=f"sandbox store port, when it runs (default {DEFAULT_SANDBOX_PORT})",
    )
    dev.set_defaults(run=run_dev)

    default_sandbox = environ.get(SANDBOX_URL_ENV) or DEFAULT_SANDBOX_URL
    add_sandbox_command(commands, default_sandbox=default_sandbox)
    add_trigger_command(commands, default_sandbox=default_sandbox)
    add_worker_commands(commands)
    add_registration_commands(commands)
    add_stores_command(commands)
    add_backfill_command(commands)
    add_doctor_command(commands)
    add_monitor_commands(commands)
    add_incidents_command(commands)
    return parser


def _add_listen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"interface to listen on (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port to listen on, 0 for any free one (default {DEFAULT_PORT})",
    )


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0 to 65535)")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bcwebhooks` console script."""
    environ = with_dev_state(os.environ)
    args = build_parser(environ).parse_args(argv)
    if args.command not in OWN_STACK_COMMANDS:
        os.environ.update(environ)
    command: Command = args.run
    previous = signal.signal(signal.SIGTERM, _interrupt)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _redeliver_swallowed_interrupt
    try:
        return command(args)
    except ConfigError as error:
        return _fail(f"configuration error: {error}", 2)
    except (UsageError, EmbeddedRedisError) as error:
        return _fail(str(error), 2)
    except redis.ConnectionError as error:
        return _fail(f"cannot reach Redis ({error}): start it or fix REDIS_URL", 1)
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops a command the way Ctrl-C does, so that what it started is stopped too."""
    raise KeyboardInterrupt


def _redeliver_swallowed_interrupt(unraisable: Any) -> None:
    """An interrupt that landed in a `__del__` or weakref callback is swallowed by Python; deliver it again.

    Without this, a SIGTERM arriving at such a moment (seen during `serve`'s start-up under load) was lost
    and the command, and the embedded Redis it started, went on running.
    """
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _thread.interrupt_main()
        return
    sys.__unraisablehook__(unraisable)


def _fail(message: str, code: int) -> int:
    print(f"bcwebhooks: {message}", file=sys.stderr, flush=True)
    return code


def run_serve(args: argparse.Namespace) -> int:
    """Run uvicorn with the receiver app."""
    import uvicorn

    from service.http_limits import PROTOCOL

    settings = load_settings()
    ensure_port_free(args.host, args.port)
    redis_url, embedded = resolve_redis_url(settings.redis_url, settings.data_dir)
    os.environ[RESOLVED_REDIS_URL_ENV] = redis_url
    message = f"receiver listening on http://{args.host}:{args.port}/webhooks/bigcommerce"
    listening = announce_when_listening(args.host, args.port, _with_broker(message, embedded))
    try:
        with multiprocess_directory(os.environ) as metrics_dir:
            # Set before uvicorn starts its processes, so that each counts into the shared directory.
            os.environ[MULTIPROC_DIR_ENV] = metrics_dir
            uvicorn.run(
                "service.asgi:create_app_from_environment",
                factory=True,
                host=args.host,
                port=args.port,
                workers=args.workers,
                access_log=False,
                log_level="warning",
                http=PROTOCOL,
            )
    finally:
        listening.set()
        _stop_embedded(embedded)
    return 0


def ensure_port_free(host: str, port: int) -> None:
    """Raise UsageError, naming the fix, when nothing could listen on host:port."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise UsageError(f"--host {host}: not an interface address on this machine") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"port {port} on {host} is in use: stop what listens there or pick another --port"
                ) from None
            reason = f"cannot listen on {host}:{port} ({error.strerror})"
            raise UsageError(f"{reason}: pick another --host or --port") from None


def announce_when_listening(host: str, port: int, message: str) -> threading.Event:
    """Print `message` once host:port accepts connections; set the returned event to give up."""
    done = threading.Event()
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)

    def wait_then_print() -> None:
        deadline = time.monotonic() + LISTEN_TIMEOUT_SECONDS
        while not done.is_set() and time.monotonic() < deadline:
            try:
                socket.create_connection((target, port), timeout=0.5).close()
            except OSError:
                done.wait(0.05)
                continue
            print(f"bcwebhooks: {message}", file=sys.stderr, flush=True)
            return

    if port == 0:
        print(f"bcwebhooks: {message}", file=sys.stderr, flush=True)
    else:
        threading.Thread(target=wait_then_print, name="announce", daemon=True).start()
    return done


def run_worker(args: argparse.Namespace) -> int:
    """Run the Dramatiq CLI on our broker and actors until it exits or we are interrupted."""
    settings = load_settings()
    try:  # a module that cannot load (or declares an unknown access=) is one line here, not a traceback
        load_handler_modules(settings.handler_modules)
    except HandlerModuleError as error:
        raise UsageError(str(error)) from None
    outputs = load_outputs(settings.outputs_file, os.environ)  # its errors before any process starts
    redis_url, embedded = resolve_redis_url(settings.redis_url, settings.data_dir)
    message = f"worker: {args.processes} process(es) x {args.threads} thread(s)"
    if outputs:
        message += f", HTTP outputs: {', '.join(output.name for output in outputs)}"
    print(f"bcwebhooks: {_with_broker(message, embedded)}", file=sys.stderr, flush=True)
    try:
        with multiprocess_directory(os.environ) as metrics_dir:
            process = start_worker_process(
                dict(os.environ),
                redis_url,
                args.processes,
                args.threads,
                poll_ms=settings.worker_poll_ms,
                metrics_dir=metrics_dir,
            )
            return wait_forwarding_signals(process)
    finally:
        _stop_embedded(embedded)


def _with_broker(message: str, embedded: EmbeddedRedis | None) -> str:
    where = f"embedded Redis at {embedded.url} (data in {embedded.data_dir})" if embedded else "REDIS_URL"
    return f"{message}; broker: {where}"


def _stop_embedded(embedded: EmbeddedRedis | None) -> None:
    if embedded is not None:
        embedded.stop()


def run_dev(args: argparse.Namespace) -> int:
    """Sandbox store (without credentials) + Redis + receiver + one worker, in the foreground."""
    from service.devserver import DevOptions, run_dev_stack

    options = DevOptions(
        host=args.host,
        port=args.port,
        sandbox_port=args.sandbox_port,
        demo=not args.no_demo,
        stores=args.stores or 0,
    )
    return run_dev_stack(os.environ, options)
