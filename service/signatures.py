"""Authenticity checks for callbacks: Standard Webhooks signatures and the custom header secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from service.settings import AuthMode, Settings

STANDARD_WEBHOOKS_PREFIX = "whsec_"
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

_Verifier = TypeVar("_Verifier")


class AuthenticationError(Exception):
    """A callback failed an authenticity check; `code` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def signing_key(secret: str) -> bytes:
    """The HMAC key for a secret.

    BigCommerce's sample hands Standard Webhooks base64(client_secret), so the key is the secret's own
    bytes. A secret written in Standard Webhooks form (`whsec_<base64>`) is decoded the way that spec says.
    """
    if secret.startswith(STANDARD_WEBHOOKS_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(STANDARD_WEBHOOKS_PREFIX), validate=True)
        except binascii.Error:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from None
    return secret.encode()


def signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """What a Standard Webhooks signature covers: `{webhook_id}.{timestamp}.{body}`."""
    return f"{webhook_id}.{timestamp}.".encode() + body


def digest(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """The raw HMAC-SHA256 of the signed content."""
    return hmac.digest(key, signed_content(webhook_id, timestamp, body), hashlib.sha256)


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one callback, as the sender computes it."""
    return "v1," + base64.b64encode(digest(key, webhook_id, timestamp, body)).decode()


@dataclass(frozen=True)
class SignatureVerifier:
    """Verifies `webhook-id` / `webhook-timestamp` / `webhook-signature` against any accepted key.

    A timestamp older than the tolerance is accepted up to `max_age_seconds`: BigCommerce does not say
    whether a retry carries a fresh timestamp, and refusing an old one would lose the event after 48 h of
    retries. That is safe because the signature covers the `webhook-id` and the receiver drops an id it has
    seen for the dedup window: with `max_age_seconds = dedup window - tolerance`, a first acceptance (at
    the earliest `tolerance` before the timestamp) marks the id for longer than any replay stays acceptable.

    Parameters:
      keys: HMAC keys, the current secret first, then secrets still accepted during a rotation.
      tolerance_seconds: how far into the future the timestamp may be (clock skew).
      max_age_seconds: how far into the past it may be; None means the tolerance (Standard Webhooks' rule).
    """

    keys: tuple[bytes, ...]
    tolerance_seconds: int
    max_age_seconds: int | None = None

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> str:
        """Return the webhook id when one signature matches; raise AuthenticationError otherwise."""
        webhook_id = headers.get("webhook-id", "")
        timestamp_text = headers.get("webhook-timestamp", "")
        signature_header = headers.get("webhook-signature", "")
        if not (webhook_id and timestamp_text and signature_header):
            raise AuthenticationError(
                "missing_signature_headers",
                "webhook-id, webhook-timestamp and webhook-signature are required",
            )
        timestamp = self._checked_timestamp(timestamp_text, now)
        candidates = _v1_signatures(signature_header)
        if not candidates:
            raise AuthenticationError("malformed_signature", "webhook-signature has no v1,<base64> entry")
        content = signed_content(webhook_id, timestamp, body)  # once, whatever the number of keys
        for key in self.keys:
            expected = hmac.digest(key, content, hashlib.sha256)
            for candidate in candidates:
                if hmac.compare_digest(expected, candidate):
                    return webhook_id
        raise AuthenticationError("signature_mismatch", "no signature matches an accepted secret")

    def _checked_timestamp(self, text: str, now: float) -> int:
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise AuthenticationError("invalid_timestamp", "webhook-timestamp must be Unix seconds")
        timestamp = int(text)
        max_age = self.tolerance_seconds if self.max_age_seconds is None else self.max_age_seconds
        if timestamp < now - max_age:
            raise AuthenticationError(
                "timestamp_too_old", "webhook-timestamp is older than the deduplication window allows"
            )
        if timestamp > now + self.tolerance_seconds:
            raise AuthenticationError("timestamp_too_new", "webhook-timestamp is in the future")
        return timestamp


def replay_safe_age(dedup_window_seconds: int, tolerance_seconds: int) -> int:
    """The oldest signed timestamp whose replays the dedup window still covers (see SignatureVerifier)."""
    return dedup_window_seconds - tolerance_seconds


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded `v1,<base64>` entries of a webhook-signature header.

    Other versions and bad base64 are skipped; headers are Latin-1 text, so an entry may hold characters
    outside ASCII, which base64 refuses with a plain ValueError.
    """
    signatures = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version == "v1" and encoded:
            try:
                signatures.append(binascii.a2b_base64(encoded, strict_mode=True))
            except ValueError:  # binascii.Error, or a character outside ASCII
                continue
    return signatures


@dataclass(frozen=True)
class HeaderSecretVerifier:
    """Compares the hook's registered custom header with the configured secret in constant time."""

    header_name: str
    secret: bytes

    def verify(self, headers: Mapping[str, str]) -> None:
        """Raise AuthenticationError unless the header carries the secret."""
        provided = headers.get(self.header_name.lower())
        if provided is None:
            raise AuthenticationError("missing_secret_header", f"{self.header_name} header is required")
        if not hmac.compare_digest(provided.encode("utf-8", "surrogateescape"), self.secret):
            raise AuthenticationError("secret_header_mismatch", f"{self.header_name} does not match")


@dataclass(frozen=True)
class Authenticator:
    """Applies the configured combination of checks; returns the webhook id when a signature gave one."""

    mode: AuthMode
    signature: SignatureVerifier | None
    header: HeaderSecretVerifier | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        """Build the checks the settings ask for."""
        signature = None
        if settings.signing_secrets:
            keys = tuple(signing_key(secret) for secret in settings.signing_secrets)
            tolerance = settings.signature_tolerance_seconds
            signature = SignatureVerifier(
                keys=keys,
                tolerance_seconds=tolerance,
                max_age_seconds=replay_safe_age(settings.dedup_window_seconds, tolerance),
            )
        header = None
        if settings.header_secret is not None:
            header = HeaderSecretVerifier(
                settings.header_name, settings.header_secret.get_secret_value().encode()
            )
        return cls(mode=settings.effective_auth_mode, signature=signature, header=header)

    @property
    def header_names(self) -> frozenset[str]:
        """The request headers the checks read (lowercase)."""
        names = set(SIGNATURE_HEADERS)
        if self.header is not None:
            names.add(self.header.header_name.lower())
        return frozenset(names)

    def authenticate(self, body: bytes, headers: Mapping[str, str], now: float) -> str | None:
        """Raise AuthenticationError unless the callback passes; headers must have lowercase names."""
        if self.mode is AuthMode.EITHER:
            return self._either(body, headers, now)
        webhook_id = None
        if self.mode in (AuthMode.SIGNATURE, AuthMode.BOTH):
            webhook_id = self._require(self.signature).verify(body, headers, now)
        if self.mode in (AuthMode.HEADER, AuthMode.BOTH):
            self._require(self.header).verify(headers)
        return webhook_id or headers.get("webhook-id") or None

    def _either(self, body: bytes, headers: Mapping[str, str], now: float) -> str | None:
        try:
            return self._require(self.signature).verify(body, headers, now)
        except AuthenticationError as signature_error:
            try:
                self._require(self.header).verify(headers)
            except AuthenticationError:
                raise signature_error from None
        return headers.get("webhook-id") or None

    @staticmethod
    def _require(verifier: _Verifier | None) -> _Verifier:
        if verifier is None:
            raise RuntimeError("settings validation guarantees the verifier for the configured mode")
        return verifier


def signed_headers(secret: str, body: bytes, webhook_id: str, timestamp: int) -> dict[str, str]:
    """The Standard Webhooks headers BigCommerce sends with `body`, signed with `secret`."""
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(signing_key(secret), webhook_id, timestamp, body),
    }
