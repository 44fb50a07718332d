"""Video storage in a folder (local or one that several machines mount): atomic, hashed, confined."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

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
        """Every file operation (create, write, hash, fsync, rename) runs off the event loop, one thread hop per
        chunk: a chunk is written when the next arrives, and the last one together with the fsync and rename."""
        target = self.path(key)
        part = _PartFile(target, target.with_name(f".{target.name}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex[:12]}.part"))
        size = 0
        pending: bytes | None = None
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise InputTooBig(max_bytes)
                if pending is not None:
                    await asyncio.to_thread(part.write, pending)
                pending = chunk
            sha256 = await asyncio.to_thread(part.finish, pending)
        except BaseException:
            part.discard()
            raise
        return StoredObject(key=key, sha256=sha256, bytes=size, location=str(target))

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


class _PartFile:
    """A put's hidden temp file, created on its first write and renamed to the target once whole and on disk.

    Written from worker threads; a put that stops (an error, a cancelled caller) discards it, after any write still
    running in a thread, and nothing is written to it after that.
    """

    def __init__(self, target: Path, temp: Path) -> None:
        self.target = target
        self.temp = temp
        self.digest = hashlib.sha256()
        self.file: BinaryIO | None = None
        self.discarded = False
        self._lock = threading.Lock()

    def write(self, chunk: bytes) -> None:
        with self._lock:
            self._write(chunk)

    def finish(self, last: bytes | None) -> str:
        with self._lock:
            self._write(last or b"")
            assert self.file is not None
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.temp, self.target)
            return self.digest.hexdigest()

    def discard(self) -> None:
        with self._lock:
            self.discarded = True
            if self.file is not None:
                self.file.close()
            self.temp.unlink(missing_ok=True)

    def _write(self, chunk: bytes) -> None:
        if self.discarded:
            raise RuntimeError("the put was abandoned")
        if self.file is None:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.temp, "wb")  # noqa: SIM115 - closed by finish or discard
        self.digest.update(chunk)
        self.file.write(chunk)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
