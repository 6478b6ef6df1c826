"""`bcwebhooks hooks` and `doctor` against the sandbox store, as a developer runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.servers import ThreadedUvicorn

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RECEIVER = "http://127.0.0.1:9/webhooks/bigcommerce"
EXCEPTIONS = "http://127.0.0.1:9/webhooks/bigcommerce/delivery-exceptions"
DECLARATION = f"""
receiver = "{RECEIVER}"
[headers]
X-Webhook-Secret = "env:HOOK_SECRET"
[[hook]]
scope = "store/order/*"
[[hook]]
scope = "store/product/updated"
[delivery_exception]
enabled = true
receiver = "{EXCEPTIONS}"
"""


@pytest.fixture
def sandbox() -> Iterator[str]:
    with ThreadedUvicorn(create_sandbox_app(SandboxConfig(allow_http=True))) as server:
        yield server.base_url


@pytest.fixture
def declaration(tmp_path: Path) -> Path:
    path = tmp_path / "hooks.toml"
    path.write_text(DECLARATION)
    return path


def run(sandbox: str, *args: str, token: str = "sandbox-token") -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BIGCOMMERCE_STORE_HASH": "sandbox",
        "BIGCOMMERCE_CLIENT_SECRET": "sandbox-client-secret",
        "BIGCOMMERCE_ACCESS_TOKEN": token,
        "BIGCOMMERCE_API_URL": sandbox,
        "HOOK_SECRET": "s3cret-header-value",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def hooks_cli(sandbox: str, *args: str, token: str = "sandbox-token") -> subprocess.CompletedProcess[str]:
    return run(sandbox, "-m", "service", "hooks", *args, token=token)


def store_hooks(sandbox: str, token: str = "sandbox-token") -> list[dict[str, Any]]:
    return list(
        httpx.get(f"{sandbox}/stores/sandbox/v3/hooks", headers={"X-Auth-Token": token}).json()["data"]
    )


def make_hook(sandbox: str, scope: str, destination: str, token: str = "sandbox-token") -> dict[str, Any]:
    body = {"scope": scope, "destination": destination}
    return dict(
        httpx.post(f"{sandbox}/stores/sandbox/v3/hooks", headers={"X-Auth-Token": token}, json=body).json()[
            "data"
        ]
    )


def test_apply_creates_exactly_the_declared_hooks_then_changes_nothing(
    sandbox: str, declaration: Path
) -> None:
    first = hooks_cli(sandbox, "apply", "--file", str(declaration), "--allow-http")
    second = hooks_cli(sandbox, "apply", "--file", str(declaration), "--allow-http")

    assert first.returncode == 0, first.stderr
    assert first.stdout.count("create") == 3
    hooks = store_hooks(sandbox)
    assert sorted((h["scope"], h["destination"], h["is_active"]) for h in hooks) == [
        ("store/hook/deliveryException", EXCEPTIONS, True),
        ("store/order/*", RECEIVER, True),
        ("store/product/updated", RECEIVER, True),
    ]
    assert all(h["headers"] == {"X-Webhook-Secret": "s3cret-header-value"} for h in hooks)
    assert "s3cret-header-value" not in first.stdout
    assert second.returncode == 0 and "nothing to change" in second.stdout
    assert store_hooks(sandbox) == hooks


def test_plan_writes_nothing_and_the_same_tool_runs_as_a_script(sandbox: str, declaration: Path) -> None:
    planned = hooks_cli(sandbox, "plan", "--file", str(declaration), "--allow-http", "--json")
    script = run(sandbox, "scripts/register_hooks.py", "plan", "--file", str(declaration), "--allow-http")

    assert [a["action"] for a in json.loads(planned.stdout)] == ["create", "create", "create"]
    assert script.returncode == 0 and script.stdout.count("create") == 3
    assert store_hooks(sandbox) == []


def test_a_switched_off_hook_is_reactivated(sandbox: str, declaration: Path) -> None:
    hooks_cli(sandbox, "apply", "--file", str(declaration), "--allow-http")
    order_hook = next(h for h in store_hooks(sandbox) if h["scope"] == "store/order/*")
    httpx.put(
        f"{sandbox}/stores/sandbox/v3/hooks/{order_hook['id']}",
        headers={"X-Auth-Token": "sandbox-token"},
        json={"is_active": False},
    )

    status_down = hooks_cli(sandbox, "status", "--file", str(declaration), "--allow-http")
    planned = json.loads(
        hooks_cli(sandbox, "plan", "--file", str(declaration), "--allow-http", "--json").stdout
    )
    applied = hooks_cli(sandbox, "apply", "--file", str(declaration), "--allow-http")
    status_up = hooks_cli(sandbox, "status", "--file", str(declaration), "--allow-http")

    assert status_down.returncode == 1 and "✗  inactive" in status_down.stdout
    assert [(a["action"], a["hook_id"]) for a in planned if a["action"] != "unchanged"] == [
        ("reactivate", order_hook["id"])
    ]
    assert applied.returncode == 0
    assert all(h["is_active"] for h in store_hooks(sandbox))
    assert status_up.returncode == 0 and "all declared hooks are active" in status_up.stdout


def test_hooks_of_others_are_untouched_and_prune_removes_only_ours(sandbox: str, declaration: Path) -> None:
    elsewhere = make_hook(sandbox, "store/cart/*", "https://other-integration.example.com/hooks")
    other_app = make_hook(sandbox, "store/customer/*", RECEIVER, token="sandbox-other-app-token")
    ours_undeclared = make_hook(sandbox, "store/subscriber/*", RECEIVER)

    kept = hooks_cli(sandbox, "apply", "--file", str(declaration), "--allow-http")
    ids_after_apply = {h["id"] for h in store_hooks(sandbox)}
    pruned = hooks_cli(sandbox, "apply", "--file", str(declaration), "--allow-http", "--prune")
    ids_after_prune = {h["id"] for h in store_hooks(sandbox)}

    assert kept.returncode == 0 and "undeclared (kept" in kept.stdout and "not ours" in kept.stdout
    assert {elsewhere["id"], ours_undeclared["id"]} <= ids_after_apply
    assert pruned.returncode == 0
    assert elsewhere["id"] in ids_after_prune and ours_undeclared["id"] not in ids_after_prune
    assert [h["id"] for h in store_hooks(sandbox, "sandbox-other-app-token")] == [other_app["id"]]


def test_a_read_only_token_gets_the_scope_and_the_fix(sandbox: str, declaration: Path) -> None:
    result = hooks_cli(
        sandbox, "apply", "--file", str(declaration), "--allow-http", token="sandbox-read-only-token"
    )

    assert result.returncode == 1
    assert "store_v2_information" in result.stderr and "Information & Settings to modify" in result.stderr


def test_an_invalid_token_is_named(sandbox: str, declaration: Path) -> None:
    result = hooks_cli(sandbox, "plan", "--file", str(declaration), "--allow-http", token="revoked")

    assert result.returncode == 1 and "token invalid" in result.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('"store/order/*"', '"store/order/statusUpdate"'),
            "closest documented: store/order/statusUpdated",
        ),
        (lambda t: t.replace("env:HOOK_SECRET", "plain-secret"), "secrets never go in this file"),
        (lambda t: t.replace("env:HOOK_SECRET", "env:NOT_SET_ANYWHERE"), "NOT_SET_ANYWHERE is not set"),
        (
            lambda t: t + '[[hook]]\nscope = "store/order/*"\n',
            "BigCommerce allows one hook per scope and destination",
        ),
        (lambda t: t.replace(EXCEPTIONS, RECEIVER), "must differ from receiver"),
        (lambda t: t.replace("[[hook]]", "[[hooks]]"), "declare at least one [[hook]]"),
    ],
)
def test_invalid_declarations_are_refused_before_any_call(
    sandbox: str, tmp_path: Path, edit: Any, message: str
) -> None:
    path = tmp_path / "hooks.toml"
    path.write_text(edit(DECLARATION))

    result = hooks_cli(sandbox, "plan", "--file", str(path), "--allow-http")

    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_receivers_must_be_https_on_443_without_the_sandbox_flag(sandbox: str, declaration: Path) -> None:
    result = hooks_cli(sandbox, "plan", "--file", str(declaration))

    assert result.returncode == 2 and "must be https on port 443" in result.stderr


def test_more_than_ten_hooks_for_a_scope_is_explained(sandbox: str, declaration: Path) -> None:
    for index in range(10):
        make_hook(sandbox, "store/order/*", f"https://h{index}.example.com/hooks")

    result = hooks_cli(sandbox, "plan", "--file", str(declaration), "--allow-http")

    assert result.returncode == 2 and "at most 10 per scope" in result.stderr


def test_doctor_checks_everything_and_fails_on_a_token_that_cannot_manage_hooks(
    sandbox: str, declaration: Path
) -> None:
    hooks_cli(sandbox, "apply", "--file", str(declaration), "--allow-http")

    healthy = run(sandbox, "-m", "service", "doctor", "--file", str(declaration), "--allow-http")
    read_only = run(
        sandbox,
        "-m",
        "service",
        "doctor",
        "--file",
        str(declaration),
        "--allow-http",
        token="sandbox-read-only-token",
    )

    assert "✓ token works (listed products)" in healthy.stdout
    assert "✓ can read orders" in healthy.stdout and "✓ can manage hooks" in healthy.stdout
    assert "✓ hook store/order/* is active" in healthy.stdout
    assert (
        "✗ Redis at REDIS_URL does not answer" in healthy.stdout
    )  # the test points REDIS_URL at a closed port
    assert healthy.returncode == 1
    assert (
        "✗ cannot manage hooks" in read_only.stdout and "Information & Settings to modify" in read_only.stdout
    )


def test_an_unreachable_api_is_retried_then_named(declaration: Path) -> None:
    result = hooks_cli("http://127.0.0.1:9", "plan", "--file", str(declaration), "--allow-http")

    assert result.returncode == 1
    expected = "bcwebhooks hooks: could not reach 127.0.0.1 for GET /v3/hooks: ConnectError"
    assert result.stderr.strip() == expected
