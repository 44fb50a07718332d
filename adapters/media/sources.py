"""Where callers' inputs come from: a local path, an http(s) URL, or bytes already in hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from application.ports import InputUnavailable

CHUNK = 1024 * 1024


class MediaSources:
    """Streams an input without holding it whole; every failure is an InputUnavailable naming the source."""

    def __init__(self, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s

    async def open(self, source: str | bytes) -> AsyncIterator[bytes]:
        if isinstance(source, bytes):
            for start in range(0, len(source), CHUNK):
                yield source[start : start + CHUNK]
            return
        if source.startswith(("https://", "http://")):
            async for chunk in self._download(source):
                yield chunk
            return
        path = Path(source).expanduser()
        if not path.is_file():
            raise InputUnavailable(f"no such file: {source}")
        with open(path, "rb") as file:
            while chunk := await asyncio.to_thread(file.read, CHUNK):
                yield chunk

    async def _download(self, url: str) -> AsyncIterator[bytes]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=True) as client:
                async with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise InputUnavailable(f"{url} answered HTTP {response.status_code}")
                    async for chunk in response.aiter_bytes(CHUNK):
                        yield chunk
        except httpx.HTTPError as error:
            raise InputUnavailable(f"{url} cannot be fetched ({type(error).__name__})") from None
