"""The store operations handlers, workers and scripts call: the seed's tools and /v3/hooks."""

from __future__ import annotations

from typing import Any

from service.bigcommerce.client import ApiClient, Params


class StoreApi:
    """Typed-ish methods over ApiClient for one store; every call raises ApiError subclasses on failure."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    # Orders (v2)
    def list_orders(
        self,
        status_id: int | None = None,
        customer_id: int | None = None,
        min_date_created: str | None = None,
        max_date_created: str | None = None,
    ) -> list[dict[str, Any]]:
        """Orders filtered by status, customer and creation date (RFC 2822 or ISO 8601 strings)."""
        params = _present(
            status_id=status_id,
            customer_id=customer_id,
            min_date_created=min_date_created,
            max_date_created=max_date_created,
        )
        return list(self.client.v2_items("/v2/orders", params))

    def get_order(self, order_id: int) -> dict[str, Any]:
        """One order (v2 orders do not embed their products)."""
        order: dict[str, Any] = self.client.get_json(f"/v2/orders/{order_id}")
        return order

    def list_order_products(self, order_id: int) -> list[dict[str, Any]]:
        """The line items of an order."""
        return list(self.client.v2_items(f"/v2/orders/{order_id}/products"))

    def update_order(
        self, order_id: int, status_id: int | None = None, staff_notes: str | None = None
    ) -> dict[str, Any]:
        """Change an order's status and/or staff notes."""
        body = _present(status_id=status_id, staff_notes=staff_notes)
        if not body:
            raise ValueError("update_order needs status_id or staff_notes")
        updated: dict[str, Any] = self.client.send_json("PUT", f"/v2/orders/{order_id}", body)
        return updated

    # Catalog (v3)
    def list_products(
        self,
        keyword: str | None = None,
        sku: str | None = None,
        availability: str | None = None,
        ids: list[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Products filtered by keyword, SKU, availability, or ids (`id:in`)."""
        params = _present(keyword=keyword, sku=sku, availability=availability)
        if ids:
            params["id:in"] = ",".join(str(i) for i in ids)
        return list(self.client.v3_items("/v3/catalog/products", params))

    def get_product(self, product_id: int, include: str | None = None) -> dict[str, Any]:
        """One product, optionally with `include=variants,images,custom_fields`."""
        body = self.client.get_json(f"/v3/catalog/products/{product_id}", _present(include=include))
        product: dict[str, Any] = body["data"]
        return product

    def create_product(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create a product (name, type, weight and price are required by the API)."""
        created: dict[str, Any] = self.client.send_json("POST", "/v3/catalog/products", fields)["data"]
        return created

    def update_product(self, product_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Update fields of a product, e.g. price, is_visible, inventory_level."""
        updated: dict[str, Any] = self.client.send_json("PUT", f"/v3/catalog/products/{product_id}", fields)[
            "data"
        ]
        return updated

    # Customers (v3)
    def list_customers(
        self, email: str | None = None, name: str | None = None, ids: list[int] | None = None
    ) -> list[dict[str, Any]]:
        """Customers by email (`email:in`), name (`name:like`) or ids (`id:in`)."""
        params: dict[str, str | int | bool] = {}
        if email:
            params["email:in"] = email
        if name:
            params["name:like"] = name
        if ids:
            params["id:in"] = ",".join(str(i) for i in ids)
        return list(self.client.v3_items("/v3/customers", params))

    # Webhooks (v3)
    def list_hooks(
        self, scope: str | None = None, destination: str | None = None, is_active: bool | None = None
    ) -> list[dict[str, Any]]:
        """Hooks this token's client created, optionally filtered."""
        params = _present(scope=scope, destination=destination)
        if is_active is not None:
            params["is_active"] = "true" if is_active else "false"
        return list(self.client.v3_items("/v3/hooks", params))

    def create_hook(
        self, scope: str, destination: str, is_active: bool = True, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Create one hook."""
        body = {"scope": scope, "destination": destination, "is_active": is_active, "headers": headers}
        created: dict[str, Any] = self.client.send_json("POST", "/v3/hooks", body)["data"]
        return created

    def update_hook(self, hook_id: int, **fields: Any) -> dict[str, Any]:
        """Update a hook; `is_active=True` reactivates one BigCommerce switched off."""
        if not fields:
            raise ValueError("update_hook needs at least one field (BigCommerce answers 422 otherwise)")
        updated: dict[str, Any] = self.client.send_json("PUT", f"/v3/hooks/{hook_id}", fields)["data"]
        return updated

    def delete_hook(self, hook_id: int) -> dict[str, Any]:
        """Delete a hook; the API returns it."""
        deleted: dict[str, Any] = self.client.send_json("DELETE", f"/v3/hooks/{hook_id}", None)["data"]
        return deleted

    def hooks_admin(self, is_active: bool | None = None) -> dict[str, Any]:
        """Notification emails, hooks with their status, and blocked domains."""
        params = {} if is_active is None else {"is_active": "true" if is_active else "false"}
        admin: dict[str, Any] = self.client.get_json("/v3/hooks/admin", params)["data"]
        return admin


def _present(**values: str | int | None) -> dict[str, str | int | bool]:
    return {key: value for key, value in values.items() if value is not None}


__all__ = ["Params", "StoreApi"]
