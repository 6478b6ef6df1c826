"""Dockerfile and compose.yaml name only commands the CLI has (there is no Docker engine here to run them)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

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


EXACT_TAG = re.compile(r"^[a-z0-9./-]+:\d+\.\d+\.\d+[-.\w]*$")  # e.g. redis:7.2.5-alpine, never :7 or :latest


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def _caddyfile_blocks(text: str) -> list[tuple[str, list[str]]]:
    """The Caddyfile's top-level blocks as (address line, directive lines), comments dropped."""
    blocks: list[tuple[str, list[str]]] = []
    depth = 0
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if depth == 0:
            assert line.endswith("{"), f"a top-level Caddyfile line opens a block: {raw!r}"
            blocks.append((line.removesuffix("{").strip(), []))
        elif not (depth == 1 and line == "}"):
            blocks[-1][1].append(line)
        depth += line.count("{") - line.count("}")
        assert depth >= 0, f"unbalanced braces at {raw!r}"
    assert depth == 0, "unbalanced braces in the Caddyfile"
    return blocks


def test_compose_tls_profile_puts_caddy_on_443_in_front_of_web() -> None:
    services = _compose()["services"]
    caddy = services["caddy"]

    assert caddy["profiles"] == ["tls"]
    assert all("profiles" not in services[name] for name in ("redis", "web", "worker"))  # plain default
    assert {"443:443", "80:80"} <= set(caddy["ports"])
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert any(volume.startswith("caddy-data:/data") for volume in caddy["volumes"])  # certificates kept
    assert caddy["depends_on"]["web"]["condition"] == "service_healthy"
    assert set(caddy["environment"]) == {"TLS_DOMAIN", "ACME_EMAIL"}  # no store secrets in the proxy
    assert "caddy run --config /etc/caddy/Caddyfile" in caddy["command"][-1]


def test_caddyfile_gets_a_certificate_for_the_domain_and_proxies_to_web() -> None:
    blocks = dict(_caddyfile_blocks((ROOT / "deploy" / "Caddyfile").read_text()))
    web_port = _compose()["services"]["web"]["command"]

    assert blocks[""] == ["email {$ACME_EMAIL}"]  # the global options block: the ACME account's contact
    assert blocks["{$TLS_DOMAIN}"] == [f"reverse_proxy web:{web_port[web_port.index('--port') + 1]}"]


CADDY = shutil.which("caddy")


@pytest.mark.skipif(CADDY is None, reason="caddy is not installed (apt-get install caddy)")
def test_caddy_itself_reads_the_caddyfile() -> None:
    environ = {"PATH": os.environ["PATH"], "TLS_DOMAIN": "hooks.example.com", "ACME_EMAIL": "ops@example.com"}
    adapted = subprocess.run(
        [str(CADDY), "adapt", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=30,
        check=True,
    )
    config = json.loads(adapted.stdout)

    server = next(iter(config["apps"]["http"]["servers"].values()))
    assert server["listen"] == [":443"]
    assert server["routes"][0]["match"] == [{"host": ["hooks.example.com"]}]
    assert '"dial":"web:8000"' in adapted.stdout.replace(" ", "")
    assert config["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]["email"] == "ops@example.com"


def test_variables_of_the_tls_profile_are_documented() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    used = set(re.findall(r"\{\$([A-Z_]+)\}", (ROOT / "deploy" / "Caddyfile").read_text()))
    used |= set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "compose.yaml").read_text()))

    assert used == {"TLS_DOMAIN", "ACME_EMAIL", "HTTP_PUBLISH"}
    assert used <= documented


def test_base_images_are_pinned_to_exact_versions() -> None:
    images = [service["image"] for service in _compose()["services"].values() if "image" in service]
    images += re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)

    assert len(images) == 3
    for image in images:
        assert EXACT_TAG.match(image), f"{image} is not pinned to an exact version"


def test_dockerfile_installs_the_locked_dependencies_then_the_project_alone() -> None:
    runs = re.findall(r"^RUN (.*)$", (ROOT / "Dockerfile").read_text(), re.M)

    assert runs[0] == "pip install --require-hashes -r requirements.lock"
    assert runs[1].startswith("pip install --no-deps --no-build-isolation . ")
