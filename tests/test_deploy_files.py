"""Dockerfile and compose.yaml name only commands the CLI has (there is no Docker engine here to run them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from service.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def _parses(argv: list[str]) -> None:
    build_parser().parse_args(argv)  # exits (SystemExit) on an unknown command or option


def test_compose_services_run_cli_commands() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]

    assert {"redis", "web", "worker"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]
    assert any(volume.endswith(":/data") for volume in services["redis"]["volumes"])
    for name in ("web", "worker"):
        _parses(services[name]["command"])
        assert "healthcheck" in services[name]
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert services["web"]["command"][0] == "serve"
    assert services["worker"]["command"][0] == "worker"


def test_dockerfile_runs_the_cli_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    user = re.search(r"^USER (\S+)$", text, re.M)

    assert entrypoint == ["bcwebhooks"]
    _parses(cmd)
    assert user is not None and user.group(1) not in {"root", "0"}


def test_env_example_documents_every_setting() -> None:
    from service.settings import Settings

    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        env_name = alias if isinstance(alias, str) else alias.choices[0]  # type: ignore[union-attr]
        assert env_name in documented, f"{env_name} ({name}) is missing from .env.example"


@pytest.mark.parametrize("command", [["serve", "--nope"], ["launch"]])
def test_unknown_commands_are_refused(command: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parses(command)
