"""Channel-specific events: an order, cart or category event also fires store/channel/{id}/... for the
channel the record belongs to, with the data the channels events page documents."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.sandbox.changes import Event
from service.sandbox.data import StoreData

# The sandbox's one storefront channel: where a record that is already gone (a deleted cart) belonged.
DEFAULT_CHANNEL = 1
ORDER_ACTIONS = ("created", "updated", "archived", "statusUpdated", "message/created", "refund/created")
CART_ACTIONS = ("created", "updated", "deleted", "couponApplied", "abandoned", "converted")
LINE_ITEM_ACTIONS = ("lineItem/created", "lineItem/updated", "lineItem/deleted")
CATEGORY_ACTIONS = ("created", "updated", "deleted")


def with_channel_events(store: StoreData, events: Iterable[Event]) -> list[Event]:
    """Each event, followed by its channel-specific twin where the platform fires one."""
    out: list[Event] = []
    for scope, data in events:
        out.append((scope, data))
        twin = channel_event(store, scope, data)
        if twin is not None:
            out.append(twin)
    return out


def channel_event(store: StoreData, scope: str, data: Any) -> Event | None:
    """The store/channel/{id}/... event that accompanies `scope`, or None."""
    area, _, action = scope.removeprefix("store/").partition("/")
    if not isinstance(data, dict):
        return None
    if area == "order" and action in ORDER_ACTIONS:
        order = store.orders.get(data.get("id", -1), {})
        channel = order.get("channel_id", DEFAULT_CHANNEL)
        return f"store/channel/{channel}/order/{action}", {"order_id": data["id"]}
    if area == "cart" and action in (*CART_ACTIONS, *LINE_ITEM_ACTIONS):
        cart_id = str(data.get("cartId", data.get("id")))
        channel = store.carts.get(cart_id, {}).get("channel_id", DEFAULT_CHANNEL)
        payload = {"cart_id": cart_id}
        if action in LINE_ITEM_ACTIONS:
            payload["cart_item_id"] = data["id"]
        return f"store/channel/{channel}/cart/{action}", payload
    if area == "category" and action in CATEGORY_ACTIONS:
        tree = store.categories.get(data.get("id", -1), {}).get("tree_id", 1)
        twin = {"category_id": data["id"], "tree_id": tree}
        return f"store/channel/{DEFAULT_CHANNEL}/category/{action}", twin
    return None
