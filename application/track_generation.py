"""Use-case: ask the provider how a submitted generation is doing; when done, keep, register and charge its video.

`Completed` is recorded only after the video is stored whole (with its sha256), in one transaction with its asset
and with `Charged`, its ledger entry and the quota settled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal
from uuid import UUID

from domain.generation import VideoGeneration
from domain.quota import quota_id
from application.charge_generation import ChargeGeneration
from application.event_log import Decided, EventLog, InHand
from application.fail_generation import fail_generation
from application.policy import Policy
from application.ports import (
    Asset,
    AssetLibrary,
    Clock,
    InputTooBig,
    MediaProbe,
    Progress,
    ProviderError,
    TaskState,
    VideoProvider,
    VideoStorage,
)
from application.storage_keys import video_key

log = logging.getLogger("videogen")


@dataclass(frozen=True)
class Tracked:
    generation: VideoGeneration
    task: TaskState | None = None


class TrackGeneration:
    """Polls once; ends the generation on the provider's verdict or on its deadline.

    A generation that completes is charged in the same save (`charge`'s bill): nothing is ever delivered and left
    unbilled, and the worker makes one save and one step less per generation.
    """

    def __init__(
        self,
        events: EventLog,
        providers: Mapping[str, VideoProvider],
        storage: VideoStorage,
        probe: MediaProbe,
        assets: AssetLibrary,
        clock: Clock,
        policy: Policy,
        charge: ChargeGeneration,
    ) -> None:
        self.events = events
        self.providers = providers
        self.storage = storage
        self.probe = probe
        self.assets = assets
        self.clock = clock
        self.policy = policy
        self.charge = charge

    def is_told_when_done(self, generation: VideoGeneration) -> bool:
        """Whether the generation's provider reports its task's end to this service: polls are then a safety net."""
        provider = self.providers.get(generation.provider)
        return provider is not None and provider.tells_when_done

    def resume(self, generation: VideoGeneration) -> None:
        """Tells the provider of the submitted generation's task, which this process is about to poll."""
        if generation.stage == "Submitted" and generation.task_id is not None and generation.provider in self.providers:
            self.providers[generation.provider].resume(generation.task_id)

    async def let_go(self, generation: VideoGeneration) -> None:
        """Tells the provider that this process polls the generation's task no more (it ended elsewhere): the
        provider stops it if it still runs and frees its place."""
        if generation.task_id is not None:
            await self.providers[generation.provider].cancel(generation.task_id)

    async def __call__(
        self, generation_id: UUID, progress: Progress | None = None, known: VideoGeneration | None = None
    ) -> Tracked:
        """`known` may be a copy already in hand: polling writes nothing, and every write is checked against the
        stored version (a stale copy loses its save and the step is decided again from the store)."""
        generation = self.events.generation(generation_id, known=known)
        if generation.stage != "Submitted":
            return Tracked(generation)
        assert generation.task_id is not None and generation.deadline is not None
        provider = self.providers[generation.provider]
        try:
            task = await provider.poll(generation.task_id)
        except ProviderError as error:
            if error.code == "provider_unauthorized" or self.clock.now() > generation.deadline:
                # Ended here, its task is polled no more: the provider stops it if it can, and frees its place.
                stopped = await provider.cancel(generation.task_id)
                return Tracked(
                    await fail_generation(
                        self.events, generation.id, code=error.code, message=error.message, may_bill=not stopped
                    )
                )
            log.warning("poll of %s failed (%s); the task is kept and polled again", generation.id, error.code)
            return Tracked(generation, TaskState(TaskState.RUNNING))
        if task.state == TaskState.RUNNING and task.shared and self.clock.now() > generation.deadline:
            try:
                task = await provider.poll(generation.task_id, alone=True)
            except ProviderError:
                pass  # the deadline has passed either way; the answer in hand stands
        if task.state == TaskState.RUNNING:
            if self.clock.now() > generation.deadline:
                stopped = await provider.cancel(generation.task_id)
                return Tracked(
                    await fail_generation(
                        self.events,
                        generation.id,
                        code="deadline_exceeded",
                        message=f"no result by {generation.deadline.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
                        + ("" if stopped else "; the provider's task may still run and bill"),
                        may_bill=not stopped,
                    ),
                    task,
                )
            return Tracked(generation, task)
        if task.state != TaskState.SUCCEEDED:
            return Tracked(
                await fail_generation(
                    self.events,
                    generation.id,
                    code=task.error_code or "provider_failure",
                    message=task.error_message or f"the provider's task ended {task.state}",
                    may_bill=False,
                ),
                task,
            )
        if not task.outputs:
            return Tracked(
                await fail_generation(
                    self.events, generation.id, code="provider_failure",
                    message="the provider reported completion without any output", may_bill=True,
                ),
                task,
            )
        if progress:
            progress(0.9, "Downloading generated video...")
        return Tracked(await self._keep(generation, provider, task), task)

    async def _keep(self, generation: VideoGeneration, provider: VideoProvider, task: TaskState) -> VideoGeneration:
        key = video_key(generation.user_id, generation.operation, generation.id)
        try:
            stored = await self.storage.put(key, provider.fetch(task.outputs[0]), max_bytes=self.policy.max_download_bytes)
        except ProviderError as error:
            return await fail_generation(self.events, generation.id, code="download_failed", message=error.message, may_bill=True)
        except InputTooBig as error:
            return await fail_generation(
                self.events, generation.id, code="download_failed",
                message=f"the video is larger than the {error.limit} bytes allowed", may_bill=True,
            )
        try:
            # Off the event loop: probing reads the file (all of it, when its header gives no duration).
            facts = await asyncio.to_thread(self.probe.probe, key)
        except ValueError:
            return await fail_generation(
                self.events, generation.id, code="provider_failure",
                message="the provider's output is not a playable video", may_bill=True,
            )
        asset_id, registration = self.assets.registration(
            Asset(
                generation_id=generation.id,
                user_id=generation.user_id,
                source_module=generation.source_module,
                operation=generation.operation,
                storage_key=key,
                file_path=stored.location,
                file_url=f"/generations/{generation.id}/video",
                bytes=stored.bytes,
                mime="video/mp4",
                sha256=stored.sha256,
                prompt=generation.prompt,
                provider=generation.provider,
                model=generation.model or "",
                cost=generation.quote if generation.quote is not None else Decimal("0"),
                generation_seconds=(self.clock.now() - generation.created_on).total_seconds(),
                metadata={
                    "task_id": generation.task_id,
                    "resolution": generation.resolution,
                    "width": facts.width,
                    "height": facts.height,
                    "seconds": facts.seconds,
                },
            )
        )

        seconds = round(facts.seconds or 0.0, 3)
        bill = self.charge.bill(generation, seconds)
        hand = InHand(self.events, generation)

        def decision() -> Decided[VideoGeneration]:
            current = hand.generation(generation.id)
            if current.stage != "Submitted":
                return Decided(current)
            current.complete(
                storage_key=key,
                sha256=stored.sha256,
                bytes=stored.bytes,
                mime="video/mp4",
                width=facts.width or current.width or 0,
                height=facts.height or current.height or 0,
                seconds=seconds,
                asset_id=asset_id,
                outputs=list(task.outputs),
                timings=dict(task.timings),
                has_nsfw_contents=list(task.has_nsfw_contents),
            )
            quota = self.charge.charged(current, bill)
            return Decided(current, (current, quota), (registration, bill.entry))

        assert generation.period is not None
        return await self.events.decide(decision, hand, shared=(quota_id(generation.user_id, generation.period),))
