"""Adapters ring: the offline sandbox provider, which behaves like a remote one.

A task outlives the process that submitted it: everything about it lives in files under the workdir, so a
CLI `submit` can return at once and a later `worker` process polls it to completion. The first poller
claims the task and renders it in a background thread; a claim whose process died (or stopped beating)
is taken over by the next poller.

Layout of the workdir:

    tasks/<id>.json       the submitted job (written once)
    tasks/<id>.lock       the claim of the process rendering it: {"pid", "heartbeat", "token"}
    tasks/<id>.progress   {"progress": fraction} while rendering, plus "inference_ms" once done
    tasks/<id>.failed     why the render failed
    tasks/<id>.cancelled  present once the task was cancelled
    tmp/<id>.<token>.mp4  a render in progress
    outputs/<id>.mp4      the finished video
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from application.ports import ProviderError, ProviderJob, TaskState
from domain.operation import Operation

CHUNK_BYTES = 1024 * 1024
STALE_AFTER_S = 30.0
HEARTBEAT_EVERY_S = 5.0
MAX_RENDERS_PER_PROCESS = 2

_TASK_ID = re.compile(r"^[0-9a-f]{32}$")
_URL = re.compile(r"^sandbox://([0-9a-f]{32})\.mp4$")

_MODELS: dict[str, tuple[Operation, tuple[str, ...]]] = {
    "sandbox/text-to-video": (Operation.TEXT_TO_VIDEO, ()),
    "sandbox/image-to-video": (Operation.IMAGE_TO_VIDEO, ("image",)),
    "sandbox/avatar": (Operation.AVATAR, ("image", "audio")),
    "sandbox/enhance": (Operation.ENHANCE, ("video",)),
}

# Per process, not per instance: the bound protects this machine's CPUs, whoever holds the provider.
_RENDER_SLOTS = threading.BoundedSemaphore(MAX_RENDERS_PER_PROCESS)


class _Cancelled(Exception):
    """Raised from the progress hook to abandon the render of a cancelled task."""


@dataclass
class _Render:
    """A render this process claimed: its claim token and how far it got."""

    token: str
    progress: float = 0.0
    cancelled: bool = False


@dataclass(frozen=True)
class _Claim:
    """What a lock file says, and the exact bytes it said it with (to take over only what was judged stale)."""

    raw: bytes
    pid: int | None
    heartbeat: float | None
    token: str | None
    modified: float


class SandboxProvider:
    name = "sandbox"
    tells_when_done = False

    def __init__(self, workdir: Path, locate: Callable[[str], str], *, render_in_process: bool = False) -> None:
        self._workdir = Path(workdir)
        self._locate = locate
        self._render_in_process = render_in_process
        self._tasks = self._workdir / "tasks"
        self._outputs = self._workdir / "outputs"
        self._tmp = self._workdir / "tmp"
        for folder in (self._tasks, self._outputs, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._renders: dict[str, _Render] = {}
        self._guard = threading.Lock()

    async def submit(self, job: ProviderJob, before_sending: Callable[[], Awaitable[None]]) -> str:
        operation = _operation_value(job.operation)
        known = _MODELS.get(job.model)
        if known is None:
            raise ProviderError("invalid_input", f"the sandbox has no model {job.model!r}; it has {', '.join(_MODELS)}")
        if known[0].value != operation:
            raise ProviderError("invalid_input", f"model {job.model!r} does {known[0].value}, not {operation}")
        missing = [role for role in known[1] if role not in job.inputs]
        if missing:
            raise ProviderError("invalid_input", f"{job.model} needs the input(s): {', '.join(missing)}")
        inputs: dict[str, str] = {}
        for role, given in job.inputs.items():
            try:
                inputs[role] = str(self._locate(given.storage_key))
            except (OSError, ValueError, KeyError) as error:
                raise ProviderError("invalid_input", f"input {role!r} cannot be found: {error}") from error
        await before_sending()
        task_id = uuid4().hex
        record = {
            "task_id": task_id,
            "state": "created",
            "model": job.model,
            "operation": operation,
            "prompt": job.prompt,
            "duration": float(job.duration),
            "width": int(job.width),
            "height": int(job.height),
            "inputs": inputs,
            "generation_id": str(job.generation_id),
            "created_at": datetime.now(UTC).isoformat(),
        }
        _write_atomic(self._task_file(task_id), json.dumps(record, indent=2).encode(), durable=True)
        return task_id

    async def poll(self, task_id: str, *, alone: bool = False) -> TaskState:
        record = self._record(task_id)
        finished = self._finished_state(task_id)
        if finished is not None:
            return finished
        with self._guard:
            mine = self._renders.get(task_id)
        if mine is not None:
            return TaskState(state=TaskState.RUNNING, progress=mine.progress)
        claim = self._claim(task_id)
        if claim is None:
            return TaskState(state=TaskState.RUNNING, progress=self._stored_progress(task_id))
        # Between our look and our claim another process may have finished the task and let go of it.
        finished = self._finished_state(task_id)
        if finished is not None:
            self._release(task_id, claim.token)
            return finished
        _write_atomic(self._progress_file(task_id), json.dumps({"progress": 0.0}).encode())
        with self._guard:
            self._renders[task_id] = claim
        if self._render_in_process:
            self._work(task_id, record, claim, limited=False)
            return self._finished_state(task_id) or TaskState(state=TaskState.RUNNING, progress=claim.progress)
        threading.Thread(
            target=self._work,
            args=(task_id, record, claim),
            kwargs={"limited": True},
            name=f"sandbox-render-{task_id[:8]}",
            # A process that polled once (a status command) must be free to exit; its claim then goes stale.
            daemon=True,
        ).start()
        return TaskState(state=TaskState.RUNNING, progress=0.0)

    async def fetch(self, url: str) -> AsyncIterator[bytes]:
        match = _URL.fullmatch(url)
        if match is None:
            raise ProviderError("download_failed", f"not a sandbox video url: {url!r}")
        task_id = match.group(1)
        if self._cancelled_file(task_id).exists():
            raise ProviderError("download_failed", f"task {task_id} was cancelled; it has no video")
        try:
            handle = await asyncio.to_thread(self._output_file(task_id).open, "rb")
        except FileNotFoundError:
            raise ProviderError("download_failed", f"task {task_id} has no video") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()

    def resume(self, task_id: str) -> None:
        """The sandbox renders without a tier's room to keep."""

    async def cancel(self, task_id: str) -> bool:
        _check_task_id(task_id)
        if not self._task_file(task_id).exists():
            return False
        _write_atomic(self._cancelled_file(task_id), datetime.now(UTC).isoformat().encode(), durable=True)
        with self._guard:
            mine = self._renders.get(task_id)
        if mine is not None:
            mine.cancelled = True
        return True

    async def find_submitted(self, job: ProviderJob, since: datetime, exclude: set[str]) -> list[str]:
        wanted = str(job.generation_id)
        since_utc = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        found: list[tuple[datetime, str]] = []
        for path in self._tasks.glob("*.json"):
            task_id = path.stem
            if not _TASK_ID.fullmatch(task_id) or task_id in exclude:
                continue
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if record.get("generation_id") != wanted:
                continue
            created = datetime.fromisoformat(record["created_at"])
            if created >= since_utc:
                found.append((created, task_id))
        return [task_id for _, task_id in sorted(found)]

    def _finished_state(self, task_id: str) -> TaskState | None:
        if self._cancelled_file(task_id).exists():
            return TaskState(state="cancelled", error_code="cancelled", error_message="the task was cancelled")
        if self._output_file(task_id).exists():
            inference = self._stored_progress_record(task_id).get("inference_ms")
            return TaskState(
                state=TaskState.SUCCEEDED,
                progress=1.0,
                outputs=(f"sandbox://{task_id}.mp4",),
                timings={} if inference is None else {"inference": inference},
            )
        try:
            why = self._failed_file(task_id).read_text()
        except FileNotFoundError:
            return None
        return TaskState(state=TaskState.FAILED, error_code="invalid_input", error_message=why)

    def _work(self, task_id: str, record: dict[str, Any], render: _Render, *, limited: bool) -> None:
        stop = threading.Event()
        beating = threading.Thread(
            target=self._beat, args=(task_id, render.token, stop), name=f"sandbox-beat-{task_id[:8]}", daemon=True
        )
        beating.start()
        partial = self._tmp / f"{task_id}.{render.token}.mp4"
        try:
            if limited:
                _RENDER_SLOTS.acquire()
            try:
                self._render(task_id, record, render, partial)
            finally:
                if limited:
                    _RENDER_SLOTS.release()
        finally:
            partial.unlink(missing_ok=True)
            stop.set()
            beating.join()
            self._release(task_id, render.token)
            with self._guard:
                self._renders.pop(task_id, None)

    def _render(self, task_id: str, record: dict[str, Any], render: _Render, partial: Path) -> None:
        def on_progress(fraction: float) -> None:
            if render.cancelled or self._cancelled_file(task_id).exists():
                raise _Cancelled
            render.progress = min(max(fraction, 0.0), 1.0)
            _write_atomic(self._progress_file(task_id), json.dumps({"progress": render.progress}).encode())

        started = time.monotonic()
        try:
            _run_renderer(record, partial, on_progress)
        except _Cancelled:
            return
        except Exception as error:  # noqa: BLE001 - any render failure is the task's failure, not the poller's
            if not self._cancelled_file(task_id).exists():
                _write_atomic(self._failed_file(task_id), _describe(error).encode(), durable=True)
            return
        if render.cancelled or self._cancelled_file(task_id).exists():
            return
        inference_ms = round((time.monotonic() - started) * 1000)
        _write_atomic(
            self._progress_file(task_id), json.dumps({"progress": 1.0, "inference_ms": inference_ms}).encode()
        )
        os.replace(partial, self._output_file(task_id))

    def _beat(self, task_id: str, token: str, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_EVERY_S):
            current = self._read_claim(task_id)
            if current is None or current.token != token:
                return
            _write_atomic(self._lock_file(task_id), _claim_bytes(token))

    def _claim(self, task_id: str) -> _Render | None:
        """This process's claim on rendering the task, or None when another live process holds it."""
        token = uuid4().hex
        if self._create_lock(task_id, token):
            return _Render(token=token)
        held = self._read_claim(task_id)
        if held is None:
            # The holder let go between our two looks; the next poll claims it.
            return None
        if not _is_stale(held):
            return None
        aside = self._tasks / f"{task_id}.lock.{token}.stale"
        try:
            os.rename(self._lock_file(task_id), aside)
        except FileNotFoundError:
            return None
        # Another poller may have taken over first, so what we moved aside may be its fresh claim: put it back.
        if aside.read_bytes() != held.raw:
            try:
                os.link(aside, self._lock_file(task_id))
            except FileExistsError:
                pass
            aside.unlink(missing_ok=True)
            return None
        aside.unlink(missing_ok=True)
        if held.token is not None and _TASK_ID.fullmatch(held.token):
            (self._tmp / f"{task_id}.{held.token}.mp4").unlink(missing_ok=True)
        if self._create_lock(task_id, token):
            return _Render(token=token)
        return None

    def _create_lock(self, task_id: str, token: str) -> bool:
        try:
            descriptor = os.open(self._lock_file(task_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(_claim_bytes(token))
        return True

    def _read_claim(self, task_id: str) -> _Claim | None:
        path = self._lock_file(task_id)
        try:
            raw = path.read_bytes()
            modified = path.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            content = json.loads(raw)
            pid, heartbeat, token = int(content["pid"]), float(content["heartbeat"]), str(content["token"])
        except (ValueError, KeyError, TypeError):
            # Just created and not yet written, or damaged: only its age can tell.
            return _Claim(raw=raw, pid=None, heartbeat=None, token=None, modified=modified)
        return _Claim(raw=raw, pid=pid, heartbeat=heartbeat, token=token, modified=modified)

    def _release(self, task_id: str, token: str) -> None:
        held = self._read_claim(task_id)
        if held is not None and held.token == token:
            self._lock_file(task_id).unlink(missing_ok=True)

    def _record(self, task_id: str) -> dict[str, Any]:
        _check_task_id(task_id)
        try:
            record: dict[str, Any] = json.loads(self._task_file(task_id).read_text())
        except FileNotFoundError:
            raise ProviderError("provider_failure", f"the sandbox has no task {task_id}") from None
        return record

    def _stored_progress_record(self, task_id: str) -> dict[str, Any]:
        try:
            stored: dict[str, Any] = json.loads(self._progress_file(task_id).read_text())
        except (OSError, ValueError):
            return {}
        return stored

    def _stored_progress(self, task_id: str) -> float:
        value = self._stored_progress_record(task_id).get("progress", 0.0)
        return float(value) if isinstance(value, int | float) else 0.0

    def _task_file(self, task_id: str) -> Path:
        return self._tasks / f"{task_id}.json"

    def _lock_file(self, task_id: str) -> Path:
        return self._tasks / f"{task_id}.lock"

    def _progress_file(self, task_id: str) -> Path:
        return self._tasks / f"{task_id}.progress"

    def _failed_file(self, task_id: str) -> Path:
        return self._tasks / f"{task_id}.failed"

    def _cancelled_file(self, task_id: str) -> Path:
        return self._tasks / f"{task_id}.cancelled"

    def _output_file(self, task_id: str) -> Path:
        return self._outputs / f"{task_id}.mp4"


def _run_renderer(record: dict[str, Any], out: Path, on_progress: Callable[[float], None]) -> None:
    # Imported here: numpy, Pillow and the renderers are needed only where a sandbox task is rendered, and every
    # command of the CLI (a WaveSpeed worker too) would otherwise load them at start.
    from adapters.sandbox.rendering import render_avatar, render_text_card, render_upscale, render_zoom

    operation = Operation(record["operation"])
    inputs: dict[str, str] = record["inputs"]
    width, height, seconds = int(record["width"]), int(record["height"]), float(record["duration"])
    if operation is Operation.TEXT_TO_VIDEO:
        render_text_card(
            out, text=record.get("prompt") or "", width=width, height=height, seconds=seconds, on_progress=on_progress
        )
    elif operation is Operation.IMAGE_TO_VIDEO:
        render_zoom(
            out, image=Path(inputs["image"]), width=width, height=height, seconds=seconds, on_progress=on_progress
        )
    elif operation is Operation.AVATAR:
        render_avatar(
            out,
            image=Path(inputs["image"]),
            audio=Path(inputs["audio"]),
            width=width,
            height=height,
            on_progress=on_progress,
        )
    else:
        render_upscale(out, video=Path(inputs["video"]), width=width, height=height, on_progress=on_progress)


def _is_stale(claim: _Claim) -> bool:
    now = time.time()
    if claim.pid is None or claim.heartbeat is None:
        return now - claim.modified > STALE_AFTER_S
    if now - claim.heartbeat > STALE_AFTER_S:
        return True
    # pid 0 and negative pids name process groups for os.kill; no claim can hold one.
    if claim.pid <= 0:
        return True
    try:
        os.kill(claim.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _claim_bytes(token: str) -> bytes:
    return json.dumps({"pid": os.getpid(), "heartbeat": time.time(), "token": token}).encode()


def _write_atomic(path: Path, data: bytes, *, durable: bool = False) -> None:
    temporary = path.with_name(f".{path.name}.{uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _check_task_id(task_id: str) -> None:
    if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
        raise ProviderError("provider_failure", f"not a sandbox task id: {task_id!r}")


def _operation_value(operation: object) -> str:
    return str(operation.value) if isinstance(operation, Operation) else str(operation)


def _describe(error: Exception) -> str:
    text = str(error).strip()
    return text or type(error).__name__
