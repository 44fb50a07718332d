"""The WaveSpeed stand-in speaks WaveSpeed's HTTP API on 127.0.0.1, faults and webhooks included."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import av
import httpx
import pytest

from tests.support.wavespeed_standin import WaveSpeedStandIn

MODEL = "wavespeed-ai/hunyuan-video-1.5/text-to-video"
OTHER_MODEL = "alibaba/wan-2.5/text-to-video"


@pytest.fixture
def ws() -> Iterator[WaveSpeedStandIn]:
    with WaveSpeedStandIn(task_seconds=0.15) as standin:
        yield standin


@pytest.fixture
def client(ws: WaveSpeedStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ws.url, headers={"Authorization": f"Bearer {ws.api_key}"}, timeout=5) as http:
        yield http


def submit(client: httpx.Client, body: dict[str, Any], model: str = MODEL, **params: str) -> httpx.Response:
    return client.post(f"/api/v3/{model}", json=body, params=params)


def wait_for_terminal(client: httpx.Client, task_id: str, deadline_s: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        data = client.get(f"/api/v3/predictions/{task_id}/result").json()["data"]
        if data["status"] in {"completed", "failed", "cancelled", "timeout"}:
            return data
        time.sleep(0.03)
    raise AssertionError(f"task {task_id} never ended")


def test_answers_come_in_the_envelope_and_a_wrong_or_missing_key_gets_401(
    ws: WaveSpeedStandIn, client: httpx.Client
) -> None:
    balance = client.get("/api/v3/balance")
    price = client.post("/api/v3/model/price", json={"model_id": MODEL, "inputs": {"duration": 5}})
    wrong = httpx.get(f"{ws.url}/api/v3/balance", headers={"Authorization": "Bearer nope"})
    missing = httpx.post(f"{ws.url}/api/v3/{MODEL}", json={"prompt": "a cat"})

    assert balance.status_code == 200
    assert balance.json() == {"code": 200, "message": "success", "data": {"balance": 100.0}}
    assert price.json()["code"] == 200 and price.json()["data"]["currency"] == "USD"
    assert wrong.status_code == missing.status_code == 401
    assert wrong.json() == {"message": "Unauthorized", "error_code": 401}
    assert [(r.path, r.authorized, r.status) for r in ws.requests] == [
        ("/api/v3/balance", True, 200),
        ("/api/v3/model/price", True, 200),
        ("/api/v3/balance", False, 401),
        (f"/api/v3/{MODEL}", False, 401),
    ]
    assert len(ws.submits()) == 1 and ws.created() == []


def test_a_task_goes_created_then_processing_then_completed_with_an_mp4_output() -> None:
    with WaveSpeedStandIn(task_seconds=0.6) as ws, httpx.Client(
        base_url=ws.url, headers={"Authorization": f"Bearer {ws.api_key}"}, timeout=5
    ) as http:
        began = time.monotonic()
        created = submit(http, {"prompt": "a cat", "duration": 5}, webhook="http://127.0.0.1:9/hook").json()["data"]
        task_id = created["id"]
        poll = f"/api/v3/predictions/{task_id}/result"
        first = http.get(poll).json()["data"]["status"]
        time.sleep(max(0.0, began + 0.35 - time.monotonic()))
        second = http.get(poll).json()["data"]["status"]
        time.sleep(max(0.0, began + 0.7 - time.monotonic()))
        done = http.get(poll).json()["data"]
        video = http.get(done["outputs"][0])
        resumed = http.get(done["outputs"][0], headers={"Range": "bytes=100-"})

        assert created["status"] == "created" and created["outputs"] == [] and created["error"] == ""
        assert created["urls"]["get"] == ws.url + poll
        assert created["created_at"].endswith("Z")
        assert created["has_nsfw_contents"] == [] and created["timings"] == {"inference": 0}
        assert [first, second, done["status"]] == ["created", "processing", "completed"]
        assert ws.tasks[task_id].statuses == ["created", "processing", "completed"]
        assert ws.tasks[task_id].webhook == "http://127.0.0.1:9/hook"
        assert done["outputs"] == [f"{ws.url}/outputs/{task_id}.mp4"]
        assert done["has_nsfw_contents"] == [False] and done["timings"]["inference"] == 600
        assert done["executionTime"] == 600
        assert video.headers["content-type"] == "video/mp4"
        assert int(video.headers["content-length"]) == len(video.content) == len(ws.video)
        with av.open(io.BytesIO(video.content)) as container:
            frame = next(container.decode(video=0))
            assert (frame.width, frame.height) == (320, 180)
        assert resumed.status_code == 206
        assert resumed.content == video.content[100:]
        assert resumed.headers["content-range"] == f"bytes 100-{len(video.content) - 1}/{len(video.content)}"


@pytest.mark.parametrize(
    ("status", "options", "error", "code"),
    [
        ("failed", {"error": "content flagged", "code": 1200}, "content flagged", 1200),
        ("cancelled", {}, "Task cancelled", 0),
        ("timeout", {"code": 5004}, "Task timed out", 5004),
        ("completed", {"outputs": False}, "", 0),
    ],
)
def test_finish_as_ends_the_next_task_failed_cancelled_timed_out_or_completed_without_outputs(
    ws: WaveSpeedStandIn, client: httpx.Client, status: str, options: dict[str, Any], error: str, code: int
) -> None:
    ws.finish_as(status, times=1, **options)

    odd = wait_for_terminal(client, submit(client, {"prompt": "a"}).json()["data"]["id"])
    normal = wait_for_terminal(client, submit(client, {"prompt": "b"}).json()["data"]["id"])

    assert (odd["status"], odd["outputs"], odd["has_nsfw_contents"]) == (status, [], [])
    assert (odd["error"], odd["code"]) == (error, code)
    assert normal["status"] == "completed" and len(normal["outputs"]) == 1 and normal["code"] == 0


def test_nsfw_outputs_are_flagged(ws: WaveSpeedStandIn, client: httpx.Client) -> None:
    ws.finish_as("completed", nsfw=True)

    done = wait_for_terminal(client, submit(client, {"prompt": "a"}).json()["data"]["id"])

    assert done["has_nsfw_contents"] == [True]


def test_a_body_that_is_not_a_json_object_gets_400_and_creates_nothing(
    ws: WaveSpeedStandIn, client: httpx.Client
) -> None:
    as_list = client.post(f"/api/v3/{MODEL}", json=["a"])
    garbage = client.post(f"/api/v3/{MODEL}", content=b"{oops", headers={"Content-Type": "application/json"})
    unknown = client.get("/api/v3/predictions/0123/result")

    assert as_list.status_code == garbage.status_code == 400
    assert as_list.json()["error_code"] == 1401
    assert ws.created() == [] and len(ws.submits()) == 2
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "prediction not found", "error_code": 404}


def test_a_429_on_submit_carries_retry_after_and_creates_nothing(ws: WaveSpeedStandIn, client: httpx.Client) -> None:
    ws.fail("submit", status=429, retry_after="2")

    limited = submit(client, {"prompt": "a"})
    accepted = submit(client, {"prompt": "a"})

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json() == {"message": "injected", "error_code": 429}
    assert accepted.status_code == 200
    assert [r.status for r in ws.submits()] == [429, 200]
    assert [t.id for t in ws.created()] == [accepted.json()["data"]["id"]]


def test_a_402_answers_insufficient_balance(ws: WaveSpeedStandIn, client: httpx.Client) -> None:
    ws.fail("submit", status=402)

    refused = submit(client, {"prompt": "a"})

    assert refused.status_code == 402
    assert refused.json() == {"message": "Insufficient balance", "error_code": 402}
    assert ws.created() == []


def test_create_first_creates_the_task_yet_answers_500(ws: WaveSpeedStandIn, client: httpx.Client) -> None:
    ws.fail("submit", status=500, create_first=True)

    answer = submit(client, {"prompt": "a", "seed": 7})

    assert answer.status_code == 500
    assert len(ws.created()) == 1
    assert ws.created()[0].input == {"prompt": "a", "seed": 7}
    assert ws.submits()[0].task_id == ws.created()[0].id


def test_a_500_on_poll_happens_the_given_times_then_the_poll_answers(
    ws: WaveSpeedStandIn, client: httpx.Client
) -> None:
    task_id = submit(client, {"prompt": "a"}).json()["data"]["id"]
    ws.fail("poll", status=500, times=2)

    answers = [client.get(f"/api/v3/predictions/{task_id}/result").status_code for _ in range(3)]

    assert answers == [500, 500, 200]


def test_an_envelope_500_arrives_inside_an_http_200(ws: WaveSpeedStandIn, client: httpx.Client) -> None:
    task_id = submit(client, {"prompt": "a"}).json()["data"]["id"]
    ws.fail("poll", envelope_code=500)

    answer = client.get(f"/api/v3/predictions/{task_id}/result")

    assert answer.status_code == 200
    assert answer.json() == {"code": 500, "message": "internal error", "data": None}


def test_a_malformed_json_body_is_answered_as_given(ws: WaveSpeedStandIn, client: httpx.Client) -> None:
    ws.fail("poll", status=200, body=b"{not json")
    ws.fail("history", status=502, body=b"<html>bad gateway</html>")

    poll = client.get("/api/v3/predictions/whatever/result")
    history = client.post("/api/v3/predictions", json={"page": 1})

    assert (poll.status_code, poll.content) == (200, b"{not json")
    with pytest.raises(json.JSONDecodeError):
        poll.json()
    assert (history.status_code, history.content) == (502, b"<html>bad gateway</html>")


@pytest.mark.parametrize(
    ("kind", "method", "path"),
    [
        ("submit", "POST", f"/api/v3/{MODEL}"),
        ("poll", "GET", "/api/v3/predictions/{id}/result"),
        ("download", "GET", "/outputs/{id}.mp4"),
        ("upload", "POST", "/api/v3/media/upload/binary"),
        ("history", "POST", "/api/v3/predictions"),
        ("balance", "GET", "/api/v3/balance"),
    ],
)
def test_each_fault_kind_answers_its_injected_status_then_recovers(
    ws: WaveSpeedStandIn, client: httpx.Client, kind: str, method: str, path: str
) -> None:
    task_id = submit(client, {"prompt": "a"}).json()["data"]["id"]
    url = path.format(id=task_id)
    extra: dict[str, Any] = {"files": {"file": ("a.png", b"png")}} if kind == "upload" else {}
    if method == "POST" and kind != "upload":
        extra = {"json": {"prompt": "a"} if kind == "submit" else {"page": 1}}
    ws.fail(kind, status=503, retry_after="1")

    faulted = client.request(method, url, **extra)
    recovered = client.request(method, url, **extra)

    assert (faulted.status_code, faulted.headers["retry-after"]) == (503, "1")
    assert faulted.json() == {"message": "injected", "error_code": 503}
    assert recovered.status_code in (200, 206)
    assert [r.status for r in ws.requests if r.kind == kind][-2:] == [503, recovered.status_code]


def test_a_cut_download_gives_fewer_bytes_than_its_content_length(
    ws: WaveSpeedStandIn, client: httpx.Client
) -> None:
    task_id = submit(client, {"prompt": "a"}).json()["data"]["id"]
    ws.fail("download", cut_after=1000)
    received = bytearray()

    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("GET", f"/outputs/{task_id}.mp4") as answer:
            announced = int(answer.headers["content-length"])
            for chunk in answer.iter_raw():
                received += chunk
    resumed = client.get(f"/outputs/{task_id}.mp4", headers={"Range": f"bytes={len(received)}-"})

    assert announced == len(ws.video)
    assert len(received) == 1000
    assert resumed.status_code == 206
    assert bytes(received) + resumed.content == ws.video


def test_a_delayed_answer_lets_a_client_time_out(ws: WaveSpeedStandIn, client: httpx.Client) -> None:
    ws.fail("balance", status=200, delay_s=0.4)

    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/v3/balance", timeout=0.1)
    later = client.get("/api/v3/balance")

    assert later.status_code == 200


def test_an_upload_comes_back_byte_for_byte_from_its_download_url(
    ws: WaveSpeedStandIn, client: httpx.Client
) -> None:
    content = os.urandom(300_000) + b"\r\n--boundary\r\n\r\n" + os.urandom(1000) + b"\r\n"

    answer = client.post("/api/v3/media/upload/binary", files={"file": ("face shot.png", content, "image/png")})
    data = answer.json()["data"]
    fetched = httpx.get(data["download_url"])

    assert answer.json()["code"] == 200
    assert data["download_url"].startswith(f"{ws.url}/media/")
    assert (data["filename"], data["size"], data["type"]) == ("face shot.png", len(content), "image/png")
    assert fetched.status_code == 200 and fetched.content == content
    assert ws.uploads[data["download_url"]] == content


def test_history_filters_by_model_time_and_status_newest_first_and_carries_the_input(
    ws: WaveSpeedStandIn, client: httpx.Client
) -> None:
    submit(client, {"prompt": "old"})
    time.sleep(0.02)
    since = datetime.now(UTC)
    ws.finish_as("failed", code=5000, times=1)
    failing = submit(client, {"prompt": "first"}).json()["data"]["id"]
    second = submit(client, {"prompt": "second", "seed": 3}).json()["data"]["id"]
    submit(client, {"prompt": "elsewhere"}, model=OTHER_MODEL)
    query = {"page": 1, "page_size": 50, "created_after": since.isoformat().replace("+00:00", "Z"), "model": MODEL}

    recent = client.post("/api/v3/predictions", json=query).json()["data"]
    time.sleep(0.2)
    failed = client.post("/api/v3/predictions", json=query | {"status": "failed"}).json()["data"]
    an_hour_earlier = (since - timedelta(hours=1)).isoformat()
    window = {"page": 1, "page_size": 1, "created_after": an_hour_earlier, "created_before": since.isoformat()}
    before = client.post("/api/v3/predictions", json=window).json()["data"]

    assert [item["id"] for item in recent["items"]] == [second, failing]
    assert recent["total"] == 2 and recent["page"] == 1
    assert recent["items"][0]["input"] == {"prompt": "second", "seed": 3}
    assert [item["id"] for item in failed["items"]] == [failing]
    assert failed["items"][0]["code"] == 5000
    assert [item["input"]["prompt"] for item in before["items"]] == ["old"] and before["total"] == 1


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/wavespeed", received
    server.shutdown()
    server.server_close()


def test_a_webhook_is_delivered_once_without_polling_and_its_signature_verifies(
    ws: WaveSpeedStandIn, client: httpx.Client, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    hook_url, received = receiver
    task_id = submit(client, {"prompt": "a"}, webhook=hook_url).json()["data"]["id"]
    deadline = time.monotonic() + 3
    while not received and time.monotonic() < deadline:
        time.sleep(0.02)
    wait_for_terminal(client, task_id)
    time.sleep(0.25)

    assert len(received) == 1
    headers, body = received[0]
    key = "whsec_test-secret".removeprefix("whsec_").encode()
    message = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    assert headers["webhook-signature"] == "v3," + hmac.new(key, message, hashlib.sha256).hexdigest()
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300
    payload = json.loads(body)
    assert "data" not in payload  # the prediction itself, no envelope
    assert (payload["id"], payload["status"]) == (task_id, "completed")
    assert payload["outputs"] == [f"{ws.url}/outputs/{task_id}.mp4"]
    assert ws.sign(body, webhook_id=headers["webhook-id"], timestamp=headers["webhook-timestamp"]) == {
        "webhook-id": headers["webhook-id"],
        "webhook-timestamp": headers["webhook-timestamp"],
        "webhook-signature": headers["webhook-signature"],
    }
    assert ws.tasks[task_id].webhook_sent and [d.status for d in ws.webhooks] == [200]


def test_a_webhook_can_be_redelivered_to_exercise_duplicate_handling(
    ws: WaveSpeedStandIn, client: httpx.Client, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    hook_url, received = receiver
    task_id = submit(client, {"prompt": "a"}, webhook=hook_url).json()["data"]["id"]
    wait_for_terminal(client, task_id)

    again = ws.deliver_webhook(task_id)
    deadline = time.monotonic() + 3
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)

    assert again.status == 200
    assert len(received) == 2
    assert json.loads(received[0][1])["id"] == json.loads(received[1][1])["id"] == task_id
    assert received[0][0]["webhook-id"] != received[1][0]["webhook-id"]


def test_200_concurrent_polls_from_threads_all_succeed(ws: WaveSpeedStandIn, client: httpx.Client) -> None:
    task_ids = [submit(client, {"prompt": str(i)}).json()["data"]["id"] for i in range(10)]
    start = threading.Barrier(200)

    def poll(i: int) -> int:
        # A client (and so a connection) per thread; verify=False skips loading CA certificates (plain HTTP anyway).
        with httpx.Client(base_url=ws.url, headers={"Authorization": f"Bearer {ws.api_key}"}, verify=False) as own:
            start.wait(timeout=10)
            answer = own.get(f"/api/v3/predictions/{task_ids[i % 10]}/result", timeout=10)
        return answer.status_code if answer.json()["data"]["id"] == task_ids[i % 10] else -1

    with ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(pool.map(poll, range(200)))

    assert statuses == [200] * 200
    assert sum(1 for r in ws.requests if r.kind == "poll") == 200
