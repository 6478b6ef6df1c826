"""StoreApi: the store operations handlers, workers and scripts call, one attribute per seed-003 area
(`api.orders.update(...)`), plus the nine tools of seed 000 and the hooks methods as flat methods."""

from __future__ import annotations

from typing import Any, cast

from service.bigcommerce.access import NO_ACCESS, AccessPolicy
from service.bigcommerce.carts import Carts, Checkouts
from service.bigcommerce.catalog import Brands, Categories, Products, Variants
from service.bigcommerce.client import ApiClient, Params
from service.bigcommerce.customers import Customers
from service.bigcommerce.errors import AccessDenied
from service.bigcommerce.guard import AreaApi, CallGuard, Operation, all_operations
from service.bigcommerce.orders import Orders
from service.bigcommerce.price_lists import PriceLists
from service.bigcommerce.records import HookFields, NewProduct, OrderFields, ProductFields
from service.bigcommerce.webhooks import Webhooks

AREA_APIS: dict[str, type[AreaApi]] = {
    area.area: area
    for area in (
        Products,
        Variants,
        Categories,
        Brands,
        PriceLists,
        Orders,
        Customers,
        Carts,
        Checkouts,
        Webhooks,
    )
}


def operations() -> list[Operation]:
    """Every StoreApi operation, area by area: its access level, endpoint and OAuth scope."""
    return all_operations(AREA_APIS)


class StoreApi:
    """Typed methods for one store, grouped by area; every call raises ApiError subclasses on failure.

    Parameters:
      client: the ApiClient all areas share.
      guard: set for a handler's StoreApi (see `for_handler`): calls outside its declared access raise
        AccessDenied before a request leaves, and every call is logged.
    """

    def __init__(self, client: ApiClient, guard: CallGuard | None = None) -> None:
        self._client = client
        self._guard = guard
        self.products = Products(client, guard)
        self.variants = Variants(client, guard)
        self.categories = Categories(client, guard)
        self.brands = Brands(client, guard)
        self.price_lists = PriceLists(client, guard)
        self.orders = Orders(client, guard)
        self.customers = Customers(client, guard)
        self.carts = Carts(client, guard)
        self.checkouts = Checkouts(client, guard)
        self.webhooks = Webhooks(client, guard)

    @property
    def client(self) -> ApiClient:
        """The raw ApiClient, for workers and scripts; a handler's StoreApi refuses it (no guard there)."""
        if self._guard is not None:
            raise AccessDenied(self._guard.handler, "the raw client", "use", self._guard.policy.describe())
        return self._client

    def for_handler(self, handler: str, policy: AccessPolicy = NO_ACCESS) -> StoreApi:
        """The same store, limited to what `handler` declared, each call logged under its name; a handler's
        own StoreApi cannot make another (it would widen its access)."""
        if self._guard is not None:
            raise AccessDenied(
                self._guard.handler, "another handler's access", "take", self._guard.policy.describe()
            )
        return StoreApi(self._client, CallGuard(handler, policy))

    # The nine tools of seed 000, as they were named before the areas existed.
    def list_orders(
        self,
        status_id: int | None = None,
        customer_id: int | None = None,
        min_date_created: str | None = None,
        max_date_created: str | None = None,
    ) -> list[dict[str, Any]]:
        """Orders filtered by status, customer and creation date (`orders.list`)."""
        found = self.orders.list(
            status_id=status_id,
            customer_id=customer_id,
            min_date_created=min_date_created,
            max_date_created=max_date_created,
        )
        return cast(list[dict[str, Any]], found)

    def get_order(self, order_id: int) -> dict[str, Any]:
        """One order (`orders.get`)."""
        return cast(dict[str, Any], self.orders.get(order_id))

    def list_order_products(self, order_id: int) -> list[dict[str, Any]]:
        """The line items of an order (`orders.products`)."""
        return cast(list[dict[str, Any]], self.orders.products(order_id))

    def update_order(
        self, order_id: int, status_id: int | None = None, staff_notes: str | None = None
    ) -> dict[str, Any]:
        """Change an order's status and/or staff notes (`orders.update`)."""
        fields: OrderFields = {}
        if status_id is not None:
            fields["status_id"] = status_id
        if staff_notes is not None:
            fields["staff_notes"] = staff_notes
        if not fields:
            raise ValueError("update_order needs status_id or staff_notes")
        return cast(dict[str, Any], self.orders.update(order_id, fields))

    def list_products(
        self,
        keyword: str | None = None,
        sku: str | None = None,
        availability: str | None = None,
        ids: list[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Products filtered by keyword, SKU, availability, or ids (`products.list`)."""
        found = self.products.list(keyword=keyword, sku=sku, availability=availability, ids=ids or None)
        return cast(list[dict[str, Any]], found)

    def get_product(self, product_id: int, include: str | None = None) -> dict[str, Any]:
        """One product, optionally with `include=variants,images,custom_fields` (`products.get`)."""
        return cast(dict[str, Any], self.products.get(product_id, include=include))

    def list_customers(
        self, email: str | None = None, name: str | None = None, ids: list[int] | None = None
    ) -> list[dict[str, Any]]:
        """Customers by email, name or ids (`customers.list`)."""
        return cast(list[dict[str, Any]], self.customers.list(email=email, name=name, ids=ids or None))

    def create_product(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create a product (`products.create`)."""
        return cast(dict[str, Any], self.products.create(cast(NewProduct, fields)))

    def update_product(self, product_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Update fields of a product (`products.update`)."""
        return cast(dict[str, Any], self.products.update(product_id, cast(ProductFields, fields)))

    # Hooks, as service/registration and dev call them.
    def list_hooks(
        self, scope: str | None = None, destination: str | None = None, is_active: bool | None = None
    ) -> list[dict[str, Any]]:
        """Hooks this token's client created, optionally filtered (`webhooks.list`)."""
        found = self.webhooks.list(scope=scope, destination=destination, is_active=is_active)
        return cast(list[dict[str, Any]], found)

    def create_hook(
        self, scope: str, destination: str, is_active: bool = True, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Create one hook (`webhooks.create`)."""
        created = self.webhooks.create(scope, destination, is_active=is_active, headers=headers)
        return cast(dict[str, Any], created)

    def update_hook(self, hook_id: int, **fields: Any) -> dict[str, Any]:
        """Update a hook; `is_active=True` reactivates one BigCommerce switched off (`webhooks.update`)."""
        if not fields:
            raise ValueError("update_hook needs at least one field (BigCommerce answers 422 otherwise)")
        return cast(dict[str, Any], self.webhooks.update(hook_id, cast(HookFields, fields)))

    def delete_hook(self, hook_id: int) -> dict[str, Any]:
        """Delete a hook; the API returns it (`webhooks.delete`)."""
        return cast(dict[str, Any], self.webhooks.delete(hook_id))

    def hooks_admin(self, is_active: bool | None = None) -> dict[str, Any]:
        """Notification emails, hooks with their status, and blocked domains (`webhooks.admin`)."""
        return cast(dict[str, Any], self.webhooks.admin(is_active=is_active))


__all__ = ["AREA_APIS", "Params", "StoreApi", "operations"]
