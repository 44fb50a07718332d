"""The HTTP meaning of CONTRACT.md's codes, shared by the HTTP API and the embedded entry point.

The statuses are the old backend's: 400 bad input, 429 a plan limit (or the provider account out of
credit), 502 the provider failed, 504 it ran out of time.
"""

from __future__ import annotations

PLAN_LIMITS = {
    "quota_calls_exceeded": "video_calls",
    "quota_dollars_exceeded": "video_cost",
    "model_not_allowed": "model",
}
"""Refusal codes that are plan limits, and the old backend's `usage_info.limit_type` for each."""

_REFUSALS = {
    "not_found": 404,
    "already_finished": 409,
    "idempotency_conflict": 409,
    **{code: 429 for code in PLAN_LIMITS},
}
_FAILURES = {
    "insufficient_balance": 429,
    "provider_timeout": 504,
    "deadline_exceeded": 504,
    "cancelled": 409,
}
TIMEOUTS = frozenset(code for code, status in _FAILURES.items() if status == 504)


def refusal_status(code: str) -> int:
    """A request refused before any provider call: bad input (400) unless the code says otherwise."""
    return _REFUSALS.get(code, 400)


def failure_status(code: str) -> int:
    """A generation that failed after it was accepted: the provider's fault (502) unless the code says otherwise."""
    return _FAILURES.get(code, 502)
