"""Media kinds and sniffing them from their first bytes (never from a file name)."""

from __future__ import annotations

from enum import Enum

SNIFF_BYTES = 64


class MediaKind(str, Enum):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"


_AUDIO_MP4_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ")
_IMAGE_BRANDS = {b"avif": "image/avif", b"avis": "image/avif", b"heic": "image/heic", b"heix": "image/heic",
                 b"mif1": "image/heif", b"msf1": "image/heif"}


def sniff_mime(head: bytes) -> str | None:
    """The MIME type that the first bytes of a file declare, or None when they match no known format."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AUDIO_MP4_BRANDS:
            return "audio/mp4"
        if brand in _IMAGE_BRANDS:
            return _IMAGE_BRANDS[brand]
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def kind_of(mime: str | None) -> MediaKind | None:
    if mime is None:
        return None
    major = mime.split("/", 1)[0]
    return {kind.value: kind for kind in MediaKind}.get(major)

MAX_INPUT_BYTES = {
    MediaKind.IMAGE: 20 * 1024 * 1024,
    MediaKind.AUDIO: 100 * 1024 * 1024,
    MediaKind.VIDEO: 500 * 1024 * 1024,
}
ACCEPTED_MIMES = {
    MediaKind.IMAGE: ("image/png", "image/jpeg", "image/webp", "image/gif"),
    MediaKind.AUDIO: ("audio/wav", "audio/mpeg", "audio/ogg", "audio/flac", "audio/mp4"),
    MediaKind.VIDEO: ("video/mp4", "video/quicktime", "video/webm"),
}
