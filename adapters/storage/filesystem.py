"""Video storage in a folder (local or one that several machines mount): atomic, hashed, confined."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from application.ports import InputTooBig, StoredObject

CHUNK = 1024 * 1024
_HOST = socket.gethostname().replace(".", "_")
_PART = re.compile(r"^\..+\.(?P<host>[^.]+)\.(?P<pid>\d+)\.[0-9a-f]{12}\.part$")
FOREIGN_PART_AGE_S = 24 * 3600
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
        temp = target.with_name(f".{target.name}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex[:12]}.part")
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

    def sweep_partial(self) -> int:
        """Removes temp files left by writers that died (kill -9 leaves them); returns how many."""
        removed = 0
        for path in self.root.rglob(".*.part"):
            match = _PART.match(path.name)
            if match is None:
                continue
            if match["host"] == _HOST:
                abandoned = not _alive(int(match["pid"]))
            else:
                abandoned = time.time() - path.stat().st_mtime > FOREIGN_PART_AGE_S
            if abandoned:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def locate(self, key: str) -> str:
        return str(self.path(key))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
