"""The HTTP API on a real uvicorn server on 127.0.0.1, and WaveSpeed's webhooks delivered to it for real."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from application.policy import Policy
from adapters.container import Container
from adapters.embedded import build_services
from adapters.http.app import create_app
from adapters.settings import Settings
from tests.support.live_server import bound_socket, serving, url_of
from tests.support.wavespeed_standin import WaveSpeedStandIn

ANA = {"X-User-Id": "ana"}
HUNYUAN = "wavespeed-ai/hunyuan-video-1.5/text-to-video"


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_real_server_accepts_a_generation_streams_its_video_with_range_and_replays_its_events(tmp_path: Path) -> None:
    services = build_services(Settings(data_dir=tmp_path / "data", provider="sandbox", wavespeed_api_key=None))
    sock = bound_socket()

    with serving(create_app(services), sock) as url, httpx.Client(base_url=url, headers=ANA, timeout=30) as client:
        answer = client.post("/generations", json={"prompt": "a lighthouse at dusk", "resolution": "480p", "duration": 2})
        assert answer.status_code == 202, answer.text
        location = answer.headers["location"]
        assert location.startswith(url)

        done = wait_for(
            lambda: (body := client.get(location).json())["status"] == "completed" and body,
            timeout=60, what="the generation to complete",
        )
        stored = Path(done["file_path"]).read_bytes()
        with client.stream("GET", f"{location}/video") as streamed:
            received = b"".join(streamed.iter_bytes())
        ranged = client.get(f"{location}/video", headers={"Range": "bytes=0-1023"})
        events = client.get(f"{location}/events").json()

    assert received == stored
    assert ranged.status_code == 206 and ranged.content == stored[:1024]
    assert [event["type"] for event in events["events"]][-1] == "Charged"
    assert events["state"]["duration"] == pytest.approx(2.0, abs=0.1)


@pytest.fixture
def standin() -> Iterator[WaveSpeedStandIn]:
    with WaveSpeedStandIn(task_seconds=1.0, webhook_secret="whsec_test-secret") as server:
        yield server


def wavespeed_behind_a_public_url(tmp_path: Path, standin: WaveSpeedStandIn, public_url: str) -> Container:
    services = build_services(
        Settings(
            data_dir=tmp_path / "data",
            provider="wavespeed",
            wavespeed_api_key=standin.api_key,
            wavespeed_base_url=standin.url,
            wavespeed_webhook_secret=standin.webhook_secret,
            public_url=public_url,
        )
    )
    services.wavespeed.kwargs["client"].kwargs.update(retry_timeout_s=20.0, wait_max_s=0.5)
    return services


@pytest.mark.parametrize(
    ("public_url", "secret", "asked"),
    [
        ("https://videogen.example", "whsec_x", "https://videogen.example/webhooks/wavespeed"),
        ("https://videogen.example/", "whsec_x", "https://videogen.example/webhooks/wavespeed"),
        ("https://videogen.example", None, None),
        (None, "whsec_x", None),
    ],
)
def test_wavespeed_is_asked_for_webhooks_only_where_they_reach_us_and_can_be_checked(
    tmp_path: Path, public_url: str | None, secret: str | None, asked: str | None
) -> None:
    services = build_services(
        Settings(
            data_dir=tmp_path / "data", wavespeed_api_key="ws-key", public_url=public_url, wavespeed_webhook_secret=secret
        )
    )

    wavespeed = services.wavespeed()

    assert wavespeed.webhook_url == asked
    assert wavespeed.tells_when_done is (asked is not None)


def test_a_webhook_with_a_bad_signature_is_refused_and_a_good_one_completes_the_generation_at_once(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    sock = bound_socket()
    services = wavespeed_behind_a_public_url(tmp_path, standin, url_of(sock))

    with serving(create_app(services), sock) as url, httpx.Client(base_url=url, headers=ANA, timeout=30) as client:
        answer = client.post("/generations", json={"prompt": "a lighthouse", "model": HUNYUAN})
        assert answer.status_code == 202, answer.text
        location = answer.headers["location"]
        task = wait_for(lambda: standin.created() and standin.created()[0], timeout=20, what="the task to be submitted")
        assert task.webhook == f"{url}/webhooks/wavespeed"
        wait_for(lambda: client.get(location).json()["status"] == "submitted", timeout=20, what="Submitted")

        forged_body = json.dumps({"id": task.id, "status": "completed", "outputs": ["https://evil.example/x.mp4"]}).encode()
        forged = client.post(
            "/webhooks/wavespeed",
            content=forged_body,
            headers={
                "webhook-id": "forged-1", "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v3," + "0" * 64, "content-type": "application/json",
            },
        )
        assert forged.status_code == 401 and forged.json()["code"] == "invalid_signature"
        assert client.get(location).json()["status"] == "submitted"

        started = time.monotonic()
        done = wait_for(
            lambda: (body := client.get(location).json())["status"] == "completed" and body,
            timeout=20, what="the webhook to complete the generation",
        )
        # Far sooner than the worker's next poll, which with webhooks is a safety net's (15 s).
        assert time.monotonic() - started < Policy().safety_first_poll_s / 2
        delivery = standin.webhooks[0]
        assert delivery.status == 200

        duplicate = client.post("/webhooks/wavespeed", content=delivery.body, headers=delivery.headers)
        redelivered = standin.deliver_webhook(task.id)
        events = client.get(f"{location}/events").json()["events"]

    assert done["task_id"] == task.id and done["stage"] == "Charged"
    assert duplicate.status_code == 200 and duplicate.json()["status"] == "duplicate"
    assert redelivered.status == 200
    assert [event["type"] for event in events].count("Charged") == 1
    kinds = [entry.kind for entry in standin.requests]
    # Polled only when the delivery woke the worker, which downloaded the video once.
    assert (kinds.count("submit"), kinds.count("poll"), kinds.count("download")) == (1, 1, 1)
