"""Inline media: base64 data URIs and raw base64, as the old backend's callers sent them."""

from __future__ import annotations

import base64

import pytest

from domain.errors import InvalidValue
from adapters.inline_media import decode_inline

DATA = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.mark.parametrize(
    "text",
    [
        "data:image/png;base64," + base64.b64encode(DATA).decode(),
        "DATA:image/png;name=face.png;base64," + base64.b64encode(DATA).decode(),
        base64.b64encode(DATA).decode(),
        base64.urlsafe_b64encode(DATA).decode().rstrip("="),
        "\n".join(base64.encodebytes(DATA).decode().split()),
    ],
    ids=["data-uri", "data-uri-with-params", "raw", "url-safe-unpadded", "wrapped-lines"],
)
def test_every_inline_form_decodes_to_the_same_bytes(text: str) -> None:
    assert decode_inline(text, field="image_base64") == DATA


@pytest.mark.parametrize(
    "text",
    ["data:image/png,not-base64", "not base64 at all!", "", "data:image/png;base64,"],
    ids=["data-uri-without-base64", "garbage", "empty", "empty-data-uri"],
)
def test_what_is_not_base64_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        decode_inline(text, field="audio_base64")
    assert refused.value.field == "audio_base64"
