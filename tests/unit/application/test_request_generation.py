"""RequestGeneration: a request is kept with its inputs and is at once Validated (holding a quota
reservation) or Rejected (with a code and a field, holding nothing); no provider is called."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from application.requests import GenerationRequest
from domain.errors import IdempotencyConflict, PromptTooLong
from domain.generation import generation_id_for
from domain.plan import Plan
from domain.preflight import MAX_PROMPT_CHARS
from application.ports import MediaFacts
from conftest import World, run
from fakes import JPEG, MP4, PNG, WAV, MiB, all_values, event_names, only

HUNYUAN = "wavespeed-ai/hunyuan-video-1.5/text-to-video"


def nothing_was_asked_of_any_provider(world: World) -> None:
    for provider in world.providers.values():
        assert provider.submitted == []
        assert provider.tasks == {}
        assert provider.find_calls == []
        assert provider.cancel_calls == []


# --- validated ------------------------------------------------------------------------------------


def test_a_valid_text_to_video_request_is_validated_with_the_catalogue_quote_and_a_reservation(paid_world: World) -> None:
    generation = paid_world.request(model=HUNYUAN, duration=5, resolution="720p", user_id="alice")

    assert generation.stage == "Validated"
    assert event_names(paid_world.log, generation.id) == ["Requested", "Validated"]
    validated = only(paid_world.log, generation.id, "Validated")
    # The catalogue's rule: $0.04 per second at 720p, 5 seconds.
    assert validated.quote == Decimal("0.20")
    assert (validated.provider, validated.model) == ("wavespeed", HUNYUAN)
    assert (validated.duration, validated.resolution, validated.width, validated.height) == (5.0, "720p", 1280, 720)
    now = paid_world.clock.now()
    assert validated.period == f"{now.year:04d}-{now.month:02d}"
    assert validated.deadline == now + timedelta(seconds=paid_world.policy.deadline_s)
    quota = paid_world.quota("alice")
    assert quota.holds(generation.id)
    assert quota.reservations == {str(generation.id): Decimal("0.20")}
    assert (quota.calls, quota.reserved, quota.spent) == (1, Decimal("0.20"), Decimal("0"))
    nothing_was_asked_of_any_provider(paid_world)


def test_a_sandbox_request_without_choices_is_validated_with_the_models_defaults_for_free(world: World) -> None:
    generation = world.request()

    assert generation.stage == "Validated"
    assert generation.model == "sandbox/text-to-video"
    assert (generation.duration, generation.resolution, generation.width, generation.height) == (5.0, "720p", 1280, 720)
    assert generation.quote == Decimal("0")
    assert world.quota().holds(generation.id)
    assert world.quota().calls == 1


def test_the_validated_generation_is_saved_so_a_fresh_read_gives_the_same_state(world: World) -> None:
    generation = world.request(duration=3, resolution="480p", aspect_ratio="9:16")

    stored = world.log.generation(generation.id)
    assert stored.version == generation.version == 2
    assert (stored.stage, stored.duration, stored.width, stored.height) == ("Validated", 3.0, 480, 854)


def test_an_avatar_takes_its_length_from_the_probed_speech(world: World) -> None:
    generation_id = generation_id_for("local", "avatar-1")
    world.probe.facts[f"inputs/{generation_id}/audio"] = MediaFacts(7.25, None, None, has_video=False, has_audio=True)

    generation = world.request(
        operation="avatar", prompt=None, inputs={"image": PNG, "audio": WAV}, idempotency_key="avatar-1"
    )

    assert generation.id == generation_id
    assert generation.stage == "Validated"
    assert generation.duration == 7.25


# --- rejected -------------------------------------------------------------------------------------


def _huge_png_stream() -> Iterator[bytes]:
    """A stream past every input limit (501 MiB), made of one shared chunk so that it costs no memory."""
    yield PNG
    chunk = bytes(MiB)
    for _ in range(501):
        yield chunk


Setup = Callable[[World], dict[str, Any]]

REFUSALS: dict[str, tuple[Setup, str, str]] = {
    "unknown model": (lambda w: {"model": "acme/dream-machine"}, "unknown_model", "model"),
    "duration not offered": (lambda w: {"duration": 25}, "invalid_duration", "duration"),
    "a duration of none": (lambda w: {"duration": 0}, "invalid_duration", "duration"),
    "a negative duration": (lambda w: {"duration": -3}, "invalid_duration", "duration"),
    "empty prompt": (lambda w: {"prompt": "   "}, "missing_prompt", "prompt"),
    "image-to-video without image": (lambda w: {"operation": "image-to-video"}, "missing_input", "image"),
    "audio bytes given as the image": (
        lambda w: {"operation": "image-to-video", "inputs": {"image": WAV}},
        "wrong_media_type",
        "image",
    ),
    "an image the probe cannot decode": (
        lambda w: (w.probe.undecodable.add("inputs/"), {"operation": "image-to-video", "inputs": {"image": PNG}})[1],
        "wrong_media_type",
        "image",
    ),
    "unknown resolution": (lambda w: {"resolution": "8k"}, "invalid_resolution", "resolution"),
    "a missing file": (
        lambda w: {"operation": "image-to-video", "inputs": {"image": "/nowhere/cat.png"}},
        "missing_input",
        "image",
    ),
    "an image over the image size limit": (
        lambda w: {"operation": "image-to-video", "inputs": {"image": PNG + bytes(21 * MiB)}},
        "input_too_large",
        "image",
    ),
    "an input over the size any input may have": (
        lambda w: {
            "operation": "image-to-video",
            "inputs": {"image": w.sources.add("/photos/endless.png", _huge_png_stream)},
        },
        "input_too_large",
        "image",
    ),
    "a wavespeed model when only the sandbox is configured": (
        lambda w: {"model": HUNYUAN, "duration": 5},
        "provider_not_configured",
        "provider",
    ),
    "an option the model does not take": (lambda w: {"options": {"turbo": True}}, "invalid_value", "option.turbo"),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_each_refusal_is_recorded_as_rejected_with_its_code_and_field_and_costs_nothing(world: World, case: str) -> None:
    setup, code, field = REFUSALS[case]

    generation = world.request(**setup(world))

    assert generation.stage == "Rejected"
    assert event_names(world.log, generation.id) == ["Requested", "Rejected"]
    rejected = only(world.log, generation.id, "Rejected")
    assert (rejected.code, rejected.field) == (code, field)
    assert rejected.message
    # Advancing a rejected generation does not reach the provider either.
    run(world.advance(generation.id))
    nothing_was_asked_of_any_provider(world)
    quota = world.quota()
    assert not quota.holds(generation.id)
    assert (quota.calls, quota.reserved, quota.spent) == (0, Decimal("0"), Decimal("0"))
    assert world.ledger.entries == {}


@pytest.mark.parametrize(
    ("asked", "field"), [({"duration": 25}, "duration"), ({"resolution": "8k"}, "resolution"), ({"model": "acme/x"}, "model")]
)
def test_a_recorded_refusal_keeps_the_allowed_values_it_names(world: World, asked: dict[str, Any], field: str) -> None:
    generation = world.request(**asked)

    rejected = only(world.log, generation.id, "Rejected")
    assert rejected.field == field
    assert rejected.allowed and all(isinstance(value, str) for value in rejected.allowed)
    assert generation.error is not None and generation.error["allowed"] == rejected.allowed


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_a_prompt_over_the_limit_is_refused_before_anything_is_recorded(world: World, field: str) -> None:
    with pytest.raises(PromptTooLong) as refused:
        world.request(**{field: "x" * (MAX_PROMPT_CHARS + 1)})

    assert (refused.value.code, refused.value.field) == ("prompt_too_long", field)
    assert str(MAX_PROMPT_CHARS + 1) in refused.value.message
    assert world.log.recorder.max_notification_id() in (None, 0)
    nothing_was_asked_of_any_provider(world)


def test_a_prompt_at_the_limit_is_recorded_whole(world: World) -> None:
    generation = world.request(prompt="x" * MAX_PROMPT_CHARS, negative_prompt="y" * MAX_PROMPT_CHARS)

    assert generation.stage == "Validated" and generation.prompt == "x" * MAX_PROMPT_CHARS


def test_an_input_that_stops_coming_is_refused_once_its_time_is_up_and_leaves_nothing_in_storage(world: World) -> None:
    world.request_generation.policy = dataclasses.replace(world.request_generation.policy, input_read_s=0.2)
    source = world.sources.stall("https://slow.example/cat.png", PNG[:100])

    generation = world.request(operation="image-to-video", inputs={"image": source})

    rejected = only(world.log, generation.id, "Rejected")
    assert (rejected.code, rejected.field) == ("missing_input", "image")
    assert "0.2 s" in rejected.message
    assert world.storage.objects == {}
    nothing_was_asked_of_any_provider(world)


def test_an_input_over_any_input_limit_leaves_nothing_in_storage(world: World) -> None:
    world.sources.add("/photos/endless.png", _huge_png_stream)

    generation = world.request(operation="image-to-video", inputs={"image": "/photos/endless.png"})

    assert generation.stage == "Rejected"
    assert world.storage.objects == {}


# --- plan limits ----------------------------------------------------------------------------------


def test_a_request_past_the_plans_calls_is_rejected_with_quota_calls_exceeded(world: World) -> None:
    world.plans.set_plan("local", Plan("one-call", calls_limit=1))
    first = world.request()

    second = world.request(prompt="another fox")

    assert first.stage == "Validated"
    assert second.stage == "Rejected"
    rejected = only(world.log, second.id, "Rejected")
    assert (rejected.code, rejected.field) == ("quota_calls_exceeded", "calls")
    quota = world.quota()
    assert quota.calls == 1
    assert quota.holds(first.id) and not quota.holds(second.id)


def test_a_refusal_is_never_decided_on_the_quota_this_process_holds_when_another_process_freed_room(
    world: World,
) -> None:
    world.plans.set_plan("local", Plan("one-call", calls_limit=1))
    first = world.request()
    freed = world.quota()  # another process (a cancel) releases the only reservation, unknown to this one
    freed.release(first.id)
    world.log.events.put(freed.collect_events())

    second = world.request(prompt="another fox")

    assert second.stage == "Validated"
    assert world.quota().holds(second.id) and not world.quota().holds(first.id)


def test_a_request_past_the_plans_dollars_is_rejected_with_quota_dollars_exceeded(paid_world: World) -> None:
    paid_world.plans.set_plan("local", Plan("thirty-cents", dollars_limit=Decimal("0.30")))
    first = paid_world.request(model=HUNYUAN, duration=5, resolution="720p")  # $0.20

    second = paid_world.request(model=HUNYUAN, duration=5, resolution="720p", prompt="another fox")  # +$0.20

    assert first.stage == "Validated"
    assert second.stage == "Rejected"
    rejected = only(paid_world.log, second.id, "Rejected")
    assert (rejected.code, rejected.field) == ("quota_dollars_exceeded", "dollars")
    assert paid_world.quota().reserved == Decimal("0.20")
    assert not paid_world.quota().holds(second.id)
    nothing_was_asked_of_any_provider(paid_world)


def test_a_cheaper_request_that_fits_the_remaining_dollars_is_still_validated(paid_world: World) -> None:
    paid_world.plans.set_plan("local", Plan("thirty-cents", dollars_limit=Decimal("0.30")))
    paid_world.request(model=HUNYUAN, duration=5, resolution="720p")  # $0.20

    cheaper = paid_world.request(model=HUNYUAN, duration=5, resolution="480p", prompt="a small fox")  # $0.10

    assert cheaper.stage == "Validated"
    assert paid_world.quota().reserved == Decimal("0.30")


def test_a_model_outside_the_plan_is_rejected_with_model_not_allowed(world: World) -> None:
    world.plans.set_plan("local", Plan("stills-only", models=("sandbox/image-to-video",)))

    generation = world.request(model="sandbox/text-to-video")

    rejected = only(world.log, generation.id, "Rejected")
    assert (rejected.code, rejected.field) == ("model_not_allowed", "model")
    assert world.quota().calls == 0


def test_plan_limits_are_per_user(world: World) -> None:
    world.plans.set_plan("alice", Plan("one-call", calls_limit=1))
    world.request(user_id="alice")

    bob = world.request(user_id="bob")
    alice_again = world.request(user_id="alice", prompt="again")

    assert bob.stage == "Validated"
    assert alice_again.stage == "Rejected"


# --- idempotency ----------------------------------------------------------------------------------


def test_the_same_key_with_the_same_parameters_gives_the_same_generation(world: World) -> None:
    first = world.request(idempotency_key="order-42", inputs={"image": PNG}, operation="image-to-video")

    again = world.request(idempotency_key="order-42", inputs={"image": PNG}, operation="image-to-video")

    assert again.id == first.id
    assert again.version == first.version
    assert event_names(world.log, first.id) == ["Requested", "Validated"]
    assert world.quota().calls == 1
    world.history.catch_up()
    assert world.history.generation_ids(None, 100) == [first.id]


def test_the_same_key_with_other_parameters_is_an_idempotency_conflict(world: World) -> None:
    first = world.request(idempotency_key="order-42")

    with pytest.raises(IdempotencyConflict) as raised:
        world.request(idempotency_key="order-42", duration=8)

    assert raised.value.code == "idempotency_conflict"
    assert raised.value.field == "idempotency_key"
    assert raised.value.generation_id == first.id
    assert event_names(world.log, first.id) == ["Requested", "Validated"]
    assert world.log.generation(first.id).duration == 5.0
    assert world.quota().calls == 1


def test_a_conflicting_retry_does_not_overwrite_the_first_requests_inputs(world: World) -> None:
    first = world.request(idempotency_key="k", operation="image-to-video", inputs={"image": PNG})
    key = first.inputs["image"]["storage_key"]

    with pytest.raises(IdempotencyConflict):
        world.request(idempotency_key="k", operation="image-to-video", inputs={"image": JPEG})

    assert world.storage.objects[key] == PNG


def test_the_same_key_from_two_users_names_two_generations(world: World) -> None:
    alice = world.request(user_id="alice", idempotency_key="k")
    bob = world.request(user_id="bob", idempotency_key="k")

    assert alice.id != bob.id
    assert alice.stage == bob.stage == "Validated"


def test_requests_without_a_key_are_never_merged(world: World) -> None:
    first = world.request()
    second = world.request()

    assert first.id != second.id
    assert world.quota().calls == 2


def test_a_retried_rejected_request_returns_the_same_rejection(world: World) -> None:
    first = world.request(idempotency_key="bad", resolution="8k")

    again = world.request(idempotency_key="bad", resolution="8k")

    assert again.id == first.id
    assert again.stage == "Rejected"
    assert event_names(world.log, first.id) == ["Requested", "Rejected"]


# --- inputs as references -------------------------------------------------------------------------


def test_inputs_are_stored_under_the_generations_folder_and_recorded_by_reference(world: World) -> None:
    world.sources.add("/photos/cat.png", PNG)

    generation = world.request(operation="image-to-video", inputs={"image": "/photos/cat.png"})

    assert generation.stage == "Validated"
    (key,) = world.storage.keys_under("")
    assert key.startswith(f"inputs/{generation.id}/image-")
    record = only(world.log, generation.id, "Requested").inputs["image"]
    assert record["storage_key"] == key
    assert record["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert record["mime"] == "image/png"
    assert record["bytes"] == len(PNG)
    assert world.storage.objects[record["storage_key"]] == PNG


def test_several_inputs_each_get_their_own_key_inside_the_generations_folder(world: World) -> None:
    world.probe.default = MediaFacts(4.0, 640, 640, has_video=True, has_audio=True)

    generation = world.request(operation="avatar", prompt=None, inputs={"image": JPEG, "audio": WAV})

    assert generation.stage == "Validated"
    keys = world.storage.keys_under("")
    assert [key.rpartition("-")[0] for key in keys] == [f"inputs/{generation.id}/audio", f"inputs/{generation.id}/image"]
    records = only(world.log, generation.id, "Requested").inputs
    assert {role: record["mime"] for role, record in records.items()} == {"image": "image/jpeg", "audio": "audio/wav"}


@pytest.mark.parametrize(
    "inputs",
    [
        {"image": PNG},
        {"image": MP4},  # refused (video given as image), still recorded by reference
        {"image": b"not media at all"},
    ],
    ids=["accepted image", "wrong kind", "unrecognised bytes"],
)
def test_no_event_carries_raw_bytes(world: World, inputs: dict[str, bytes]) -> None:
    generation = world.request(operation="image-to-video", inputs=inputs)

    for event in world.log.events.get(generation.id):
        for value in all_values(dict(vars(event))):
            assert not isinstance(value, (bytes, bytearray, memoryview)), f"{type(event).__name__} holds bytes"
    record = only(world.log, generation.id, "Requested").inputs["image"]
    assert record["sha256"] == hashlib.sha256(inputs["image"]).hexdigest()
    assert record["source"] == "inline bytes"


def test_the_request_is_recorded_as_asked(world: World) -> None:
    request = GenerationRequest(
        user_id="alice", source_module="shorts", prompt="a heron", negative_prompt="blur", duration=4,
        resolution="480p", aspect_ratio="1:1", seed=7, idempotency_key="k1",
    )

    generation = run(world.request_generation(request))

    requested = only(world.log, generation.id, "Requested")
    assert (requested.user_id, requested.source_module, requested.operation) == ("alice", "shorts", "text-to-video")
    assert (requested.prompt, requested.negative_prompt, requested.seed) == ("a heron", "blur", 7)
    assert (requested.duration, requested.resolution, requested.aspect_ratio) == (4, "480p", "1:1")
    assert requested.idempotency_key == "k1"
    assert requested.fingerprint == request.fingerprint()
    assert (generation.width, generation.height) == (480, 480)
