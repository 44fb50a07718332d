"""WaveSpeed's webhook deliveries: checked, remembered, and turned into an immediate step of the generation.

The delivery is only a hint that the task ended: the step itself polls the task (its answer is the one
that counts), so a forged or replayed body can make us look sooner, never decide anything. WaveSpeed
retries deliveries; a `webhook-id` seen before is answered at once without another step, and a step
twice would be harmless anyway (each step starts from the stored events).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from domain.catalogue import WAVESPEED
from domain.errors import InvalidValue
from adapters.history.projection import SqlHistoryView
from adapters.wavespeed.webhook import verify

REMEMBERED_IDS = 10_000


class WebhooksOff(Exception):
    """No WAVESPEED_WEBHOOK_SECRET is set, so no delivery can be trusted."""


@dataclass(frozen=True)
class Delivery:
    """What became of one delivery: `accepted` (its generation is stepped now), `duplicate` or `unknown_task`."""

    outcome: str
    webhook_id: str
    task_id: str | None = None
    generation_id: UUID | None = None


class WaveSpeedWebhooks:
    """Verifies a delivery's signature and finds the generation that owns its task."""

    def __init__(self, secret: str | None, history: SqlHistoryView) -> None:
        self.secret = secret
        self.history = history
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()  # deliveries are received on worker threads

    def receive(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        """Raises WebhooksOff; InvalidWebhook for a bad signature or a stale delivery; InvalidValue for a body
        that is no prediction."""
        if not self.secret:
            raise WebhooksOff("webhooks are off here: WAVESPEED_WEBHOOK_SECRET is not set")
        webhook_id = verify(self.secret, headers, body)
        with self._seen_lock:
            if webhook_id in self._seen:
                return Delivery("duplicate", webhook_id)
        task_id = _task_id(body)
        generation_id = self.history.generation_of_task(WAVESPEED, task_id)
        self._remember(webhook_id)
        if generation_id is None:
            return Delivery("unknown_task", webhook_id, task_id)
        return Delivery("accepted", webhook_id, task_id, generation_id)

    def _remember(self, webhook_id: str) -> None:
        with self._seen_lock:
            self._seen[webhook_id] = None
            while len(self._seen) > REMEMBERED_IDS:
                self._seen.popitem(last=False)


def _task_id(body: bytes) -> str:
    try:
        prediction = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidValue("the delivery's body is not JSON", field="body") from None
    if isinstance(prediction, dict) and isinstance(prediction.get("data"), dict):
        prediction = prediction["data"]  # tolerate the API's envelope, though deliveries come without one
    task_id = prediction.get("id") if isinstance(prediction, dict) else None
    if not isinstance(task_id, str) or not task_id:
        raise InvalidValue("the delivery's body carries no prediction id", field="id")
    return task_id
