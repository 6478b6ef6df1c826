"""Orders, served by the older v2 API (flat answers, no `data` envelope): the Orders scope."""

from __future__ import annotations

from typing import Any, cast

from service.bigcommerce.access import READ, WRITE
from service.bigcommerce.guard import AreaApi, operation, present
from service.bigcommerce.records import Address, NewOrder, Order, OrderFields, OrderProduct


class Orders(AreaApi):
    """`api.orders.update(250, {"status_id": 2})`; `api.orders.products(250)` for its line items."""

    area = "orders"

    @operation(READ, "GET /v2/orders/{order_id}")
    def get(self, order_id: int) -> Order:
        """One order (v2 orders do not embed their products: see `products`)."""
        return cast(Order, self._client.get_json(f"/v2/orders/{order_id}"))

    @operation(READ, "GET /v2/orders/{order_id}/products")
    def products(self, order_id: int) -> list[OrderProduct]:
        """The line items of an order."""
        return list(self._client.v2_items(f"/v2/orders/{order_id}/products"))

    @operation(READ, "GET /v2/orders/{order_id}/shipping_addresses")
    def shipping_addresses(self, order_id: int) -> list[Address]:
        """Where an order ships (one address per consignment)."""
        return list(self._client.v2_items(f"/v2/orders/{order_id}/shipping_addresses"))

    @operation(READ, "GET /v2/orders/{order_id}/coupons")
    def coupons(self, order_id: int) -> list[dict[str, Any]]:
        """The coupons applied to an order."""
        return list(self._client.v2_items(f"/v2/orders/{order_id}/coupons"))

    @operation(READ, "GET /v2/orders/count")
    def count(self, *, status_id: int | None = None, customer_id: int | None = None) -> dict[str, Any]:
        """`{"count": n, "statuses": [...]}`: how many orders, in all and per status."""
        return cast(
            dict[str, Any],
            self._client.get_json("/v2/orders/count", present(status_id=status_id, customer_id=customer_id)),
        )

    @operation(READ, "GET /v2/order_statuses")
    def statuses(self) -> list[dict[str, Any]]:
        """The store's order statuses (`id`, `name`, …)."""
        return cast(list[dict[str, Any]], self._client.get_json("/v2/order_statuses") or [])

    @operation(WRITE, "POST /v2/orders")
    def create(self, fields: NewOrder) -> Order:
        """Create an order (billing address and product lines required); fires store/order/created."""
        return cast(Order, self._client.send_json("POST", "/v2/orders", fields))

    @operation(WRITE, "PUT /v2/orders/{order_id}")
    def update(self, order_id: int, fields: OrderFields) -> Order:
        """Change an order, e.g. its status or staff notes; a new status fires store/order/statusUpdated."""
        if not fields:
            raise ValueError("orders.update needs at least one field")
        return cast(Order, self._client.send_json("PUT", f"/v2/orders/{order_id}", fields))

    @operation(WRITE, "DELETE /v2/orders/{order_id}")
    def archive(self, order_id: int) -> None:
        """Archive an order (BigCommerce keeps it, marked deleted); fires store/order/archived."""
        self._client.send_json("DELETE", f"/v2/orders/{order_id}", None)

    @operation(READ, "GET /v2/orders")
    def list(
        self,
        *,
        status_id: int | None = None,
        customer_id: int | None = None,
        min_date_created: str | None = None,
        max_date_created: str | None = None,
    ) -> list[Order]:
        """Orders filtered by status, customer and creation date (RFC 2822 or ISO 8601 strings)."""
        params = present(
            status_id=status_id,
            customer_id=customer_id,
            min_date_created=min_date_created,
            max_date_created=max_date_created,
        )
        return list(self._client.v2_items("/v2/orders", params))
