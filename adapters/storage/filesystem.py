"""Video storage in a folder (local or one that several machines mount): atomic, hashed, confined."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from application.ports import InputTooBig, StoredObject

CHUNK = 1024 * 1024
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$")


class UnsafeKey(ValueError):
    """A key that could name a file outside the storage root."""


class FilesystemStorage:
    """Objects are files under `root`; a put writes a hidden temp file and renames it, so a key holds
    either the whole object or nothing, even when the process dies mid-write."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        if not _SAFE_KEY.match(key) or ".." in key.split("/"):
            raise UnsafeKey(f"unsafe storage key {key!r}")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise UnsafeKey(f"storage key {key!r} leaves the storage root")
        return path

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int | None = None) -> StoredObject:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            with open(temp, "wb") as file:
                async for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise InputTooBig(max_bytes)
                    digest.update(chunk)
                    await asyncio.to_thread(file.write, chunk)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        return StoredObject(key=key, sha256=digest.hexdigest(), bytes=size, location=str(target))

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self.path(key)
        with open(path, "rb") as file:
            while chunk := await asyncio.to_thread(file.read, CHUNK):
                yield chunk

    def stat(self, key: str) -> StoredObject | None:
        path = self.path(key)
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as file:
            while chunk := file.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return StoredObject(key=key, sha256=digest.hexdigest(), bytes=size, location=str(path))

    def locate(self, key: str) -> str:
        return str(self.path(key))
