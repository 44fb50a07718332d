"""An input by URL, by path or in bytes, streamed from where it lives: a loopback HTTP server stands in for the web
(its host allowed, as VIDEOGEN_ALLOWED_INPUT_HOSTS allows one; by default a private address is refused)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from application.ports import InputUnavailable
from adapters.media.sources import CHUNK, IPAddress, MediaSources, PrivateAddress
from tests.support.live_server import serving_http
from tests.support.media_files import png_bytes

BIG = bytes(range(256)) * (3 * CHUNK // 256 + 1000)  # a few chunks and a part


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {"/photo.png": png_bytes(64, 48), "/big.bin": BIG}
    redirects: dict[str, str] = {"/moved.png": "/photo.png"}
    requested: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.requested.append(self.path)
        if self.path.startswith("/to-localhost/"):
            self.redirect(f"http://localhost:{self.server.server_address[1]}/photo.png")
            return
        if self.path in self.redirects:
            self.redirect(self.redirects[self.path])
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    _Files.requested.clear()
    with serving_http(_Files) as url:
        yield url


LOOPBACK_ALLOWED = ("127.0.0.1",)


def read(source: str | bytes, allowed_hosts: tuple[str, ...] = LOOPBACK_ALLOWED) -> list[bytes]:
    async def chunks() -> list[bytes]:
        return [chunk async for chunk in MediaSources(timeout_s=5, allowed_hosts=allowed_hosts).open(source)]

    return asyncio.run(chunks())


def unavailable(source: str, allowed_hosts: tuple[str, ...] = LOOPBACK_ALLOWED) -> str:
    with pytest.raises(InputUnavailable) as refused:
        read(source, allowed_hosts)
    return str(refused.value)


def test_an_input_by_url_arrives_whole_in_chunks_no_larger_than_one_chunk(web: str) -> None:
    chunks = read(f"{web}/big.bin")

    assert b"".join(chunks) == BIG
    assert len(chunks) > 1 and max(len(chunk) for chunk in chunks) <= CHUNK


def test_an_input_by_url_follows_a_redirect(web: str) -> None:
    assert b"".join(read(f"{web}/moved.png")) == _Files.files["/photo.png"]


def test_a_url_that_answers_an_error_is_unavailable_naming_the_url_and_the_status(web: str) -> None:
    message = unavailable(f"{web}/nothing-here.png")

    assert f"{web}/nothing-here.png" in message and "404" in message


def test_a_url_nobody_answers_is_unavailable_naming_the_url_and_what_failed() -> None:
    port = a_port_nothing_listens_on()
    message = unavailable(f"http://127.0.0.1:{port}/photo.png")

    assert f"http://127.0.0.1:{port}/photo.png" in message and "ConnectError" in message


def test_a_url_on_a_private_address_is_refused_unasked_naming_the_setting_that_allows_its_host(web: str) -> None:
    message = unavailable(f"{web}/photo.png", allowed_hosts=())

    assert message == (
        f"{web}/photo.png: 127.0.0.1 is not a public address; list the host in VIDEOGEN_ALLOWED_INPUT_HOSTS to "
        "fetch inputs from it"
    )
    assert _Files.requested == []


def test_a_redirect_to_a_private_address_that_is_not_allowed_is_refused_unfollowed(web: str) -> None:
    message = unavailable(f"{web}/to-localhost/photo.png")

    assert "localhost (" in message and ") is not a public address" in message
    assert _Files.requested == ["/to-localhost/photo.png"]


class _Says(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.asked += 1  # type: ignore[attr-defined]
        body = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class TwoHosts:
    port: int
    public: ThreadingHTTPServer
    private: ThreadingHTTPServer


@pytest.fixture
def two_hosts() -> Iterator[TwoHosts]:
    """127.0.0.2 stands in for a public host, 127.0.0.1 for the private network behind it, on the same port."""
    for _ in range(20):
        public = ThreadingHTTPServer(("127.0.0.2", 0), _Says)
        try:
            private = ThreadingHTTPServer(("127.0.0.1", public.server_address[1]), _Says)
        except OSError:
            public.server_close()
            continue
        break
    else:
        pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")
    public.body, private.body = b"the public host's picture", b"the private network's secret"  # type: ignore[attr-defined]
    for server in (public, private):
        server.asked = 0  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield TwoHosts(int(public.server_address[1]), public, private)
    for server in (public, private):
        server.shutdown()
        server.server_close()


def fetch_through_rebinding_dns(
    two_hosts: TwoHosts, monkeypatch: pytest.MonkeyPatch, public_answers: int, lookups: list[str] | None = None
) -> bytes:
    """Fetches http://rebinding.test/ whose DNS answers the public host `public_answers` times, then the private
    network (DNS rebinding); 127.0.0.2 counts as public here. `lookups` collects each lookup of the name."""
    real_lookup = socket.getaddrinfo
    answers = iter(["127.0.0.2"] * public_answers)

    def rebinding_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebinding.test" and lookups is not None:
            lookups.append(host)
        return real_lookup(next(answers, "127.0.0.1") if host == "rebinding.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)

    def public(ip: IPAddress) -> bool:
        return ip == ipaddress.ip_address("127.0.0.2")

    async def fetch() -> bytes:
        sources = MediaSources(timeout_s=5, public=public)
        return b"".join([chunk async for chunk in sources.open(f"http://rebinding.test:{two_hosts.port}/p.png")])

    return asyncio.run(fetch())


def test_a_name_is_looked_up_once_and_the_connection_goes_to_the_address_checked_not_to_a_later_answer(
    two_hosts: TwoHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []

    assert fetch_through_rebinding_dns(two_hosts, monkeypatch, 1, lookups) == b"the public host's picture"
    assert two_hosts.private.asked == 0  # type: ignore[attr-defined]
    assert lookups == ["rebinding.test"]


def test_a_name_whose_address_is_private_when_it_is_checked_is_refused_before_any_connection(
    two_hosts: TwoHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PrivateAddress, match=r"rebinding.test \(127.0.0.1\) is not a public address"):
        fetch_through_rebinding_dns(two_hosts, monkeypatch, public_answers=0)

    assert two_hosts.private.asked == 0  # type: ignore[attr-defined]
    assert two_hosts.public.asked == 0  # type: ignore[attr-defined]


def test_an_input_is_fetched_directly_not_through_a_proxy_from_the_environment(
    two_hosts: TwoHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        proxy.settimeout(0)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        monkeypatch.setenv("NO_PROXY", "")

        assert fetch_through_rebinding_dns(two_hosts, monkeypatch, 1) == b"the public host's picture"
        with pytest.raises(BlockingIOError):
            proxy.accept()  # the proxy, which would look the name up itself, was never asked


def test_an_https_input_reached_through_its_checked_address_is_still_verified_against_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = trustme.CA()
    site = ThreadingHTTPServer(("127.0.0.2", 0), _Says)
    site.body, site.asked = b"the public host's picture, over TLS", 0  # type: ignore[attr-defined]
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("rebinding.test").configure_cert(tls)
    site.socket = tls.wrap_socket(site.socket, server_side=True)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    real_lookup = socket.getaddrinfo
    monkeypatch.setattr(
        socket, "getaddrinfo",
        lambda host, *args, **kwargs: real_lookup("127.0.0.2" if host == "rebinding.test" else host, *args, **kwargs),
    )
    url = f"https://rebinding.test:{site.server_address[1]}/p.png"

    async def fetch() -> bytes:
        sources = MediaSources(timeout_s=5, public=lambda ip: ip == ipaddress.ip_address("127.0.0.2"))
        return b"".join([chunk async for chunk in sources.open(url)])

    try:
        with pytest.raises(InputUnavailable, match="cannot be fetched"):
            asyncio.run(fetch())  # a certificate from an authority nobody trusts
        authority.cert_pem.write_to_path(str(tmp_path / "authority.pem"))
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "authority.pem"))
        fetched = asyncio.run(fetch())
    finally:
        site.shutdown()
        site.server_close()

    assert fetched == b"the public host's picture, over TLS"


def test_an_input_by_path_or_in_bytes_arrives_whole(tmp_path: Path) -> None:
    picture = tmp_path / "photo.png"
    picture.write_bytes(BIG)

    assert b"".join(read(str(picture))) == BIG
    assert b"".join(read(BIG)) == BIG


def test_a_path_to_no_file_is_unavailable_naming_it(tmp_path: Path) -> None:
    assert unavailable(str(tmp_path / "absent.png")) == f"no such file: {tmp_path / 'absent.png'}"


def a_port_nothing_listens_on() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
