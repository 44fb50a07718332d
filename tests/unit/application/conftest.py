"""Wires the real use-cases with the in-memory fakes, as adapters/container.py wires them with adapters."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.advance_generation import AdvanceGeneration
from application.cancel_generation import CancelGeneration
from application.charge_generation import ChargeGeneration
from application.event_log import EventLog
from application.generate_video import GenerateVideo
from application.manage_plans import ManagePlans
from application.policy import Policy
from application.queries import GenerationQueries
from application.request_generation import RequestGeneration
from application.requests import GenerationRequest
from application.submit_generation import SubmitGeneration
from application.track_generation import TrackGeneration
from domain.generation import VideoGeneration
from fakes import (
    FAKE_VIDEO,
    FakeAssets,
    FakeClock,
    FakeHistory,
    FakeLedger,
    FakePlans,
    FakeProbe,
    FakeSources,
    FakeStorage,
    ScriptedProvider,
)

FAST = Policy(deadline_s=600.0, max_download_bytes=10 * 1024 * 1024, first_poll_s=0.0, max_poll_s=0.0)


@dataclass
class World:
    log: EventLog
    storage: FakeStorage
    sources: FakeSources
    probe: FakeProbe
    assets: FakeAssets
    ledger: FakeLedger
    plans: FakePlans
    clock: FakeClock
    history: FakeHistory
    providers: dict[str, ScriptedProvider]
    policy: Policy
    request_generation: RequestGeneration
    submit: SubmitGeneration
    track: TrackGeneration
    charge: ChargeGeneration
    advance: AdvanceGeneration
    generate: GenerateVideo
    cancel: CancelGeneration
    queries: GenerationQueries
    manage_plans: ManagePlans

    @property
    def provider(self) -> ScriptedProvider:
        return self.providers["sandbox"]

    @property
    def wavespeed(self) -> ScriptedProvider:
        return self.providers["wavespeed"]

    def request(self, **fields: Any) -> VideoGeneration:
        """Records a request (text-to-video of 'a red fox' on the sandbox unless told otherwise)."""
        fields.setdefault("prompt", "a red fox running through snow")
        return run(self.request_generation(GenerationRequest(**fields)))

    def complete_without_charging(self, generation_id: UUID) -> VideoGeneration:
        """Advances a generation to `Submitted`, then saves its `Completed` alone, as a process did before `Completed`
        and `Charged` were saved together (or as one that stopped between the two left it)."""
        for _ in range(10):
            current = self.log.generation(generation_id)
            if current.stage == "Submitted":
                current.complete(
                    storage_key=f"videos/{generation_id}.mp4", sha256=hashlib.sha256(FAKE_VIDEO).hexdigest(),
                    bytes=len(FAKE_VIDEO), mime="video/mp4", width=current.width or 0, height=current.height or 0,
                    seconds=5.0, asset_id=uuid4(), outputs=[f"fake://{current.task_id}.mp4"], timings={},
                    has_nsfw_contents=[],
                )
                self.log.save(current)
                return current
            run(self.advance(generation_id))
        raise AssertionError(f"{generation_id} never reached Submitted")

    def quota(self, user_id: str = "local") -> Any:
        now = self.clock.now()
        return self.log.quota(user_id, f"{now.year:04d}-{now.month:02d}")


def run(awaitable: Any) -> Any:
    import asyncio

    return asyncio.run(awaitable)


def build(
    *,
    configured: Collection[str] = ("sandbox",),
    default_provider: str = "sandbox",
    policy: Policy = FAST,
) -> World:
    log = EventLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    storage = FakeStorage()
    sources = FakeSources()
    probe = FakeProbe()
    assets = FakeAssets()
    ledger = FakeLedger()
    plans = FakePlans()
    clock = FakeClock()
    history = FakeHistory(log)
    providers = {name: ScriptedProvider(name) for name in configured}
    request_generation = RequestGeneration(
        log=log,
        storage=storage,
        sources=sources,
        probe=probe,
        plans=plans,
        clock=clock,
        policy=policy,
        default_provider=default_provider,
        configured_providers=tuple(configured),
    )
    submit = SubmitGeneration(log, providers, history, clock)
    charge = ChargeGeneration(log, ledger)
    track = TrackGeneration(log, providers, storage, probe, assets, clock, policy, charge)
    advance = AdvanceGeneration(log, submit, track, charge)
    return World(
        log=log,
        storage=storage,
        sources=sources,
        probe=probe,
        assets=assets,
        ledger=ledger,
        plans=plans,
        clock=clock,
        history=history,
        providers=providers,
        policy=policy,
        request_generation=request_generation,
        submit=submit,
        track=track,
        charge=charge,
        advance=advance,
        generate=GenerateVideo(request_generation, advance, policy),
        cancel=CancelGeneration(log, providers),
        queries=GenerationQueries(log, storage, history, plans, clock),
        manage_plans=ManagePlans(plans),
    )


@pytest.fixture
def world() -> World:
    """Only the sandbox provider is configured (the offline default)."""
    return build()


@pytest.fixture
def paid_world() -> World:
    """The sandbox and a (scripted) WaveSpeed provider are configured: catalogue prices apply."""
    return build(configured=("sandbox", "wavespeed"))
