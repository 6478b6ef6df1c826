"""`bcwebhooks doctor` lists, per configured handler, the OAuth scopes its declared access needs and which
the token lacks (probed against the sandbox, whose accounts hold chosen scopes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.sandbox.access import ApiAccount, default_accounts
from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.servers import ThreadedUvicorn

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
HANDLERS = "tests.e2e.access_handlers"
ORDERS_READER = "orders-reader-token"


def doctor(sandbox: str, token: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BIGCOMMERCE_STORE_HASH": "sandbox",
        "BIGCOMMERCE_CLIENT_SECRET": "sandbox-client-secret",
        "BIGCOMMERCE_ACCESS_TOKEN": token,
        "BIGCOMMERCE_API_URL": sandbox,
        "BCWEBHOOKS_HANDLERS": HANDLERS,
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    return subprocess.run(
        [sys.executable, "-m", "service", "doctor", "--file", str(tmp_path / "absent.toml")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_doctor_lists_each_handler_s_scopes_and_names_what_the_token_lacks(tmp_path: Path) -> None:
    reader = ApiAccount(ORDERS_READER, "reader", "x", frozenset({"store_v2_orders_read_only"}))
    config = SandboxConfig(accounts=[*default_accounts(), reader])
    with ThreadedUvicorn(create_sandbox_app(config)) as server:
        full = doctor(server.base_url, "sandbox-token", tmp_path)
        limited = doctor(server.base_url, ORDERS_READER, tmp_path)

    prefix = f"handler {HANDLERS}"
    assert "- the 3 handler(s) together need: store_v2_orders\n" in full.stdout
    assert f"✓ {prefix}.count_the_order (no API access): needs no OAuth scope" in full.stdout
    assert (
        f"✓ {prefix}.note_the_order (orders=write): needs store_v2_orders; the token has them" in full.stdout
    )
    assert (
        f"✓ {prefix}.archive_the_order (orders=read): needs store_v2_orders_read_only; the token has them"
        in limited.stdout
    )
    assert (
        f"✗ {prefix}.note_the_order (orders=write): needs store_v2_orders; the token lacks store_v2_orders\n"
        "    fix: grant Orders: modify to the API account (or narrow the handler's access=)"
    ) in limited.stdout
    assert limited.returncode == 1
    assert ORDERS_READER not in limited.stdout + limited.stderr
