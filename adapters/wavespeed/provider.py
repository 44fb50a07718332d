"""The VideoProvider port over WaveSpeed: bodies per model, uploads, polls mapped to task states,
downloads only from hosts it trusts, and the lookup that adopts a task instead of paying twice."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from application.ports import ProviderError, ProviderJob, TaskState
from adapters.wavespeed.client import WaveSpeedClient
from adapters.wavespeed.limits import TierLimits
from adapters.wavespeed.listing import TaskListing
from adapters.wavespeed.wire import request_body

UPLOAD_LIFETIME = dt.timedelta(days=6)
TERMINAL = ("completed", "failed", "cancelled", "timeout")
TASK_CODES = {
    1200: "moderation",
    1400: "invalid_input",
    1401: "invalid_input",
    1402: "invalid_input",
    1403: "provider_failure",
    1405: "provider_failure",
    5000: "provider_failure",
    5003: "provider_failure",
    5004: "provider_timeout",
}


class WaveSpeedProvider:
    name = "wavespeed"

    def __init__(
        self,
        client: WaveSpeedClient,
        locate: Callable[[str], str],
        workdir: Path,
        *,
        limits: TierLimits,
        allowed_output_hosts: Collection[str] = (),
        webhook_url: str | None = None,
        listing: TaskListing | None = None,
    ) -> None:
        self.client = client
        self.listing = listing or TaskListing(client)
        self.locate = locate
        self.uploads = workdir / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.limits = limits
        self.allowed_output_hosts = set(allowed_output_hosts) | {urlsplit(client.base_url).hostname or ""}
        self.webhook_url = webhook_url
        self._given_outputs: set[str] = set()

    @property
    def tells_when_done(self) -> bool:
        """Each submit asks WaveSpeed to deliver the task's end to our webhook."""
        return self.webhook_url is not None

    async def body_for(self, job: ProviderJob) -> dict[str, Any]:
        urls = {}
        for role, item in job.inputs.items():
            urls[role] = item.url if item.url and item.url.startswith("https://") else await self._uploaded(item.sha256, item.storage_key, item.mime)
        return request_body(job, urls)

    async def _uploaded(self, sha256: str, key: str, mime: str) -> str:
        # The same bytes get the same URL for the upload's lifetime, so a resubmitted body is identical
        # to the first one and the adoption rule can recognise it in WaveSpeed's history.
        record = self.uploads / f"{sha256}.json"
        if record.is_file():
            cached = json.loads(record.read_text())
            if dt.datetime.fromisoformat(cached["at"]) > dt.datetime.now(dt.timezone.utc) - UPLOAD_LIFETIME:
                return str(cached["url"])
        url = await self.client.upload(Path(self.locate(key)), mime)
        temp = record.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(json.dumps({"url": url, "at": dt.datetime.now(dt.timezone.utc).isoformat()}))
        os.replace(temp, record)
        return url

    async def submit(self, job: ProviderJob, before_sending: Callable[[], Awaitable[None]]) -> str:
        body = await self.body_for(job)
        await self.limits.admit()
        try:
            # A worker killed between its recorded attempt and the request leaves an attempt to look up, and two such
            # give the generation up: that window holds no more than the commit and the request itself.
            self.client.ready()
            await before_sending()
            data = await self.client.submit(job.model, body, self.webhook_url)
        except BaseException:
            await self.limits.withdraw()
            raise
        task_id = str(data["id"])
        await self.limits.started(task_id)
        self.listing.learn(task_id, data, model=job.model)
        return task_id

    def resume(self, task_id: str) -> None:
        self.limits.resumed(task_id)

    async def poll(self, task_id: str, *, alone: bool = False) -> TaskState:
        # Where deliveries say when a task ends, polls are few and each one matters: none waits to be shared.
        listed = await self.listing.answer(task_id) if not alone and self.webhook_url is None else None
        data = listed or await self.client.result(task_id)
        status = str(data.get("status", ""))
        if status not in TERMINAL:
            self.listing.learn(task_id, data)
            return TaskState(TaskState.RUNNING, progress=None, shared=listed is not None)
        await self.limits.ended(task_id)
        self.listing.forget(task_id)
        timings = dict(data.get("timings") or {})
        if data.get("executionTime") is not None:
            timings["execution"] = data["executionTime"]
        if status == "completed":
            outputs = tuple(str(url) for url in data.get("outputs") or ())
            if not outputs:
                return TaskState(
                    TaskState.FAILED, error_code="provider_failure",
                    error_message="WaveSpeed reported the task completed without any output", timings=timings,
                )
            self._given_outputs.update(outputs)
            return TaskState(
                TaskState.SUCCEEDED, progress=1.0, outputs=outputs, timings=timings,
                has_nsfw_contents=tuple(bool(flag) for flag in data.get("has_nsfw_contents") or ()),
            )
        code = data.get("code")
        error = str(data.get("error") or f"the task ended {status}")
        if status == "timeout":
            failure = "provider_timeout"
        elif status == "cancelled":
            failure = "provider_failure"
        else:
            failure = TASK_CODES.get(code if isinstance(code, int) else -1, "provider_failure")
        return TaskState(TaskState.FAILED, error_code=failure, error_message=f"WaveSpeed: {error}", timings=timings)

    def fetch(self, url: str) -> AsyncIterator[bytes]:
        parts = urlsplit(url)
        given = url in self._given_outputs and parts.scheme == "https"
        allowed = parts.hostname in self.allowed_output_hosts and parts.scheme in ("https", "http")
        if not (given or allowed):
            raise ProviderError(
                "download_failed",
                f"refusing to download from {parts.scheme}://{parts.hostname}: "
                "neither an https output WaveSpeed gave nor a host in VIDEOGEN_ALLOWED_OUTPUT_HOSTS",
            )
        return self.client.download(url)

    async def cancel(self, task_id: str) -> bool:
        await self.limits.ended(task_id)
        self.listing.forget(task_id)
        return False

    async def find_submitted(self, job: ProviderJob, since: dt.datetime, exclude: set[str]) -> list[str]:
        body = await self.body_for(job)
        now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
        items = await self.client.history(job.model, since, now)
        return [
            str(item["id"])
            for item in items
            if item.get("id") and str(item["id"]) not in exclude and item.get("input") == body
        ]
