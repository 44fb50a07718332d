from __future__ import annotations

import time

import pytest

from adapters.wavespeed.webhook import InvalidWebhook, signature, verify

SECRET = "whsec_test-secret"
BODY = b'{"id":"abc","status":"completed"}'


def headers(timestamp: int, body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    return {
        "webhook-id": "msg-1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v3,{signature(secret, 'msg-1', str(timestamp), body)}",
    }


def test_a_delivery_signed_with_the_secret_without_its_prefix_verifies_and_gives_its_id() -> None:
    now = int(time.time())
    assert verify(SECRET, headers(now), BODY) == "msg-1"


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body_with_the_raw_secret() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"test-secret", b"msg-1.1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, "msg-1", "1700000000", BODY) == expected


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),
        lambda h, b: ({**h, "webhook-signature": "v3,00"}, b),
        lambda h, b: ({**h, "webhook-id": "msg-2"}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
    ],
    ids=["body changed", "wrong signature", "other id", "unsigned"],
)
def test_a_tampered_or_unsigned_delivery_is_refused(tamper) -> None:  # type: ignore[no-untyped-def]
    changed_headers, changed_body = tamper(headers(int(time.time())), BODY)
    with pytest.raises(InvalidWebhook):
        verify(SECRET, changed_headers, changed_body)


def test_a_delivery_older_than_five_minutes_is_refused_and_one_within_is_accepted() -> None:
    now = 1_800_000_000
    assert verify(SECRET, headers(now - 299), BODY, now=now) == "msg-1"
    with pytest.raises(InvalidWebhook, match="older than 5 minutes"):
        verify(SECRET, headers(now - 301), BODY, now=now)


def test_the_refusal_never_contains_the_secret() -> None:
    with pytest.raises(InvalidWebhook) as refused:
        verify(SECRET, headers(int(time.time())), BODY + b"x")
    assert "test-secret" not in str(refused.value)
