"""Installed stores (app mode) and their credentials, kept in Redis with each token encrypted at rest.

One record per store that installed the app (`bcwebhooks:store:{hash}`, a hash), the set of stores installed
right now (`bcwebhooks:stores:installed`, which the receiver checks inside its persist script), the set of
every store ever recorded (for `stores list`) and each store's users (multi-user apps).

Tokens are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under the keys in
BCWEBHOOKS_ENCRYPTION_KEYS: the first key encrypts, every key decrypts (MultiFernet), so keys rotate by
putting a new key first; `rotate_keys` (`bcwebhooks stores rotate-keys`) re-encrypts every token under it,
and a token read under an older key is re-encrypted on the spot. Tokens never leave this module in a log,
a record or a repr: only `token()` returns one.

The edge and the workers both use it (synchronously; the edge calls it from a thread, OAuth callbacks are
rare). Workers import service, never the reverse.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from service.events import INSTALLED_STORES_KEY
from service.settings import ConfigError, Settings

INSTALLED_KEY = INSTALLED_STORES_KEY  # set: hashes of stores that have the app installed now
KNOWN_KEY = "bcwebhooks:stores:known"  # set: every store hash recorded (installed or not)
STORE_PREFIX = "bcwebhooks:store:"  # hash per store: token (encrypted), scope, times, owner, hooks
TOKEN_FIELD = "token"  # noqa: S105  # a field name, not a secret

# KEYS: store record. ARGV: old ciphertext, new ciphertext. Re-encrypts only if nobody changed the token.
REENCRYPT_SCRIPT = """
if redis.call("hget", KEYS[1], "token") == ARGV[1] then
    redis.call("hset", KEYS[1], "token", ARGV[2])
    return 1
end
return 0
"""


class StoreError(Exception):
    """A store's credentials cannot be used; the message says why and what to do."""


class TokenCipher:
    """Encrypts tokens under the first key and decrypts under any (MultiFernet).

    Parameters:
      keys: Fernet keys (url-safe base64 of 32 bytes), newest first.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise StoreError("no encryption key: set BCWEBHOOKS_ENCRYPTION_KEYS")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, token: str) -> bytes:
        """The token encrypted under the newest key."""
        return self._all.encrypt(token.encode())

    def decrypt(self, blob: bytes) -> str:
        """The token; StoreError when no configured key opens it."""
        try:
            return self._all.decrypt(blob).decode()
        except InvalidToken:
            raise StoreError(
                "a stored token opens with none of BCWEBHOOKS_ENCRYPTION_KEYS: keep the old key in the "
                "list until `bcwebhooks stores rotate-keys` has run"
            ) from None

    def is_current(self, blob: bytes) -> bool:
        """Whether the blob is encrypted under the newest key."""
        try:
            self._primary.decrypt(blob)
        except InvalidToken:
            return False
        return True

    def rotate(self, blob: bytes) -> bytes:
        """The same token encrypted under the newest key."""
        try:
            return self._all.rotate(blob)
        except InvalidToken:
            raise StoreError("a stored token opens with none of BCWEBHOOKS_ENCRYPTION_KEYS") from None


def new_key() -> str:
    """A fresh Fernet key for BCWEBHOOKS_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


@dataclass(frozen=True)
class StoreRecord:
    """What is known about one store; never its token."""

    store_hash: str
    installed: bool
    scope: str = ""
    installed_at_ms: int | None = None
    uninstalled_at_ms: int | None = None
    owner: dict[str, Any] = field(default_factory=dict)
    users: tuple[int, ...] = ()
    hooks: dict[str, Any] = field(default_factory=dict)
    has_token: bool = False

    def public(self) -> dict[str, Any]:
        """A JSON-ready view (for `stores show --json`)."""
        return {
            "store_hash": self.store_hash,
            "installed": self.installed,
            "scope": self.scope,
            "installed_at_ms": self.installed_at_ms,
            "uninstalled_at_ms": self.uninstalled_at_ms,
            "owner": self.owner,
            "users": list(self.users),
            "hooks": self.hooks,
            "has_token": self.has_token,
        }


def store_key(store_hash: str) -> str:
    """The Redis hash of one store's record."""
    return STORE_PREFIX + store_hash


def users_key(store_hash: str) -> str:
    """The Redis set of a store's user ids."""
    return f"{STORE_PREFIX}{store_hash}:users"


class Stores:
    """The installed stores and their encrypted tokens.

    Parameters:
      client: a synchronous Redis client (the broker's server).
      cipher: the token cipher built from BCWEBHOOKS_ENCRYPTION_KEYS.
    """

    def __init__(self, client: redis.Redis, cipher: TokenCipher) -> None:
        self.client = client
        self.cipher = cipher
        self._swap: Any = client.register_script(REENCRYPT_SCRIPT)

    def record_install(
        self, store_hash: str, token: str, scope: str, user: dict[str, Any], owner: dict[str, Any]
    ) -> int:
        """Record (or overwrite) a store's token after the auth callback; returns the install time (ms).

        A new token invalidates the previous one (BigCommerce), so it always replaces it.
        """
        installed_at = time.time_ns() // 1_000_000
        pipeline = self.client.pipeline()
        pipeline.hset(
            store_key(store_hash),
            mapping={
                TOKEN_FIELD: self.cipher.encrypt(token),
                "scope": scope,
                "installed_at_ms": installed_at,
                "owner": json.dumps(_person(owner)),
                "hooks": json.dumps({"state": "pending", "at_ms": installed_at}),
            },
        )
        pipeline.hdel(store_key(store_hash), "uninstalled_at_ms")
        pipeline.sadd(INSTALLED_KEY, store_hash)
        pipeline.sadd(KNOWN_KEY, store_hash)
        if isinstance(user.get("id"), int):
            pipeline.sadd(users_key(store_hash), user["id"])
        pipeline.execute()
        return installed_at

    def uninstall(self, store_hash: str) -> bool:
        """Forget the store's token and mark it uninstalled, in one step; False when it was not installed."""
        pipeline = self.client.pipeline()
        pipeline.srem(INSTALLED_KEY, store_hash)
        pipeline.hdel(store_key(store_hash), TOKEN_FIELD)
        pipeline.exists(store_key(store_hash))
        removed, _, exists = pipeline.execute()
        if exists:
            self.client.hset(store_key(store_hash), "uninstalled_at_ms", time.time_ns() // 1_000_000)
        return bool(removed)

    def forget(self, store_hash: str) -> bool:
        """Uninstall and delete everything recorded about the store; False when nothing was recorded."""
        pipeline = self.client.pipeline()
        pipeline.srem(INSTALLED_KEY, store_hash)
        pipeline.srem(KNOWN_KEY, store_hash)
        pipeline.delete(store_key(store_hash), users_key(store_hash))
        _, known, deleted = pipeline.execute()
        return bool(known or deleted)

    def is_installed(self, store_hash: str) -> bool:
        """Whether the app is installed on the store now."""
        return bool(self.client.sismember(INSTALLED_KEY, store_hash))

    def installed(self) -> list[str]:
        """The hashes of the stores that have the app installed, sorted."""
        members: set[bytes] = self.client.smembers(INSTALLED_KEY)  # type: ignore[assignment]
        return sorted(member.decode() for member in members)

    def known(self) -> list[str]:
        """Every recorded store hash, sorted."""
        members: set[bytes] = self.client.smembers(KNOWN_KEY)  # type: ignore[assignment]
        return sorted(member.decode() for member in members)

    def get(self, store_hash: str) -> StoreRecord | None:
        """The store's record, or None when nothing is recorded."""
        pipeline = self.client.pipeline(transaction=False)
        pipeline.hgetall(store_key(store_hash))
        pipeline.sismember(INSTALLED_KEY, store_hash)
        pipeline.smembers(users_key(store_hash))
        raw, installed, users = pipeline.execute()
        if not raw:
            return None
        fields = {key.decode(): value for key, value in raw.items()}
        return StoreRecord(
            store_hash=store_hash,
            installed=bool(installed),
            scope=fields.get("scope", b"").decode(),
            installed_at_ms=_int_or_none(fields.get("installed_at_ms")),
            uninstalled_at_ms=_int_or_none(fields.get("uninstalled_at_ms")),
            owner=json.loads(fields.get("owner", b"{}")),
            users=tuple(sorted(int(user) for user in users)),
            hooks=json.loads(fields.get("hooks", b"{}")),
            has_token=TOKEN_FIELD in fields,
        )

    def encrypted_token(self, store_hash: str) -> bytes | None:
        """The stored ciphertext of the store's token (None: not installed); one Redis read."""
        blob: bytes | None = self.client.hget(store_key(store_hash), TOKEN_FIELD)  # type: ignore[assignment]
        return blob

    def token(self, store_hash: str) -> str | None:
        """The store's access token (None: not installed), re-encrypted under the newest key if need be."""
        blob = self.encrypted_token(store_hash)
        if blob is None:
            return None
        return self.open(store_hash, blob)

    def open(self, store_hash: str, blob: bytes) -> str:
        """Decrypt a ciphertext read from the store's record; one under an older key is rotated in place."""
        token = self.cipher.decrypt(blob)
        if not self.cipher.is_current(blob):
            self._swap(keys=[store_key(store_hash)], args=[blob, self.cipher.encrypt(token)])
        return token

    def rotate_keys(self) -> int:
        """Re-encrypt every stored token under the newest key; returns how many were re-encrypted."""
        rotated = 0
        for store_hash in self.known():
            blob = self.encrypted_token(store_hash)
            if blob is None or self.cipher.is_current(blob):
                continue
            rotated += int(self._swap(keys=[store_key(store_hash)], args=[blob, self.cipher.rotate(blob)]))
        return rotated

    def add_user(self, store_hash: str, user_id: int) -> None:
        """Provision a user who loaded the app (multi-user apps)."""
        self.client.sadd(users_key(store_hash), user_id)

    def remove_user(self, store_hash: str, user_id: int) -> bool:
        """Remove a user the store owner removed; False when the user was not known."""
        return bool(self.client.srem(users_key(store_hash), user_id))

    def record_hooks(self, store_hash: str, outcome: dict[str, Any]) -> None:
        """Record the outcome of applying hooks.toml to the store (shown by `stores show`)."""
        if self.client.exists(store_key(store_hash)):
            self.client.hset(store_key(store_hash), "hooks", json.dumps(outcome))


def stores_from_settings(settings: Settings, client: redis.Redis) -> Stores:
    """The stores of an app-mode configuration, on `client` (ConfigError outside app mode)."""
    if not settings.app_mode:
        raise ConfigError("not in app mode: set BCWEBHOOKS_ENCRYPTION_KEYS (see the README's App mode)")
    return Stores(client, TokenCipher([key.get_secret_value() for key in settings.encryption_keys]))


def _person(value: dict[str, Any]) -> dict[str, Any]:
    return {key: value[key] for key in ("id", "email") if key in value}


def _int_or_none(value: bytes | None) -> int | None:
    return int(value) if value is not None else None
