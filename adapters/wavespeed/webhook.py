"""Verifies WaveSpeed webhook deliveries: HMAC-SHA256 over "{id}.{timestamp}.{body}", 5-minute tolerance."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE_S = 300


class InvalidWebhook(Exception):
    """A delivery that is unsigned, wrongly signed or too old; its reason never contains the secret."""


def signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    key = secret.removeprefix("whsec_").encode()
    message = f"{webhook_id}.{timestamp}.".encode() + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> str:
    """Returns the delivery's webhook-id when the signature holds, else raises InvalidWebhook."""
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signed = lowered.get("webhook-signature")
    if not webhook_id or not timestamp or not signed:
        raise InvalidWebhook("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise InvalidWebhook("webhook-timestamp is not a Unix time") from None
    if abs((time.time() if now is None else now) - sent_at) > TOLERANCE_S:
        raise InvalidWebhook("the delivery is older than 5 minutes (or from the future)")
    expected = signature(secret, webhook_id, timestamp, body)
    offered = [part.partition(",")[2] for part in signed.split() if part.startswith("v3,")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise InvalidWebhook("the signature does not match")
    return webhook_id
