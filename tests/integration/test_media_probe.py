"""Probing reads a file's facts from its headers: the same facts FFmpeg gives when it decodes the first frames."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from adapters.media import probe
from adapters.media.probe import probe_media

# (file name, container format or None for the name's, video codec, pixel format, audio codec, frames)
FORMATS = [
    ("h264-aac.mp4", None, "libx264", "yuv420p", "aac", 12),
    ("h264.mkv", None, "libx264", "yuv420p", None, 12),
    ("h264.ts", "mpegts", "libx264", "yuv420p", None, 12),
    ("hevc.mp4", None, "libx265", "yuv420p", None, 12),
    ("vp9.webm", None, "libvpx-vp9", "yuv420p", None, 6),
    ("mpeg4.avi", None, "mpeg4", "yuv420p", None, 12),
    ("clip.gif", None, "gif", "rgb8", None, 4),
    ("still.png", "image2", "png", "rgb24", None, 1),
    ("still.jpg", "image2", "mjpeg", "yuvj420p", None, 1),
    ("still.webp", "webp", "libwebp", "yuv420p", None, 1),
    ("speech.wav", None, None, None, "pcm_s16le", 0),
    ("speech.mp3", None, None, None, "libmp3lame", 0),
    ("speech.flac", None, None, None, "flac", 0),
]


def write_media(
    path: Path, form: str | None, video: str | None, pixels: str | None, audio: str | None, frames: int
) -> None:
    for codec in (video, audio):
        if codec is not None and codec not in av.codecs_available:
            pytest.skip(f"this PyAV has no {codec} encoder")
    noise = np.random.default_rng(7)
    with av.open(str(path), "w", format=form) as container:
        picture = container.add_stream(video, rate=24) if video else None
        if picture is not None:
            picture.width, picture.height, picture.pix_fmt = 96, 64, pixels
        sound = container.add_stream(audio, rate=44_100) if audio else None
        for _ in range(frames):
            assert picture is not None
            image = noise.integers(0, 255, (64, 96, 3), dtype=np.uint8)
            container.mux(picture.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        if picture is not None:
            container.mux(picture.encode())
        if sound is not None:
            layout, samples = "mono", sound.codec_context.frame_size or 1_024
            sample_format = sound.codec_context.format.name
            for index in range(30):
                frame = av.AudioFrame(format=sample_format, layout=layout, samples=samples)
                for plane in frame.planes:
                    plane.update(bytes(plane.buffer_size))
                frame.sample_rate, frame.pts = 44_100, index * samples
                container.mux(sound.encode(frame))
            container.mux(sound.encode())


@pytest.mark.parametrize(
    ("name", "form", "video", "pixels", "audio", "frames"), FORMATS, ids=[row[0] for row in FORMATS]
)
def test_probing_reads_from_the_headers_what_decoding_the_first_frames_would_tell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    name: str, form: str | None, video: str | None, pixels: str | None, audio: str | None, frames: int,
) -> None:
    path = tmp_path / name
    write_media(path, form, video, pixels, audio, frames)

    from_headers = probe_media(path)
    monkeypatch.setattr(probe, "_HEADERS_ONLY", {})
    from_decoding = probe_media(path)

    assert from_headers == from_decoding
    assert from_headers.has_video == (video is not None) and from_headers.has_audio == (audio is not None)
    if video is not None:
        assert (from_headers.width, from_headers.height) == (96, 64)
