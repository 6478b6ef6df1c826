"""API accounts of the sandbox: tokens, their client id and secret, and their OAuth scopes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# The OAuth scope families endpoints need (reads accept the `_read_only` form, writes need these).
PRODUCTS, ORDERS, CUSTOMERS, CARTS = (
    "store_v2_products",
    "store_v2_orders",
    "store_v2_customers",
    "store_cart",
)
CHECKOUTS, INFORMATION = "store_checkout", "store_v2_information"
TRANSACTIONS, CHANNELS = "store_v2_transactions", "store_channel_settings"
ALL_SCOPES = (
    "store_v2_products",
    "store_v2_orders",
    "store_v2_customers",
    "store_cart",
    "store_checkout",
    "store_v2_information",
    "store_v2_transactions",
    "store_channel_settings",
)
DEFAULT_TOKEN = "sandbox-token"  # noqa: S105 (the sandbox's published local-only default)
DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 (the sandbox's published local-only default)


@dataclass(frozen=True)
class ApiAccount:
    """A store-level API account: what X-Auth-Token names, whose hooks it sees, and what it may do."""

    token: str
    client_id: str
    client_secret: str
    scopes: frozenset[str]

    def can_read(self, scope: str) -> bool:
        """Reads need the read-only or the modify form of the scope."""
        return scope in self.scopes or f"{scope}_read_only" in self.scopes

    def can_write(self, scope: str) -> bool:
        """Writes need the modify form."""
        return scope in self.scopes


def default_accounts() -> list[ApiAccount]:
    """A full-access account for `dev`, plus a read-only one and a second client for tests."""
    return [
        ApiAccount(DEFAULT_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, frozenset(ALL_SCOPES)),
        ApiAccount(
            "sandbox-read-only-token",
            "sandbox-read-only-client",
            "sandbox-read-only-secret",
            frozenset(f"{scope}_read_only" for scope in ALL_SCOPES),
        ),
        ApiAccount(
            "sandbox-other-app-token", "sandbox-other-app", "sandbox-other-app-secret", frozenset(ALL_SCOPES)
        ),
    ]


def load_accounts(path: Path) -> list[ApiAccount]:
    """Accounts from a JSON file: [{"token", "client_id", "client_secret", "scopes": [...]}, ...]."""
    try:
        entries = json.loads(path.read_text())
        return [
            ApiAccount(e["token"], e["client_id"], e["client_secret"], frozenset(e["scopes"]))
            for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: not a JSON list of {{token, client_id, client_secret, scopes}}: {error}"
        ) from None
