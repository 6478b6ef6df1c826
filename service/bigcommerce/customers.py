"""Customers through the v3 Customers API, written in batches on the collection path: the Customers scope."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from service.bigcommerce.access import READ, WRITE
from service.bigcommerce.guard import AreaApi, id_list, operation
from service.bigcommerce.records import Customer, CustomerUpdate, NewCustomer


class Customers(AreaApi):
    """`api.customers.list(email="a@example.com")`; writes take and return lists (v3 batches)."""

    area = "customers"

    @operation(WRITE, "POST /v3/customers")
    def create(self, customers: Iterable[NewCustomer]) -> list[Customer]:
        """Create customers; fires store/customer/created for each."""
        return cast(list[Customer], self._send("POST", "/v3/customers", list(customers)))

    @operation(WRITE, "PUT /v3/customers")
    def update(self, updates: Iterable[CustomerUpdate]) -> list[Customer]:
        """Update customers (each item names its `id`); fires store/customer/updated for each."""
        return cast(list[Customer], self._send("PUT", "/v3/customers", list(updates)))

    @operation(WRITE, "DELETE /v3/customers")
    def delete(self, customer_ids: Iterable[int]) -> None:
        """Delete customers by id; fires store/customer/deleted for each."""
        self._client.request("DELETE", "/v3/customers", params={"id:in": id_list(customer_ids)})

    @operation(READ, "GET /v3/customers")
    def list(
        self, *, email: str | None = None, name: str | None = None, ids: Iterable[int] | None = None
    ) -> list[Customer]:
        """Customers by email (`email:in`), name (`name:like`) or ids (`id:in`)."""
        params: dict[str, str | int | bool] = {}
        if email:
            params["email:in"] = email
        if name:
            params["name:like"] = name
        if ids is not None:
            params["id:in"] = id_list(ids)
        return list(self._client.v3_items("/v3/customers", params))
