"""TaskListing's rules, with a fake of the client's listing: when polls share a listing and how far it reads."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from adapters.wavespeed.listing import TaskListing

MODEL = "wavespeed-ai/hunyuan-video-1.5/text-to-video"
START = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)


def prediction(number: int, status: str = "processing", outputs: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "id": f"task-{number}", "model": MODEL, "status": status, "outputs": list(outputs),
        "created_at": (START + dt.timedelta(seconds=number)).isoformat().replace("+00:00", "Z"),
    }


class FakeListingClient:
    """Answers `predictions` from a list, newest first, a page at a time, and counts the pages read."""

    def __init__(self, items: list[dict[str, Any]], *, fail: bool = False) -> None:
        self.items = items
        self.fail = fail
        self.pages: list[int] = []

    async def predictions(
        self, model_id: str, created_after: dt.datetime, created_before: dt.datetime, *, page: int = 1,
        page_size: int = 100, retry: bool = True,
    ) -> tuple[list[dict[str, Any]], int | None]:
        self.pages.append(page)
        if self.fail:
            raise RuntimeError("the listing broke")
        inside = [
            item for item in reversed(self.items)
            if item["model"] == model_id
            and created_after <= dt.datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")) <= created_before
        ]
        return inside[(page - 1) * page_size : page * page_size], len(inside)


def listing_of(client: FakeListingClient, **options: Any) -> TaskListing:
    return TaskListing(client, gather_s=0.01, **options)  # type: ignore[arg-type]


def learn_all(listing: TaskListing, numbers: range) -> None:
    for number in numbers:
        listing.learn(f"task-{number}", prediction(number), model=MODEL)


async def answers(listing: TaskListing, numbers: range) -> list[dict[str, Any] | None]:
    return list(await asyncio.gather(*(listing.answer(f"task-{number}") for number in numbers)))


def test_polls_made_together_read_only_as_many_pages_as_hold_their_tasks() -> None:
    client = FakeListingClient([prediction(number) for number in range(30)])
    listing = listing_of(client, page_size=10)
    learn_all(listing, range(30))

    found = asyncio.run(answers(listing, range(20, 30)))

    assert [item and item["id"] for item in found] == [f"task-{number}" for number in range(20, 30)]
    assert client.pages == [1]


def test_the_listing_stops_where_reading_on_would_cost_more_than_polling_the_rest_alone() -> None:
    client = FakeListingClient([prediction(number) for number in range(100)])
    listing = listing_of(client, page_size=10)
    learn_all(listing, range(100))

    found = asyncio.run(answers(listing, range(0, 100, 20)))  # five tasks, spread over the window's nine pages

    assert [item and item["id"] for item in found] == [None, None, None, None, "task-80"]
    assert client.pages == [1]


def test_fewer_tasks_in_flight_than_make_a_listing_worth_it_are_polled_alone_without_waiting() -> None:
    client = FakeListingClient([prediction(number) for number in range(3)])
    listing = TaskListing(client, gather_s=0.5)  # type: ignore[arg-type]
    learn_all(listing, range(3))

    started = time.monotonic()
    assert asyncio.run(answers(listing, range(3))) == [None] * 3
    assert time.monotonic() - started < 0.25
    assert client.pages == []


def test_a_task_whose_creation_is_unknown_is_polled_alone_and_shared_once_an_answer_tells_it() -> None:
    client = FakeListingClient([prediction(number) for number in range(6)])
    listing = listing_of(client)
    learn_all(listing, range(5))

    alone = asyncio.run(listing.answer("task-5"))
    listing.learn("task-5", prediction(5))
    shared = asyncio.run(answers(listing, range(6)))

    assert alone is None
    assert [item and item["id"] for item in shared] == [f"task-{number}" for number in range(6)]


def test_only_a_running_task_or_one_completed_with_outputs_is_answered_from_the_listing() -> None:
    items = [
        prediction(0, "created"), prediction(1, "processing"),
        prediction(2, "completed", ("https://out/2.mp4",)) | {"has_nsfw_contents": [False]},
        prediction(3, "completed"), prediction(4, "failed"), prediction(5, "timeout"), prediction(6, "queued?"),
    ]
    listing = listing_of(FakeListingClient(items))
    learn_all(listing, range(7))

    found = asyncio.run(answers(listing, range(7)))

    assert [item is not None for item in found] == [True, True, True, False, False, False, False]


def test_a_listing_that_fails_leaves_every_poll_to_be_made_alone() -> None:
    client = FakeListingClient([prediction(number) for number in range(5)], fail=True)
    listing = listing_of(client)
    learn_all(listing, range(5))

    assert asyncio.run(answers(listing, range(5))) == [None] * 5
    assert client.pages == [1]


def test_a_poll_given_up_while_it_waits_leaves_the_others_their_answers() -> None:
    client = FakeListingClient([prediction(number) for number in range(6)])
    listing = listing_of(client)
    learn_all(listing, range(6))

    async def scenario() -> list[Any]:
        polls = [asyncio.create_task(listing.answer(f"task-{number}")) for number in range(6)]
        await asyncio.sleep(0)
        polls[0].cancel()
        return await asyncio.gather(*polls, return_exceptions=True)

    first, *rest = asyncio.run(scenario())

    assert isinstance(first, asyncio.CancelledError)
    assert [item and item["id"] for item in rest] == [f"task-{number}" for number in range(1, 6)]


def test_an_ended_task_no_longer_counts_towards_a_shared_listing() -> None:
    client = FakeListingClient([prediction(number) for number in range(4)])
    listing = TaskListing(client, gather_s=0.5)  # type: ignore[arg-type]
    learn_all(listing, range(4))
    listing.forget("task-3")

    started = time.monotonic()
    found = asyncio.run(answers(listing, range(3)))

    assert found == [None] * 3
    assert time.monotonic() - started < 0.25, "three in flight: polled alone without waiting to share"
    assert client.pages == []


def test_a_completion_whose_outputs_carry_no_content_flags_is_asked_of_the_task_itself() -> None:
    flagged = prediction(0, "completed", ("https://out/0.mp4",)) | {"has_nsfw_contents": [False]}
    unflagged = prediction(1, "completed", ("https://out/1.mp4",))
    listing = listing_of(FakeListingClient([flagged, unflagged, prediction(2), prediction(3)]))
    learn_all(listing, range(4))

    found = asyncio.run(answers(listing, range(4)))

    assert [item is not None for item in found] == [True, False, True, True]
