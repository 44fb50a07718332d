"""What a generation makes: the four operations videogen offers."""

from __future__ import annotations

from enum import Enum


class Operation(str, Enum):
    TEXT_TO_VIDEO = "text-to-video"
    IMAGE_TO_VIDEO = "image-to-video"
    AVATAR = "avatar"
    ENHANCE = "enhance"

    @classmethod
    def names(cls) -> list[str]:
        return [operation.value for operation in cls]
