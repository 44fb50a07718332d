"""CancelGeneration, the queries (one generation, history, replay, usage) and ManagePlans."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from application.ports import ProviderError
from domain.errors import AlreadyFinished, InvalidValue, NotFound, UnknownModel
from domain.generation import VideoGeneration
from domain.plan import Plan
from domain.quota import quota_id
from conftest import World, run
from fakes import PNG, ended, event_names, events_of, only, running

HUNYUAN = "wavespeed-ai/hunyuan-video-1.5/text-to-video"


def paid_request(world: World, **fields: object) -> VideoGeneration:
    return world.request(model=HUNYUAN, duration=5, resolution="720p", **fields)  # quote $0.20


def drive(world: World, generation: VideoGeneration) -> VideoGeneration:
    return run(world.generate.drive(generation, lambda fraction, message: None))


def submitted(world: World, **fields: object) -> VideoGeneration:
    world.wavespeed.script = [running(0.4)]
    generation = paid_request(world, **fields)
    run(world.advance(generation.id))
    generation = world.log.generation(generation.id)
    assert generation.stage == "Submitted"
    return generation


# --- cancel ---------------------------------------------------------------------------------------


def test_cancelling_a_validated_generation_records_cancelled_and_releases_the_reservation(paid_world: World) -> None:
    generation = paid_request(paid_world)
    assert paid_world.quota().reserved == Decimal("0.20")

    cancelled = run(paid_world.cancel(generation.id, reason="changed my mind"))

    assert cancelled.stage == "Cancelled"
    assert event_names(paid_world.log, generation.id) == ["Requested", "Validated", "Cancelled"]
    event = only(paid_world.log, generation.id, "Cancelled")
    assert (event.reason, event.provider_may_bill) == ("changed my mind", False)
    quota = paid_world.quota()
    assert not quota.holds(generation.id)
    assert (quota.reserved, quota.spent, quota.calls) == (Decimal("0"), Decimal("0"), 0)
    assert paid_world.wavespeed.cancel_calls == []
    assert paid_world.ledger.entries == {}


def test_a_cancelled_generation_is_never_submitted_afterwards(paid_world: World) -> None:
    generation = paid_request(paid_world)
    run(paid_world.cancel(generation.id))

    run(paid_world.advance(generation.id))

    assert paid_world.wavespeed.submitted == []


@pytest.mark.parametrize(("stopped", "may_bill"), [(True, False), (False, True)], ids=["provider stops it", "provider cannot"])
def test_cancelling_a_submitted_generation_asks_the_provider_and_records_whether_it_may_bill(
    paid_world: World, stopped: bool, may_bill: bool
) -> None:
    generation = submitted(paid_world)
    paid_world.wavespeed.cancel_result = stopped

    run(paid_world.cancel(generation.id))

    assert paid_world.wavespeed.cancel_calls == [generation.task_id]
    event = only(paid_world.log, generation.id, "Cancelled")
    assert event.provider_may_bill is may_bill
    view = paid_world.queries.generation(generation.id)
    assert (view.status, view.code, view.provider_may_bill) == ("cancelled", "cancelled", may_bill)
    quota = paid_world.quota()
    assert (quota.reserved, quota.spent) == (Decimal("0"), Decimal("0"))
    # Its task is never polled, downloaded or charged afterwards.
    polls = paid_world.wavespeed.tasks[generation.task_id].polls
    run(paid_world.advance(generation.id))
    assert paid_world.wavespeed.tasks[generation.task_id].polls == polls
    assert paid_world.wavespeed.fetched == []


def test_cancelling_while_the_submit_outcome_is_unresolved_records_that_the_provider_may_bill(paid_world: World) -> None:
    generation = paid_request(paid_world)
    attempted = paid_world.log.generation(generation.id)
    attempted.attempt_submit()
    paid_world.log.save(attempted)

    run(paid_world.cancel(generation.id))

    assert only(paid_world.log, generation.id, "Cancelled").provider_may_bill is True
    assert paid_world.quota().reserved == Decimal("0")


def _completed(world: World) -> VideoGeneration:
    return world.complete_without_charging(paid_request(world).id)


@pytest.mark.parametrize("stage", ["Completed", "Charged", "Rejected", "Failed", "Cancelled"])
def test_cancelling_a_finished_generation_raises_already_finished(paid_world: World, stage: str) -> None:
    if stage == "Completed":
        generation = _completed(paid_world)
    elif stage == "Rejected":
        generation = paid_world.request(resolution="8k")
    else:
        if stage == "Failed":
            paid_world.wavespeed.script = [ended("failed", "provider_failure")]
        generation = paid_request(paid_world)
        if stage == "Cancelled":
            run(paid_world.cancel(generation.id))
        generation = drive(paid_world, generation)
    assert generation.stage == stage
    before = event_names(paid_world.log, generation.id)
    quota = paid_world.quota()
    quota_before = (quota.calls, quota.reserved, quota.spent)

    with pytest.raises(AlreadyFinished) as raised:
        run(paid_world.cancel(generation.id))

    assert raised.value.code == "already_finished"
    assert raised.value.generation_id == generation.id
    assert event_names(paid_world.log, generation.id) == before
    assert paid_world.wavespeed.cancel_calls == []
    quota = paid_world.quota()
    assert (quota.calls, quota.reserved, quota.spent) == quota_before


def test_cancelling_an_unknown_generation_raises_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        run(world.cancel(uuid4()))


# --- one generation -------------------------------------------------------------------------------


def test_the_view_of_a_charged_generation_shows_its_status_stage_cost_and_file(paid_world: World) -> None:
    generation = drive(paid_world, paid_request(paid_world, user_id="alice", source_module="shorts"))

    view = paid_world.queries.generation(generation.id)

    completed = only(paid_world.log, generation.id, "Completed")
    assert (view.generation_id, view.status, view.stage) == (generation.id, "completed", "Charged")
    assert (view.user_id, view.source_module, view.operation) == ("alice", "shorts", "text-to-video")
    assert (view.provider, view.model, view.resolution) == ("wavespeed", HUNYUAN, "720p")
    assert view.cost == view.quote == Decimal("0.20")
    assert view.file_path == paid_world.storage.locate(completed.storage_key) == f"/fake/{completed.storage_key}"
    assert (view.sha256, view.bytes, view.asset_id) == (completed.sha256, completed.bytes, completed.asset_id)
    assert view.task_id == generation.task_id
    assert view.version == 6
    assert view.code is None


def test_the_view_of_a_generation_in_flight_has_no_file_and_costs_nothing_yet(paid_world: World) -> None:
    generation = paid_request(paid_world)

    view = paid_world.queries.generation(generation.id)

    assert (view.status, view.stage) == ("validated", "Validated")
    assert view.cost == Decimal("0.00")
    assert view.quote == Decimal("0.20")
    assert view.file_path is None and view.sha256 is None and view.task_id is None


def test_the_view_of_a_rejected_generation_says_why(world: World) -> None:
    generation = world.request(resolution="8k")

    view = world.queries.generation(generation.id)

    assert (view.status, view.stage, view.code, view.field) == ("rejected", "Rejected", "invalid_resolution", "resolution")
    assert "8k" in (view.message or "")


def test_the_view_of_a_failed_generation_says_whether_the_provider_may_bill(paid_world: World) -> None:
    paid_world.wavespeed.lose_next_answer(create_task=False)
    paid_world.wavespeed.find_error = ProviderError("provider_failure", "history unreadable")
    generation = drive(paid_world, paid_request(paid_world))

    view = paid_world.queries.generation(generation.id)

    assert (view.status, view.code, view.provider_may_bill) == ("failed", "unknown_submit_outcome", True)
    assert view.cost == Decimal("0.00")


def test_an_unknown_generation_id_raises_not_found(world: World) -> None:
    with pytest.raises(NotFound) as raised:
        world.queries.generation(uuid4())
    assert raised.value.field == "generation_id"


def test_a_quota_id_is_not_a_generation(world: World) -> None:
    world.request()
    now = world.clock.now()

    with pytest.raises(NotFound):
        world.queries.generation(quota_id("local", f"{now.year:04d}-{now.month:02d}"))


# --- history --------------------------------------------------------------------------------------


def test_history_is_newest_first_and_never_shows_another_users_generations(world: World) -> None:
    alice = [world.request(user_id="alice", prompt=f"fox {n}").id for n in range(3)]
    bob = world.request(user_id="bob", prompt="bob's heron").id
    alice.append(world.request(user_id="alice", prompt="fox 3", resolution="8k").id)  # rejected ones count too

    history = world.queries.history("alice")

    assert [view.generation_id for view in history] == list(reversed(alice))
    assert all(view.user_id == "alice" for view in history)
    assert bob not in {view.generation_id for view in history}
    assert [view.generation_id for view in world.queries.history("bob")] == [bob]
    assert world.queries.history("carol") == []


def test_history_of_every_user_is_the_operators_view(world: World) -> None:
    ids = [world.request(user_id=user).id for user in ("alice", "bob", "alice")]

    assert [view.generation_id for view in world.queries.history(None)] == list(reversed(ids))


def test_history_is_limited_to_the_newest(world: World) -> None:
    ids = [world.request(prompt=f"fox {n}").id for n in range(5)]

    assert [view.generation_id for view in world.queries.history("local", limit=2)] == [ids[4], ids[3]]


def test_history_shows_each_generations_current_state(paid_world: World) -> None:
    generation = paid_request(paid_world)
    assert [view.stage for view in paid_world.queries.history("local")] == ["Validated"]

    drive(paid_world, generation)

    assert [view.stage for view in paid_world.queries.history("local")] == ["Charged"]


# --- replay ---------------------------------------------------------------------------------------


def test_replay_at_a_version_past_the_last_is_refused_naming_the_versions_there_are(paid_world: World) -> None:
    generation = drive(paid_world, paid_request(paid_world))

    with pytest.raises(InvalidValue) as refused:
        paid_world.queries.replay(generation.id, at_version=generation.version + 1)

    assert refused.value.field == "at_version"
    assert f"1 to {generation.version}" in refused.value.message
    assert paid_world.queries.replay(generation.id, at_version=generation.version).state.version == generation.version


def test_replay_at_a_version_gives_that_versions_state_and_only_the_events_up_to_it(paid_world: World) -> None:
    generation = drive(paid_world, paid_request(paid_world))

    replay = paid_world.queries.replay(generation.id, at_version=4)

    assert [event.type for event in replay.events] == ["Requested", "Validated", "SubmitAttempted", "Submitted"]
    assert [event.version for event in replay.events] == [1, 2, 3, 4]
    assert (replay.state.stage, replay.state.status, replay.state.version) == ("Submitted", "submitted", 4)
    assert replay.state.cost == Decimal("0.00")
    assert replay.state.file_path is None
    assert replay.state.task_id == generation.task_id
    submitted = replay.events[3]
    assert submitted.generation_id == generation.id
    assert submitted.fields == {"task_id": generation.task_id, "adopted": False}


def test_replay_without_a_version_gives_every_event_and_the_current_state(paid_world: World) -> None:
    generation = drive(paid_world, paid_request(paid_world))

    replay = paid_world.queries.replay(generation.id)

    assert [event.type for event in replay.events] == event_names(paid_world.log, generation.id)
    assert replay.state.stage == "Charged"
    assert replay.events[-1].fields["amount"] == Decimal("0.20")
    timestamps = [event.timestamp for event in replay.events]
    assert timestamps == sorted(timestamps)
    for event in replay.events:
        assert not {"originator_id", "originator_version", "originator_topic", "timestamp"} & set(event.fields)


def test_replay_of_the_first_version_is_the_request_alone(world: World) -> None:
    generation = world.request(prompt="a heron")

    replay = world.queries.replay(generation.id, at_version=1)

    assert [event.type for event in replay.events] == ["Requested"]
    assert replay.events[0].fields["prompt"] == "a heron"
    assert (replay.state.stage, replay.state.status) == ("Requested", "requested")


def test_replay_of_an_unknown_generation_raises_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.queries.replay(uuid4())


# --- usage ----------------------------------------------------------------------------------------


def test_usage_reports_calls_spent_reserved_and_the_plans_limits(paid_world: World) -> None:
    paid_world.plans.set_plan("alice", Plan("pro", calls_limit=30, dollars_limit=Decimal("100"), models=(HUNYUAN,)))
    drive(paid_world, paid_request(paid_world, user_id="alice"))  # spent $0.20
    paid_world.request(model=HUNYUAN, duration=5, resolution="480p", user_id="alice")  # reserved $0.10
    cancelled = paid_request(paid_world, user_id="alice", prompt="cancelled")
    run(paid_world.cancel(cancelled.id))  # released: neither spent nor reserved
    paid_request(paid_world, user_id="bob")  # someone else's

    usage = paid_world.queries.usage("alice")

    now = paid_world.clock.now()
    assert (usage.user_id, usage.period, usage.plan) == ("alice", f"{now.year:04d}-{now.month:02d}", "pro")
    assert (usage.calls, usage.spent, usage.reserved) == (2, Decimal("0.20"), Decimal("0.10"))
    assert (usage.calls_limit, usage.dollars_limit, usage.models) == (30, Decimal("100"), (HUNYUAN,))


def test_usage_of_a_user_who_made_nothing_is_zero_on_the_default_plan(world: World) -> None:
    usage = world.queries.usage("nobody")

    assert (usage.calls, usage.spent, usage.reserved) == (0, Decimal("0"), Decimal("0"))
    assert (usage.plan, usage.calls_limit, usage.dollars_limit) == (
        world.plans.default.name, world.plans.default.calls_limit, world.plans.default.dollars_limit,
    )


def test_usage_is_per_calendar_month(paid_world: World) -> None:
    paid_request(paid_world)
    paid_world.clock.advance(32 * 24 * 3600)

    usage = paid_world.queries.usage("local")

    assert (usage.calls, usage.reserved) == (0, Decimal("0"))


# --- plans ----------------------------------------------------------------------------------------


def test_manage_plans_sets_a_plan_with_models_checked_against_the_catalogue(world: World) -> None:
    plan = world.manage_plans.set(
        "alice", calls=10, dollars=Decimal("25"), models=["hunyuan-video-1.5", "sandbox/avatar"], name="basic"
    )

    assert plan == Plan("basic", 10, Decimal("25"), (HUNYUAN, "sandbox/avatar"))
    assert world.manage_plans.show("alice") == plan
    assert world.plans.plan_for("alice") == plan
    assert world.manage_plans.show("bob") == world.plans.default


def test_manage_plans_refuses_a_model_the_catalogue_does_not_know(world: World) -> None:
    with pytest.raises(UnknownModel) as raised:
        world.manage_plans.set("alice", calls=10, dollars=Decimal("25"), models=["acme/dream-machine"])

    assert raised.value.field == "model"
    assert world.plans.plans == {}


@pytest.mark.parametrize(
    ("calls", "dollars", "field"),
    [
        (-1, Decimal("10"), "calls"), (10, Decimal("-0.01"), "dollars"),
        (10**23, Decimal("10"), "calls"), (10, Decimal("1e26"), "dollars"), (10, Decimal("Infinity"), "dollars"),
        (10, Decimal("NaN"), "dollars"), (10, Decimal("0.0000001"), "dollars"),
    ],
    ids=["negative calls", "negative dollars", "calls beyond any month", "dollars beyond any month", "infinite dollars",
         "not a number", "below a millionth of a dollar"],
)
def test_manage_plans_refuses_limits_it_could_not_keep_or_show(
    world: World, calls: int, dollars: Decimal, field: str
) -> None:
    with pytest.raises(InvalidValue) as raised:
        world.manage_plans.set("alice", calls=calls, dollars=dollars, models=[])

    assert raised.value.field == field
    assert world.plans.plans == {}


@pytest.mark.parametrize(("user_id", "name", "field"), [("", None, "user_id"), ("u" * 257, None, "user_id"), ("alice", "n" * 65, "name")])
def test_manage_plans_refuses_a_user_id_or_name_too_long_to_keep(
    world: World, user_id: str, name: str | None, field: str
) -> None:
    with pytest.raises(InvalidValue) as raised:
        world.manage_plans.set(user_id, calls=1, dollars=Decimal("1"), models=[], name=name)

    assert raised.value.field == field


def test_manage_plans_keeps_the_largest_limits_it_allows(world: World) -> None:
    plan = world.manage_plans.set("alice", calls=1_000_000_000, dollars=Decimal("1000000000"), models=[])

    assert (plan.calls_limit, plan.dollars_limit) == (1_000_000_000, Decimal("1000000000"))


def test_manage_plans_takes_zero_as_unlimited(world: World) -> None:
    plan = world.manage_plans.set("alice", calls=0, dollars=Decimal("0"), models=[])

    assert (plan.name, plan.calls_limit, plan.dollars_limit, plan.models) == ("custom", 0, Decimal("0"), ())
    for n in range(3):
        assert world.request(user_id="alice", prompt=f"fox {n}").stage == "Validated"


def test_a_plan_set_through_manage_plans_governs_the_next_request(world: World) -> None:
    world.manage_plans.set("alice", calls=1, dollars=Decimal("0"), models=["sandbox/text-to-video"])

    first = world.request(user_id="alice")
    second = world.request(user_id="alice", prompt="again")
    other_model = world.request(
        user_id="alice", operation="image-to-video", model="sandbox/image-to-video", inputs={"image": PNG}
    )

    assert first.stage == "Validated"
    assert only(world.log, second.id, "Rejected").code == "quota_calls_exceeded"
    assert only(world.log, other_model.id, "Rejected").code == "model_not_allowed"
    assert events_of(world.log, first.id, "Rejected") == []
