"""The MonthlyQuota aggregate: reservations against a plan's limits, settlements and releases."""

from __future__ import annotations

from copy import deepcopy
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.errors import ModelNotAllowed, QuotaCallsExceeded, QuotaDollarsExceeded, Refusal
from domain.plan import Plan
from domain.quota import MonthlyQuota, quota_id

HUNYUAN = "wavespeed-ai/hunyuan-video-1.5/text-to-video"
SANDBOX = "sandbox/text-to-video"
UNLIMITED = Plan("unlimited")


def new_quota(user_id: str = "alice", period: str = "2026-03") -> MonthlyQuota:
    return MonthlyQuota(user_id=user_id, period=period)


def event_names(quota: MonthlyQuota) -> list[str]:
    return [type(e).__name__ for e in quota.collect_events()]


def replay(events: list) -> MonthlyQuota:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    assert aggregate is not None
    return aggregate


# --- reserving ------------------------------------------------------------------------------

def test_a_new_quota_has_no_calls_no_spending_and_no_reservations() -> None:
    quota = new_quota()
    assert quota.calls == 0
    assert quota.spent == Decimal("0")
    assert quota.reserved == Decimal("0")
    assert quota.user_id == "alice" and quota.period == "2026-03"


def test_a_reservation_within_the_limits_counts_one_call_and_holds_its_amount() -> None:
    quota = new_quota()
    gid = uuid4()

    quota.reserve(gid, Decimal("0.20"), Plan("basic", 10, Decimal("25")), HUNYUAN)

    assert quota.calls == 1
    assert quota.reserved == Decimal("0.20")
    assert quota.spent == Decimal("0")
    assert quota.holds(gid)
    assert event_names(quota) == ["Opened", "Reserved"]


def test_reserved_money_is_a_decimal_sum() -> None:
    quota = new_quota()
    for amount in ("0.10", "0.20", "0.060"):
        quota.reserve(uuid4(), Decimal(amount), UNLIMITED, HUNYUAN)
    assert quota.reserved == Decimal("0.36")
    assert isinstance(quota.reserved, Decimal)


def test_a_plan_refuses_the_call_past_its_calls_limit() -> None:
    quota = new_quota()
    plan = Plan("free", calls_limit=2)
    quota.reserve(uuid4(), Decimal("0.10"), plan, HUNYUAN)
    quota.reserve(uuid4(), Decimal("0.10"), plan, HUNYUAN)
    refused = uuid4()

    with pytest.raises(QuotaCallsExceeded) as raised:
        quota.reserve(refused, Decimal("0.10"), plan, HUNYUAN)

    assert raised.value.code == "quota_calls_exceeded"
    assert raised.value.field == "calls"
    assert "2" in raised.value.message
    assert quota.calls == 2
    assert not quota.holds(refused)
    assert event_names(quota) == ["Opened", "Reserved", "Reserved"]


def test_a_calls_limit_of_zero_means_unlimited_calls() -> None:
    quota = new_quota()
    plan = Plan("no call limit", calls_limit=0, dollars_limit=Decimal("0"))
    for _ in range(50):
        quota.reserve(uuid4(), Decimal("0.10"), plan, HUNYUAN)
    assert quota.calls == 50


def test_a_dollars_limit_of_zero_means_unlimited_dollars() -> None:
    quota = new_quota()
    quota.reserve(uuid4(), Decimal("100000"), Plan("no dollar limit", dollars_limit=Decimal("0")), HUNYUAN)
    assert quota.reserved == Decimal("100000")


def test_the_dollars_limit_counts_money_spent_and_money_reserved() -> None:
    quota = new_quota()
    plan = Plan("one dollar", dollars_limit=Decimal("1.00"))
    first = uuid4()
    quota.reserve(first, Decimal("0.60"), plan, HUNYUAN)
    quota.settle(first, Decimal("0.60"))
    quota.reserve(uuid4(), Decimal("0.30"), plan, HUNYUAN)  # 0.60 spent + 0.30 reserved

    with pytest.raises(QuotaDollarsExceeded) as raised:
        quota.reserve(uuid4(), Decimal("0.20"), plan, HUNYUAN)  # would make 1.10

    assert raised.value.code == "quota_dollars_exceeded"
    assert raised.value.field == "dollars"
    assert quota.spent + quota.reserved == Decimal("0.90")


def test_a_reservation_that_reaches_the_dollars_limit_exactly_is_allowed() -> None:
    quota = new_quota()
    plan = Plan("one dollar", dollars_limit=Decimal("1.00"))
    quota.reserve(uuid4(), Decimal("0.80"), plan, HUNYUAN)
    quota.reserve(uuid4(), Decimal("0.20"), plan, HUNYUAN)
    assert quota.reserved == Decimal("1.00")


def test_reserved_money_alone_can_exhaust_the_dollars_limit() -> None:
    quota = new_quota()
    plan = Plan("one dollar", dollars_limit=Decimal("1.00"))
    quota.reserve(uuid4(), Decimal("0.90"), plan, HUNYUAN)
    with pytest.raises(QuotaDollarsExceeded):
        quota.reserve(uuid4(), Decimal("0.20"), plan, HUNYUAN)


def test_a_plan_that_lists_models_refuses_any_other_model() -> None:
    quota = new_quota()
    plan = Plan("sandbox only", models=(SANDBOX,))

    with pytest.raises(ModelNotAllowed) as raised:
        quota.reserve(uuid4(), Decimal("0.20"), plan, HUNYUAN)

    assert raised.value.code == "model_not_allowed"
    assert raised.value.field == "model"
    assert raised.value.allowed == (SANDBOX,)
    assert quota.calls == 0


def test_a_plan_that_lists_models_allows_those_models() -> None:
    quota = new_quota()
    quota.reserve(uuid4(), Decimal("0"), Plan("sandbox only", models=(SANDBOX,)), SANDBOX)
    assert quota.calls == 1


@pytest.mark.parametrize("refusal", (ModelNotAllowed, QuotaCallsExceeded, QuotaDollarsExceeded))
def test_quota_refusals_are_refusals_made_before_any_provider_call(refusal: type[Exception]) -> None:
    assert issubclass(refusal, Refusal)


# --- idempotency ----------------------------------------------------------------------------

def test_reserving_twice_for_the_same_generation_reserves_once() -> None:
    quota = new_quota()
    gid = uuid4()
    quota.reserve(gid, Decimal("0.20"), UNLIMITED, HUNYUAN)
    quota.reserve(gid, Decimal("0.20"), UNLIMITED, HUNYUAN)
    assert quota.calls == 1
    assert quota.reserved == Decimal("0.20")
    assert event_names(quota) == ["Opened", "Reserved"]


def test_repeating_a_reservation_is_not_refused_even_when_the_plan_is_now_full() -> None:
    quota = new_quota()
    plan = Plan("one call", calls_limit=1, dollars_limit=Decimal("0.20"))
    gid = uuid4()
    quota.reserve(gid, Decimal("0.20"), plan, HUNYUAN)
    quota.reserve(gid, Decimal("0.20"), plan, HUNYUAN)  # a retried request: no refusal
    assert quota.calls == 1


def test_reserving_again_for_a_settled_generation_changes_nothing() -> None:
    quota = new_quota()
    gid = uuid4()
    quota.reserve(gid, Decimal("0.20"), UNLIMITED, HUNYUAN)
    quota.settle(gid, Decimal("0.20"))
    quota.reserve(gid, Decimal("0.20"), UNLIMITED, HUNYUAN)
    assert quota.reserved == Decimal("0")
    assert quota.calls == 1


# --- settling -------------------------------------------------------------------------------

def test_settling_moves_a_reservation_to_spent_at_the_actual_amount() -> None:
    quota = new_quota()
    gid = uuid4()
    quota.reserve(gid, Decimal("0.20"), UNLIMITED, HUNYUAN)

    quota.settle(gid, Decimal("0.16"))

    assert quota.reserved == Decimal("0")
    assert quota.spent == Decimal("0.16")
    assert quota.calls == 1
    assert not quota.holds(gid)


def test_settling_twice_settles_once_at_the_first_amount() -> None:
    quota = new_quota()
    gid = uuid4()
    quota.reserve(gid, Decimal("0.20"), UNLIMITED, HUNYUAN)
    quota.settle(gid, Decimal("0.20"))
    quota.settle(gid, Decimal("0.40"))
    assert quota.spent == Decimal("0.20")
    assert event_names(quota) == ["Opened", "Reserved", "Settled"]


def test_settling_one_generation_leaves_the_other_reservations_alone() -> None:
    quota = new_quota()
    first, second = uuid4(), uuid4()
    quota.reserve(first, Decimal("0.20"), UNLIMITED, HUNYUAN)
    quota.reserve(second, Decimal("0.50"), UNLIMITED, HUNYUAN)
    quota.settle(first, Decimal("0.20"))
    assert quota.reserved == Decimal("0.50")
    assert quota.holds(second)


# --- releasing ------------------------------------------------------------------------------

def test_releasing_a_reservation_gives_back_its_call_and_its_dollars() -> None:
    quota = new_quota()
    gid = uuid4()
    quota.reserve(gid, Decimal("0.20"), UNLIMITED, HUNYUAN)

    quota.release(gid)

    assert quota.calls == 0
    assert quota.reserved == Decimal("0")
    assert not quota.holds(gid)


def test_a_released_reservation_makes_room_for_another_call_on_a_full_plan() -> None:
    quota = new_quota()
    plan = Plan("one call", calls_limit=1, dollars_limit=Decimal("0.20"))
    gid = uuid4()
    quota.reserve(gid, Decimal("0.20"), plan, HUNYUAN)
    quota.release(gid)
    quota.reserve(uuid4(), Decimal("0.20"), plan, HUNYUAN)
    assert quota.calls == 1


def test_releasing_what_is_not_reserved_records_nothing() -> None:
    quota = new_quota()
    settled = uuid4()
    quota.reserve(settled, Decimal("0.20"), UNLIMITED, HUNYUAN)
    quota.settle(settled, Decimal("0.20"))

    quota.release(uuid4())
    quota.release(settled)

    assert quota.spent == Decimal("0.20")
    assert quota.calls == 1
    assert event_names(quota) == ["Opened", "Reserved", "Settled"]


# --- ids and replay -------------------------------------------------------------------------

def test_a_quota_id_is_stable_for_a_user_and_a_period() -> None:
    assert quota_id("alice", "2026-03") == quota_id("alice", "2026-03")
    assert new_quota("alice", "2026-03").id == quota_id("alice", "2026-03")


def test_each_month_has_its_own_quota() -> None:
    assert quota_id("alice", "2026-03") != quota_id("alice", "2026-04")


def test_each_user_has_their_own_quota() -> None:
    assert quota_id("alice", "2026-03") != quota_id("bob", "2026-03")


def test_replaying_a_quota_rebuilds_its_reservations_and_settlements() -> None:
    quota = new_quota()
    kept, settled, released = UUID(int=1), UUID(int=2), UUID(int=3)
    quota.reserve(kept, Decimal("0.10"), UNLIMITED, HUNYUAN)
    quota.reserve(settled, Decimal("0.20"), UNLIMITED, HUNYUAN)
    quota.reserve(released, Decimal("0.30"), UNLIMITED, HUNYUAN)
    quota.settle(settled, Decimal("0.15"))
    quota.release(released)

    rebuilt = replay(quota.collect_events())

    assert vars(rebuilt) == vars(quota)
    assert rebuilt.reserved == Decimal("0.10")
    assert rebuilt.spent == Decimal("0.15")
    assert rebuilt.calls == 2


# --- copies -----------------------------------------------------------------------------------


def test_a_copy_of_a_quota_changes_without_changing_the_original() -> None:
    original = new_quota()
    kept, settled = uuid4(), uuid4()
    original.reserve(kept, Decimal("0.10"), UNLIMITED, SANDBOX)
    original.reserve(settled, Decimal("0.20"), UNLIMITED, SANDBOX)
    original.settle(settled, Decimal("0.20"))
    original.collect_events()

    copied = deepcopy(original)
    copied.reserve(uuid4(), Decimal("0.30"), UNLIMITED, SANDBOX)
    copied.release(kept)
    copied.settle(uuid4(), Decimal("0.40"))

    assert (original.reserved, original.spent, original.calls, original.version) == (
        Decimal("0.10"), Decimal("0.20"), 2, 4,
    )
    assert original.collect_events() == []
    assert [type(e).__name__ for e in copied.collect_events()] == ["Reserved", "Released", "Settled"]
    assert (copied.reserved, copied.spent, copied.calls, copied.version) == (
        Decimal("0.30"), Decimal("0.60"), 3, 7,
    )
