"""Where callers' inputs come from: a local path, an http(s) URL, or bytes already in hand.

A URL is a caller's word, often passed on from someone else's (a user of the host's app): it is fetched only
from a host whose every address is public, at each redirect too, unless the host is one the settings allow
(VIDEOGEN_ALLOWED_INPUT_HOSTS). Otherwise a URL could make the service read what only it can reach: a cloud's
metadata service, a database's port, an admin page on the private network. The connection goes to the very
address that was checked, so a name whose DNS answer changes after the check (DNS rebinding) reaches nothing
else. Inputs are fetched directly, never through a proxy from the environment (HTTP_PROXY, HTTPS_PROXY): a proxy
looks the name up itself, where no check of ours holds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from pathlib import Path
from typing import Any

import httpcore
import httpx

from application.ports import InputUnavailable

CHUNK = 1024 * 1024


class PrivateAddress(InputUnavailable):
    """A URL whose host is not public and not allowed by the settings."""


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(ip: IPAddress) -> bool:
    return ip.is_global


class MediaSources:
    """Streams an input without holding it whole; every failure is an InputUnavailable naming the source."""

    def __init__(
        self,
        timeout_s: float = 60.0,
        allowed_hosts: Collection[str] = (),
        *,
        public: Callable[[IPAddress], bool] = is_public,
    ) -> None:
        self.timeout_s = timeout_s
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts)
        self.public = public

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
        if path.is_dir():
            raise InputUnavailable(f"{source} is a folder, not a file")
        if not path.is_file():
            raise InputUnavailable(f"no such file: {source}" if source else "an empty path names no file")
        with open(path, "rb") as file:
            while chunk := await asyncio.to_thread(file.read, CHUNK):
                yield chunk

    async def _download(self, url: str) -> AsyncIterator[bytes]:
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout_s,
                follow_redirects=True,
                transport=_pinned(PublicAddressesOnly(self.allowed_hosts, self.public)),
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


class PublicAddressesOnly(httpcore.AsyncNetworkBackend):
    """Connects only to an address that was checked: the name is looked up once, every address it has must be
    public (or the host allowed by name), and the connection is made to one of those very addresses. TLS still
    checks the certificate against the name."""

    def __init__(self, allowed_hosts: frozenset[str], public: Callable[[IPAddress], bool]) -> None:
        self.allowed_hosts = allowed_hosts
        self.public = public
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if host.lower() in self.allowed_hosts:
            addresses = [host]
        else:
            addresses = await _public_addresses(host, port, self.public)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("inputs are not fetched over a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _pinned(backend: httpcore.AsyncNetworkBackend) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport()
    # httpx takes no network backend; its transport's pool (httpx 0.28: `_pool`) is made again with ours, and
    # tests/integration/test_media_sources.py fails if that stops taking effect.
    transport._pool = httpcore.AsyncConnectionPool(ssl_context=httpx.create_ssl_context(), network_backend=backend)
    return transport


async def _public_addresses(host: str, port: int, public: Callable[[IPAddress], bool]) -> list[str]:
    """The host's addresses, in the resolver's order; PrivateAddress unless every one of them is public."""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise httpx.ConnectError(f"{host} cannot be resolved") from None
    addresses: list[str] = []
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not public(ip):
            where = host if host == str(ip) else f"{host} ({ip})"
            raise PrivateAddress(
                f"{where} is not a public address; list the host in VIDEOGEN_ALLOWED_INPUT_HOSTS to fetch inputs from it"
            )
        if str(ip) not in addresses:
            addresses.append(str(ip))
    return addresses
