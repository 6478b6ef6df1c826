"""The webhook scopes the platform documents, as the sandbox's /v3/hooks accepts and fires them.

The sandbox keeps its own list (from BigCommerce's webhook callback schemas and events pages) rather than
the client's, so that it can never agree with a gap in it. Channel-specific scopes
(store/channel/{channel_id}/...) follow the channels events page.
"""

from __future__ import annotations

import difflib
import re

_ACTIONS = ("created", "updated", "deleted")
_METAFIELD_OWNERS = (
    "order", "product", "product/variant", "category", "brand", "cart", "channel", "inventory/location",
    "store",
)  # fmt: skip
STORE_SCOPES: tuple[str, ...] = (
    *(f"store/order/{a}" for a in ("created", "updated", "archived", "statusUpdated")),
    "store/order/message/created",
    "store/order/refund/created",
    "store/order/transaction/created",
    "store/order/transaction/updated",
    *(f"store/product/{a}" for a in _ACTIONS),
    "store/product/inventory/updated",
    "store/product/inventory/order/updated",
    *(f"store/sku/{a}" for a in _ACTIONS),
    "store/sku/inventory/updated",
    "store/sku/inventory/order/updated",
    *(f"store/category/{a}" for a in _ACTIONS),
    *(f"store/{owner}/metafield/{a}" for owner in _METAFIELD_OWNERS for a in _ACTIONS),
    *(f"store/metafield/{a}" for a in _ACTIONS),
    *(f"store/customer/{a}" for a in _ACTIONS),
    *(f"store/customer/address/{a}" for a in _ACTIONS),
    "store/customer/payment/instrument/default/updated",
    "store/customer/channel/login/access/updated",
    *(f"store/cart/{a}" for a in (*_ACTIONS, "couponApplied", "abandoned", "converted")),
    *(f"store/cart/lineItem/{a}" for a in _ACTIONS),
    *(f"store/shipment/{a}" for a in _ACTIONS),
    *(f"store/subscriber/{a}" for a in _ACTIONS),
    "store/information/updated",
    "store/app/uninstalled",
    "store/redirects/updated",
    "store/modifier/updated",
    "store/option/updated",
    *(f"store/priceList/{a}" for a in (*_ACTIONS, "activated", "deactivated")),
    "store/priceLists/deleted",
    *(f"store/priceList/record/{a}" for a in _ACTIONS),
    *(f"store/priceList/records/{a}" for a in _ACTIONS),
    "store/priceList/assignment/updated",
    "store/priceList/assignment/deleted",
    "store/channel/created",
    "store/channel/updated",
    "store/inventory/location/created",
    "store/inventory/location/updated",
    "store/hook/deliveryException",
)
WILDCARD_SCOPES: tuple[str, ...] = (
    *(
        f"store/{area}/*"
        for area in (
            "order", "product", "sku", "category", "customer", "customer/address", "cart", "cart/lineItem",
            "shipment", "subscriber", "metafield", "channel", "priceList", "priceList/records",
        )
    ),
    *(f"store/{owner}/metafield/*" for owner in _METAFIELD_OWNERS),
)  # fmt: skip
# store/channel/{channel_id}/{area}/... as the channels events page lists them, wildcards included.
CHANNEL_SCOPE = re.compile(
    r"^store/channel/(?P<channel>\d+)/(?P<rest>(cart|cart/lineItem|order|category)/(\*|[A-Za-z]+)"
    r"|order/(message|refund)/created|category/product/(un)?assigned|categoryTree/updated"
    r"|product/(un)?assigned|(page|script)/(created|updated)|settings/(\*|[A-Za-z/]+)"
    r"|(email/templates|notifications/[A-Za-z]+|socialMediaLinks|theme/configuration)/[A-Za-z]+)$"
)


def is_documented(scope: str) -> bool:
    """A scope a hook may subscribe to: documented, a documented wildcard, or a channel-specific event."""
    return scope in STORE_SCOPES or scope in WILDCARD_SCOPES or bool(CHANNEL_SCOPE.match(scope))


def close_matches(scope: str, limit: int = 3) -> list[str]:
    """The documented scopes nearest to a misspelt one."""
    return difflib.get_close_matches(scope, (*STORE_SCOPES, *WILDCARD_SCOPES), n=limit, cutoff=0.5)


def matches(subscription: str, scope: str) -> bool:
    """Whether an event of `scope` reaches a hook subscribed to `subscription` (a `/*` covers all below)."""
    if subscription == scope:
        return True
    return subscription.endswith("/*") and scope.startswith(subscription[:-1])
