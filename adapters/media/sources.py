"""Where callers' inputs come from: a local path, an http(s) URL, or bytes already in hand.

A URL is a caller's word, often passed on from someone else's (a user of the host's app): it is fetched only
from a host whose every address is public, at each redirect too, unless the host is one the settings allow
(VIDEOGEN_ALLOWED_INPUT_HOSTS). Otherwise a URL could make the service read what only it can reach: a cloud's
metadata service, a database's port, an admin page on the private network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import httpx

from application.ports import InputUnavailable

CHUNK = 1024 * 1024


class PrivateAddress(InputUnavailable):
    """A URL whose host is not public and not allowed by the settings."""


class MediaSources:
    """Streams an input without holding it whole; every failure is an InputUnavailable naming the source."""

    def __init__(self, timeout_s: float = 60.0, allowed_hosts: Collection[str] = ()) -> None:
        self.timeout_s = timeout_s
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts)

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
            async with httpx.AsyncClient(
                timeout=self.timeout_s, follow_redirects=True, event_hooks={"request": [self._public_hosts_only]}
            ) as client:
                async with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise InputUnavailable(f"{url} answered HTTP {response.status_code}")
                    async for chunk in response.aiter_bytes(CHUNK):
                        yield chunk
        except PrivateAddress as refused:
            raise PrivateAddress(f"{url}: {refused}") from None
        except httpx.HTTPError as error:
            raise InputUnavailable(f"{url} cannot be fetched ({type(error).__name__})") from None

    async def _public_hosts_only(self, request: httpx.Request) -> None:
        # httpx calls it before sending each request, a redirect's too, through a proxy or not. The host's
        # addresses are looked up again when the connection is made, so a name whose DNS answer changes between
        # the two lookups is not covered; an allowed host is trusted by name.
        host = request.url.host.lower()
        if host not in self.allowed_hosts:
            await _check_public(host, request.url.port or (443 if request.url.scheme == "https" else 80))


async def _check_public(host: str, port: int) -> None:
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise httpx.ConnectError(f"{host} cannot be resolved") from None
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global:
            where = host if host == str(ip) else f"{host} ({ip})"
            raise PrivateAddress(
                f"{where} is not a public address; list the host in VIDEOGEN_ALLOWED_INPUT_HOSTS to fetch inputs from it"
            )
