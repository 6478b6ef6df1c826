"""Documented webhook scopes (BigCommerce's events pages), wildcard matching and close matches."""

from __future__ import annotations

import difflib
import re

STORE_SCOPES: tuple[str, ...] = (
    "store/order/created",
    "store/order/updated",
    "store/order/archived",
    "store/order/statusUpdated",
    "store/order/message/created",
    "store/order/refund/created",
    "store/order/transaction/created",
    "store/order/transaction/updated",
    "store/order/metafield/created",
    "store/order/metafield/updated",
    "store/order/metafield/deleted",
    "store/product/created",
    "store/product/updated",
    "store/product/deleted",
    "store/product/inventory/updated",
    "store/product/inventory/order/updated",
    "store/product/metafield/created",
    "store/product/metafield/updated",
    "store/product/metafield/deleted",
    "store/product/variant/metafield/created",
    "store/product/variant/metafield/updated",
    "store/product/variant/metafield/deleted",
    "store/sku/created",
    "store/sku/updated",
    "store/sku/deleted",
    "store/sku/inventory/updated",
    "store/sku/inventory/order/updated",
    "store/category/created",
    "store/category/updated",
    "store/category/deleted",
    "store/category/metafield/created",
    "store/category/metafield/updated",
    "store/category/metafield/deleted",
    "store/brand/metafield/created",
    "store/brand/metafield/updated",
    "store/brand/metafield/deleted",
    "store/customer/created",
    "store/customer/updated",
    "store/customer/deleted",
    "store/customer/address/created",
    "store/customer/address/updated",
    "store/customer/address/deleted",
    "store/customer/payment/instrument/default/updated",
    "store/customer/channel/login/access/updated",
    "store/cart/created",
    "store/cart/updated",
    "store/cart/deleted",
    "store/cart/couponApplied",
    "store/cart/abandoned",
    "store/cart/converted",
    "store/cart/lineItem/created",
    "store/cart/lineItem/updated",
    "store/cart/lineItem/deleted",
    "store/cart/metafield/created",
    "store/cart/metafield/updated",
    "store/cart/metafield/deleted",
    "store/shipment/created",
    "store/shipment/updated",
    "store/shipment/deleted",
    "store/subscriber/created",
    "store/subscriber/updated",
    "store/subscriber/deleted",
    "store/information/updated",
    "store/app/uninstalled",
    "store/metafield/created",
    "store/metafield/updated",
    "store/metafield/deleted",
    "store/modifier/updated",
    "store/option/updated",
    "store/priceList/created",
    "store/priceList/updated",
    "store/priceList/activated",
    "store/priceList/deactivated",
    "store/priceList/deleted",
    "store/priceLists/deleted",
    "store/priceList/record/created",
    "store/priceList/record/updated",
    "store/priceList/record/deleted",
    "store/priceList/records/created",
    "store/priceList/records/updated",
    "store/priceList/records/deleted",
    "store/priceList/assignment/updated",
    "store/priceList/assignment/deleted",
    "store/channel/created",
    "store/channel/updated",
    "store/inventory/location/created",
    "store/inventory/location/updated",
    "store/hook/deliveryException",
)
WILDCARD_SCOPES: tuple[str, ...] = (
    "store/order/*",
    "store/product/*",
    "store/product/metafield/*",
    "store/product/variant/metafield/*",
    "store/sku/*",
    "store/category/*",
    "store/customer/*",
    "store/customer/address/*",
    "store/cart/*",
    "store/cart/lineItem/*",
    "store/shipment/*",
    "store/subscriber/*",
    "store/metafield/*",
    "store/brand/metafield/*",
    "store/inventory/location/metafield/*",
    "store/channel/*",
)
OTHER_FAMILY = "other"
FAMILIES: frozenset[str] = frozenset(scope.split("/")[1] for scope in (*STORE_SCOPES, *WILDCARD_SCOPES))
CHANNEL_SCOPE = re.compile(r"^store/channel/\d+/[A-Za-z/]+(\*|[A-Za-z]+)$")


def family_of(scope: str) -> str:
    """The family of a scope: `order` for store/order/statusUpdated, `channel` for store/channel/1/...,
    `other` for anything else. A bounded label for metrics and charts, never a value from the wire."""
    parts = scope.split("/", 2)
    if len(parts) >= 2 and parts[0] == "store" and parts[1] in FAMILIES:
        return parts[1]
    return OTHER_FAMILY


def is_documented(scope: str) -> bool:
    """A scope a hook may subscribe to: documented, a documented wildcard, or a channel-scoped event."""
    return scope in STORE_SCOPES or scope in WILDCARD_SCOPES or bool(CHANNEL_SCOPE.match(scope))


def close_matches(scope: str, limit: int = 3) -> list[str]:
    """The documented scopes nearest to a misspelt one."""
    return difflib.get_close_matches(scope, (*STORE_SCOPES, *WILDCARD_SCOPES), n=limit, cutoff=0.5)


def matches(subscription: str, scope: str) -> bool:
    """Whether an event of `scope` is delivered to a hook subscribed to `subscription` (wildcards allowed).

    `store/cart/*` also fires for store/cart/lineItem events, as documented; `store/product/*` covers
    inventory sub-events too, since a wildcard covers everything below its prefix.
    """
    if subscription == scope:
        return True
    if subscription.endswith("/*"):
        return scope.startswith(subscription[:-1])
    return False
