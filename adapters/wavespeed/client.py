"""A thin async client of WaveSpeed's HTTP API that knows its envelope, its errors and which calls
may be retried. A submit is retried only when nothing can have been created.

The API key lives only in request headers: never in an exception, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import stamina

from application.ports import ProviderError, SubmitOutcomeUnknown

CHUNK = 1024 * 1024
MAX_IN_FLIGHT_REQUESTS = 64
# httpcore 1.0.9 counts every pooled connection, not the idle ones, against this limit (encode/httpcore#1000),
# so while more than this many are open each one that falls idle is closed: under full load nearly every request
# opens a connection of its own (4,000 for B2's 4,000), and idle connections are kept only while fewer are open.
# Those kept cost the most: each time a request enters or leaves the pool, httpcore checks every idle connection
# (two system calls and an anyio attribute table each) and counts all of them for each one. Measured in B2
# (1,000 generations in flight): with 64 kept the worker spent a third of its CPU there; with 16, whenever its
# own work held fewer than 16 requests in flight, a fifth (2-3 s a run: the idle checks 11-15 %, the whole
# assignment 17-29 % of its time on the GIL); with 8, the idle checks 1-2 %, and the worker about 20 % less CPU.
# See the README's B2 notes for the same over TLS, where a connection reused saves a handshake.
MAX_IDLE_CONNECTIONS = 8
HISTORY_PAGE_SIZE = 100


class Transient(Exception):
    """A failure that a later identical request may not meet (429, 5xx, a dropped connection)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


def backoff(error: Exception) -> bool | float:
    """stamina's hook: retry transient failures, waiting as long as the server's Retry-After asks."""
    if isinstance(error, Transient):
        return error.retry_after if error.retry_after is not None else True
    return False


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - dt.datetime.now(dt.timezone.utc)).total_seconds())


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:300]
    return str(body)[:300]


def refusal(response: httpx.Response, message: str | None = None) -> ProviderError:
    """The ProviderError of a definite refusal (a 4xx other than 429): nothing was created."""
    text = message or _message(response)
    if response.status_code == 401:
        return ProviderError(
            "provider_unauthorized", "WaveSpeed refused the API key (HTTP 401); check WAVESPEED_API_KEY"
        )
    if response.status_code == 402 or "balance" in text.lower() or "credit" in text.lower():
        return ProviderError("insufficient_balance", f"WaveSpeed: insufficient balance ({text}); top up the account")
    return ProviderError("invalid_input", f"WaveSpeed refused the request (HTTP {response.status_code}): {text}")


class WaveSpeedClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 30.0,
        retry_timeout_s: float = 120.0,
        attempts: int = 8,
        wait_max_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._http = http
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: asyncio.Semaphore | None = None
        self.timeout_s = timeout_s
        self.retry_timeout_s = retry_timeout_s
        self.attempts = attempts
        self.wait_max_s = wait_max_s

    def __repr__(self) -> str:
        return f"WaveSpeedClient({self.base_url!r})"

    @property
    def http(self) -> httpx.AsyncClient:
        # A connection pool belongs to one event loop; a host that runs several loops gets one pool each.
        loop = asyncio.get_running_loop()
        if self._http is None or self._http.is_closed or self._loop is not loop:
            self._loop = loop
            self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT_REQUESTS)
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s, connect=10.0),
                # No more connections than requests let through the gate, and few idle ones kept: httpx checks
                # every pooled connection on each assignment, two system calls for each idle one.
                limits=httpx.Limits(
                    max_connections=MAX_IN_FLIGHT_REQUESTS, max_keepalive_connections=MAX_IDLE_CONNECTIONS
                ),
            )
        return self._http

    def ready(self) -> None:
        """Makes this event loop's connection pool now if it is not made: building it (its TLS context) takes tens of
        milliseconds, which should not lie between a recorded submit attempt and the request it announces."""
        self.http

    @property
    def gate(self) -> asyncio.Semaphore:
        # httpx's pool scans every waiting request on each assignment: past a few dozen waiting it costs
        # more than the requests, so requests queue here instead.
        self.http
        assert self._in_flight is not None
        return self._in_flight

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def _retrying(self) -> Any:
        return stamina.retry_context(
            on=backoff, attempts=self.attempts, timeout=self.retry_timeout_s, wait_max=self.wait_max_s
        )

    def _envelope(self, response: httpx.Response) -> Any:
        """The `data` of an answer, or Transient / ProviderError; checks the HTTP status and the envelope code."""
        if response.status_code == 429 or response.status_code >= 500:
            raise Transient(f"HTTP {response.status_code}", retry_after(response))
        if response.status_code >= 400:
            raise refusal(response)
        try:
            body = response.json()
        except ValueError:
            raise Transient("malformed JSON in the answer") from None
        if not isinstance(body, dict):
            raise Transient("unexpected answer shape")
        code = body.get("code", 200)
        if code == 429 or (isinstance(code, int) and code >= 500):
            raise Transient(f"envelope code {code}: {body.get('message')}")
        if code != 200:
            raise ProviderError("provider_failure", f"WaveSpeed answered code {code}: {body.get('message')}")
        return body.get("data")

    async def _call(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> Any:
        """A request that is safe to repeat (reads, uploads), retried on transient failures unless `retry` is off
        (where the caller has a better way round a failure than waiting for a retry)."""
        try:
            if not retry:
                return await self._once(method, path, **kwargs)
            async for attempt in self._retrying():
                with attempt:
                    return await self._once(method, path, **kwargs)
        except Transient as error:
            raise ProviderError("provider_failure", f"WaveSpeed kept failing ({error.reason})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self.gate:
                response = await self.http.request(method, f"{self.base_url}{path}", headers=self._auth, **kwargs)
        except httpx.TransportError as error:
            raise Transient(type(error).__name__) from None
        return self._envelope(response)

    async def submit(self, model_id: str, body: dict[str, Any], webhook: str | None = None) -> dict[str, Any]:
        """Creates one prediction. Retried only on 429 or a connection that failed before sending."""
        params = {"webhook": webhook} if webhook else None
        try:
            async for attempt in self._retrying():
                with attempt:
                    return await self._submit_once(model_id, body, params)
        except Transient as error:
            raise ProviderError("provider_failure", f"WaveSpeed did not take the task ({error.reason})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _submit_once(self, model_id: str, body: dict[str, Any], params: dict[str, str] | None) -> dict[str, Any]:
        try:
            async with self.gate:
                response = await self.http.post(
                    f"{self.base_url}/api/v3/{model_id}", json=body, params=params, headers=self._auth
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise Transient(f"{type(error).__name__} before the request was sent") from None
        except httpx.TransportError as error:
            raise SubmitOutcomeUnknown(f"{type(error).__name__} after the request was sent") from None
        if response.status_code == 429:
            raise Transient("HTTP 429", retry_after(response))
        if response.status_code >= 500:
            raise SubmitOutcomeUnknown(f"HTTP {response.status_code} after the request reached WaveSpeed")
        if response.status_code >= 400:
            raise refusal(response)
        try:
            envelope = response.json()
        except ValueError:
            raise SubmitOutcomeUnknown("malformed JSON in the submit answer") from None
        code = envelope.get("code", 200) if isinstance(envelope, dict) else None
        if code == 429:
            raise Transient("envelope code 429")
        if code != 200:
            if isinstance(code, int) and 400 <= code < 500:
                raise refusal(response, str(envelope.get("message")))
            raise SubmitOutcomeUnknown(f"envelope code {code} in the submit answer")
        data = envelope.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            raise SubmitOutcomeUnknown("the submit answer carries no task id")
        return data

    async def result(self, task_id: str) -> dict[str, Any]:
        data = await self._call("GET", f"/api/v3/predictions/{task_id}/result")
        if not isinstance(data, dict):
            raise ProviderError("provider_failure", "WaveSpeed's poll answer carries no prediction")
        return data

    async def upload(self, path: Path, mime: str) -> str:
        """Uploads a local file (streamed from disk) and returns its download URL."""

        async def send() -> Any:
            with open(path, "rb") as file:
                return await self._call("POST", "/api/v3/media/upload/binary", files={"file": (path.name, file, mime)})

        data = await send()
        url = data.get("download_url") if isinstance(data, dict) else None
        if not url:
            raise ProviderError("provider_failure", "WaveSpeed's upload answer carries no download_url")
        return str(url)

    async def history(self, model_id: str, created_after: dt.datetime, created_before: dt.datetime) -> list[dict[str, Any]]:
        """Every prediction of the model created in the window, page after page."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            batch, total = await self.predictions(model_id, created_after, created_before, page=page)
            items += batch
            if len(batch) < HISTORY_PAGE_SIZE or (total is not None and len(items) >= total):
                return items
            page += 1

    async def predictions(
        self,
        model_id: str,
        created_after: dt.datetime,
        created_before: dt.datetime,
        *,
        page: int = 1,
        page_size: int = HISTORY_PAGE_SIZE,
        retry: bool = True,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of the model's predictions created in the window, and how many the window holds (None when the
        answer does not say)."""
        data = await self._call(
            "POST",
            "/api/v3/predictions",
            retry=retry,
            json={
                "page": page,
                "page_size": page_size,
                "model": model_id,
                "created_after": _utc_text(created_after),
                "created_before": _utc_text(created_before),
            },
        )
        items = data.get("items") if isinstance(data, dict) else None
        total = data.get("total") if isinstance(data, dict) else None
        return (
            [item for item in items if isinstance(item, dict)] if isinstance(items, list) else [],
            total if isinstance(total, int) and not isinstance(total, bool) else None,
        )

    async def balance(self) -> float:
        data = await self._call("GET", "/api/v3/balance")
        return float((data or {}).get("balance", 0.0))

    async def download(self, url: str) -> AsyncIterator[bytes]:
        """Streams an output, resuming with a Range request where the connection broke; a download that
        cannot be completed raises ProviderError, so a truncated file is never taken for a whole one."""
        received = 0
        total: int | None = None
        try:
            async for attempt in self._retrying():
                with attempt:
                    headers = {"Range": f"bytes={received}-"} if received else {}
                    try:
                        async with self.gate, self.http.stream("GET", url, headers=headers) as response:
                            if response.status_code == 429 or response.status_code >= 500:
                                raise Transient(f"HTTP {response.status_code}", retry_after(response))
                            if received and response.status_code != 206:
                                raise ProviderError(
                                    "download_failed", "the download broke off and the server cannot resume it"
                                )
                            if response.status_code not in (200, 206):
                                raise ProviderError("download_failed", f"the output answered HTTP {response.status_code}")
                            if total is None:
                                total = _total_length(response)
                            async for chunk in response.aiter_raw(CHUNK):
                                received += len(chunk)
                                yield chunk
                    except httpx.TransportError as error:
                        raise Transient(f"{type(error).__name__} after {received} bytes") from None
                    if total is not None and received < total:
                        raise Transient(f"connection closed after {received} of {total} bytes")
                    return
        except Transient as error:
            raise ProviderError("download_failed", f"the output could not be downloaded ({error.reason})") from None


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _total_length(response: httpx.Response) -> int | None:
    if response.status_code == 206:
        content_range = response.headers.get("content-range", "")
        _, _, size = content_range.rpartition("/")
        return int(size) if size.isdigit() else None
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() else None
