"""The command line as a new user meets it: commands beside `dev`, one-line errors, nothing left running."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.cli import build_parser
from service.embedded_redis import PID_FILENAME, process_alive, read_pid
from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.e2e.processes import BCWEBHOOKS, Process
from tests.servers import ThreadedUvicorn, free_port, wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60.0


def bare_environ(**extra: str) -> dict[str, str]:
    """A fresh shell's environment: PATH and HOME, nothing of the service unless given."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"), **extra}


def run(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def started() -> Iterator[list[Process]]:
    processes: list[Process] = []
    yield processes
    for process in processes:
        process.stop()


def embedded_server_pid(data_dir: Path) -> int:
    """The PID of the embedded redis-server of `data_dir`, once it runs."""
    wait_for(lambda: read_pid(data_dir / PID_FILENAME) is not None, START_TIMEOUT_SECONDS, "redis.pid")
    pid = read_pid(data_dir / PID_FILENAME)
    assert pid is not None and process_alive(pid)
    assert Path(f"/proc/{pid}/cwd").resolve() == data_dir.resolve()  # ours, not somebody else's
    return pid


def test_tail_and_trigger_beside_dev_find_its_redis_and_sandbox_with_no_extra_environment(
    tmp_path: Path, started: list[Process]
) -> None:
    dev = Process(
        [*BCWEBHOOKS, "dev", "--no-demo", "--port", "0", "--sandbox-port", "0"],
        {**bare_environ(), "BCWEBHOOKS_LOG_FORMAT": "console"},
        tmp_path / "dev.log",
        cwd=tmp_path,
    )
    started.append(dev)
    state_file = tmp_path / ".bcwebhooks" / "dev" / "dev.json"
    wait_for(state_file.exists, START_TIMEOUT_SECONDS, "dev to write its state file")
    wait_for(lambda: "from elsewhere: export REDIS_URL=" in dev.output(), 10, "dev's banner")
    redis_pid = embedded_server_pid(tmp_path / ".bcwebhooks" / "dev")

    tail = Process(
        [*BCWEBHOOKS, "tail", "--from-start", "--count", "1"], bare_environ(), tmp_path / "tail.log", tmp_path
    )
    started.append(tail)
    fired = run([*BCWEBHOOKS, "trigger", "store/order/created"], bare_environ(), cwd=tmp_path)

    assert fired.returncode == 0, fired.stderr
    wait_for(lambda: tail.popen.poll() is not None, START_TIMEOUT_SECONDS, "tail to print one event")
    assert tail.popen.returncode == 0, tail.output()
    assert re.search(r"store/order/created\s+order:\d+", tail.output()), tail.output()
    assert "BIGCOMMERCE_CLIENT_SECRET: not set" not in tail.output()
    exports = json.loads(state_file.read_text())["environ"]
    assert exports["REDIS_URL"] == f"unix://{tmp_path / '.bcwebhooks' / 'dev' / 'redis.sock'}"

    assert dev.stop(signal.SIGINT) == 0
    wait_for(lambda: not process_alive(redis_pid), 20, "dev's redis-server to exit")
    assert not state_file.exists()


def test_a_malformed_redis_url_is_one_line_naming_the_fix_and_nothing_listens(tmp_path: Path) -> None:
    env = bare_environ(
        REDIS_URL="localhost:6379", BIGCOMMERCE_STORE_HASH="abc", BIGCOMMERCE_CLIENT_SECRET="secret"
    )

    served = run([*BCWEBHOOKS, "serve", "--port", str(free_port())], env, cwd=tmp_path)
    tailed = run([*BCWEBHOOKS, "tail", "--count", "1"], env, cwd=tmp_path)
    doctor = run([*BCWEBHOOKS, "doctor"], env, cwd=tmp_path)

    for result in (served, tailed):
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            "bcwebhooks: configuration error: REDIS_URL: must look like redis://host:6379/0, "
            "rediss://host:6380/0, unix:///path/to/redis.sock or "
            "redis+sentinel://host:26379,host2:26379/mymaster/0"
        ]
        assert "listening" not in result.stdout + result.stderr
    assert doctor.returncode == 1 and doctor.stderr == ""
    assert doctor.stdout.strip().splitlines() == [
        "✗ configuration: REDIS_URL: must look like redis://host:6379/0, rediss://host:6380/0, "
        "unix:///path/to/redis.sock or redis+sentinel://host:26379,host2:26379/mymaster/0 (see .env.example)"
    ]


def test_a_busy_port_is_one_line_and_nothing_is_announced(tmp_path: Path) -> None:
    env = bare_environ(
        REDIS_URL="redis://127.0.0.1:1/0", BIGCOMMERCE_STORE_HASH="abc", BIGCOMMERCE_CLIENT_SECRET="secret"
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run([*BCWEBHOOKS, "serve", "--port", str(port)], env, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"bcwebhooks: port {port} on 127.0.0.1 is in use: stop what listens there or pick another --port"
    ]


def test_serve_announces_listening_only_once_it_answers(tmp_path: Path, started: list[Process]) -> None:
    port = free_port()
    env = bare_environ(
        REDIS_URL="redis://127.0.0.1:1/0", BIGCOMMERCE_STORE_HASH="abc", BIGCOMMERCE_CLIENT_SECRET="secret"
    )
    serve = Process([*BCWEBHOOKS, "serve", "--port", str(port)], env, tmp_path / "serve.log", tmp_path)
    started.append(serve)

    wait_for(lambda: "listening" in serve.output(), START_TIMEOUT_SECONDS, "the listening line")

    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "abc"], "argument --port: 'abc' is not a port number (0 to 65535)"),
        (["serve", "--port", "70000"], "argument --port: 70000 is not a port number (0 to 65535)"),
        (["worker", "--threads", "0"], "argument --threads: must be at least 1, not 0"),
        (["tail", "--count", "x"], "argument --count: 'x' is not a whole number of at least 1"),
    ],
)
def test_bad_arguments_read_well(argv: list[str], message: str) -> None:
    result = run([*BCWEBHOOKS, *argv], bare_environ())

    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(message)


@pytest.fixture
def failing_sandbox() -> Iterator[str]:
    with ThreadedUvicorn(create_sandbox_app(SandboxConfig(allow_http=True))) as server:
        yield server.base_url


def doctor_environ(api_url: str) -> dict[str, str]:
    return bare_environ(
        BIGCOMMERCE_STORE_HASH="sandbox",
        BIGCOMMERCE_CLIENT_SECRET="sandbox-client-secret",
        BIGCOMMERCE_ACCESS_TOKEN="sandbox-token",
        BIGCOMMERCE_API_URL=api_url,
        REDIS_URL="redis://127.0.0.1:1/0",
    )


def test_doctor_marks_an_api_answering_5xx_as_failed_with_the_reason(
    failing_sandbox: str, tmp_path: Path
) -> None:
    fault = {"status": 503, "count": 1000, "path_prefix": "/v2/"}
    assert httpx.post(f"{failing_sandbox}/_sandbox/faults", json=fault).status_code == 200

    result = run([*BCWEBHOOKS, "doctor"], doctor_environ(failing_sandbox), cwd=tmp_path)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "✓ can read products (store_v2_products_read_only or store_v2_products)" in lines
    orders = next(line for line in lines if "orders" in line)
    assert orders.startswith("✗ cannot tell whether the token can read orders: BigCommerce answered 503")
    assert not any(line.startswith("✓") and "store information" in line for line in lines)


def test_doctor_marks_an_unreachable_api_as_failed(tmp_path: Path) -> None:
    result = run([*BCWEBHOOKS, "doctor"], doctor_environ(f"http://127.0.0.1:{free_port()}"), cwd=tmp_path)

    assert result.returncode == 1
    assert "✗ token not checked: could not reach 127.0.0.1" in result.stdout
    assert "fix: check BIGCOMMERCE_API_URL and the network" in result.stdout
    assert "✓ can" not in result.stdout and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "sig"),
    [
        (["tail"], signal.SIGINT),
        (["tail"], signal.SIGTERM),
        # A real port: `serve` announces it once it accepts connections, so the stop comes after start-up.
        (["serve", "--port", "{port}"], signal.SIGTERM),
        (["worker", "--threads", "1"], signal.SIGTERM),
    ],
)
def test_a_stopped_command_leaves_no_embedded_redis_behind(
    argv: list[str], sig: int, tmp_path: Path, started: list[Process]
) -> None:
    data_dir = tmp_path / "data"
    env = bare_environ(
        BCWEBHOOKS_DATA_DIR=str(data_dir), BIGCOMMERCE_STORE_HASH="abc", BIGCOMMERCE_CLIENT_SECRET="secret"
    )
    argv = [str(free_port()) if word == "{port}" else word for word in argv]
    command = Process([*BCWEBHOOKS, *argv], env, tmp_path / "command.log", tmp_path)
    started.append(command)
    redis_pid = embedded_server_pid(data_dir)
    wait_for(lambda: any((data_dir / "users").glob("*")), 20, "the command to use the server")
    wait_for(lambda: "bcwebhooks:" in command.output() or argv[0] == "tail", 20, "the command to start")

    command.stop(sig)

    wait_for(lambda: not process_alive(redis_pid), 20, "the embedded redis-server to exit")
    assert "Traceback" not in command.output()


def test_two_commands_share_one_embedded_redis_which_stops_with_the_last(
    tmp_path: Path, started: list[Process]
) -> None:
    data_dir = tmp_path / "data"
    env = bare_environ(BCWEBHOOKS_DATA_DIR=str(data_dir))
    first = Process([*BCWEBHOOKS, "tail"], env, tmp_path / "first.log", tmp_path)
    started.append(first)
    redis_pid = embedded_server_pid(data_dir)
    second = Process([*BCWEBHOOKS, "tail"], env, tmp_path / "second.log", tmp_path)
    started.append(second)
    wait_for(lambda: len(list((data_dir / "users").iterdir())) == 2, 20, "the second tail to join")

    first.stop(signal.SIGINT)
    assert process_alive(redis_pid)
    second.stop(signal.SIGINT)

    wait_for(lambda: not process_alive(redis_pid), 20, "the embedded redis-server to exit")


def test_the_wrapper_and_the_registration_script_work_from_a_fresh_shell(tmp_path: Path) -> None:
    system_python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if system_python is None:
        pytest.skip("no python3 outside the virtualenv")
    shell = bare_environ(PATH="/usr/local/bin:/usr/bin:/bin")

    wrapped = run(["bash", str(ROOT / "scripts" / "bcwebhooks"), "--version"], shell, cwd=tmp_path)
    script = run([system_python, str(ROOT / "scripts" / "register_hooks.py"), "plan", "--help"], shell)

    assert wrapped.returncode == 0, wrapped.stderr
    assert wrapped.stdout.startswith("bcwebhooks ")
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("usage: bcwebhooks hooks plan")


def help_text(*argv: str) -> str:
    """What `bcwebhooks ARGV --help` prints in a fresh shell (in this process: test_processes.py runs the
    real command's --help)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit):
        build_parser(bare_environ()).parse_args([*argv, "--help"])
    return printed.getvalue()


def test_the_readme_commands_table_matches_the_help_of_every_command() -> None:
    rows = re.findall(r"^\| `bcwebhooks (\w+)( [^`]*)?` \|", (ROOT / "README.md").read_text(), re.M)
    documented: dict[str, set[str]] = {}
    for command, rest in rows:
        documented.setdefault(command, set()).update(re.findall(r"--[a-z][a-z-]*", rest or ""))
    assert set(documented) >= {
        "serve",
        "worker",
        "dev",
        "hooks",
        "doctor",
        "tail",
        "dlq",
        "sandbox",
        "trigger",
    }
    for command, options in documented.items():
        helps = [help_text(command)]
        helps += [
            help_text(command, action)
            for action in {
                "hooks": ("plan", "apply", "status"),
                "dlq": ("list", "replay"),
                "sandbox": ("app",),
                "stores": ("list", "show"),
            }.get(command, ())
        ]
        offered = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", "".join(helps))) - {"--help"}
        assert offered == options, command
