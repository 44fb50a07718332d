"""Use-case: drop every read model projected from the event log and build it again from the first event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from application.ports import RebuildableProjection


@dataclass(frozen=True)
class Rebuilt:
    name: str
    position: int


class RebuildProjections:
    """Clears each projection (rows and position at once), then catches it up with the whole log."""

    def __init__(self, projections: Sequence[RebuildableProjection]) -> None:
        self.projections = projections

    def __call__(self) -> list[Rebuilt]:
        rebuilt = []
        for projection in self.projections:
            projection.clear()
            projection.catch_up()
            rebuilt.append(Rebuilt(projection.name, projection.position()))
        return rebuilt
