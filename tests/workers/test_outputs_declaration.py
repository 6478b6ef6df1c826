"""outputs.toml: what is accepted, the one-line errors for what is not, and the README's examples."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.destinations import Destination
from tests.helpers import CLIENT_SECRET, STORE_HASH
from workers.outputs import DeclaredOutput, HttpOutput, OutputsError, load_outputs, webhook_id_for
from workers.outputs.declaration import parse_outputs

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BCWEBHOOKS = Path(sys.executable).parent / "bcwebhooks"
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()
ENVIRON = {"CRM_SECRET": SECRET}


def one(**overrides: Any) -> dict[str, Any]:
    entry = {
        "name": "crm",
        "url": "https://crm.example.com/hooks",
        "scopes": ["*"],
        "secret": "env:CRM_SECRET",
    }
    return {"output": [{**entry, **overrides}]}


def test_an_output_takes_its_defaults_and_its_secret_from_the_environment() -> None:
    [output] = parse_outputs(one(scopes=["store/order/*"]), ENVIRON, "outputs.toml")

    assert output == DeclaredOutput("crm", "https://crm.example.com/hooks", ("store/order/*",), SECRET)
    assert (output.timeout, output.retries, output.min_backoff_ms, output.max_backoff_ms) == (
        10.0,
        15,
        5000,
        3_600_000,
    )
    assert output.wants("store/order/created") and not output.wants("store/product/updated")
    assert SECRET not in repr(output)


@pytest.mark.parametrize(
    ("raw", "environ", "message"),
    [
        ({}, ENVIRON, "declare at least one [[output]]"),
        ({"outputs": []}, ENVIRON, "unknown table or key 'outputs'"),
        (one(secret=SECRET), ENVIRON, 'write secret as "env:VARIABLE"; secrets never go in this file'),
        (one(), {}, "environment variable CRM_SECRET (its secret) is not set"),
        (one(), {"CRM_SECRET": "  "}, "environment variable CRM_SECRET (its secret) is not set"),
        (
            one(),
            {"CRM_SECRET": "hunter2"},
            "CRM_SECRET must be a Standard Webhooks secret, whsec_ then base64",
        ),
        (one(url="ftp://crm.example.com"), ENVIRON, "url must be an http(s) URL"),
        (one(scopes="store/order/*"), ENVIRON, "scopes must be a list of globs"),
        (one(scopes=["store/ordr/*"]), ENVIRON, "scope 'store/ordr/*' matches no webhook scope; closest:"),
        (one(timout=5), ENVIRON, "unknown key 'timout'; known keys: concurrency, max_backoff"),
        (one(timeout=60), ENVIRON, "timeout must be a number of seconds from 0.1 to 30, not 60"),
        (one(retries=1.5), ENVIRON, "retries must be a whole number from 0 to 100, not 1.5"),
        (one(concurrency=True), ENVIRON, "concurrency must be a whole number from 1 to 64, not True"),
        (one(min_backoff=10, max_backoff=1), ENVIRON, "max_backoff (1 s) is below min_backoff (10 s)"),
        (one(name="crm api"), ENVIRON, "output 1: name is required: 1 to 64 letters"),
        ({"output": [one()["output"][0]] * 2}, ENVIRON, "output name 'crm' is used twice"),
    ],
)
def test_a_wrong_outputs_file_is_one_line_naming_what_to_change(
    raw: dict[str, Any], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(OutputsError) as error:
        parse_outputs(raw, environ, "outputs.toml")

    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("outputs.toml: ")
    assert SECRET not in str(error.value)


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(OutputsError, match="not found"):
        load_outputs(tmp_path / "outputs.toml", ENVIRON)
    (tmp_path / "outputs.toml").write_text("[[output]\n")
    with pytest.raises(OutputsError, match="not valid TOML"):
        load_outputs(tmp_path / "outputs.toml", ENVIRON)
    assert load_outputs(None, ENVIRON) == ()


def test_the_worker_refuses_to_start_on_a_wrong_outputs_file_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "outputs.toml").write_text('[[output]]\nname = "crm"\nurl = "https://x.example"\n')
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BIGCOMMERCE_STORE_HASH": STORE_HASH,
        "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
        "BCWEBHOOKS_OUTPUTS_FILE": "outputs.toml",
    }
    result = subprocess.run(
        [str(BCWEBHOOKS), "worker"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert result.stderr == (
        "bcwebhooks: configuration error: outputs.toml: output 'crm': scopes must be a list of globs, "
        "such as ['store/order/*'] (or ['*'])\n"
    )
    assert not (tmp_path / ".bcwebhooks").exists()  # stopped before any Redis was started


def fenced(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.M | re.S)


def test_the_readme_outputs_file_is_valid_as_written() -> None:
    [example] = [block for block in fenced("toml") if "[[output]]" in block]
    environ = {"CRM_WEBHOOK_SECRET": SECRET, "WMS_WEBHOOK_SECRET": SECRET}

    crm, warehouse = parse_outputs(tomllib.loads(example), environ, "README")

    assert (crm.name, crm.retries, crm.concurrency, warehouse.name) == ("crm", 15, 2, "warehouse")
    assert warehouse.wants("store/product/inventory/order/updated")


def test_the_readme_consumer_verifies_what_an_output_sends_and_drops_repeats(
    redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    [block] = [block for block in fenced("python") if "webhook.verify" in block]
    namespace: dict[str, Any] = {"__name__": "readme_consumer"}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (our own README's example)
    readme_secret = re.search(r'Webhook\("(whsec_[^"]+)"\)', block)
    assert readme_secret is not None
    body = '{"scope":"store/order/created","resource_id":"7","deleted":false}'
    with Destination() as destination:
        output = HttpOutput(
            DeclaredOutput("crm", destination.url, ("*",), readme_secret.group(1)), redis_client
        )
        output.post(webhook_id_for("crm", "id:1"), body)
        output.post(webhook_id_for("crm", "id:1"), body)  # a retry
        output.close()
    first, again = destination.received

    assert namespace["receive"](first.body, first.headers) == 200
    assert namespace["receive"](again.body, again.headers) == 200
    assert namespace["receive"](first.body.replace(b"7", b"8"), first.headers) == 400
    printed = [line for line in capsys.readouterr().out.splitlines() if "store/order/created" in line]
    assert printed == ["store/order/created 7 False"]  # once: the repeat was dropped


def test_doctor_checks_the_outputs_file(tmp_path: Path) -> None:
    (tmp_path / "outputs.toml").write_text(
        '[[output]]\nname = "crm"\nurl = "https://x.example"\nscopes = ["*"]\nsecret = "env:CRM_SECRET"\n'
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BIGCOMMERCE_STORE_HASH": STORE_HASH,
        "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "BCWEBHOOKS_OUTPUTS_FILE": "outputs.toml",
    }

    def doctor(**extra: str) -> list[str]:
        result = subprocess.run(
            [str(BCWEBHOOKS), "doctor"],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return [line for line in result.stdout.splitlines() if "outputs" in line]

    assert doctor() == [
        "✗ HTTP outputs: outputs.toml: output 'crm': environment variable CRM_SECRET (its secret) is not set"
    ]
    assert doctor(CRM_SECRET=SECRET) == ["✓ HTTP outputs in outputs.toml: crm"]
