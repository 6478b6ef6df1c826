"""Webhooks (/v3/hooks): the Information & Settings scope. Hooks are visible only to the API account that
created them."""

from __future__ import annotations

from typing import cast

from service.bigcommerce.access import READ, WRITE
from service.bigcommerce.guard import AreaApi, operation, present
from service.bigcommerce.records import Hook, HookFields, HooksAdmin


class Webhooks(AreaApi):
    """`api.webhooks.create("store/order/*", "https://…/webhooks/bigcommerce")`."""

    area = "webhooks"

    @operation(READ, "GET /v3/hooks/{hook_id}")
    def get(self, hook_id: int) -> Hook:
        """One hook."""
        return cast(Hook, self._data(f"/v3/hooks/{hook_id}"))

    @operation(WRITE, "POST /v3/hooks")
    def create(
        self, scope: str, destination: str, *, is_active: bool = True, headers: dict[str, str] | None = None
    ) -> Hook:
        """Subscribe `destination` to a scope such as store/order/created."""
        body = {"scope": scope, "destination": destination, "is_active": is_active, "headers": headers}
        return cast(Hook, self._send("POST", "/v3/hooks", body))

    @operation(WRITE, "PUT /v3/hooks/{hook_id}")
    def update(self, hook_id: int, fields: HookFields) -> Hook:
        """Change a hook; `{"is_active": True}` reactivates one BigCommerce switched off."""
        if not fields:
            raise ValueError("webhooks.update needs at least one field (BigCommerce answers 422 otherwise)")
        return cast(Hook, self._send("PUT", f"/v3/hooks/{hook_id}", fields))

    @operation(WRITE, "DELETE /v3/hooks/{hook_id}")
    def delete(self, hook_id: int) -> Hook:
        """Delete a hook; the API answers with it."""
        return cast(Hook, self._send("DELETE", f"/v3/hooks/{hook_id}", None))

    @operation(READ, "GET /v3/hooks/admin")
    def admin(self, *, is_active: bool | None = None) -> HooksAdmin:
        """Notification emails, hooks with their status, and blocked domains."""
        params = {} if is_active is None else {"is_active": "true" if is_active else "false"}
        return cast(HooksAdmin, self._data("/v3/hooks/admin", params))

    @operation(READ, "GET /v3/hooks")
    def list(
        self, *, scope: str | None = None, destination: str | None = None, is_active: bool | None = None
    ) -> list[Hook]:
        """Hooks this token's API account created, optionally filtered."""
        params = present(scope=scope, destination=destination)
        if is_active is not None:
            params["is_active"] = "true" if is_active else "false"
        return list(self._client.v3_items("/v3/hooks", params))
