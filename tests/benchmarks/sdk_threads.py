"""B2's reference (b): the official WaveSpeed SDK (`wavespeed` on PyPI, a benchmark-only dependency)
running the same generations on one thread each, as its users would: `Client.run` (submit, then a poll
every `poll_interval`, its default 1 s) and the output fetched with requests into a file.

The SDK takes its base URL as `Client(base_url=...)`, so it is pointed at the loopback stand-in.

    python -m tests.benchmarks.sdk_threads BASE_URL API_KEY COUNT OUT_DIR
Prints one JSON line: {"completed", "failed", "bytes", "errors": [first few]}.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from wavespeed import Client

MODEL = "wavespeed-ai/hunyuan-video-1.5/text-to-video"
CHUNK = 1024 * 1024


def generate(client: Client, number: int, out: Path) -> int:
    output = client.run(MODEL, {"prompt": f"boat {number}", "duration": 5, "size": "832*480"})
    url = output["outputs"][0]
    size = 0
    with requests.get(url, stream=True, timeout=60) as response:
        response.raise_for_status()
        with open(out / f"{number}.mp4", "wb") as file:
            for chunk in response.iter_content(CHUNK):
                file.write(chunk)
                size += len(chunk)
    return size


def main(base: str, key: str, count: int, out: Path) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    client = Client(api_key=key, base_url=base)
    errors: list[str] = []
    sizes: list[int] = []
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(generate, client, number, out) for number in range(count)]
        for future in futures:
            try:
                sizes.append(future.result())
            except Exception as error:  # noqa: BLE001 - counted and reported
                errors.append(repr(error)[:200])
    return {"completed": len(sizes), "failed": len(errors), "bytes": sum(sizes), "errors": errors[:5]}


if __name__ == "__main__":
    base_url, api_key, how_many, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    print(json.dumps(main(base_url, api_key, how_many, folder)))
