"""Media sent inline, as the old backend sent it: `data:` URIs and raw base64 text, decoded at the boundary."""

from __future__ import annotations

import base64
import binascii
import re

from domain.errors import InvalidValue

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def is_data_uri(text: str) -> bool:
    return text[:5].lower() == "data:"


def decode_inline(text: str, *, field: str) -> bytes:
    """The bytes of a base64 `data:` URI or of raw base64 text (standard or URL-safe alphabet, padding optional).

    Raises InvalidValue naming `field` when the text is neither.
    """
    payload = text
    if is_data_uri(text):
        match = _DATA_URI.match(text)
        if match is None:
            raise InvalidValue(f"{field}: only base64 data: URIs are accepted (data:<type>;base64,...)", field=field)
        payload = text[match.end() :]
    payload = _WHITESPACE.sub("", payload)
    alphabet = b"-_" if ("-" in payload or "_" in payload) else b"+/"
    padded = payload + "=" * (-len(payload) % 4)
    try:
        data = base64.b64decode(padded, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue(f"{field}: not valid base64 data", field=field) from None
    if not data:
        raise InvalidValue(f"{field}: the data is empty", field=field)
    return data
