"""Use-case: make one video now: request it, then drive it to its end, reporting progress."""

from __future__ import annotations

import asyncio

from domain.generation import VideoGeneration
from application.advance_generation import AdvanceGeneration
from application.policy import Policy
from application.ports import Progress, TaskState
from application.request_generation import RequestGeneration
from application.requests import GenerationRequest


def _silent(fraction: float, message: str) -> None:
    return None


class GenerateVideo:
    """Requests a generation and advances it until it is completed, rejected, failed or cancelled.

    Progress goes from 0 to 1: 0.1 submitted, 0.2 to 0.8 while the provider works, 0.9 downloading,
    1.0 done (the old backend's percentages, divided by 100).
    """

    def __init__(self, request: RequestGeneration, advance: AdvanceGeneration, policy: Policy) -> None:
        self.request = request
        self.advance = advance
        self.policy = policy

    async def __call__(self, request: GenerationRequest, progress: Progress | None = None) -> VideoGeneration:
        report = progress or _silent
        generation = await self.request(request)
        return await self.drive(generation, report)

    async def drive(self, generation: VideoGeneration, progress: Progress) -> VideoGeneration:
        shown = 0.0

        def report(fraction: float, message: str) -> None:
            nonlocal shown
            shown = max(shown, fraction)
            progress(shown, message)

        if generation.is_finished:
            report(1.0, f"Generation {generation.status.value}")
            return generation
        report(0.05, "Validated")
        self.advance.take_up([generation])  # submitted by another process (a repeated request): polled here now
        delays = self.policy.poll_delays()
        polling = False
        # Its provider's report of the task's end goes to the server, which may end the generation itself: each poll
        # here then starts from the stored events, so the video is not downloaded a second time.
        reread = self.advance.is_told_when_done(generation)
        while not generation.is_finished:
            step = await self.advance(generation.id, report, generation, reread=reread and polling)
            generation = step.generation
            if generation.stage == "Submitted" and step.task is not None and step.task.state == TaskState.RUNNING:
                if not polling:
                    report(0.2, "Polling for result...")
                    polling = True
                done = step.task.progress or 0.0
                report(0.2 + 0.6 * min(max(done, 0.0), 1.0), f"Generating video ({done:.0%})")
                await asyncio.sleep(next(delays))
            elif generation.stage == "Submitted":
                report(0.1, f"Submitted to {generation.provider}")
            elif generation.stage == "Completed":
                report(0.95, "Video stored and registered")
        report(1.0, "Video generation completed!" if generation.status.value == "completed" else f"Generation {generation.status.value}")
        return generation
