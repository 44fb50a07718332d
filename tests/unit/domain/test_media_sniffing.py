"""Sniffing a file's media type from its first bytes, never from its name."""

from __future__ import annotations

import pytest

from domain.media import ACCEPTED_MIMES, SNIFF_BYTES, MediaKind, kind_of, sniff_mime


def padded(head: bytes) -> bytes:
    """A realistic head: the magic bytes followed by payload, cut at SNIFF_BYTES."""
    return (head + bytes(range(7, 7 + SNIFF_BYTES)))[:SNIFF_BYTES]


def riff(form: bytes) -> bytes:
    return b"RIFF" + (123_456).to_bytes(4, "little") + form


def iso_bmff(brand: bytes) -> bytes:
    return (32).to_bytes(4, "big") + b"ftyp" + brand + b"\x00\x00\x02\x00" + brand + b"isomiso2"


SAMPLES = {
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    "jpeg (JFIF)": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    "jpeg (Exif)": (b"\xff\xd8\xff\xe1\x1c\x45Exif\x00\x00", "image/jpeg"),
    "webp": (riff(b"WEBPVP8 "), "image/webp"),
    "gif87a": (b"GIF87a\x01\x00\x01\x00", "image/gif"),
    "gif89a": (b"GIF89a\x01\x00\x01\x00", "image/gif"),
    "wav": (riff(b"WAVEfmt "), "audio/wav"),
    "mp3 with an ID3 tag": (b"ID3\x04\x00\x00\x00\x00\x0f\x76", "audio/mpeg"),
    "mp3 frame sync (MPEG-1 layer III)": (b"\xff\xfb\x90\x64\x00", "audio/mpeg"),
    "mp3 frame sync (MPEG-2 layer III)": (b"\xff\xf3\x84\xc4\x00", "audio/mpeg"),
    "ogg": (b"OggS\x00\x02\x00\x00\x00\x00", "audio/ogg"),
    "flac": (b"fLaC\x00\x00\x00\x22", "audio/flac"),
    "mp4 (isom)": (iso_bmff(b"isom"), "video/mp4"),
    "mp4 (mp42)": (iso_bmff(b"mp42"), "video/mp4"),
    "m4v": (iso_bmff(b"M4V "), "video/mp4"),
    "m4a": (iso_bmff(b"M4A "), "audio/mp4"),
    "m4b audiobook": (iso_bmff(b"M4B "), "audio/mp4"),
    "quicktime": (iso_bmff(b"qt  "), "video/quicktime"),
    "webm": (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "video/webm"),
}


@pytest.mark.parametrize(("head", "mime"), SAMPLES.values(), ids=SAMPLES.keys())
def test_each_known_format_is_recognised_from_its_first_bytes(head: bytes, mime: str) -> None:
    assert sniff_mime(padded(head)) == mime


@pytest.mark.parametrize(("head", "mime"), SAMPLES.values(), ids=SAMPLES.keys())
def test_every_recognised_format_is_one_the_inputs_accept(head: bytes, mime: str) -> None:
    found = sniff_mime(padded(head))
    kind = kind_of(found)
    assert kind is not None
    assert found in ACCEPTED_MIMES[kind]


def test_an_mp4_container_with_a_video_brand_is_video_and_with_an_audio_brand_is_audio() -> None:
    assert kind_of(sniff_mime(iso_bmff(b"isom"))) is MediaKind.VIDEO
    assert kind_of(sniff_mime(iso_bmff(b"M4A "))) is MediaKind.AUDIO


def test_a_riff_file_is_told_apart_by_its_form_type() -> None:
    assert sniff_mime(riff(b"WEBP")) == "image/webp"
    assert sniff_mime(riff(b"WAVE")) == "audio/wav"
    assert sniff_mime(riff(b"AVI ")) is None


UNKNOWN = {
    "empty": b"",
    "plain text": b"hello, this is not a video at all",
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3",
    "zip": b"PK\x03\x04\x14\x00\x00\x00",
    "html": b"<!doctype html><html>",
    "one byte of 0xff": b"\xff",
    "0xff without the rest of a frame sync": b"\xff\x1f\x00\x00",
    "riff too short": b"RIFF",
}


@pytest.mark.parametrize("head", UNKNOWN.values(), ids=UNKNOWN.keys())
def test_bytes_of_no_known_format_are_not_given_a_type(head: bytes) -> None:
    assert sniff_mime(head) is None


def test_the_file_name_plays_no_part_only_the_bytes() -> None:
    # A PNG whose bytes happen to contain ".mp4" is still a PNG.
    assert sniff_mime(b"\x89PNG\r\n\x1a\nvideo.mp4") == "image/png"


@pytest.mark.parametrize("brand", [b"avif", b"heic"])
def test_an_avif_or_heic_still_image_is_not_taken_for_an_mp4_video(brand: bytes) -> None:
    assert kind_of(sniff_mime(iso_bmff(brand))) is not MediaKind.VIDEO


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("image/png", MediaKind.IMAGE),
        ("image/jpeg", MediaKind.IMAGE),
        ("audio/mpeg", MediaKind.AUDIO),
        ("audio/mp4", MediaKind.AUDIO),
        ("video/mp4", MediaKind.VIDEO),
        ("video/webm", MediaKind.VIDEO),
        ("video/quicktime", MediaKind.VIDEO),
    ],
)
def test_the_kind_of_a_mime_type_is_its_major_type(mime: str, kind: MediaKind) -> None:
    assert kind_of(mime) is kind


@pytest.mark.parametrize("mime", [None, "application/pdf", "text/plain", "application/octet-stream"])
def test_mime_types_that_are_not_media_have_no_kind(mime: str | None) -> None:
    assert kind_of(mime) is None
