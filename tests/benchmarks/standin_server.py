"""The loopback WaveSpeed stand-in in a process of its own, so that what it costs never lands on the
process being measured (and, for B4, so that the video it serves is not in the downloader's memory).

    python -m tests.benchmarks.standin_server --task-seconds 2.0 [--video-bytes N]

Prints one JSON line {"url", "api_key"} when it listens. Then reads commands on stdin, one a line:
`stats` prints one JSON line of what it has served; `stop` (or end of input) stops it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from tests.support.wavespeed_standin import WaveSpeedStandIn


def stats(standin: WaveSpeedStandIn) -> dict[str, Any]:
    with standin._lock:
        requests = list(standin.requests)
        created = len(standin.tasks)
    kinds = Counter(entry.kind for entry in requests)
    failures = Counter(f"{entry.kind} {entry.status}" for entry in requests if not 200 <= entry.status < 300)
    times = [entry.time.timestamp() for entry in requests]
    return {
        "requests": len(requests),
        "kinds": dict(kinds),
        "failures": dict(failures),
        "created": created,
        "first_request_at": min(times) if times else None,
        "last_request_at": max(times) if times else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task-seconds", type=float, default=2.0)
    parser.add_argument("--video-bytes", type=int, default=0, help="serve this many bytes as every output")
    args = parser.parse_args()
    video = bytes(args.video_bytes) if args.video_bytes else None  # zeros: the content is not what is measured
    with WaveSpeedStandIn(task_seconds=args.task_seconds, video=video) as standin:
        print(json.dumps({"url": standin.url, "api_key": standin.api_key}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(json.dumps(stats(standin)), flush=True)
            elif command == "stop":
                break


if __name__ == "__main__":
    main()
