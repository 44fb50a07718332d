"""`videogen serve` as a user runs it: a generation over HTTP, its video streamed back, its events replayed."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import VIDEOGEN, Cli

pytestmark = pytest.mark.e2e

RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@pytest.fixture
def server(cli: Cli) -> Iterator[str]:
    process = subprocess.Popen(
        [VIDEOGEN, "serve", "--host", "127.0.0.1", "--port", "0"],
        cwd=cli.home, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True)  # type: ignore[union-attr]
    reader.start()
    url = None
    deadline = time.monotonic() + 30
    while url is None and time.monotonic() < deadline:
        try:
            match = RUNNING.search(lines.get(timeout=0.5))
        except queue.Empty:
            assert process.poll() is None, "videogen serve exited at start"
            continue
        url = match.group(1) if match else None
    assert url, "videogen serve did not say where it listens"
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal: killed by SIGTERM, as a server should be.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        reader.join(timeout=10)
        said = []
        while not lines.empty():
            said.append(lines.get())
        assert any("Application shutdown complete" in line for line in said), said


def test_videogen_serve_accepts_a_generation_streams_its_video_and_replays_its_events(server: str, cli: Cli) -> None:
    with httpx.Client(base_url=server, headers={"X-User-Id": "ana"}, timeout=30) as client:
        answer = client.post("/generations", json={"prompt": "a paper boat", "resolution": "480p", "duration": 1})
        assert answer.status_code == 202, answer.text
        location = answer.headers["location"]
        deadline = time.monotonic() + 60
        while (body := client.get(location).json())["status"] != "completed":
            assert body["status"] in ("validated", "submitted"), body
            assert time.monotonic() < deadline, body
            time.sleep(0.2)
        video = client.get(f"{location}/video")
        part = client.get(f"{location}/video", headers={"Range": "bytes=10-19"})
        events = client.get(f"{location}/events").json()
        schema = client.get("/openapi.json")

    stored = Path(body["file_path"]).read_bytes()
    assert Path(body["file_path"]).is_relative_to(cli.data)
    assert video.content == stored and part.status_code == 206 and part.content == stored[10:20]
    assert [event["type"] for event in events["events"]] == [
        "Requested", "Validated", "SubmitAttempted", "Submitted", "Completed", "Charged",
    ]
    assert schema.status_code == 200


def test_serving_on_a_port_in_use_exits_2_naming_the_address(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        run = cli("serve", "--host", "127.0.0.1", "--port", str(port), timeout=60)

    assert run.code == 2
    assert f"error: invalid_value: cannot serve on 127.0.0.1:{port}" in run.stderr
    assert "Traceback" not in run.stderr
