"""The request's shape as callers send it: numbers, names and lengths checked before anything is recorded."""

from __future__ import annotations

from typing import Any

import pytest

from application.requests import parse_request
from domain.errors import InvalidDuration, InvalidValue


@pytest.mark.parametrize(("field", "value"), [("duration", True), ("duration", False), ("seed", True)])
def test_a_truth_value_is_not_taken_for_a_number(field: str, value: bool) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_request(prompt="x", **{field: value})

    assert refused.value.field == field
    assert "a number is needed" in refused.value.message


@pytest.mark.parametrize(("given", "duration"), [(5, 5.0), (2.5, 2.5), ("5", 5.0)])
def test_a_duration_is_read_from_a_number_or_its_text(given: Any, duration: float) -> None:
    assert parse_request(prompt="x", duration=given).duration == duration


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), float("-inf")])
def test_a_duration_that_is_no_number_of_seconds_is_refused_as_a_duration(duration: float) -> None:
    with pytest.raises(InvalidDuration) as refused:
        parse_request(prompt="x", duration=duration)

    assert (refused.value.code, refused.value.field) == ("invalid_duration", "duration")
