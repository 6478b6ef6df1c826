"""Modification-time filters and sorts of the list endpoints, named as BigCommerce's specs name them.

- v2 orders (and /v2/orders/count): `min_date_modified` / `max_date_modified` (RFC-2822 or ISO-8601),
  `sort=date_modified:asc|desc`.
- v3 products: `date_modified:min` / `:max`, `sort=date_modified&direction=asc|desc`; a date without a time
  gets "the current time of the request" appended (the spec's gotcha, modelled).
- v3 customers: `date_modified:min` / `:max`, `sort=date_modified:asc|desc`.
- v3 subscribers, channels, price lists and price-list records: `date_modified:min` / `:max`, no sort.

`:min` is ≥ and `:max` is ≤ (common-query-params); the sandbox treats the v2 pair the same way. Ties in a
date sort are broken by id, so that pages are stable while nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

from starlette.requests import Request

from service.sandbox.data import Record
from service.sandbox.errors import ApiFailure
from service.sandbox.http import parse_date

Condition = Callable[[Record], bool]


def modified_at(record: Record, key: str = "date_modified") -> datetime:
    """A record's modification time (either date format), as an aware datetime."""
    return _aware(parse_date(str(record[key])))


def filter_value(raw: str, now: datetime, date_only_gets_now: bool = False) -> datetime:
    """A filter's value as an aware datetime: a bare date is midnight UTC, or (products) that date at the
    current time of the request."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return _aware(parse_date(raw))
    at = now.timetz() if date_only_gets_now else time(tzinfo=UTC)
    return datetime.combine(day, at)


def v2_modified(request: Request) -> Condition | None:
    """The v2 orders filter `min_date_modified` / `max_date_modified`, or None when neither is given."""
    q = request.query_params
    return _between(q.get("min_date_modified"), q.get("max_date_modified"))


def v3_modified(request: Request, date_only_gets_now: bool = False) -> Condition | None:
    """The v3 filter `date_modified:min` / `date_modified:max`, or None when neither is given."""
    q = request.query_params
    return _between(q.get("date_modified:min"), q.get("date_modified:max"), date_only_gets_now)


def sorted_by_modified(items: list[Record], descending: bool = False, id_key: str = "id") -> list[Record]:
    """Items by modification time (then id), oldest first unless `descending`."""
    return sorted(items, key=lambda r: (modified_at(r), r[id_key]), reverse=descending)


def colon_sort(request: Request) -> bool | None:
    """`sort=date_modified[:asc|:desc]` (v2 orders, v3 customers): True for descending, None when the
    request does not sort by date_modified."""
    field, _, direction = request.query_params.get("sort", "").partition(":")
    if field != "date_modified":
        return None
    return _descending(direction or "asc", "sort")


def direction_sort(request: Request) -> bool | None:
    """`sort=date_modified&direction=asc|desc` (v3 products): True for descending, None when the request
    does not sort by date_modified."""
    q = request.query_params
    if q.get("sort") != "date_modified":
        return None
    return _descending(q.get("direction", "asc"), "direction")


def _descending(direction: str, name: str) -> bool:
    if direction.lower() not in ("asc", "desc"):
        raise ApiFailure(422, "Invalid sort", {name: "must be asc or desc"})
    return direction.lower() == "desc"


def _between(low: str | None, high: str | None, date_only_gets_now: bool = False) -> Condition | None:
    if not low and not high:
        return None
    now = datetime.now(tz=UTC)
    lowest = filter_value(low, now, date_only_gets_now) if low else None
    highest = filter_value(high, now, date_only_gets_now) if high else None

    def condition(record: Record) -> bool:
        moment = modified_at(record)
        return (lowest is None or moment >= lowest) and (highest is None or moment <= highest)

    return condition


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def apply(items: list[Record], condition: Condition | None) -> list[Record]:
    """Items passing the condition (all of them when there is none)."""
    return items if condition is None else [item for item in items if condition(item)]


def ordered(items: list[Record], descending: bool | None, id_key: str = "id") -> list[Any]:
    """Items sorted by modification time when a sort was asked for, else as they were."""
    return items if descending is None else sorted_by_modified(items, descending, id_key)
