"""Price rules of the catalogue: a rate per billed unit of output seconds, by resolution."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal("0")


@dataclass(frozen=True)
class PriceRule:
    """USD per `unit_seconds` of output, by resolution; `minimum_seconds` are billed at least.

    Started units are billed whole: a 7 s video at $0.10 per 5 s costs $0.20.
    """

    rates: Mapping[str, Decimal]
    unit_seconds: int = 1
    minimum_seconds: int = 0
    note: str = ""
    flat_rate: Decimal | None = field(default=None)

    def rate(self, resolution: str) -> Decimal:
        if self.flat_rate is not None:
            return self.flat_rate
        return self.rates[resolution]

    def billed_seconds(self, seconds: float) -> int:
        whole = math.ceil(round(seconds, 3))
        return max(whole, self.minimum_seconds)

    def quote(self, seconds: float, resolution: str) -> Decimal:
        units = math.ceil(self.billed_seconds(seconds) / self.unit_seconds)
        return self.rate(resolution) * units

    def describe(self) -> str:
        unit = "second" if self.unit_seconds == 1 else f"{self.unit_seconds} s"
        if self.flat_rate is not None:
            words = f"${self.flat_rate} per {unit}"
        else:
            words = ", ".join(f"${rate} per {unit} at {name}" for name, rate in self.rates.items())
        if self.minimum_seconds:
            words += f"; at least {self.minimum_seconds} s billed"
        if self.note:
            words += f" ({self.note})"
        return words

    def as_numbers(self) -> dict[str, object]:
        return {
            "currency": "USD",
            "unit_seconds": self.unit_seconds,
            "minimum_seconds": self.minimum_seconds,
            "rates": (
                {"*": self.flat_rate} if self.flat_rate is not None else dict(self.rates)
            ),
        }


FREE = PriceRule(rates={}, flat_rate=ZERO, note="sandbox: renders offline, costs nothing")


def per_second(rates: Mapping[str, str], *, minimum: int = 0, note: str = "") -> PriceRule:
    return PriceRule({name: Decimal(rate) for name, rate in rates.items()}, 1, minimum, note)


def per_block(rates: Mapping[str, str], *, seconds: int, minimum: int = 0, note: str = "") -> PriceRule:
    return PriceRule({name: Decimal(rate) for name, rate in rates.items()}, seconds, minimum, note)
