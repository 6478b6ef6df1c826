"""Every example in README.md runs as written: its Python blocks, and the commands of its sh blocks."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from service.bigcommerce import ApiClient, StoreApi
from tests.servers import wait_for
from workers.events import ProcessedEvent
from workers.handlers import REGISTRY
from workers.ledger import done_key
from workers.outputs import StreamOutput

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# The Redis the examples name; the tests run them against the test Redis instead.
EXAMPLE_REDIS_URL = "redis://localhost:6379/0"
EXAMPLE_STREAM = "bcwebhooks:events"
# Longer than redis-py 8's default socket timeout (5 s), which the consumer's `block=5000` once hit.
IDLE_SECONDS = 6.5
BCWEBHOOKS = Path(sys.executable).parent / "bcwebhooks"  # the console script this install made
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
COMPOSE_VALUE_OPTIONS = {
    "--profile",
    "-f",
    "--file",
    "-v",
    "--volume",
    "-e",
    "--env",
    "-w",
    "--workdir",
    "-u",
}


def fenced(language: str) -> list[str]:
    """The bodies of README's fenced blocks in `language`, in order."""
    blocks = re.findall(rf"^([ \t]*)```{language}\n(.*?)^\1```", README, re.M | re.S)
    return [textwrap.dedent(body) for _indent, body in blocks]


PYTHON_BLOCKS = fenced("python")
LOOPING_BLOCKS = [block for block in PYTHON_BLOCKS if "while True" in block]
FINITE_BLOCKS = [block for block in PYTHON_BLOCKS if "while True" not in block]


def _first_line(block: object) -> str:
    return str(block).strip().splitlines()[0][:40]


def shell_commands() -> list[list[str]]:
    """Each command line of the sh blocks as words, comments dropped."""
    return [
        words for block in fenced("sh") for line in block.splitlines() if (words := shlex.split(line, True))
    ]


def _leading(words: list[str]) -> list[str]:
    """The words before the first option or [optional] part: `bcwebhooks hooks plan`."""
    for index, word in enumerate(words):
        if word.startswith(("-", "[", "|", "<")):
            return words[:index]
    return words


def _compose_run(words: list[str]) -> tuple[str, list[str], list[str]]:
    """(subcommand, profiles, command run in the container) of `docker compose ...`."""
    rest, profiles = words[2:], []
    while rest[0].startswith("-"):
        if rest[0] == "--profile":
            profiles.append(rest[1])
        rest = rest[2:] if rest[0] in COMPOSE_VALUE_OPTIONS else rest[1:]
    subcommand, rest = rest[0], rest[1:]
    if subcommand not in {"run", "exec"}:
        return subcommand, profiles, []
    while rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in COMPOSE_VALUE_OPTIONS else rest[1:]
    service, command = rest[0], rest[1:]
    assert service in COMPOSE["services"], f"no compose service {service!r}"
    if subcommand == "run":
        command = ["bcwebhooks", *command]  # the image's entrypoint
    if command[:2] == ["sh", "-c"]:
        command = shlex.split(command[2])
    return subcommand, profiles, command


def _example_env() -> dict[str, str]:
    # stdout is a pipe here, where a reader has a terminal: unbuffered, what is printed shows at once.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}


def test_the_readme_has_the_examples_these_tests_run() -> None:
    assert len(FINITE_BLOCKS) >= 1
    assert len(LOOPING_BLOCKS) == 1, "a new endless example needs a bounded run of its own here"
    assert any(command[0] == "bcwebhooks" for command in shell_commands())
    assert any(command[:2] == ["docker", "compose"] for command in shell_commands())


@pytest.mark.parametrize("block", FINITE_BLOCKS, ids=_first_line)
def test_python_example_runs_as_written(block: str, redis_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", block.replace(EXAMPLE_REDIS_URL, redis_url)],
        cwd=tmp_path,
        env=_example_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr


def _event(record: Any, resource_id: str = "250") -> ProcessedEvent:
    return ProcessedEvent(
        event_id="id:msg_readme",
        webhook_id="msg_readme",
        scope="store/order/statusUpdated",
        store_hash="teststore",
        resource_type="order",
        resource_id=resource_id,
        record=record,
        deleted=record is None,
        envelope={"scope": "store/order/statusUpdated", "data": {"type": "order", "id": int(resource_id)}},
        received_at_ms=1,
        fetched_at_ms=2,
    )


def test_handler_example_declares_its_access_and_writes_back_for_shipped_orders_only() -> None:
    (block,) = [block for block in FINITE_BLOCKS if "@handler(" in block]
    before = list(REGISTRY.registrations)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    try:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (our own README's example)
        registered = [r for r in REGISTRY.for_scope("store/order/statusUpdated") if r not in before]
    finally:
        REGISTRY.registrations[:] = before
    (registration,) = registered
    sent: list[tuple[str, str, Any]] = []

    def store(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"id": 250})

    client = ApiClient("https://api.example.test", "abc123", "token", transport=httpx.MockTransport(store))
    api = StoreApi(client).for_handler(registration.name, registration.access)  # as the workers pass it

    registration.function(_event({"order": {"id": 250, "status_id": 2}}), api)
    registration.function(_event({"order": {"id": 251, "status_id": 11}}, "251"), api)
    registration.function(_event(None, "252"), api)

    assert registration.access.describe() == "orders=write"
    assert sent == [("PUT", "/stores/abc123/v2/orders/250", {"staff_notes": "shipping notified"})]


def test_stream_consumer_example_outlasts_idle_reads_and_prints_each_event(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    (block,) = LOOPING_BLOCKS
    output, errors = tmp_path / "stdout", tmp_path / "stderr"
    with output.open("wb") as out, errors.open("wb") as err:
        consumer = subprocess.Popen(
            [sys.executable, "-c", block.replace(EXAMPLE_REDIS_URL, redis_url)],
            cwd=tmp_path,
            env=_example_env(),
            stdout=out,
            stderr=err,
        )
    try:
        wait_for(lambda: _has_group(redis_client, "crm"), 20, "the example to create its consumer group")
        with pytest.raises(subprocess.TimeoutExpired):  # still reading after an idle read past 5 s
            consumer.wait(IDLE_SECONDS)
        event = _event({"order": {"id": 250}})
        StreamOutput(redis_client, EXAMPLE_STREAM, 1000).emit_once(
            event, done_key(event.event_id), "stream", 60
        )
        wait_for(lambda: output.read_text() != "", 20, "the example to print the event")
        wait_for(lambda: _pending(redis_client) == 0, 10, "the example to acknowledge the event")
    finally:
        consumer.terminate()
        consumer.wait(10)

    assert output.read_text() == "store/order/statusUpdated 250 False\n"
    assert "Traceback" not in errors.read_text()


def _has_group(client: redis.Redis, name: str) -> bool:
    try:
        return any(group["name"] == name.encode() for group in client.xinfo_groups(EXAMPLE_STREAM))
    except redis.ResponseError:
        return False  # no stream yet


def _pending(client: redis.Redis) -> int:
    return int(client.xpending(EXAMPLE_STREAM, "crm")["pending"])


@pytest.mark.parametrize("command", shell_commands(), ids=lambda words: " ".join(_leading(words)))
def test_shell_command_exists(command: list[str]) -> None:
    if command[:2] == ["docker", "compose"]:
        _subcommand, profiles, inside = _compose_run(command)
        declared = {p for service in COMPOSE["services"].values() for p in service.get("profiles", [])}
        assert set(profiles) <= declared
        if inside:
            _check_command(inside)
    else:
        _check_command(command)


def _check_command(words: list[str]) -> None:
    program, *rest = _leading(words)
    if program == "bcwebhooks":
        result = subprocess.run(
            [str(BCWEBHOOKS), *rest, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: bcwebhooks")
    elif program == "bash":
        script = ROOT / rest[0]
        assert script.is_file()
        assert subprocess.run(["bash", "-n", str(script)], timeout=30).returncode == 0  # noqa: S607
    elif program.endswith("python"):
        result = subprocess.run(
            [sys.executable, rest[0], "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert result.returncode == 0, result.stderr
    elif program == "source":
        assert rest == [".venv/bin/activate"], words  # what scripts/bootstrap.sh creates
        assert (Path(sys.executable).parent / "activate").is_file()  # the venv the suite runs in has one
    elif program == "cp":
        assert (ROOT / rest[0]).is_file()
    else:
        assert program in {"export", "curl", "cloudflared", "ngrok"}, f"nothing checks {words}"
