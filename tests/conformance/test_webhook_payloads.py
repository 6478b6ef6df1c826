"""The callbacks the sandbox fires carry the payloads BigCommerce's webhook callback schemas describe.

Read at test time from <repository root>/../shared/bigcommerce-specs/webhooks-callbacks.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from service.sandbox.data import generate_store
from service.sandbox.delivery import callback_body
from service.sandbox.hooks import HookRegistry
from service.sandbox.scopes import STORE_SCOPES
from service.sandbox.triggers import trigger_scope
from tests.conformance import specs

CALLBACKS = specs.SPECS / "webhooks-callbacks"
pytestmark = pytest.mark.skipif(not CALLBACKS.is_dir(), reason=specs.MISSING)


@functools.cache
def documented() -> dict[str, dict[str, Any]]:
    """Each documented scope's callback schema, from the per-scope files."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    schemas: dict[str, dict[str, Any]] = {}
    for file in sorted(Path(CALLBACKS).glob("store_*.yml")):
        parsed = yaml.load(file.read_text(), Loader=loader)  # noqa: S506 (CSafeLoader is the safe loader)
        schemas.update(parsed.get("properties", {}))
    return schemas


def fired_scopes() -> list[str]:
    return [scope for scope in STORE_SCOPES if CALLBACKS.is_dir() and scope in documented()]


def test_the_sandbox_knows_every_scope_that_has_a_callback_schema() -> None:
    assert set(documented()) - set(STORE_SCOPES) == set()


@pytest.mark.parametrize("scope", fired_scopes())
def test_each_fired_callback_matches_its_schema(scope: str) -> None:
    store = generate_store("sandbox", seed=1)

    events = [(s, data) for s, data in trigger_scope(store, scope) if s == scope]
    bodies = [json.loads(callback_body(s, "sandbox", data, 1_700_000_000)) for s, data in events]

    assert bodies, f"{scope} fired nothing"
    validator = OAS30Validator(documented()[scope])
    for body in bodies:
        problems = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
        ]
        assert problems == [], body


@pytest.mark.parametrize("scope", ["store/channel/metafield/created", "store/inventory/location/metafield/*"])
def test_hooks_may_subscribe_to_the_documented_metafield_scopes(scope: str) -> None:
    registry = HookRegistry("sandbox", allow_http=True)

    hook = registry.create("client", {"scope": scope, "destination": "https://example.com/hook"})

    assert hook.scope == scope
