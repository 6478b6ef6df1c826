"""Server-side carts (the Carts scope) and checkouts (the Checkouts scope); a cart's id is its checkout's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from service.bigcommerce.access import READ, WRITE
from service.bigcommerce.guard import AreaApi, operation, present
from service.bigcommerce.records import Cart, Checkout, CheckoutOrder, LineItem


class Carts(AreaApi):
    """`api.carts.create([{"product_id": 12, "quantity": 1}])`, then `add_items`, `get`, `delete`."""

    area = "carts"

    @operation(WRITE, "POST /v3/carts")
    def create(
        self, line_items: Iterable[LineItem], *, customer_id: int | None = None, channel_id: int | None = None
    ) -> Cart:
        """Create a cart with its first line items; fires store/cart/created."""
        body = {"line_items": list(line_items), **present(customer_id=customer_id, channel_id=channel_id)}
        return cast(Cart, self._send("POST", "/v3/carts", body))

    @operation(READ, "GET /v3/carts/{cart_id}")
    def get(self, cart_id: str) -> Cart:
        """One cart."""
        return cast(Cart, self._data(f"/v3/carts/{cart_id}"))

    @operation(WRITE, "POST /v3/carts/{cart_id}/items")
    def add_items(self, cart_id: str, line_items: Iterable[LineItem]) -> Cart:
        """Add line items; fires store/cart/updated. Returns the whole cart."""
        return cast(Cart, self._send("POST", f"/v3/carts/{cart_id}/items", {"line_items": list(line_items)}))

    @operation(WRITE, "DELETE /v3/carts/{cart_id}")
    def delete(self, cart_id: str) -> None:
        """Delete a cart; fires store/cart/deleted."""
        self._client.send_json("DELETE", f"/v3/carts/{cart_id}", None)


class Checkouts(AreaApi):
    """Read a checkout; convert a completed one into an order (a real purchase)."""

    area = "checkouts"

    @operation(READ, "GET /v3/checkouts/{checkout_id}")
    def get(self, checkout_id: str) -> Checkout:
        """One checkout, with its cart and totals."""
        return cast(Checkout, self._data(f"/v3/checkouts/{checkout_id}"))

    @operation(WRITE, "POST /v3/checkouts/{checkout_id}/orders")
    def create_order(self, checkout_id: str) -> CheckoutOrder:
        """Turn the checkout into an order; fires store/order/created. Returns the order's id."""
        return cast(CheckoutOrder, self._send("POST", f"/v3/checkouts/{checkout_id}/orders", None))
