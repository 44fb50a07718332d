"""Frame sizes: how a resolution name and an aspect ratio become width x height."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.errors import InvalidResolution, InvalidValue, allowed_list

STANDARD_SIZES: Mapping[str, tuple[int, int]] = {
    "480p": (854, 480),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "2k": (2560, 1440),
    "4k": (3840, 2160),
}
ASPECT_RATIOS = ("16:9", "9:16", "1:1")


@dataclass(frozen=True)
class FrameSize:
    width: int
    height: int

    @property
    def orientation(self) -> str:
        if self.width == self.height:
            return "1:1"
        return "16:9" if self.width > self.height else "9:16"


def frame_size(
    resolution: str, aspect_ratio: str, exact_sizes: Mapping[str, tuple[int, int]] | None = None
) -> FrameSize:
    """The frame of a resolution in an orientation; a model's exact size wins over the standard one."""
    landscape = (exact_sizes or {}).get(resolution) or STANDARD_SIZES.get(resolution)
    if landscape is None:
        raise InvalidResolution(
            f"unknown resolution {resolution!r}; allowed: {allowed_list(STANDARD_SIZES)}",
            field="resolution",
            allowed=STANDARD_SIZES,
        )
    if aspect_ratio not in ASPECT_RATIOS:
        raise InvalidValue(
            f"aspect ratio {aspect_ratio!r} is not offered; allowed: {allowed_list(ASPECT_RATIOS)}",
            field="aspect_ratio",
            allowed=ASPECT_RATIOS,
        )
    long_side, short_side = landscape
    if aspect_ratio == "9:16":
        return FrameSize(short_side, long_side)
    if aspect_ratio == "1:1":
        return FrameSize(short_side, short_side)
    return FrameSize(long_side, short_side)
