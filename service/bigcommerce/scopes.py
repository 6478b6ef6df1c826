"""Which OAuth scope a REST path needs, so a 403 can name it."""

from __future__ import annotations

import re

# First match wins: (path pattern after /stores/{hash}, scope family, control-panel name).
SCOPE_TABLE: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern), scope, label)
    for pattern, scope, label in (
        (r"^/v3/orders/(\d+/)?(transactions|payment_actions)", "store_v2_transactions", "Order Transactions"),
        (r"^/v[23]/orders", "store_v2_orders", "Orders"),
        (r"^/v2/shipments", "store_v2_orders", "Orders"),
        (r"^/v2/order_statuses", "store_v2_orders", "Orders"),
        (r"^/v3/catalog", "store_v2_products", "Products"),
        (r"^/v3/inventory", "store_v2_products", "Products"),
        (r"^/v3/pricelists", "store_v2_products", "Products"),
        (r"^/v3/customers", "store_v2_customers", "Customers"),
        (r"^/v2/customers", "store_v2_customers", "Customers"),
        (r"^/v3/carts", "store_cart", "Carts"),
        (r"^/v3/checkouts", "store_checkout", "Checkouts"),
        (r"^/v3/channels", "store_channel_settings", "Channel Settings"),
        (r"^/v3/hooks", "store_v2_information", "Information & Settings"),
        (r"^/v2/store", "store_v2_information", "Information & Settings"),
    )
)
READ_METHODS = frozenset({"GET", "HEAD"})


def required_scope(method: str, path: str) -> tuple[str, str] | None:
    """(scope, control-panel name) for a call, or None when we do not know the family."""
    for pattern, scope, label in SCOPE_TABLE:
        if pattern.search(path):
            return scope, label
    return None


def describe_missing_scope(method: str, path: str) -> tuple[str, str]:
    """(needed, message) for a 403: reads accept the read-only form, writes need modify."""
    found = required_scope(method, path)
    if found is None:
        return "unknown", f"token lacks the OAuth scope for {method} {path}; check the API account's scopes"
    scope, label = found
    if method.upper() in READ_METHODS:
        needed = f"{scope}_read_only or {scope}"
        return needed, f"token needs {needed} for {method} {path}; grant {label}: read-only (or modify)"
    return scope, f"token needs {scope} for {method} {path}; grant {label}: modify"
