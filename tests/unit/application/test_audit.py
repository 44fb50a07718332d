"""The audit use-cases with fakes: VerifyAudit reconciles events, ledger, library and storage; ExportAudit streams
the log; RebuildProjections clears and catches up; a user-scoped lookup; release-1 generations keep their keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

import application.event_log as event_log_module
from application.export_audit import ExportAudit
from application.ports import Charge, LedgerEntry, ProviderError
from application.rebuild_projections import RebuildProjections, Rebuilt
from application.verify_audit import AuditReport, Discrepancy, ProviderMayBill, VerifyAudit
from domain.errors import NotFound
from domain.generation import VideoGeneration
from conftest import World, run
from fakes import ended, running
from tests.support.release_1 import write_release_1

HUNYUAN = "wavespeed-ai/hunyuan-video-1.5/text-to-video"


def charged(world: World, user_id: str = "ana", duration: int = 5) -> VideoGeneration:
    generation = world.request(user_id=user_id, model=HUNYUAN, duration=duration, resolution="720p")
    generation = run(world.generate.drive(generation, lambda fraction, message: None))
    assert generation.stage == "Charged"
    return generation


def verify(world: World, ledger: object = None) -> AuditReport:
    return VerifyAudit(world.log, ledger or world.ledger, world.assets, world.storage)()  # type: ignore[arg-type]


def kinds(report: AuditReport) -> list[tuple[str, UUID]]:
    return [(found.kind, found.generation_id) for found in report.discrepancies]


def video_key(generation: VideoGeneration) -> str:
    assert generation.video is not None
    return generation.video["storage_key"]


class LedgerWithMore:
    """The world's ledger plus entries a broken book could hold (two for one generation, say)."""

    def __init__(self, world: World, *more: LedgerEntry) -> None:
        self.world = world
        self.more = more

    def ledger_entries(self) -> Iterator[LedgerEntry]:
        yield from self.world.ledger.ledger_entries()
        yield from self.more


# --- verify -----------------------------------------------------------------------------------------


def test_a_history_whose_books_and_files_agree_verifies_clean_and_counts_what_it_checked(paid_world: World) -> None:
    charged(paid_world, "ana")
    charged(paid_world, "bo", duration=8)
    paid_world.request(resolution="8k")  # rejected: nothing to reconcile
    paid_world.wavespeed.script = [running(0.2)]
    in_flight = paid_world.request(model=HUNYUAN, duration=5, resolution="720p")
    run(paid_world.advance(in_flight.id))

    report = verify(paid_world)

    assert report == AuditReport([], [], generations=4, charges=2, videos=2)
    assert report.ok


def test_a_charge_whose_ledger_entry_was_deleted_is_a_discrepancy_of_that_generation_only(paid_world: World) -> None:
    first, second = charged(paid_world), charged(paid_world)
    del paid_world.ledger.entries[second.id]

    report = verify(paid_world)

    assert not report.ok
    assert report.discrepancies == [
        Discrepancy("ledger_missing", second.id, "Charged $0.20 but the ledger has no entry")
    ]
    assert first.id not in {found.generation_id for found in report.discrepancies}


def test_a_ledger_entry_of_another_amount_is_a_discrepancy(paid_world: World) -> None:
    generation = charged(paid_world)
    entry_id, charge = paid_world.ledger.entries[generation.id]
    paid_world.ledger.entries[generation.id] = (entry_id, dataclasses.replace(charge, amount=Decimal("0.02")))

    report = verify(paid_world)

    assert kinds(report) == [("ledger_amount_mismatch", generation.id)]
    assert "$0.20" in report.discrepancies[0].detail and "$0.02" in report.discrepancies[0].detail


def test_the_same_amount_written_with_other_decimals_is_no_discrepancy(paid_world: World) -> None:
    generation = charged(paid_world)
    entry_id, charge = paid_world.ledger.entries[generation.id]
    paid_world.ledger.entries[generation.id] = (entry_id, dataclasses.replace(charge, amount=Decimal("0.2000")))

    assert verify(paid_world).ok


def test_a_ledger_entry_without_a_charge_is_a_discrepancy(paid_world: World) -> None:
    paid_world.wavespeed.script = [running(0.2)]
    in_flight = paid_world.request(model=HUNYUAN, duration=5, resolution="720p")
    paid_world.ledger.record(
        Charge(generation_id=in_flight.id, user_id="local", period="2031-01", provider="wavespeed", model=HUNYUAN,
               amount=Decimal("0.20"), seconds=5.0)
    )
    stranger = uuid4()
    paid_world.ledger.record(
        Charge(generation_id=stranger, user_id="mallory", period="2031-01", provider="wavespeed", model=HUNYUAN,
               amount=Decimal("9.99"), seconds=5.0)
    )

    report = verify(paid_world)

    assert kinds(report) == [("ledger_without_charge", in_flight.id), ("ledger_without_charge", stranger)]
    assert "mallory" in report.discrepancies[1].detail


def test_two_ledger_entries_for_one_charge_are_a_discrepancy(paid_world: World) -> None:
    generation = charged(paid_world)
    twice = LedgerEntry(uuid4(), generation.id, "ana", Decimal("0.20"))

    report = verify(paid_world, LedgerWithMore(paid_world, twice))

    assert kinds(report) == [("ledger_duplicate", generation.id)]


def test_a_completed_video_missing_from_the_library_or_under_another_id_is_a_discrepancy(paid_world: World) -> None:
    missing, other_id, other_hash = charged(paid_world), charged(paid_world), charged(paid_world)
    del paid_world.assets.assets[missing.id]
    paid_world.assets.assets[other_id.id] = (uuid4(), paid_world.assets.assets[other_id.id][1])
    asset_id, asset = paid_world.assets.assets[other_hash.id]
    paid_world.assets.assets[other_hash.id] = (asset_id, dataclasses.replace(asset, sha256="0" * 64))

    report = verify(paid_world)

    assert kinds(report) == [
        ("asset_missing", missing.id), ("asset_mismatch", other_id.id), ("asset_mismatch", other_hash.id)
    ]


def test_a_stored_video_altered_by_one_byte_or_removed_is_a_discrepancy(paid_world: World) -> None:
    altered, removed, intact = charged(paid_world), charged(paid_world), charged(paid_world)
    data = bytearray(paid_world.storage.objects[video_key(altered)])
    data[-1] ^= 0xFF
    paid_world.storage.objects[video_key(altered)] = bytes(data)
    del paid_world.storage.objects[video_key(removed)]

    report = verify(paid_world)

    assert kinds(report) == [("file_altered", altered.id), ("file_missing", removed.id)]
    assert video_key(altered) in report.discrepancies[0].detail
    assert intact.id not in {found.generation_id for found in report.discrepancies}


def test_generations_that_ended_while_the_provider_may_bill_are_listed_but_are_not_discrepancies(
    paid_world: World,
) -> None:
    paid_world.wavespeed.download_error = ProviderError("download_failed", "HTTP 403 from the CDN")
    download_failed = run(paid_world.generate.drive(
        paid_world.request(model=HUNYUAN, duration=5, resolution="720p"), lambda fraction, message: None
    ))
    paid_world.wavespeed.download_error = None
    paid_world.wavespeed.script = [running(0.2)]
    paid_world.wavespeed.cancel_result = False
    submitted = paid_world.request(model=HUNYUAN, duration=5, resolution="720p")
    run(paid_world.advance(submitted.id))
    run(paid_world.cancel(submitted.id, reason="no longer needed"))
    paid_world.wavespeed.script = [ended("failed", "provider_failure")]
    run(paid_world.generate.drive(
        paid_world.request(model=HUNYUAN, duration=5, resolution="720p"), lambda fraction, message: None
    ))  # failed, and the provider said so: it does not bill

    report = verify(paid_world)

    assert report.ok
    assert report.provider_may_bill == [
        ProviderMayBill(download_failed.id, "download_failed", "HTTP 403 from the CDN"),
        ProviderMayBill(submitted.id, "cancelled", "no longer needed"),
    ]


# --- export -----------------------------------------------------------------------------------------


def test_the_export_holds_every_event_of_every_generation_in_the_order_of_the_log_and_no_quota_event(
    paid_world: World,
) -> None:
    first = charged(paid_world, "ana")
    rejected = paid_world.request(user_id="bo", resolution="8k")
    second = charged(paid_world, "bo")

    exported = list(ExportAudit(paid_world.log)())

    expected = [
        (event.originator_id, event.originator_version, type(event).__name__)
        for notification in paid_world.log.recorder.select_notifications(start=1, limit=1000)
        if isinstance(event := paid_world.log.mapper.to_domain_event(notification), VideoGeneration.Event)
    ]
    assert [(view.generation_id, view.version, view.type) for view in exported] == expected
    assert {view.generation_id for view in exported} == {first.id, rejected.id, second.id}
    for generation in (first, rejected, second):
        versions = [view.version for view in exported if view.generation_id == generation.id]
        assert versions == list(range(1, generation.version + 1))
    assert exported[0].fields["prompt"] == "a red fox running through snow"


def test_the_export_of_one_user_holds_all_of_their_events_and_none_of_anyone_elses(paid_world: World) -> None:
    ana = charged(paid_world, "ana")
    charged(paid_world, "bo")
    ana_rejected = paid_world.request(user_id="ana", resolution="8k")

    exported = list(ExportAudit(paid_world.log)(user_id="ana"))

    assert {view.generation_id for view in exported} == {ana.id, ana_rejected.id}
    assert len(exported) == ana.version + ana_rejected.version
    assert list(ExportAudit(paid_world.log)(user_id="carla")) == []


def test_an_export_since_a_moment_holds_the_events_from_then_on(world: World) -> None:
    before = world.request(prompt="before")
    after = world.request(prompt="after")
    since = next(iter(world.log.events.get(after.id))).timestamp

    exported = list(ExportAudit(world.log)(since=since))

    assert {view.generation_id for view in exported} == {after.id}
    assert before.id not in {view.generation_id for view in exported}


def test_the_export_reads_the_log_a_batch_at_a_time(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_log_module, "READ_BATCH", 2)
    for index in range(3):
        world.request(prompt=f"fox {index}")  # 2 events each
    reads: list[int] = []
    real = world.log.recorder.select_notifications

    def counted(*args: object, **kwargs: object) -> object:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        reads.append(len(found))
        return found

    monkeypatch.setattr(world.log.recorder, "select_notifications", counted)
    export = ExportAudit(world.log)()

    next(export)
    assert reads == [2]
    assert len(list(export)) == 5
    assert reads == [2, 2, 2, 0]


# --- rebuild ----------------------------------------------------------------------------------------


class FakeProjection:
    def __init__(self, name: str, log: list[str], last: int) -> None:
        self.name = name
        self.log = log
        self.last = last
        self.at = 7

    def clear(self) -> None:
        self.log.append(f"clear {self.name}")
        self.at = 0

    def catch_up(self) -> None:
        self.log.append(f"catch up {self.name}")
        self.at = self.last

    def position(self) -> int:
        return self.at


def test_rebuilding_clears_each_projection_before_catching_it_up_and_reports_where_each_stands() -> None:
    calls: list[str] = []
    projections = [FakeProjection("history", calls, 12), FakeProjection("usage", calls, 11)]

    rebuilt = RebuildProjections(projections)()

    assert calls == ["clear history", "catch up history", "clear usage", "catch up usage"]
    assert rebuilt == [Rebuilt("history", 12), Rebuilt("usage", 11)]


# --- isolation --------------------------------------------------------------------------------------


def test_a_user_scoped_lookup_finds_the_users_own_generation_and_no_one_elses(world: World) -> None:
    own = world.request(user_id="ana")
    other = world.request(user_id="bo")

    assert world.queries.generation_for("ana", own.id).generation_id == own.id
    with pytest.raises(NotFound) as raised:
        world.queries.generation_for("ana", other.id)
    with pytest.raises(NotFound) as unknown:
        world.queries.generation_for("ana", uuid4())
    assert raised.value.code == unknown.value.code == "not_found"
    assert str(other.id) in raised.value.message and "bo" not in raised.value.message


def test_usage_of_one_user_never_counts_another_users_calls_or_dollars(paid_world: World) -> None:
    charged(paid_world, "ana")
    charged(paid_world, "ana")
    paid_world.wavespeed.script = [running(0.2)]
    paid_world.request(user_id="bo", model=HUNYUAN, duration=5, resolution="720p")

    ana, bo, carla = (paid_world.queries.usage(user) for user in ("ana", "bo", "carla"))

    assert (ana.calls, ana.spent, ana.reserved) == (2, Decimal("0.40"), Decimal("0"))
    assert (bo.calls, bo.spent, bo.reserved) == (1, Decimal("0"), Decimal("0.20"))
    assert (carla.calls, carla.spent, carla.reserved) == (0, Decimal("0"), Decimal("0"))


# --- release 1 --------------------------------------------------------------------------------------


def test_a_release_1_generation_is_returned_for_its_idempotency_key_though_it_has_no_fingerprint(world: World) -> None:
    ids = write_release_1(world.log.recorder)

    again = world.request(user_id="ana", idempotency_key="order-7", prompt="whatever release 2 is asked")

    assert again.id == ids["ana_validated"]
    assert (again.version, again.prompt, again.fingerprint) == (2, "a square test card", None)
