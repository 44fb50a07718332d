"""How amounts are shown: decimal strings with at least two places, whatever their size."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.presentation import money


@pytest.mark.parametrize(
    ("amount", "shown"),
    [("0", "0.00"), ("0.2", "0.20"), ("0.060", "0.060"), ("5", "5.00"), ("1E+2", "100.00"),
     ("1e26", "100000000000000000000000000.00")],
)
def test_an_amount_is_shown_with_at_least_two_places(amount: str, shown: str) -> None:
    assert money(Decimal(amount)) == shown
