"""A WaveSpeed API stand-in that speaks real HTTP on 127.0.0.1 (see /work/shared/wavespeed-api.md).

    with WaveSpeedStandIn(task_seconds=0.2) as ws:
        client = httpx.Client(base_url=ws.url, headers={"Authorization": f"Bearer {ws.api_key}"})
        ws.fail("submit", status=429, retry_after="1")       # the next submit answers 429
        ws.finish_as("failed", error="flagged", code=1200, times=1)  # the next created task fails

Routes (every /api/v3 route needs `Authorization: Bearer <api_key>`, else 401):
    POST /api/v3/<model id>                  create a task (`?webhook=<url>` remembered)       kind "submit"
    GET  /api/v3/predictions/<id>/result     the prediction, status by elapsed time            kind "poll"
    POST /api/v3/predictions                 history: {page, page_size, created_after, ...}    kind "history"
    POST /api/v3/media/upload/binary         multipart field `file`                             kind "upload"
    GET  /api/v3/balance                     {"balance": float}                                 kind "balance"
    POST /api/v3/model/price                 {"price", "discounted_price", "currency"}          kind "price"
    GET  /outputs/<id>.mp4                   the video, no auth, Range `bytes=N-` / `N-M`        kind "download"
    GET  /media/<id>/<filename>              an uploaded file, no auth, Range as above          kind "media"

A task answers `created` for its first third of `task_seconds`, `processing` until `task_seconds` have passed,
then its terminal outcome (chosen by `finish_as` when it is created). Everything runs on one lock; each
connection gets its own daemon thread (HTTP/1.1 keep-alive).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import json
import mimetypes
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

TERMINAL = frozenset({"completed", "failed", "cancelled", "timeout"})
FAULT_KINDS = frozenset({"submit", "poll", "download", "upload", "history", "balance", "price"})
CHUNK_BYTES = 64 * 1024
WEBHOOK_TIMEOUT_S = 2.0
TICK_S = 0.1

_DEFAULT_ERRORS = {"failed": "Task failed", "cancelled": "Task cancelled", "timeout": "Task timed out"}
_POLL = re.compile(r"/api/v3/predictions/([^/]+)/result")
_OUTPUT = re.compile(r"/outputs/([^/]+)\.mp4")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class LoggedRequest:
    """One request as it arrived; `status` is filled in when it is answered (0 until then)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    json: Any  # the parsed body when it is JSON, else None
    status: int
    time: datetime  # arrival, UTC
    authorized: bool  # the Bearer key matched
    kind: str = "other"  # submit | poll | history | upload | balance | price | download | media | other
    task_id: str | None = None  # the task a submit created, or the one a poll/download named
    body: bytes = field(default=b"", repr=False)


@dataclass
class Task:
    """A created prediction. `outputs` are the URLs it ends with (shown once it is `completed`)."""

    id: str
    model: str
    input: dict[str, Any]
    created_at: datetime  # UTC
    webhook: str | None
    final_status: str
    error: str
    code: int
    outputs: list[str]
    nsfw: bool
    task_seconds: float
    statuses: list[str] = field(default_factory=lambda: ["created"])  # as answered, without repeats
    webhook_sent: bool = False
    started: float = field(default_factory=time.monotonic, repr=False)

    def status_after(self, elapsed: float) -> str:
        if elapsed >= self.task_seconds:
            return self.final_status
        return "created" if elapsed < self.task_seconds / 3 else "processing"

    @property
    def status(self) -> str:
        return self.status_after(time.monotonic() - self.started)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass
class WebhookDelivery:
    task_id: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # the receiver's answer, None when delivery failed
    error: str = ""


@dataclass(frozen=True)
class _Outcome:
    status: str
    error: str
    code: int
    outputs: bool
    nsfw: bool


@dataclass
class _Fault:
    status: int
    times: int
    retry_after: str | None
    body: bytes | None
    envelope_code: int | None
    create_first: bool
    cut_after: int | None
    delay_s: float

    @property
    def passthrough(self) -> bool:
        """Answer normally (after `delay_s`, cut after `cut_after` bytes) rather than with an error."""
        if self.cut_after is not None:
            return True
        return 200 <= self.status < 300 and self.body is None and self.envelope_code is None


@functools.cache
def sample_mp4() -> bytes:
    """A real, small MP4 (1 s, 320x180, 24 fps, H.264 yuv420p), made once per process."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        ramp = np.linspace(0, 255, 320, dtype=np.uint8)
        for i in range(24):
            picture = np.empty((180, 320, 3), dtype=np.uint8)
            picture[..., 0] = ramp
            picture[..., 1] = (i * 10) % 256
            picture[..., 2] = ramp[::-1]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def _header_params(value: str) -> Message:
    message = Message()
    message["content-type"] = value
    return message


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, str | None, bytes]]:
    """name -> (filename, content type, bytes) of a multipart/form-data body."""
    boundary = _header_params(content_type).get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("multipart body without a boundary")
    fields: dict[str, tuple[str | None, str | None, bytes]] = {}
    for part in (b"\r\n" + body).split(b"\r\n--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            continue
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        disposition = Message()
        disposition["content-disposition"] = headers.get("content-disposition", "")
        name = disposition.get_param("name", header="content-disposition")
        filename = disposition.get_param("filename", header="content-disposition")
        if isinstance(name, str):
            fields[name] = (filename if isinstance(filename, str) else None, headers.get("content-type"), content)
    return fields


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 2048
    allow_reuse_address = True

    def __init__(self, standin: WaveSpeedStandIn) -> None:
        self.standin = standin
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # clients hang up (timeouts, cut downloads): not our bug
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            open_sockets = list(self.connections)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server
    entry: LoggedRequest

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- plumbing ---------------------------------------------------------------------------------------------

    @property
    def ws(self) -> WaveSpeedStandIn:
        return self.server.standin

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.entry.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _ok(self, data: Any) -> None:
        self._send(200, _json_bytes({"code": 200, "message": "success", "data": data}))

    def _error(self, status: int, message: str, error_code: int | None = None) -> None:
        self._send(status, _json_bytes({"message": message, "error_code": error_code or status}))

    def _fault_answer(self, fault: _Fault) -> None:
        time.sleep(fault.delay_s)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.envelope_code is not None:
            body = fault.body
            if body is None:
                body = _json_bytes({"code": fault.envelope_code, "message": "internal error", "data": None})
            self._send(200, body, headers=headers)
            return
        if fault.body is None:
            message = "Insufficient balance" if fault.status == 402 else "injected"
            self._send(fault.status, _json_bytes({"message": message, "error_code": fault.status}), headers=headers)
            return
        self._send(fault.status, fault.body, headers=headers)

    def _stream(self, data: bytes, content_type: str, cut_after: int | None) -> None:
        total, start, end, status = len(data), 0, len(data) - 1, 200
        headers = {"Accept-Ranges": "bytes"}
        wanted = self.headers.get("Range")
        match = _RANGE.fullmatch(wanted.strip()) if wanted else None
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), total - 1) if match.group(2) else total - 1
            if start >= total or end < start:
                self._send(416, b"", content_type=content_type, headers={"Content-Range": f"bytes */{total}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        length = end - start + 1
        self.entry.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        sending = length if cut_after is None else max(0, min(cut_after, length))
        view = memoryview(data)[start : start + sending]
        for offset in range(0, sending, CHUNK_BYTES):
            self.wfile.write(view[offset : offset + CHUNK_BYTES])
        if sending < length:
            self.close_connection = True  # the client sees EOF before Content-Length bytes

    # -- routing ----------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        ws = self.ws
        body = self._read_body()
        split = urlsplit(self.path)
        path, method = split.path, self.command
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        self.entry = LoggedRequest(
            method=method,
            path=path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=headers,
            json=parsed,
            status=0,
            time=datetime.now(UTC),
            authorized=headers.get("authorization") == f"Bearer {ws.api_key}",
            kind=_kind(method, path),
            body=body,
        )
        ws._log(self.entry)
        kind = self.entry.kind
        if path.startswith("/api/v3/") and not self.entry.authorized:
            self._error(401, "Unauthorized")
            return
        fault = ws._take_fault(kind) if kind in FAULT_KINDS else None
        if fault is not None and not fault.passthrough and not (kind == "submit" and fault.create_first):
            self._fault_answer(fault)
            return
        if fault is not None and fault.passthrough:
            time.sleep(fault.delay_s)
        route = getattr(self, f"_{kind}")
        route(fault)

    def _other(self, fault: _Fault | None) -> None:
        self._error(404, "not found")

    def _submit(self, fault: _Fault | None) -> None:
        model = self.entry.path.removeprefix("/api/v3/").strip("/")
        if not isinstance(self.entry.json, dict):
            self._error(400, "request body must be a JSON object", 1401)
            return
        task = self.ws._create(model, self.entry.json, self.entry.query.get("webhook") or None)
        self.entry.task_id = task.id
        if fault is not None and not fault.passthrough:  # create_first: it was created, the answer fails
            self._fault_answer(fault)
            return
        self._ok(self.ws._prediction(task, just_created=True))

    def _poll(self, fault: _Fault | None) -> None:
        match = _POLL.fullmatch(self.entry.path)
        task_id = match.group(1) if match else ""
        self.entry.task_id = task_id
        data = self.ws._poll(task_id)
        if data is None:
            self._error(404, "prediction not found")
            return
        self._ok(data)

    def _history(self, fault: _Fault | None) -> None:
        query = self.entry.json if isinstance(self.entry.json, dict) else {}
        try:
            data = self.ws._history(query)
        except (TypeError, ValueError) as error:
            self._error(400, f"invalid history query: {error}", 1401)
            return
        self._ok(data)

    def _upload(self, fault: _Fault | None) -> None:
        content_type = self.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            self._error(400, "expected multipart/form-data", 1400)
            return
        try:
            fields = _multipart(content_type, self.entry.body)
        except ValueError as error:
            self._error(400, str(error), 1400)
            return
        if "file" not in fields:
            self._error(400, "missing field: file", 1400)
            return
        filename, part_type, content = fields["file"]
        self._ok(self.ws._store_upload(filename or "file", part_type, content))

    def _balance(self, fault: _Fault | None) -> None:
        self._ok({"balance": float(self.ws.balance)})

    def _price(self, fault: _Fault | None) -> None:
        price = self.ws.price
        self._ok({"price": price, "discounted_price": price, "currency": "USD"})

    def _download(self, fault: _Fault | None) -> None:
        match = _OUTPUT.fullmatch(self.entry.path)
        task_id = match.group(1) if match else ""
        self.entry.task_id = task_id
        with self.ws._lock:
            known = task_id in self.ws.tasks
        if not known:
            self._error(404, "not found")
            return
        self._stream(self.ws.video, "video/mp4", fault.cut_after if fault else None)

    def _media(self, fault: _Fault | None) -> None:
        with self.ws._lock:
            content = self.ws.uploads.get(self.ws.url + self.entry.path)
            content_type = self.ws.upload_types.get(self.ws.url + self.entry.path, "application/octet-stream")
        if content is None:
            self._error(404, "not found")
            return
        self._stream(content, content_type, None)


def _kind(method: str, path: str) -> str:
    if path.startswith("/api/v3/"):
        if method == "GET" and path == "/api/v3/balance":
            return "balance"
        if method == "GET" and _POLL.fullmatch(path):
            return "poll"
        if method == "POST" and path == "/api/v3/model/price":
            return "price"
        if method == "POST" and path == "/api/v3/media/upload/binary":
            return "upload"
        if method == "POST" and path.rstrip("/") == "/api/v3/predictions":
            return "history"
        if method == "POST" and path.removeprefix("/api/v3/").strip("/"):
            return "submit"
        return "other"
    if method in ("GET", "HEAD") and _OUTPUT.fullmatch(path):
        return "download"
    if method in ("GET", "HEAD") and path.startswith("/media/"):
        return "media"
    return "other"


class WaveSpeedStandIn:
    """WaveSpeed's HTTP API on 127.0.0.1:<free port>, for tests. A context manager; also start()/stop()."""

    def __init__(
        self,
        *,
        api_key: str = "ws-test-key",
        task_seconds: float = 0.3,
        video: bytes | None = None,
        webhook_secret: str = "whsec_test-secret",
        balance: str = "100.00",
    ) -> None:
        self.api_key = api_key
        self.task_seconds = task_seconds  # read when each task is created
        self.video = video if video is not None else sample_mp4()
        self.webhook_secret = webhook_secret
        self.balance = balance  # GET /api/v3/balance answers float(balance)
        self.price = 0.2  # POST /api/v3/model/price answers this as price and discounted_price
        self.url = ""
        self.requests: list[LoggedRequest] = []
        self.tasks: dict[str, Task] = {}
        self.uploads: dict[str, bytes] = {}  # download_url -> bytes
        self.upload_types: dict[str, str] = {}  # download_url -> content type
        self.webhooks: list[WebhookDelivery] = []  # every delivery attempt, in order
        self._lock = threading.RLock()
        self._faults: dict[str, deque[_Fault]] = {kind: deque() for kind in FAULT_KINDS}
        self._outcomes: deque[list[Any]] = deque()  # [outcome, remaining times]
        self._default_outcome = _Outcome("completed", "", 0, True, False)
        self._webhooks_due: set[str] = set()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._senders: ThreadPoolExecutor | None = None
        self._poster: httpx.Client | None = None  # one pool for every delivery, as a real sender keeps

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> WaveSpeedStandIn:
        if self._server is not None:
            return self
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._stopping.clear()
        self._senders = ThreadPoolExecutor(max_workers=8, thread_name_prefix="wavespeed-standin-webhook")
        self._poster = httpx.Client(timeout=WEBHOOK_TIMEOUT_S)
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="wavespeed-standin", daemon=True
            ),
            threading.Thread(target=self._tick, name="wavespeed-standin-ticker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._senders is not None:
            self._senders.shutdown(wait=True, cancel_futures=True)
        if self._poster is not None:
            self._poster.close()
            self._poster = None

    def __enter__(self) -> WaveSpeedStandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- steering ---------------------------------------------------------------------------------------------

    def fail(
        self,
        kind: str,
        *,
        status: int = 500,
        times: int = 1,
        retry_after: str | None = None,
        body: bytes | None = None,
        envelope_code: int | None = None,
        create_first: bool = False,
        cut_after: int | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """The next `times` requests of `kind` (after any faults queued before) answer this way.

        Default body `{"message": "injected", "error_code": status}` ("Insufficient balance" for 402).
        `envelope_code` answers HTTP 200 with `{"code": envelope_code, "message": "internal error", "data": null}`.
        `create_first` (submit) creates the task, then answers the fault. `cut_after` (download) answers
        normally but hangs up after that many body bytes. A 2xx `status` without `body`/`envelope_code`
        answers normally after `delay_s` (a slow but good answer).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        if create_first and kind != "submit":
            raise ValueError("create_first applies to submit only")
        if cut_after is not None and kind != "download":
            raise ValueError("cut_after applies to download only")
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = _Fault(status, times, retry_after, body, envelope_code, create_first, cut_after, delay_s)
        with self._lock:
            self._faults[kind].append(fault)

    def finish_as(
        self,
        status: str,
        *,
        error: str = "",
        code: int = 0,
        outputs: bool = True,
        nsfw: bool = False,
        times: int | None = None,
    ) -> None:
        """How the next `times` created tasks end; `times=None`: every task created from now on (and
        it drops outcomes still queued). Non-completed tasks get a default error text when `error` is ""."""
        if status not in TERMINAL:
            raise ValueError(f"{status!r} is not terminal; one of {sorted(TERMINAL)}")
        outcome = _Outcome(status, error or _DEFAULT_ERRORS.get(status, ""), code, outputs, nsfw)
        with self._lock:
            if times is None:
                self._outcomes.clear()
                self._default_outcome = outcome
            elif times > 0:
                self._outcomes.append([outcome, times])

    # -- reading ----------------------------------------------------------------------------------------------

    def submits(self) -> list[LoggedRequest]:
        """Every POST /api/v3/<model> (created a task or tried to: faulted, unauthorized, bad body)."""
        with self._lock:
            return [entry for entry in self.requests if entry.kind == "submit"]

    def created(self) -> list[Task]:
        """Tasks actually created, in creation order."""
        with self._lock:
            return list(self.tasks.values())

    def sign(self, body: bytes, *, webhook_id: str, timestamp: int | str) -> dict[str, str]:
        """The webhook headers WaveSpeed sends for `body`: HMAC-SHA256 keyed by the secret without `whsec_`."""
        key = self.webhook_secret.removeprefix("whsec_").encode()
        digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v3,{digest}"}

    def deliver_webhook(self, task_id: str) -> WebhookDelivery:
        """(Re)send the task's webhook now, synchronously: WaveSpeed may deliver more than once."""
        with self._lock:
            task = self.tasks[task_id]
            if not task.webhook:
                raise ValueError(f"task {task_id} has no webhook")
            url, payload = task.webhook, self._prediction(task, with_input=True)
        return self._deliver(task_id, url, payload)

    # -- internals (called by the handler, under the lock where it matters) -----------------------------------

    def _log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def _take_fault(self, kind: str) -> _Fault | None:
        with self._lock:
            queue = self._faults[kind]
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.popleft()
            return fault

    def _create(self, model: str, body: dict[str, Any], webhook: str | None) -> Task:
        with self._lock:
            if self._outcomes:
                outcome = self._outcomes[0][0]
                self._outcomes[0][1] -= 1
                if self._outcomes[0][1] <= 0:
                    self._outcomes.popleft()
            else:
                outcome = self._default_outcome
            task_id = uuid.uuid4().hex
            done = outcome.status == "completed" and outcome.outputs
            task = Task(
                id=task_id,
                model=model,
                input=body,
                created_at=datetime.now(UTC),
                webhook=webhook,
                final_status=outcome.status,
                error=outcome.error,
                code=outcome.code,
                outputs=[f"{self.url}/outputs/{task_id}.mp4"] if done else [],
                nsfw=outcome.nsfw,
                task_seconds=self.task_seconds,
            )
            self.tasks[task_id] = task
            if webhook:
                self._webhooks_due.add(task_id)
            return task

    def _prediction(self, task: Task, *, with_input: bool = False, just_created: bool = False) -> dict[str, Any]:
        with self._lock:
            status = "created" if just_created else task.status
            terminal = status in TERMINAL
            outputs = list(task.outputs) if status == "completed" else []
            inference_ms = int(task.task_seconds * 1000) if terminal else 0
            data: dict[str, Any] = {
                "id": task.id,
                "model": task.model,
                "outputs": outputs,
                "urls": {"get": f"{self.url}/api/v3/predictions/{task.id}/result"},
                "has_nsfw_contents": [task.nsfw] * len(outputs),
                "status": status,
                "created_at": _iso(task.created_at),
                "error": task.error if terminal else "",
                "code": task.code if terminal else 0,
                "timings": {"inference": inference_ms},
            }
            if terminal:
                data["executionTime"] = inference_ms
            if with_input:
                data["input"] = task.input
            return data

    def _poll(self, task_id: str) -> dict[str, Any] | None:
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None:
                return None
            data = self._prediction(task)
            if task.statuses[-1] != data["status"]:
                task.statuses.append(data["status"])
        if data["status"] in TERMINAL:
            self._send_due_webhooks([task_id])
        return data

    def _history(self, query: dict[str, Any]) -> dict[str, Any]:
        page = max(1, int(query.get("page") or 1))
        page_size = max(1, int(query.get("page_size") or 20))
        after, before = _parse_time(query.get("created_after")), _parse_time(query.get("created_before"))
        model, status = query.get("model"), query.get("status")
        with self._lock:
            matches = [
                task
                for task in reversed(self.tasks.values())
                if (not model or task.model == model)
                and (after is None or task.created_at >= after)
                and (before is None or task.created_at <= before)
                and (not status or task.status == status)
            ]
            items = [self._prediction(task, with_input=True) for task in matches]
        return {"items": items[(page - 1) * page_size : page * page_size], "page": page, "total": len(items)}

    def _store_upload(self, filename: str, content_type: str | None, content: bytes) -> dict[str, Any]:
        kind = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        url = f"{self.url}/media/{uuid.uuid4().hex}/{quote(filename)}"
        with self._lock:
            self.uploads[url] = content
            self.upload_types[url] = kind
        return {"type": kind, "download_url": url, "filename": filename, "size": len(content)}

    def _tick(self) -> None:
        while not self._stopping.wait(TICK_S):
            with self._lock:
                due = list(self._webhooks_due)
            if due:
                self._send_due_webhooks(due)

    def _send_due_webhooks(self, task_ids: list[str]) -> None:
        sending = []
        with self._lock:
            for task_id in task_ids:
                task = self.tasks.get(task_id)
                if task is None or task_id not in self._webhooks_due or not task.terminal or not task.webhook:
                    continue
                self._webhooks_due.discard(task_id)
                task.webhook_sent = True
                sending.append((task_id, task.webhook, self._prediction(task, with_input=True)))
        for task_id, url, payload in sending:
            senders = self._senders
            if senders is None:
                return
            try:
                senders.submit(self._deliver, task_id, url, payload)
            except RuntimeError:  # stopping
                return

    def _deliver(self, task_id: str, url: str, payload: dict[str, Any]) -> WebhookDelivery:
        body = _json_bytes(payload)
        headers = self.sign(body, webhook_id=str(uuid.uuid4()), timestamp=int(time.time()))
        headers["content-type"] = "application/json"
        try:
            poster = self._poster
            if poster is None:
                answer = httpx.post(url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT_S)
            else:
                answer = poster.post(url, content=body, headers=headers)
            delivery = WebhookDelivery(task_id, url, headers, body, answer.status_code)
        except Exception as error:  # noqa: BLE001 - delivery errors are the receiver's problem
            delivery = WebhookDelivery(task_id, url, headers, body, None, repr(error))
        with self._lock:
            self.webhooks.append(delivery)
        return delivery
