"""Signature checks, cross-checked against the reference `standardwebhooks` library."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from service.settings import AuthMode
from service.signatures import (
    AuthenticationError,
    Authenticator,
    HeaderSecretVerifier,
    SignatureVerifier,
    replay_safe_age,
    sign,
    signed_headers,
    signing_key,
)

SECRET = "abc123clientsecret"
BODY = b'{"scope":"store/order/created","data":{"type":"order","id":250}}'
NOW = 1_700_000_000


def reference_webhook(secret: str) -> Webhook:
    """The verifier BigCommerce's own sample builds: base64 of the client secret's UTF-8 bytes."""
    return Webhook(base64.b64encode(secret.encode()).decode())


def verifier(*secrets: str, tolerance: int = 300) -> SignatureVerifier:
    return SignatureVerifier(keys=tuple(signing_key(s) for s in secrets), tolerance_seconds=tolerance)


def test_signature_made_by_the_reference_library_verifies() -> None:
    timestamp = datetime.fromtimestamp(NOW, tz=UTC)
    signature = reference_webhook(SECRET).sign("msg_1", timestamp, BODY.decode())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": signature}

    assert verifier(SECRET).verify(BODY, headers, now=NOW) == "msg_1"


def test_our_signature_verifies_with_the_reference_library() -> None:
    now = int(time.time())
    headers = signed_headers(SECRET, BODY, "msg_2", now)

    assert reference_webhook(SECRET).verify(BODY, headers) == {
        "scope": "store/order/created",
        "data": {"type": "order", "id": 250},
    }


def test_whsec_secret_is_decoded_as_standard_webhooks_says() -> None:
    raw_key = b"\x01\x02binary-key"
    whsec = "whsec_" + base64.b64encode(raw_key).decode()

    assert signing_key(whsec) == raw_key
    signature = Webhook(whsec).sign("m", datetime.fromtimestamp(NOW, tz=UTC), BODY.decode())
    headers = {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    assert verifier(whsec).verify(BODY, headers, now=NOW) == "m"


def test_invalid_whsec_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="base64"):
        signing_key("whsec_***")


@pytest.mark.parametrize(
    ("offset", "code"),
    [(-301, "timestamp_too_old"), (301, "timestamp_too_new")],
)
def test_timestamp_outside_tolerance_is_refused(offset: int, code: str) -> None:
    headers = signed_headers(SECRET, BODY, "m", NOW + offset)

    with pytest.raises(AuthenticationError) as caught:
        verifier(SECRET).verify(BODY, headers, now=NOW)
    assert caught.value.code == code


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_at_the_tolerance_edges_is_accepted(offset: int) -> None:
    headers = signed_headers(SECRET, BODY, "m", NOW + offset)

    assert verifier(SECRET).verify(BODY, headers, now=NOW) == "m"


@pytest.mark.parametrize("timestamp", ["", "-5", "1e9", "\uff11\uff12\uff13", "1234567890123", " 1700000000"])
def test_malformed_timestamp_is_refused(timestamp: str) -> None:
    headers = {**signed_headers(SECRET, BODY, "m", NOW), "webhook-timestamp": timestamp}

    with pytest.raises(AuthenticationError) as caught:
        verifier(SECRET).verify(BODY, headers, now=NOW)
    assert caught.value.code in {"invalid_timestamp", "missing_signature_headers"}


def test_signature_over_a_different_timestamp_does_not_verify() -> None:
    headers = signed_headers(SECRET, BODY, "m", NOW)
    headers["webhook-timestamp"] = str(NOW + 1)

    with pytest.raises(AuthenticationError) as caught:
        verifier(SECRET).verify(BODY, headers, now=NOW)
    assert caught.value.code == "signature_mismatch"


def test_any_accepted_key_may_have_signed() -> None:
    headers = signed_headers("old-secret", BODY, "m", NOW)

    assert verifier(SECRET, "old-secret").verify(BODY, headers, now=NOW) == "m"
    with pytest.raises(AuthenticationError):
        verifier(SECRET).verify(BODY, headers, now=NOW)


def test_sign_matches_a_known_vector() -> None:
    # HMAC-SHA256("key", "id.1.body") computed independently with openssl:
    # printf 'id.1.body' | openssl dgst -sha256 -hmac key -binary | base64
    assert sign(b"key", "id", 1, b"body") == "v1,sYA3/+8KvyXbe4KAKZy0QWKFoLKSHDq/QWu0xQZyY7s="


def test_header_secret_is_compared_exactly() -> None:
    check = HeaderSecretVerifier("X-Auth", b"s3cret")

    check.verify({"x-auth": "s3cret"})
    for wrong in ({"x-auth": "s3cret "}, {"x-auth": "S3CRET"}, {"x-auth": ""}):
        with pytest.raises(AuthenticationError):
            check.verify(wrong)


def test_authenticator_in_signature_mode_ignores_the_header_secret() -> None:
    authenticator = Authenticator(AuthMode.SIGNATURE, verifier(SECRET), HeaderSecretVerifier("X-A", b"h"))

    with pytest.raises(AuthenticationError):
        authenticator.authenticate(BODY, {"x-a": "h"}, now=NOW)


def test_an_old_timestamp_is_accepted_up_to_the_max_age_and_no_further() -> None:
    checks = SignatureVerifier(keys=(signing_key(SECRET),), tolerance_seconds=300, max_age_seconds=3600)

    assert checks.verify(BODY, signed_headers(SECRET, BODY, "m", NOW - 3600), now=NOW) == "m"
    with pytest.raises(AuthenticationError) as too_old:
        checks.verify(BODY, signed_headers(SECRET, BODY, "m", NOW - 3601), now=NOW)
    with pytest.raises(AuthenticationError) as too_new:
        checks.verify(BODY, signed_headers(SECRET, BODY, "m", NOW + 301), now=NOW)
    assert (too_old.value.code, too_new.value.code) == ("timestamp_too_old", "timestamp_too_new")


def test_the_replay_safe_age_leaves_the_tolerance_inside_the_dedup_window() -> None:
    assert replay_safe_age(72 * 3600, 300) == 72 * 3600 - 300
