"""The long-running commands' collector settings: start-up objects frozen, young collections rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from adapters.cli.collector import YOUNG_COLLECTION_EVERY, paused_while_loading, settle_for_a_long_run


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_a_settled_process_keeps_its_start_up_objects_out_of_collections_and_collects_young_ones_less_often(
    restored_collector: None,
) -> None:
    made_at_start_up = [[index] for index in range(1000)]

    settle_for_a_long_run()

    assert gc.get_freeze_count() >= len(made_at_start_up)
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY
    assert gc.isenabled()


def test_a_process_settled_for_rarer_collections_collects_young_objects_that_much_less_often(
    restored_collector: None,
) -> None:
    settle_for_a_long_run(young_every=YOUNG_COLLECTION_EVERY * 10)

    assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY * 10


def test_nothing_is_collected_while_a_command_loads_and_the_collector_is_back_on_after(
    restored_collector: None,
) -> None:
    collections_before = sum(generation["collections"] for generation in gc.get_stats())

    with paused_while_loading():
        assert not gc.isenabled()
        garbage = [[index] for index in range(10 * gc.get_threshold()[0])]
        del garbage

    assert sum(generation["collections"] for generation in gc.get_stats()) == collections_before
    assert gc.isenabled()


def test_what_a_command_loads_is_frozen_so_no_later_collection_walks_it(restored_collector: None) -> None:
    with paused_while_loading():
        loaded = [[index] for index in range(1000)]
        frozen_before = gc.get_freeze_count()

    assert gc.get_freeze_count() >= frozen_before + len(loaded)
    assert gc.get_count()[0] < len(loaded)


def test_loading_leaves_a_collector_that_was_off_off(restored_collector: None) -> None:
    gc.disable()
    try:
        with paused_while_loading():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
