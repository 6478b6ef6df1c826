"""Price lists (seed 003): lists that override catalog prices, and their per-variant records.

Governed by the Products scope. A bulk record upsert runs one at a time per store: a second one in
parallel gets 429, which the client waits out like any rate limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from service.bigcommerce.access import READ, WRITE
from service.bigcommerce.guard import AreaApi, id_list, operation, present
from service.bigcommerce.records import PriceList, PriceListFields, PriceRecord, PriceRecordUpsert


class PriceLists(AreaApi):
    """`api.price_lists.upsert_records(7, [{"variant_id": 1, "currency": "USD", "price": 9.5}])`."""

    area = "price_lists"

    @operation(READ, "GET /v3/pricelists/{price_list_id}")
    def get(self, price_list_id: int) -> PriceList:
        """One price list."""
        return cast(PriceList, self._data(f"/v3/pricelists/{price_list_id}"))

    @operation(WRITE, "POST /v3/pricelists")
    def create(self, fields: PriceListFields) -> PriceList:
        """Create a price list (a name is required)."""
        return cast(PriceList, self._send("POST", "/v3/pricelists", fields))

    @operation(WRITE, "PUT /v3/pricelists/{price_list_id}")
    def update(self, price_list_id: int, fields: PriceListFields) -> PriceList:
        """Rename, activate or deactivate a price list."""
        return cast(PriceList, self._send("PUT", f"/v3/pricelists/{price_list_id}", fields))

    @operation(WRITE, "DELETE /v3/pricelists/{price_list_id}")
    def delete(self, price_list_id: int) -> None:
        """Delete a price list and its records."""
        self._client.send_json("DELETE", f"/v3/pricelists/{price_list_id}", None)

    @operation(WRITE, "PUT /v3/pricelists/{price_list_id}/records")
    def upsert_records(self, price_list_id: int, records: Iterable[PriceRecordUpsert]) -> None:
        """Create or replace records in bulk (one upsert at a time per store)."""
        self._client.send_json("PUT", f"/v3/pricelists/{price_list_id}/records", list(records))

    @operation(READ, "GET /v3/pricelists/{price_list_id}/records")
    def records(
        self,
        price_list_id: int,
        *,
        variant_ids: Iterable[int] | None = None,
        currency: str | None = None,
    ) -> list[PriceRecord]:
        """The records of a price list, optionally for some variants or one currency."""
        params = present(currency=currency)
        if variant_ids is not None:
            params["variant_id:in"] = id_list(variant_ids)
        return list(self._client.v3_items(f"/v3/pricelists/{price_list_id}/records", params))

    @operation(READ, "GET /v3/pricelists/{price_list_id}/records/{variant_id}/{currency}")
    def record(self, price_list_id: int, variant_id: int, currency: str) -> PriceRecord:
        """One variant's record in one currency (`USD`)."""
        path = f"/v3/pricelists/{price_list_id}/records/{variant_id}/{currency}"
        return cast(PriceRecord, self._data(path))

    @operation(READ, "GET /v3/pricelists")
    def list(self, *, name: str | None = None, ids: Iterable[int] | None = None) -> list[PriceList]:
        """Every price list, optionally by name or `id:in`."""
        params = present(name=name)
        if ids is not None:
            params["id:in"] = id_list(ids)
        return list(self._client.v3_items("/v3/pricelists", params))
