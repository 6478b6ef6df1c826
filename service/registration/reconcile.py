"""Compare declared hooks with the store's and make them match: plan (never writes), then apply."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from service.bigcommerce import StoreApi
from service.registration.declaration import MAX_HOOKS_PER_SCOPE, Declaration, DeclarationError, DeclaredHook

CREATE, UPDATE, REACTIVATE, UNCHANGED, DELETE = "create", "update", "reactivate", "unchanged", "delete"
UNDECLARED, FOREIGN = "undeclared (kept; --prune deletes)", "not ours (untouched)"
WRITES = frozenset({CREATE, UPDATE, REACTIVATE, DELETE})


@dataclass(frozen=True)
class Action:
    """One line of a plan: what happens to one hook, and the fields a write sends."""

    kind: str
    scope: str
    destination: str
    hook_id: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """For tables and --json: header values never appear, only their names."""
        shown = {
            k: (sorted(v) if k == "headers" and isinstance(v, dict) else v) for k, v in self.fields.items()
        }
        return {
            "action": self.kind,
            "scope": self.scope,
            "destination": self.destination,
            "hook_id": self.hook_id,
            "fields": shown,
        }


def plan(declaration: Declaration, existing: list[dict[str, Any]], prune: bool) -> list[Action]:
    """The actions that make `existing` (this API account's hooks) match the declaration."""
    actions = [_for_declared(hook, existing) for hook in declaration.hooks]
    declared = {(hook.scope, hook.destination) for hook in declaration.hooks}
    for hook in existing:
        if (hook["scope"], hook["destination"]) in declared:
            continue
        if not declaration.owns(hook["destination"]):
            actions.append(Action(FOREIGN, hook["scope"], hook["destination"], hook["id"]))
        else:
            actions.append(
                Action(DELETE if prune else UNDECLARED, hook["scope"], hook["destination"], hook["id"])
            )
    _check_scope_limits(actions, existing)
    return actions


def _for_declared(hook: DeclaredHook, existing: list[dict[str, Any]]) -> Action:
    current = next(
        (h for h in existing if h["scope"] == hook.scope and h["destination"] == hook.destination), None
    )
    if current is None:
        return Action(
            CREATE,
            hook.scope,
            hook.destination,
            None,
            {"is_active": hook.active, "headers": hook.headers or None},
        )
    changes: dict[str, Any] = {}
    if (current.get("headers") or {}) != hook.headers:
        changes["headers"] = hook.headers or None
    if bool(current.get("is_active")) != hook.active:
        changes["is_active"] = hook.active
    if not changes:
        return Action(UNCHANGED, hook.scope, hook.destination, current["id"])
    kind = REACTIVATE if changes == {"is_active": True} else UPDATE
    return Action(kind, hook.scope, hook.destination, current["id"], changes)


def _check_scope_limits(actions: list[Action], existing: list[dict[str, Any]]) -> None:
    remaining = Counter(a.scope for a in actions if a.kind != DELETE)
    for scope, count in remaining.items():
        if count > MAX_HOOKS_PER_SCOPE:
            raise DeclarationError(
                f"{scope}: this API account would have {count} hooks for it; BigCommerce allows at most "
                f"{MAX_HOOKS_PER_SCOPE} per scope (delete some, or run with --prune if they are ours)"
            )


def apply(api: StoreApi, actions: list[Action]) -> list[Action]:
    """Carry out the writes of a plan, in order; returns the actions performed."""
    done = []
    for action in actions:
        if action.kind == CREATE:
            created = api.create_hook(
                action.scope, action.destination, bool(action.fields["is_active"]), action.fields["headers"]
            )
            done.append(Action(CREATE, action.scope, action.destination, created["id"], action.fields))
        elif action.kind in (UPDATE, REACTIVATE):
            api.update_hook(int(action.hook_id or 0), **action.fields)
            done.append(action)
        elif action.kind == DELETE:
            api.delete_hook(int(action.hook_id or 0))
            done.append(action)
    return done
