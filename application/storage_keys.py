"""Storage keys: made only from ids and slugs, so that no user id or file name can steer a path."""

from __future__ import annotations

import hashlib
import re
from uuid import UUID, uuid4

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def user_folder(user_id: str) -> str:
    """A readable, collision-free folder name for any user id (`../../etc` -> `_etc-<hash>`)."""
    readable = _UNSAFE.sub("_", user_id).strip("_")[:40] or "user"
    return f"{readable}-{hashlib.sha256(user_id.encode()).hexdigest()[:10]}"


def input_key(generation_id: UUID, role: str) -> str:
    """A fresh key per upload: racing requests with one idempotency key never overwrite each other's input."""
    return f"inputs/{generation_id}/{_UNSAFE.sub('_', role)}-{uuid4().hex[:12]}"


def video_key(user_id: str, operation: str, generation_id: UUID) -> str:
    return f"videos/{user_folder(user_id)}/{_UNSAFE.sub('_', operation)}-{generation_id}.mp4"
