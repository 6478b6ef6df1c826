"""What a handler may do with the store API: the seed's ten areas, read or write, and the OAuth scopes that
follow from it. Denied by default: an area a handler did not declare is out of its reach."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Level = Literal["read", "write"]
READ: Level = "read"
WRITE: Level = "write"
LEVELS: tuple[Level, ...] = (READ, WRITE)


@dataclass(frozen=True)
class Area:
    """One capability group of seed 003: its name in `access=`, its OAuth scope and control-panel name."""

    name: str
    scope: str
    label: str
    covers: str

    def scope_for(self, level: Level) -> str:
        """The OAuth scope a token needs for `level` here (write needs the modify form)."""
        return self.scope if level == WRITE else f"{self.scope}_read_only"


AREAS: dict[str, Area] = {
    area.name: area
    for area in (
        Area("products", "store_v2_products", "Products", "catalog products"),
        Area("variants", "store_v2_products", "Products", "product variants"),
        Area("categories", "store_v2_products", "Products", "category trees and their categories"),
        Area("brands", "store_v2_products", "Products", "brands"),
        Area("price_lists", "store_v2_products", "Products", "price lists and their records"),
        Area("orders", "store_v2_orders", "Orders", "v2 orders and their line items"),
        Area("customers", "store_v2_customers", "Customers", "v3 customers"),
        Area("carts", "store_cart", "Carts", "server-side carts and their line items"),
        Area("checkouts", "store_checkout", "Checkouts", "checkouts and their conversion to orders"),
        Area("webhooks", "store_v2_information", "Information & Settings", "/v3/hooks"),
    )
}


class AccessDeclarationError(ValueError):
    """An `access=` declaration names an unknown area or level."""


@dataclass(frozen=True)
class AccessPolicy:
    """The areas a handler declared, each `read` or `write` (write implies read); nothing else."""

    levels: Mapping[str, Level]

    def allows(self, area: str, level: Level) -> bool:
        """Whether a call of `level` in `area` is within what was declared."""
        declared = self.levels.get(area)
        return declared == WRITE or (declared == READ and level == READ)

    def describe(self) -> str:
        """`orders=write, products=read`, or `no API access`."""
        if not self.levels:
            return "no API access"
        return ", ".join(f"{area}={level}" for area, level in sorted(self.levels.items()))

    def scopes(self) -> list[str]:
        """The OAuth scopes a token needs for this policy: per scope, modify if any area writes."""
        needed: dict[str, Level] = {}
        for name, level in self.levels.items():
            scope = AREAS[name].scope
            if needed.get(scope) != WRITE:
                needed[scope] = level
        return sorted(scope if level == WRITE else f"{scope}_read_only" for scope, level in needed.items())


NO_ACCESS = AccessPolicy({})


def parse_access(declared: Mapping[str, str] | None, owner: str) -> AccessPolicy:
    """Check an `access=` mapping (area -> "read" | "write"); raise AccessDeclarationError naming `owner`."""
    if declared is None:
        return NO_ACCESS
    if not isinstance(declared, Mapping):
        raise AccessDeclarationError(
            f"{owner}: access must be a dict of area -> 'read' or 'write', not {type(declared).__name__}"
        )
    levels: dict[str, Level] = {}
    for area, level in declared.items():
        if area not in AREAS:
            close = difflib.get_close_matches(str(area), AREAS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise AccessDeclarationError(
                f"{owner}: unknown API area {area!r} in access=; {hint}areas: {', '.join(AREAS)}"
            )
        if level not in LEVELS:
            raise AccessDeclarationError(f"{owner}: access[{area!r}] is {level!r}; use 'read' or 'write'")
        levels[area] = READ if level == READ else WRITE
    return AccessPolicy(levels)


__all__ = [
    "AREAS",
    "LEVELS",
    "NO_ACCESS",
    "READ",
    "WRITE",
    "AccessDeclarationError",
    "AccessPolicy",
    "Area",
    "Level",
    "parse_access",
]
