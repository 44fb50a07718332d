"""The composition root: the one place that picks adapters for the application's ports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers
from sqlalchemy import Engine

from domain.plan import LOCAL_PLAN
from application.advance_generation import AdvanceGeneration
from application.callers.image_studio import ImageStudio
from application.callers.podcast_maker import PodcastMaker
from application.callers.story_writer import StoryWriter
from application.callers.video_studio import VideoStudio
from application.cancel_generation import CancelGeneration
from application.charge_generation import ChargeGeneration
from application.event_log import EventLog
from application.export_audit import ExportAudit
from application.generate_video import GenerateVideo
from application.manage_plans import ManagePlans
from application.policy import Policy
from application.queries import GenerationQueries
from application.rebuild_projections import RebuildProjections
from application.request_generation import RequestGeneration
from application.submit_generation import SubmitGeneration
from application.track_generation import TrackGeneration
from application.verify_audit import VerifyAudit
from application.worker import Worker
from adapters.clock import SystemClock
from adapters.history.projection import SqlHistoryView
from adapters.library.assets import SqlAssetLibrary
from adapters.media.probe import PyAvMediaProbe
from adapters.media.sources import MediaSources
from adapters.persistence.database import creating_schema, database_url, event_store_env, read_engine, wal_journal
from adapters.persistence.tables import metadata
from adapters.reports.assets import SqlAssetIndex
from adapters.reports.usage import SqlUsageReport
from adapters.sandbox.provider import SandboxProvider
from adapters.settings import Settings
from adapters.storage.filesystem import FilesystemStorage
from adapters.usage.ledger import SqlUsageLedger
from adapters.usage.plans import SqlSubscriptionPlans
from adapters.wavespeed.client import WaveSpeedClient
from adapters.wavespeed.limits import TierLimits
from adapters.wavespeed.provider import WaveSpeedProvider
from adapters.work.leases import SqlLeases, new_holder


def _url(settings: Settings) -> str:
    url = database_url(settings.database_url, settings.data_path)
    wal_journal(url)
    return url


def _event_store_env(settings: Settings, url: str) -> dict[str, str]:
    key = settings.cipher_key.get_secret_value() if settings.cipher_key else None
    return event_store_env(url, cipher_key=key, compress=settings.compress)


def _read_tables(url: str) -> Engine:
    engine = read_engine(url)
    with creating_schema(engine) as connection:
        metadata.create_all(connection)
    return engine


def _policy(settings: Settings) -> Policy:
    return Policy(deadline_s=settings.deadline_s, max_download_bytes=settings.max_download_bytes)


def _data_path(settings: Settings, *parts: str) -> Path:
    path = settings.data_path.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _wavespeed_client(settings: Settings) -> WaveSpeedClient:
    assert settings.wavespeed_api_key is not None
    return WaveSpeedClient(settings.wavespeed_base_url, settings.wavespeed_api_key.get_secret_value())


def _webhook_url(settings: Settings) -> str | None:
    # Without the secret every delivery is refused, so WaveSpeed is not asked to send any.
    if not (settings.public_url and settings.wavespeed_webhook_secret):
        return None
    return f"{settings.public_url.rstrip('/')}/webhooks/wavespeed"


def _video_providers(settings: Settings, sandbox: Any, wavespeed: Callable[[], Any]) -> dict[str, Any]:
    chosen = {"sandbox": sandbox}
    if settings.wavespeed_api_key is not None:
        chosen["wavespeed"] = wavespeed()
    return chosen


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)
    url = providers.Singleton(_url, settings)
    events = providers.Singleton(EventLog, env=providers.Callable(_event_store_env, settings, url))
    engine = providers.Singleton(_read_tables, url)
    clock = providers.Singleton(SystemClock)
    policy = providers.Singleton(_policy, settings)

    storage = providers.Singleton(FilesystemStorage, root=providers.Callable(_data_path, settings))
    sources = providers.Singleton(MediaSources, allowed_hosts=settings.provided.allowed_input_hosts)
    probe = providers.Singleton(PyAvMediaProbe, locate=storage.provided.locate)
    assets = providers.Singleton(
        SqlAssetLibrary, engine, keep_prompts=providers.Callable(lambda settings: not settings.encrypted_at_rest, settings)
    )
    ledger = providers.Singleton(SqlUsageLedger, engine)
    plans = providers.Singleton(SqlSubscriptionPlans, engine, default=LOCAL_PLAN)
    history = providers.Singleton(SqlHistoryView, engine, events)
    usage_report = providers.Singleton(SqlUsageReport, engine, events)
    asset_index = providers.Singleton(SqlAssetIndex, engine, events)
    leases = providers.Singleton(SqlLeases, engine)

    sandbox = providers.Singleton(
        SandboxProvider,
        workdir=providers.Callable(_data_path, settings, "sandbox"),
        locate=storage.provided.locate,
    )
    wavespeed = providers.Singleton(
        WaveSpeedProvider,
        client=providers.Singleton(_wavespeed_client, settings),
        locate=storage.provided.locate,
        workdir=providers.Callable(_data_path, settings, "wavespeed"),
        limits=providers.Singleton(
            TierLimits,
            max_concurrent=settings.provided.wavespeed_max_concurrent,
            submits_per_minute=settings.provided.wavespeed_submits_per_minute,
        ),
        allowed_output_hosts=settings.provided.allowed_output_hosts,
        webhook_url=providers.Callable(_webhook_url, settings),
    )
    video_providers = providers.Singleton(_video_providers, settings, sandbox, wavespeed.provider)
    default_provider = providers.Callable(lambda settings: settings.provider_name, settings)
    configured_providers = providers.Callable(lambda settings: settings.configured_providers, settings)

    request_generation = providers.Singleton(
        RequestGeneration,
        log=events,
        storage=storage,
        sources=sources,
        probe=probe,
        plans=plans,
        clock=clock,
        policy=policy,
        default_provider=default_provider,
        configured_providers=configured_providers,
    )
    submit_generation = providers.Singleton(SubmitGeneration, events, video_providers, history, clock)
    charge_generation = providers.Singleton(ChargeGeneration, events, ledger)
    track_generation = providers.Singleton(
        TrackGeneration, events, video_providers, storage, probe, assets, clock, policy, charge_generation
    )
    advance_generation = providers.Singleton(
        AdvanceGeneration, events, submit_generation, track_generation, charge_generation
    )
    generate_video = providers.Singleton(GenerateVideo, request_generation, advance_generation, policy)
    video_studio = providers.Singleton(VideoStudio, generate_video)
    image_studio = providers.Singleton(ImageStudio, generate_video)
    story_writer = providers.Singleton(StoryWriter, generate_video)
    podcast_maker = providers.Singleton(PodcastMaker, generate_video)
    cancel_generation = providers.Singleton(CancelGeneration, events, video_providers)
    queries = providers.Singleton(GenerationQueries, events, storage, history, plans, clock)
    manage_plans = providers.Singleton(ManagePlans, plans)
    rebuild_projections = providers.Singleton(RebuildProjections, providers.List(history, usage_report, asset_index))
    export_audit = providers.Singleton(ExportAudit, events)
    verify_audit = providers.Singleton(VerifyAudit, events, ledger, assets, storage)
    worker = providers.Factory(
        Worker, advance=advance_generation, history=history, leases=leases, policy=policy, holder=providers.Callable(new_holder)
    )
