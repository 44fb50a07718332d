"""Driving a generation: GenerateVideo, AdvanceGeneration, SubmitGeneration, TrackGeneration and
ChargeGeneration, against a scripted provider that fails in every way the money rules care about."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from decimal import Decimal
from uuid import uuid4

import pytest

from application.event_log import Decided, InHand
from application.ports import Charge, ProviderError, TaskState
from application.provider_job import job_for
from application.requests import GenerationRequest
from application.submit_generation import CLOCK_SKEW, MAX_ATTEMPTS
from domain.errors import NotFound
from domain.generation import VideoGeneration
from domain.plan import Plan
from conftest import FAST, World, build, run
from fakes import (
    FAKE_VIDEO,
    ended,
    event_names,
    events_of,
    only,
    running,
    succeeded,
    succeeded_without_outputs,
)

HUNYUAN = "wavespeed-ai/hunyuan-video-1.5/text-to-video"
LIFE = ["Requested", "Validated", "SubmitAttempted", "Submitted", "Completed", "Charged"]


def paid_request(world: World, **fields: object) -> VideoGeneration:
    return world.request(model=HUNYUAN, duration=5, resolution="720p", **fields)  # quote $0.20


def drive(world: World, generation: VideoGeneration) -> VideoGeneration:
    return run(world.generate.drive(generation, lambda fraction, message: None))


def advance_until(world: World, generation: VideoGeneration, stage: str, steps: int = 10) -> VideoGeneration:
    for _ in range(steps):
        current = world.log.generation(generation.id)
        if current.stage == stage:
            return current
        run(world.advance(generation.id))
    raise AssertionError(f"never reached {stage}: {event_names(world.log, generation.id)}")


def assert_failed_and_released(world: World, generation: VideoGeneration, code: str, *, may_bill: bool) -> None:
    stored = world.log.generation(generation.id)
    assert stored.stage == "Failed"
    failed = only(world.log, generation.id, "Failed")
    assert failed.code == code
    assert failed.provider_may_bill is may_bill
    assert events_of(world.log, generation.id, "Charged") == []
    assert events_of(world.log, generation.id, "Completed") == []
    assert world.ledger.entries == {}
    quota = world.quota(stored.user_id)
    assert not quota.holds(generation.id)
    assert (quota.reserved, quota.spent, quota.calls) == (Decimal("0"), Decimal("0"), 0)


# --- the happy path -------------------------------------------------------------------------------


def test_the_happy_path_records_the_whole_life_stores_registers_and_charges_once(paid_world: World) -> None:
    fractions: list[float] = []
    request = GenerationRequest(model=HUNYUAN, prompt="a red fox in snow", duration=5, resolution="720p")

    generation = run(paid_world.generate(request, lambda fraction, message: fractions.append(fraction)))

    assert generation.stage == "Charged"
    assert event_names(paid_world.log, generation.id) == LIFE
    # The video is stored once, whole, under the user's folder.
    video_keys = paid_world.storage.keys_under("videos/")
    assert paid_world.storage.puts == video_keys and len(video_keys) == 1
    assert paid_world.storage.objects[video_keys[0]] == FAKE_VIDEO
    completed = only(paid_world.log, generation.id, "Completed")
    assert completed.storage_key == video_keys[0]
    assert completed.sha256 == hashlib.sha256(FAKE_VIDEO).hexdigest()
    assert completed.bytes == len(FAKE_VIDEO)
    # One asset, one ledger entry for the charged amount, the reservation settled.
    assert paid_world.assets.registrations == 1
    assert completed.asset_id == paid_world.assets.for_generation(generation.id)
    charged = only(paid_world.log, generation.id, "Charged")
    assert charged.amount == Decimal("0.20")
    assert list(paid_world.ledger.entries) == [generation.id]
    entry_id, charge = paid_world.ledger.entries[generation.id]
    assert charge.amount == charged.amount
    assert charged.ledger_entry_id == entry_id
    quota = paid_world.quota()
    assert (quota.spent, quota.reserved, quota.calls) == (Decimal("0.20"), Decimal("0"), 1)
    # One task, submitted once.
    assert len(paid_world.wavespeed.submitted) == 1
    assert paid_world.wavespeed.submitted[0].generation_id == generation.id
    assert len(paid_world.wavespeed.tasks) == 1
    # Progress rises from 0 to 1.0 and ends there.
    assert fractions, "no progress was reported"
    assert all(0.0 <= fraction <= 1.0 for fraction in fractions)
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert fractions.count(1.0) == 1


def test_progress_follows_the_providers_progress_while_it_works(world: World) -> None:
    world.provider.script = [running(0.0), running(0.25), running(0.75), succeeded()]
    fractions: list[float] = []

    run(world.generate(GenerationRequest(prompt="a fox"), lambda fraction, message: fractions.append(fraction)))

    assert [f for f in fractions if 0.3 < f < 0.7] == [pytest.approx(0.35), pytest.approx(0.65)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_progress_never_goes_back_even_when_the_providers_progress_does(world: World) -> None:
    world.provider.script = [running(0.8), running(0.1), succeeded()]
    fractions: list[float] = []

    run(world.generate(GenerationRequest(prompt="a fox"), lambda fraction, message: fractions.append(fraction)))

    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)


def test_the_asset_describes_the_stored_video(paid_world: World) -> None:
    generation = drive(paid_world, paid_request(paid_world, user_id="alice", source_module="shorts"))

    asset_id, asset = paid_world.assets.assets[generation.id]
    completed = only(paid_world.log, generation.id, "Completed")
    assert (asset.user_id, asset.source_module, asset.operation) == ("alice", "shorts", "text-to-video")
    assert asset.storage_key == completed.storage_key
    assert asset.file_path == paid_world.storage.locate(completed.storage_key)
    assert (asset.sha256, asset.bytes, asset.mime) == (completed.sha256, completed.bytes, "video/mp4")
    assert (asset.provider, asset.model, asset.cost) == ("wavespeed", HUNYUAN, Decimal("0.20"))
    assert asset.metadata["task_id"] == generation.task_id


def test_a_rejected_request_is_returned_at_once_with_progress_at_the_end(world: World) -> None:
    fractions: list[float] = []

    generation = run(world.generate(GenerationRequest(prompt=""), lambda fraction, message: fractions.append(fraction)))

    assert generation.stage == "Rejected"
    assert fractions == [1.0]
    assert world.provider.submitted == []


# --- the provider fails ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ending", "code"),
    [
        (ended("failed", "content_policy_violation", "the prompt was flagged"), "content_policy_violation"),
        (ended("failed", None), "provider_failure"),
        (ended("cancelled", "cancelled"), "cancelled"),
        (ended("timeout", None, "the task timed out"), "provider_failure"),
    ],
    ids=["failed with a code", "failed without a code", "cancelled", "timeout"],
)
def test_a_provider_failure_ends_failed_with_its_code_and_releases_the_reservation(
    paid_world: World, ending: object, code: str
) -> None:
    paid_world.wavespeed.script = [running(0.1), ending]  # type: ignore[list-item]

    generation = drive(paid_world, paid_request(paid_world))

    assert_failed_and_released(paid_world, generation, code, may_bill=False)
    assert only(paid_world.log, generation.id, "Failed").stage == "Submitted"
    assert paid_world.storage.keys_under("videos/") == []
    assert paid_world.assets.registrations == 0


def test_a_submit_the_provider_refuses_ends_failed_and_releases(paid_world: World) -> None:
    paid_world.wavespeed.refuse_next_submit(ProviderError("invalid_input", "the prompt is too long for this model"))

    generation = drive(paid_world, paid_request(paid_world))

    assert_failed_and_released(paid_world, generation, "invalid_input", may_bill=False)
    assert event_names(paid_world.log, generation.id) == ["Requested", "Validated", "SubmitAttempted", "Failed"]
    assert len(paid_world.wavespeed.submitted) == 1
    assert paid_world.wavespeed.tasks == {}


def test_a_refused_submit_that_says_the_provider_may_bill_is_recorded_so(paid_world: World) -> None:
    paid_world.wavespeed.refuse_next_submit(ProviderError("provider_failure", "HTTP 500 after upload", may_bill=True))

    generation = drive(paid_world, paid_request(paid_world))

    assert_failed_and_released(paid_world, generation, "provider_failure", may_bill=True)


def test_completed_without_outputs_ends_failed_with_provider_failure(paid_world: World) -> None:
    paid_world.wavespeed.script = [succeeded_without_outputs()]

    generation = drive(paid_world, paid_request(paid_world))

    assert_failed_and_released(paid_world, generation, "provider_failure", may_bill=True)
    assert paid_world.wavespeed.fetched == []


def test_a_download_failure_ends_failed_with_download_failed_and_the_provider_may_bill(paid_world: World) -> None:
    paid_world.wavespeed.download_error = ProviderError("download_failed", "HTTP 403 from the CDN")

    generation = drive(paid_world, paid_request(paid_world))

    assert_failed_and_released(paid_world, generation, "download_failed", may_bill=True)
    assert paid_world.storage.keys_under("videos/") == []
    assert paid_world.assets.registrations == 0


def test_a_download_over_the_allowed_size_ends_failed_and_stores_nothing() -> None:
    world = build(configured=("sandbox", "wavespeed"), policy=replace(FAST, max_download_bytes=1000))

    generation = drive(world, paid_request(world))

    assert_failed_and_released(world, generation, "download_failed", may_bill=True)
    assert world.storage.keys_under("videos/") == []
    assert world.assets.registrations == 0


def test_an_output_that_is_not_a_playable_video_ends_failed_and_is_not_registered(paid_world: World) -> None:
    paid_world.probe.undecodable.add("videos/")

    generation = drive(paid_world, paid_request(paid_world))

    assert_failed_and_released(paid_world, generation, "provider_failure", may_bill=True)
    assert paid_world.assets.registrations == 0


def test_the_stored_video_is_probed_off_the_event_loop_thread(paid_world: World) -> None:
    drive(paid_world, paid_request(paid_world))

    assert paid_world.probe.probed and threading.main_thread().name not in paid_world.probe.threads


# --- the deadline ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("stopped", "may_bill"), [(True, False), (False, True)], ids=["provider stops", "provider cannot stop"])
def test_past_the_deadline_a_submitted_generation_ends_failed_with_deadline_exceeded(
    paid_world: World, stopped: bool, may_bill: bool
) -> None:
    paid_world.wavespeed.script = [running(0.3)]
    paid_world.wavespeed.cancel_result = stopped
    generation = paid_request(paid_world)
    run(paid_world.advance(generation.id))  # submitted
    run(paid_world.advance(generation.id))  # still running
    paid_world.clock.advance(paid_world.policy.deadline_s + 1)

    run(paid_world.advance(generation.id))

    assert_failed_and_released(paid_world, generation, "deadline_exceeded", may_bill=may_bill)
    deadline = paid_world.log.generation(generation.id).deadline
    assert f"no result by {deadline:%Y-%m-%dT%H:%M:%S}Z" in (paid_world.log.generation(generation.id).error or {})["message"]
    task_id = paid_world.log.generation(generation.id).task_id
    assert paid_world.wavespeed.cancel_calls == [task_id]
    assert paid_world.wavespeed.tasks[task_id].polls == 2, "one last poll at the deadline, none after"


def test_just_before_the_deadline_the_task_is_still_polled(paid_world: World) -> None:
    paid_world.wavespeed.script = [running(0.3)]
    generation = paid_request(paid_world)
    run(paid_world.advance(generation.id))
    paid_world.clock.advance(paid_world.policy.deadline_s - 1)

    step = run(paid_world.advance(generation.id))

    assert step.generation.stage == "Submitted"
    assert step.task is not None and step.task.progress == 0.3


def test_a_validated_generation_past_its_deadline_is_failed_without_being_submitted(paid_world: World) -> None:
    generation = paid_request(paid_world)
    paid_world.clock.advance(paid_world.policy.deadline_s + 1)

    run(paid_world.advance(generation.id))

    assert paid_world.wavespeed.submitted == []
    assert_failed_and_released(paid_world, generation, "deadline_exceeded", may_bill=False)
    assert (paid_world.log.generation(generation.id).error or {})["message"].endswith("Z")


# --- unknown submit outcomes ----------------------------------------------------------------------


def test_an_unknown_submit_outcome_whose_task_was_created_is_adopted(paid_world: World) -> None:
    paid_world.wavespeed.lose_next_answer(create_task=True)

    generation = drive(paid_world, paid_request(paid_world))

    assert len(paid_world.wavespeed.submitted) == 1, "submitted a second time"
    assert len(paid_world.wavespeed.tasks) == 1
    (task_id,) = paid_world.wavespeed.tasks
    submitted = only(paid_world.log, generation.id, "Submitted")
    assert (submitted.task_id, submitted.adopted) == (task_id, True)
    assert generation.stage == "Charged"
    assert only(paid_world.log, generation.id, "Charged").amount == Decimal("0.20")


def test_an_adopted_task_takes_its_providers_room_as_a_submitted_one_does(paid_world: World) -> None:
    paid_world.wavespeed.lose_next_answer(create_task=True)
    generation = paid_request(paid_world)

    run(paid_world.advance(generation.id))

    (task_id,) = paid_world.wavespeed.tasks
    assert only(paid_world.log, generation.id, "Submitted").adopted is True
    assert paid_world.wavespeed.resumed == [task_id]


def test_a_task_sent_from_here_is_not_resumed(paid_world: World) -> None:
    generation = drive(paid_world, paid_request(paid_world))

    assert only(paid_world.log, generation.id, "Submitted").adopted is False
    assert paid_world.wavespeed.resumed == []


def test_driving_a_generation_another_process_submitted_takes_its_providers_room(paid_world: World) -> None:
    submitted = advance_until(paid_world, paid_request(paid_world), "Submitted")

    assert drive(paid_world, submitted).stage == "Charged"
    assert paid_world.wavespeed.resumed == [submitted.task_id]


def test_an_unknown_submit_outcome_without_a_task_is_submitted_again_exactly_once(paid_world: World) -> None:
    paid_world.wavespeed.lose_next_answer(create_task=False)
    generation = paid_request(paid_world)

    run(paid_world.advance(generation.id))

    assert len(paid_world.wavespeed.submitted) == 2
    assert len(paid_world.wavespeed.tasks) == 1
    (task_id,) = paid_world.wavespeed.tasks
    submitted = only(paid_world.log, generation.id, "Submitted")
    assert (submitted.task_id, submitted.adopted) == (task_id, False)
    assert [event.attempt for event in events_of(paid_world.log, generation.id, "SubmitAttempted")] == [1, 2]
    assert drive(paid_world, paid_world.log.generation(generation.id)).stage == "Charged"
    assert len(paid_world.wavespeed.submitted) == 2


def test_the_task_lookup_starts_before_the_recorded_attempt_and_skips_tasks_of_other_generations(
    paid_world: World,
) -> None:
    other = drive(paid_world, paid_request(paid_world, prompt="someone else's fox"))
    paid_world.wavespeed.lose_next_answer(create_task=True)
    generation = paid_request(paid_world)

    run(paid_world.advance(generation.id))

    generation_id, since, exclude = paid_world.wavespeed.find_calls[-1]
    attempted = only(paid_world.log, generation.id, "SubmitAttempted")
    assert generation_id == generation.id
    assert since == attempted.timestamp - CLOCK_SKEW
    assert other.task_id in exclude


def test_several_tasks_matching_an_unknown_submit_end_failed_unknown_submit_outcome(paid_world: World) -> None:
    generation = paid_request(paid_world)
    paid_world.wavespeed.create_task(job_for(generation))  # a twin the lookup cannot tell apart
    paid_world.wavespeed.lose_next_answer(create_task=True)

    drive(paid_world, generation)

    assert_failed_and_released(paid_world, generation, "unknown_submit_outcome", may_bill=True)
    assert len(paid_world.wavespeed.submitted) == 1
    assert only(paid_world.log, generation.id, "Failed").stage == "SubmitAttempted"


def test_an_unreadable_task_history_ends_failed_unknown_submit_outcome_without_a_second_submit(paid_world: World) -> None:
    paid_world.wavespeed.lose_next_answer(create_task=False)
    paid_world.wavespeed.find_error = ProviderError("provider_failure", "HTTP 503 on the history endpoint")

    generation = drive(paid_world, paid_request(paid_world))

    assert_failed_and_released(paid_world, generation, "unknown_submit_outcome", may_bill=True)
    assert len(paid_world.wavespeed.submitted) == 1


def test_unknown_outcomes_again_and_again_stop_after_the_attempt_limit(paid_world: World) -> None:
    for _ in range(MAX_ATTEMPTS + 2):
        paid_world.wavespeed.lose_next_answer(create_task=False)

    generation = drive(paid_world, paid_request(paid_world))

    assert_failed_and_released(paid_world, generation, "unknown_submit_outcome", may_bill=True)
    assert len(paid_world.wavespeed.submitted) == MAX_ATTEMPTS
    assert len(events_of(paid_world.log, generation.id, "SubmitAttempted")) == MAX_ATTEMPTS


# --- crashes --------------------------------------------------------------------------------------


def crash_after_recording_the_attempt(world: World, generation: VideoGeneration) -> VideoGeneration:
    """What a process leaves behind when it dies after saving SubmitAttempted (never submitting itself)."""
    fresh = world.log.generation(generation.id)
    fresh.attempt_submit()
    world.log.save(fresh)
    return fresh


def test_a_crash_after_the_attempt_is_resolved_by_adopting_the_task_that_reached_the_provider(paid_world: World) -> None:
    generation = paid_request(paid_world)
    attempted = crash_after_recording_the_attempt(paid_world, generation)
    task_id = paid_world.wavespeed.create_task(job_for(attempted))  # the request reached the server

    run(paid_world.advance(generation.id))

    assert paid_world.wavespeed.submitted == [], "a blind second submit"
    submitted = only(paid_world.log, generation.id, "Submitted")
    assert (submitted.task_id, submitted.adopted) == (task_id, True)
    assert paid_world.wavespeed.resumed == [task_id]
    assert drive(paid_world, paid_world.log.generation(generation.id)).stage == "Charged"
    assert paid_world.wavespeed.submitted == []


def test_a_crash_after_the_attempt_with_no_task_at_the_provider_is_submitted_once(paid_world: World) -> None:
    generation = paid_request(paid_world)
    crash_after_recording_the_attempt(paid_world, generation)

    run(paid_world.advance(generation.id))

    assert len(paid_world.wavespeed.submitted) == 1
    assert len(paid_world.wavespeed.find_calls) == 1
    submitted = only(paid_world.log, generation.id, "Submitted")
    assert submitted.adopted is False
    assert [event.attempt for event in events_of(paid_world.log, generation.id, "SubmitAttempted")] == [1, 2]


def test_the_step_that_completes_a_generation_charges_it_in_the_same_save(
    paid_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    generation = paid_request(paid_world)
    paid_world.wavespeed.script = [succeeded()]
    run(paid_world.submit(generation.id))
    saves: list[list[str]] = []
    commit = paid_world.log.commit

    async def counted(*aggregates: object, **kwargs: object) -> list[object]:
        saves.append([type(event).__name__ for aggregate in aggregates for event in aggregate._pending_events])  # type: ignore[attr-defined]
        return await commit(*aggregates, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(paid_world.log, "commit", counted)

    step = run(paid_world.track(generation.id))

    assert step.generation.stage == "Charged"
    assert saves == [["Completed", "Charged", "Settled"]]
    assert len(paid_world.ledger.entries) == 1
    quota = paid_world.quota()
    assert (quota.spent, quota.reserved) == (Decimal("0.20"), Decimal("0"))


def test_a_crash_before_the_charge_is_finished_by_the_next_advance(paid_world: World) -> None:
    generation = paid_request(paid_world)
    paid_world.complete_without_charging(generation.id)  # the process died here

    run(paid_world.advance(generation.id))

    assert paid_world.log.generation(generation.id).stage == "Charged"
    assert len(paid_world.ledger.entries) == 1


def test_a_charge_interrupted_after_the_ledger_entry_finishes_with_that_same_entry(paid_world: World) -> None:
    generation = paid_request(paid_world)
    completed = paid_world.complete_without_charging(generation.id)
    entry_id = paid_world.ledger.record(
        Charge(completed.id, completed.user_id, completed.period or "", "wavespeed", HUNYUAN, Decimal("0.20"), 5.0)
    )

    run(paid_world.charge(generation.id))

    assert len(paid_world.ledger.entries) == 1
    assert only(paid_world.log, generation.id, "Charged").ledger_entry_id == entry_id


# --- exactly once ---------------------------------------------------------------------------------


def test_running_charge_generation_twice_charges_once(paid_world: World) -> None:
    generation = paid_request(paid_world)
    paid_world.complete_without_charging(generation.id)

    first = run(paid_world.charge(generation.id))
    second = run(paid_world.charge(generation.id))

    assert first.stage == second.stage == "Charged"
    assert len(events_of(paid_world.log, generation.id, "Charged")) == 1
    assert len(paid_world.ledger.entries) == 1
    quota = paid_world.quota()
    assert (quota.spent, quota.reserved) == (Decimal("0.20"), Decimal("0"))


def test_charging_a_generation_that_is_not_completed_does_nothing(paid_world: World) -> None:
    generation = paid_request(paid_world)

    run(paid_world.charge(generation.id))

    assert paid_world.log.generation(generation.id).stage == "Validated"
    assert paid_world.ledger.calls == 0


def test_submitting_a_generation_already_submitted_does_nothing(paid_world: World) -> None:
    generation = paid_request(paid_world)
    run(paid_world.submit(generation.id))
    version = paid_world.log.generation(generation.id).version

    run(paid_world.submit(generation.id))

    assert paid_world.log.generation(generation.id).version == version
    assert len(paid_world.wavespeed.submitted) == 1


@pytest.mark.parametrize("ending", ["Charged", "Failed", "Rejected", "Cancelled"])
def test_advancing_a_finished_generation_changes_nothing(paid_world: World, ending: str) -> None:
    if ending == "Failed":
        paid_world.wavespeed.script = [ended("failed", "provider_failure")]
    if ending == "Rejected":
        generation = paid_world.request(resolution="8k")
    else:
        generation = paid_request(paid_world)
    if ending == "Cancelled":
        run(paid_world.cancel(generation.id))
    generation = drive(paid_world, generation)
    assert generation.stage == ending
    before = event_names(paid_world.log, generation.id)
    calls = (len(paid_world.wavespeed.submitted), sum(t.polls for t in paid_world.wavespeed.tasks.values()))
    stored, ledger, registrations = dict(paid_world.storage.objects), dict(paid_world.ledger.entries), paid_world.assets.registrations
    quota = paid_world.quota()
    quota_state = (quota.calls, quota.reserved, quota.spent)

    for _ in range(3):
        step = run(paid_world.advance(generation.id))
        assert step.generation.stage == ending

    assert event_names(paid_world.log, generation.id) == before
    assert (len(paid_world.wavespeed.submitted), sum(t.polls for t in paid_world.wavespeed.tasks.values())) == calls
    assert paid_world.storage.objects == stored
    assert paid_world.ledger.entries == ledger
    assert paid_world.assets.registrations == registrations
    quota = paid_world.quota()
    assert (quota.calls, quota.reserved, quota.spent) == quota_state


def test_advancing_an_unknown_generation_raises_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        run(world.advance(uuid4()))


def test_two_generations_in_flight_do_not_mix_their_tasks_or_videos(paid_world: World) -> None:
    first = paid_request(paid_world, prompt="first fox")
    second = paid_request(paid_world, prompt="second fox")
    for _ in range(6):
        run(paid_world.advance(first.id))
        run(paid_world.advance(second.id))

    a, b = paid_world.log.generation(first.id), paid_world.log.generation(second.id)
    assert a.stage == b.stage == "Charged"
    assert a.task_id != b.task_id
    assert a.video is not None and b.video is not None
    assert a.video["storage_key"] != b.video["storage_key"]
    assert paid_world.quota().spent == Decimal("0.40")


def test_a_fresh_world_shares_nothing_with_another() -> None:
    one, two = build(), build()
    generation = one.request()

    assert not two.log.has_generation(generation.id)


def test_a_hostile_user_id_cannot_steer_where_the_video_is_stored(world: World) -> None:
    generation = drive(world, world.request(user_id="../../etc/passwd"))

    (key,) = world.storage.keys_under("videos/")
    assert key == only(world.log, generation.id, "Completed").storage_key
    parts = key.split("/")
    assert parts[0] == "videos" and len(parts) == 3
    assert ".." not in parts and not key.startswith("/")
    assert parts[2] == f"text-to-video-{generation.id}.mp4"


def test_a_failed_generation_gives_its_call_back_to_the_plan(world: World) -> None:
    world.plans.set_plan("local", Plan("one-call", calls_limit=1))
    world.provider.script = [ended("failed", "provider_failure")]
    failed = drive(world, world.request())

    retry = world.request(prompt="try again")

    assert failed.stage == "Failed"
    assert retry.stage == "Validated"


def test_a_task_that_succeeded_by_the_deadline_is_kept_not_thrown_away(paid_world: World) -> None:
    paid_world.wavespeed.script = [running(0.3), succeeded()]
    generation = paid_request(paid_world)
    run(paid_world.advance(generation.id))  # submitted
    run(paid_world.advance(generation.id))  # running
    paid_world.clock.advance(paid_world.policy.deadline_s + 1)

    finished = drive(paid_world, paid_world.log.generation(generation.id))

    assert finished.stage == "Charged"
    assert paid_world.wavespeed.cancel_calls == []


def test_a_failing_poll_keeps_the_task_and_polls_again_instead_of_failing(paid_world: World) -> None:
    paid_world.wavespeed.script = [running(0.3), succeeded()]
    generation = paid_request(paid_world)
    run(paid_world.advance(generation.id))  # submitted
    paid_world.wavespeed.poll_error = ProviderError("provider_failure", "HTTP 503, retries ran out")

    step = run(paid_world.advance(generation.id))

    assert step.generation.stage == "Submitted"
    paid_world.wavespeed.poll_error = None
    assert drive(paid_world, step.generation).stage == "Charged"
    assert len(paid_world.wavespeed.submitted) == 1


@pytest.mark.parametrize(("stopped", "may_bill"), [(True, False), (False, True)])
def test_a_poll_failing_past_the_deadline_ends_the_generation_and_asks_the_provider_to_stop_its_task(
    paid_world: World, stopped: bool, may_bill: bool
) -> None:
    paid_world.wavespeed.cancel_result = stopped
    generation = paid_request(paid_world)
    run(paid_world.advance(generation.id))  # submitted
    paid_world.wavespeed.poll_error = ProviderError("provider_failure", "HTTP 503, retries ran out")
    paid_world.clock.advance(paid_world.policy.deadline_s + 1)

    step = run(paid_world.advance(generation.id))

    assert_failed_and_released(paid_world, generation, "provider_failure", may_bill=may_bill)
    assert paid_world.wavespeed.cancel_calls == [step.generation.task_id]


def test_a_rejected_key_makes_polling_fail_at_once_with_provider_unauthorized(paid_world: World) -> None:
    generation = paid_request(paid_world)
    run(paid_world.advance(generation.id))  # submitted
    paid_world.wavespeed.poll_error = ProviderError("provider_unauthorized", "HTTP 401")

    step = run(paid_world.advance(generation.id))

    assert step.generation.stage == "Failed"
    assert step.generation.error is not None and step.generation.error["code"] == "provider_unauthorized"


# --- a copy in hand ------------------------------------------------------------------------------------


def test_a_stale_copy_in_hand_loses_its_save_and_the_step_is_decided_from_the_store(paid_world: World) -> None:
    generation = paid_request(paid_world)
    submitted = advance_until(paid_world, generation, "Submitted")
    paid_world.wavespeed.cancel_result = False  # the provider cannot stop it: its task succeeds anyway
    paid_world.wavespeed.tasks[submitted.task_id or ""].script = [succeeded()]
    run(paid_world.cancel(generation.id, reason="changed my mind"))

    step = run(paid_world.advance(generation.id, known=submitted))

    assert step.generation.stage == "Cancelled"
    assert event_names(paid_world.log, generation.id)[-1] == "Cancelled"
    assert "Completed" not in event_names(paid_world.log, generation.id)


def test_a_copy_in_hand_that_needs_no_change_is_checked_against_the_store(paid_world: World) -> None:
    generation = paid_request(paid_world)
    completed = paid_world.complete_without_charging(generation.id)
    stale = paid_world.log.generation(generation.id)
    run(paid_world.advance(generation.id))  # another step charged it meanwhile
    assert paid_world.log.generation(generation.id).stage == "Charged"

    charged = run(paid_world.charge(generation.id, stale))

    assert charged.stage == "Charged"
    assert len(paid_world.ledger.entries) == 1
    assert event_names(paid_world.log, generation.id).count("Charged") == 1
    assert completed.stage == "Completed"


def test_a_lent_copy_that_would_change_nothing_is_decided_again_from_the_store(world: World) -> None:
    generation = world.request()
    stale = world.log.generation(generation.id)
    current = world.log.generation(generation.id)
    current.attempt_submit()
    world.log.save(current)
    hand = InHand(world.log, stale)

    def decision() -> Decided[str]:
        return Decided(hand.generation(generation.id).stage)

    assert run(world.log.decide(decision, hand)) == "SubmitAttempted"


def test_a_shared_answer_that_a_task_still_runs_past_its_deadline_is_checked_with_the_tasks_own_first(
    paid_world: World,
) -> None:
    shared_running = lambda task_id: TaskState(TaskState.RUNNING, progress=0.3, shared=True)  # noqa: E731
    paid_world.wavespeed.script = [running(0.3), shared_running, succeeded()]
    generation = paid_request(paid_world)
    run(paid_world.advance(generation.id))  # submitted
    run(paid_world.advance(generation.id))  # still running
    paid_world.clock.advance(paid_world.policy.deadline_s + 1)

    step = run(paid_world.advance(generation.id))

    assert step.generation.stage == "Charged"
    assert paid_world.wavespeed.polled_alone == [False, False, True]
    assert paid_world.wavespeed.cancel_calls == []
