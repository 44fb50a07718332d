"""The VideoGeneration aggregate: which events may follow which, what each one leaves behind, replay."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.errors import AlreadyFinished
from domain.generation import (
    ALLOWED_AFTER,
    Status,
    TransitionNotAllowed,
    VideoGeneration,
    generation_id_for,
)

DEADLINE = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
LEDGER_ENTRY = UUID("11111111-2222-3333-4444-555555555555")
ASSET = UUID("99999999-8888-7777-6666-555555555555")

STAGES = (
    "Requested", "Validated", "Rejected", "SubmitAttempted", "Submitted",
    "Completed", "Charged", "Failed", "Cancelled",
)
TERMINAL_STAGES = ("Rejected", "Charged", "Failed", "Cancelled")

# The rules as the brief states them, written out independently of domain.generation.
EXPECTED_ALLOWED_AFTER = {
    "Validated": {"Requested"},
    "Rejected": {"Requested"},
    "SubmitAttempted": {"Validated", "SubmitAttempted"},
    "Submitted": {"SubmitAttempted"},
    "Completed": {"Submitted"},
    "Charged": {"Completed"},
    "Failed": {"Validated", "SubmitAttempted", "Submitted"},
    "Cancelled": {"Requested", "Validated", "SubmitAttempted", "Submitted"},
}

EXPECTED_STATUS = {
    "Requested": Status.REQUESTED,
    "Validated": Status.VALIDATED,
    "Rejected": Status.REJECTED,
    "SubmitAttempted": Status.VALIDATED,
    "Submitted": Status.SUBMITTED,
    "Completed": Status.SUBMITTED,
    "Charged": Status.COMPLETED,
    "Failed": Status.FAILED,
    "Cancelled": Status.CANCELLED,
}


def request_fields(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = dict(
        user_id="alice",
        source_module="tests",
        operation="text-to-video",
        provider="wavespeed",
        model="hunyuan-video-1.5",
        prompt="a red fox running through snow",
        negative_prompt=None,
        duration=5.0,
        resolution="720p",
        aspect_ratio=None,
        seed=42,
        options={"generate_audio": False},
        inputs={},
        idempotency_key="order-17",
        fingerprint="fp-1",
    )
    fields.update(changes)
    return fields


def new_generation(generation_id: UUID | None = None) -> VideoGeneration:
    return VideoGeneration.request(generation_id or uuid4(), **request_fields())


def validate(g: VideoGeneration) -> None:
    g.validate(
        provider="wavespeed",
        model="wavespeed-ai/hunyuan-video-1.5/text-to-video",
        aspect_ratio="16:9",
        duration=5.0,
        resolution="720p",
        width=1280,
        height=720,
        quote=Decimal("0.20"),
        period="2026-03",
        deadline=DEADLINE,
    )


def reject(g: VideoGeneration) -> None:
    g.reject(code="unknown_model", field="model", message="unknown model 'x'")


def attempt(g: VideoGeneration) -> None:
    g.attempt_submit()


def submitted(g: VideoGeneration) -> None:
    g.mark_submitted(task_id="task-123")


def complete(g: VideoGeneration) -> None:
    g.complete(
        storage_key="videos/abc.mp4",
        sha256="ab" * 32,
        bytes=123_456,
        mime="video/mp4",
        width=1280,
        height=720,
        seconds=5.0,
        asset_id=ASSET,
        outputs=["https://cdn.example/abc.mp4"],
        timings={"inference": 4200},
        has_nsfw_contents=[False],
    )


def charge(g: VideoGeneration) -> None:
    g.charge(amount=Decimal("0.20"), ledger_entry_id=LEDGER_ENTRY)


def fail(g: VideoGeneration) -> None:
    g.fail(code="provider_failure", message="boom", provider_may_bill=False)


def cancel(g: VideoGeneration) -> None:
    g.cancel(reason="the user changed their mind")


COMMANDS: dict[str, Callable[[VideoGeneration], None]] = {
    "Validated": validate,
    "Rejected": reject,
    "SubmitAttempted": attempt,
    "Submitted": submitted,
    "Completed": complete,
    "Charged": charge,
    "Failed": fail,
    "Cancelled": cancel,
}

PATHS: dict[str, tuple[Callable[[VideoGeneration], None], ...]] = {
    "Requested": (),
    "Validated": (validate,),
    "Rejected": (reject,),
    "SubmitAttempted": (validate, attempt),
    "Submitted": (validate, attempt, submitted),
    "Completed": (validate, attempt, submitted, complete),
    "Charged": (validate, attempt, submitted, complete, charge),
    "Failed": (validate, fail),
    "Cancelled": (cancel,),
}


def at_stage(stage: str) -> VideoGeneration:
    g = new_generation()
    for step in PATHS[stage]:
        step(g)
    assert g.stage == stage
    return g


def event_names(g: VideoGeneration) -> list[str]:
    return [type(e).__name__ for e in g.collect_events()]


def replay(events: list) -> VideoGeneration:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    assert aggregate is not None
    return aggregate


# --- the transition table -------------------------------------------------------------------

def test_the_transition_table_is_the_one_the_design_describes() -> None:
    assert {name: set(stages) for name, stages in ALLOWED_AFTER.items()} == EXPECTED_ALLOWED_AFTER


ALLOWED_CASES = [(name, stage) for name, stages in EXPECTED_ALLOWED_AFTER.items() for stage in sorted(stages)]
FORBIDDEN_CASES = [
    (name, stage) for name, stages in EXPECTED_ALLOWED_AFTER.items() for stage in STAGES if stage not in stages
]


@pytest.mark.parametrize(("event_name", "stage"), ALLOWED_CASES)
def test_every_allowed_transition_records_its_event_and_moves_to_its_stage(event_name: str, stage: str) -> None:
    g = at_stage(stage)
    version = g.version

    COMMANDS[event_name](g)

    assert g.stage == event_name
    assert g.version == version + 1
    assert event_names(g)[-1] == event_name


@pytest.mark.parametrize(("event_name", "stage"), FORBIDDEN_CASES)
def test_every_forbidden_transition_is_refused_and_records_nothing(event_name: str, stage: str) -> None:
    g = at_stage(stage)
    version = g.version
    expected = AlreadyFinished if stage in TERMINAL_STAGES or stage == "Completed" else TransitionNotAllowed

    with pytest.raises(expected) as raised:
        COMMANDS[event_name](g)

    # exactly the expected class (AlreadyFinished and TransitionNotAllowed are unrelated)
    assert type(raised.value) is expected
    assert g.stage == stage
    assert g.version == version
    assert len(g.collect_events()) == version


def test_a_forbidden_transition_names_the_event_and_the_stage() -> None:
    g = at_stage("Validated")
    with pytest.raises(TransitionNotAllowed) as raised:
        g.mark_submitted(task_id="t")
    assert raised.value.event_name == "Submitted"
    assert raised.value.stage == "Validated"
    assert "Submitted" in str(raised.value) and "Validated" in str(raised.value)


# --- the happy path and the statuses ---------------------------------------------------------

def test_a_generation_goes_from_requested_to_charged_through_every_stage_in_order() -> None:
    g = new_generation()
    for step in PATHS["Charged"]:
        step(g)
    assert event_names(g) == ["Requested", "Validated", "SubmitAttempted", "Submitted", "Completed", "Charged"]
    assert g.status is Status.COMPLETED
    assert g.is_finished


@pytest.mark.parametrize("stage", STAGES)
def test_the_status_after_each_event_is_the_one_the_contract_names(stage: str) -> None:
    g = at_stage(stage)
    assert g.status is EXPECTED_STATUS[stage]


def test_a_completed_video_is_still_reported_as_submitted_until_it_is_charged() -> None:
    g = at_stage("Completed")
    assert g.status.value == "submitted"
    assert not g.is_finished
    charge(g)
    assert g.status.value == "completed"


@pytest.mark.parametrize("stage", STAGES)
def test_only_rejected_charged_failed_and_cancelled_generations_are_finished(stage: str) -> None:
    assert at_stage(stage).is_finished is (stage in TERMINAL_STAGES)


def test_a_new_generation_carries_what_was_asked_and_nothing_decided_yet() -> None:
    gid = uuid4()
    g = new_generation(gid)
    assert g.id == gid
    assert g.stage == "Requested"
    assert g.version == 1
    assert g.user_id == "alice"
    assert g.model == "hunyuan-video-1.5"
    assert g.options == {"generate_audio": False}
    assert g.width is None and g.quote is None and g.task_id is None and g.cost is None
    assert g.attempts == 0


def test_validation_records_the_decided_model_size_quote_and_deadline() -> None:
    g = at_stage("Validated")
    assert g.model == "wavespeed-ai/hunyuan-video-1.5/text-to-video"
    assert (g.width, g.height) == (1280, 720)
    assert g.quote == Decimal("0.20")
    assert g.period == "2026-03"
    assert g.deadline == DEADLINE


def test_a_rejection_records_the_refusal_code_field_and_message() -> None:
    g = at_stage("Rejected")
    assert g.error == {"code": "unknown_model", "field": "model", "message": "unknown model 'x'", "allowed": []}


def test_a_rejection_records_the_allowed_values_it_names() -> None:
    g = at_stage("Requested")
    g.reject(code="invalid_duration", field="duration", message="not 7.5", allowed=("5", "10"))
    assert g.error == {"code": "invalid_duration", "field": "duration", "message": "not 7.5", "allowed": ["5", "10"]}


def test_each_submit_attempt_counts_one_more_attempt() -> None:
    g = at_stage("Validated")
    g.attempt_submit()
    g.attempt_submit()
    assert g.attempts == 2
    attempts = [e.attempt for e in g.collect_events() if isinstance(e, VideoGeneration.SubmitAttempted)]
    assert attempts == [1, 2]


def test_the_last_attempt_time_is_the_time_of_the_last_submit_attempt_event() -> None:
    g = at_stage("Validated")
    time.sleep(0.002)
    g.attempt_submit()
    time.sleep(0.002)
    g.attempt_submit()
    events = g.collect_events()
    assert g.last_attempt_at == events[-1].timestamp


def test_a_submission_records_the_task_id_and_whether_it_was_adopted() -> None:
    g = at_stage("SubmitAttempted")
    g.mark_submitted(task_id="task-9", adopted=True)
    last = g.collect_events()[-1]
    assert g.task_id == "task-9"
    assert isinstance(last, VideoGeneration.Submitted) and last.adopted is True


def test_a_completion_records_the_stored_video() -> None:
    g = at_stage("Completed")
    assert g.video is not None
    assert g.video["storage_key"] == "videos/abc.mp4"
    assert g.video["bytes"] == 123_456
    assert g.video["asset_id"] == ASSET
    assert g.cost is None


def test_a_charge_records_the_amount_and_the_ledger_entry() -> None:
    g = at_stage("Charged")
    assert g.cost == Decimal("0.20")
    assert g.ledger_entry_id == LEDGER_ENTRY


def test_a_generation_cannot_be_charged_before_it_is_completed() -> None:
    g = at_stage("Submitted")
    with pytest.raises(TransitionNotAllowed):
        charge(g)
    assert g.cost is None


def test_a_generation_is_charged_at_most_once() -> None:
    g = at_stage("Charged")
    with pytest.raises(AlreadyFinished) as raised:
        g.charge(amount=Decimal("0.40"), ledger_entry_id=uuid4())
    assert g.cost == Decimal("0.20")
    assert g.ledger_entry_id == LEDGER_ENTRY
    assert raised.value.code == "already_finished"
    assert raised.value.field == "generation_id"


@pytest.mark.parametrize("stage", TERMINAL_STAGES)
@pytest.mark.parametrize("event_name", sorted(COMMANDS))
def test_a_finished_generation_accepts_no_event_at_all(stage: str, event_name: str) -> None:
    g = at_stage(stage)
    with pytest.raises(AlreadyFinished):
        COMMANDS[event_name](g)
    assert g.stage == stage


@pytest.mark.parametrize("stage", (*TERMINAL_STAGES, "Completed"))
def test_a_finished_or_completed_generation_is_not_cancellable(stage: str) -> None:
    with pytest.raises(AlreadyFinished):
        at_stage(stage).check_cancellable()


@pytest.mark.parametrize("stage", ("Requested", "Validated", "SubmitAttempted", "Submitted"))
def test_a_generation_in_flight_is_cancellable(stage: str) -> None:
    g = at_stage(stage)
    g.check_cancellable()
    assert g.stage == stage  # checking records nothing


# --- failures and cancellations: may the provider bill? --------------------------------------

@pytest.mark.parametrize("stage", ("Validated", "SubmitAttempted", "Submitted"))
@pytest.mark.parametrize("may_bill", (True, False))
def test_a_failure_records_its_stage_and_whether_the_provider_may_bill(stage: str, may_bill: bool) -> None:
    g = at_stage(stage)
    g.fail(code="provider_timeout", message="too slow", provider_may_bill=may_bill)
    last = g.collect_events()[-1]
    assert isinstance(last, VideoGeneration.Failed)
    assert last.provider_may_bill is may_bill
    assert last.stage == stage
    assert g.error == {
        "code": "provider_timeout", "message": "too slow", "stage": stage, "provider_may_bill": may_bill,
    }


@pytest.mark.parametrize(
    ("stage", "may_bill"),
    [("Requested", False), ("Validated", False), ("SubmitAttempted", True), ("Submitted", True)],
)
def test_cancelling_after_a_submit_attempt_may_still_be_billed(stage: str, may_bill: bool) -> None:
    g = at_stage(stage)
    g.cancel(reason="stop")
    last = g.collect_events()[-1]
    assert isinstance(last, VideoGeneration.Cancelled)
    assert last.provider_may_bill is may_bill
    assert g.error == {"code": "cancelled", "message": "stop", "stage": stage, "provider_may_bill": may_bill}
    assert g.status is Status.CANCELLED


@pytest.mark.parametrize("stage", ("SubmitAttempted", "Submitted"))
def test_cancelling_a_submitted_task_the_provider_stopped_cannot_be_billed(stage: str) -> None:
    g = at_stage(stage)
    g.cancel(reason="stop", provider_stopped=True)
    assert g.collect_events()[-1].provider_may_bill is False
    assert g.error is not None and g.error["provider_may_bill"] is False


# --- the quota reservation -------------------------------------------------------------------

@pytest.mark.parametrize("stage", STAGES)
def test_a_generation_holds_its_quota_reservation_from_validation_until_completion(stage: str) -> None:
    holds = stage in ("Validated", "SubmitAttempted", "Submitted", "Completed")
    assert at_stage(stage).holds_reservation is holds


# --- replay ----------------------------------------------------------------------------------

@pytest.mark.parametrize("stage", STAGES)
def test_replaying_the_recorded_events_rebuilds_the_same_generation(stage: str) -> None:
    original = at_stage(stage)
    events = original.collect_events()

    rebuilt = replay(events)

    assert type(rebuilt) is VideoGeneration
    assert vars(rebuilt) == vars(original)
    assert rebuilt.stage == stage
    assert rebuilt.status is original.status
    assert rebuilt.version == len(events)


def test_replaying_a_prefix_of_the_events_gives_the_state_at_that_version() -> None:
    original = at_stage("Charged")
    events = original.collect_events()

    at_three = replay(events[:3])

    assert at_three.stage == "SubmitAttempted"
    assert at_three.version == 3
    assert at_three.attempts == 1
    assert at_three.cost is None and at_three.task_id is None


def test_replaying_a_cancellation_keeps_the_billing_flag_decided_when_it_was_recorded() -> None:
    original = at_stage("Submitted")
    original.cancel(reason="stop")
    rebuilt = replay(original.collect_events())
    assert rebuilt.error == original.error
    assert rebuilt.error is not None and rebuilt.error["provider_may_bill"] is True


# --- ids ------------------------------------------------------------------------------------

def test_the_same_user_and_idempotency_key_always_name_the_same_generation() -> None:
    assert generation_id_for("alice", "order-17") == generation_id_for("alice", "order-17")


def test_the_same_idempotency_key_names_different_generations_for_different_users() -> None:
    assert generation_id_for("alice", "order-17") != generation_id_for("bob", "order-17")


def test_different_idempotency_keys_name_different_generations() -> None:
    assert generation_id_for("alice", "order-17") != generation_id_for("alice", "order-18")


def test_without_an_idempotency_key_each_generation_gets_a_fresh_random_id() -> None:
    first, second = generation_id_for("alice", None), generation_id_for("alice", None)
    assert first != second
    assert first.version == 4 and second.version == 4


def test_a_keyed_generation_id_is_a_name_based_uuid() -> None:
    assert generation_id_for("alice", "order-17").version == 5

