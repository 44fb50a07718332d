"""The sandbox renderer writes playable H.264 MP4s of the asked size and length, checked by decoding them with PyAV."""

from __future__ import annotations

import math
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from adapters.media.probe import probe_media
from adapters.sandbox.rendering import render_avatar, render_text_card, render_upscale, render_zoom

TONE_SECONDS = 2.5


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "portrait.png"
    red = np.broadcast_to(np.linspace(0, 255, 300, dtype=np.uint8)[:, np.newaxis], (300, 200))
    green = np.broadcast_to(np.linspace(255, 0, 200, dtype=np.uint8)[np.newaxis, :], (300, 200))
    pixels = np.stack([red, green, np.full((300, 200), 90, np.uint8)], axis=-1)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    rate = 22_050
    samples = np.sin(2 * math.pi * 220 * np.arange(round(TONE_SECONDS * rate)) / rate)
    with wave.open(str(path), "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(2)
        sink.setframerate(rate)
        sink.writeframes((samples * 12_000).astype("<i2").tobytes())
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    render_text_card(path, text="a small clip", width=320, height=180, seconds=2.0)
    return path


def decoded_frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


def test_a_text_card_lasts_the_asked_length_at_the_asked_size(tmp_path: Path) -> None:
    out = tmp_path / "card.mp4"
    render_text_card(out, text="a red fox in the snow", width=320, height=180, seconds=3.0)

    probed = probe_media(out)
    assert probed.video_codec == "h264"
    assert (probed.width, probed.height) == (320, 180)
    assert probed.seconds == pytest.approx(3.0, abs=0.05)
    assert not probed.has_audio
    frames = decoded_frames(out)
    assert len(frames) == 72
    assert frames[0].format.name == "yuv420p"


def test_a_text_card_honours_a_custom_frame_rate(tmp_path: Path) -> None:
    out = tmp_path / "card30.mp4"
    render_text_card(out, text="thirty", width=320, height=180, seconds=1.5, fps=30)

    assert probe_media(out).seconds == pytest.approx(1.5, abs=0.05)
    assert len(decoded_frames(out)) == 45


def test_a_text_card_reports_progress_a_few_times_ending_at_done(tmp_path: Path) -> None:
    reported: list[float] = []
    render_text_card(
        tmp_path / "card.mp4", text="progress", width=320, height=180, seconds=2.0, on_progress=reported.append
    )

    assert reported[-1] == 1.0
    assert reported == sorted(reported)
    assert all(0.0 <= fraction <= 1.0 for fraction in reported)
    assert 2 <= len(reported) < 48


def test_an_empty_text_card_is_just_the_moving_background(tmp_path: Path) -> None:
    out = tmp_path / "empty.mp4"
    render_text_card(out, text="", width=320, height=180, seconds=1.0)

    frames = decoded_frames(out)
    assert len(frames) == 24
    assert not np.array_equal(frames[0].to_ndarray(format="rgb24"), frames[-1].to_ndarray(format="rgb24"))


def test_a_prompt_too_long_for_the_card_is_wrapped_and_cut_rather_than_failing(tmp_path: Path) -> None:
    out = tmp_path / "long.mp4"
    prompt = "an_unbreakably_long_word_without_any_spaces_at_all " + "and a great many more words " * 80
    render_text_card(out, text=prompt, width=320, height=180, seconds=1.0)

    assert len(decoded_frames(out)) == 24


def test_a_card_too_short_for_a_single_frame_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_text_card(tmp_path / "none.mp4", text="x", width=320, height=180, seconds=0.01)


def test_a_720p_five_second_text_card_renders_in_a_few_seconds(tmp_path: Path) -> None:
    out = tmp_path / "card720.mp4"
    started = time.perf_counter()
    render_text_card(
        out, text="A lighthouse on a cliff at dusk, waves crashing below", width=1280, height=720, seconds=5.0
    )
    elapsed = time.perf_counter() - started

    probed = probe_media(out)
    assert (probed.width, probed.height) == (1280, 720)
    assert probed.seconds == pytest.approx(5.0, abs=0.05)
    assert elapsed < 20.0


def test_a_zoom_fills_the_frame_for_the_asked_length(tmp_path: Path, png: Path) -> None:
    out = tmp_path / "zoom.mp4"
    reported: list[float] = []
    render_zoom(out, image=png, width=320, height=180, seconds=2.0, on_progress=reported.append)

    probed = probe_media(out)
    assert probed.video_codec == "h264"
    assert (probed.width, probed.height) == (320, 180)
    assert probed.seconds == pytest.approx(2.0, abs=0.05)
    frames = decoded_frames(out)
    assert len(frames) == 48
    assert reported[-1] == 1.0


def test_a_zoom_moves_in_so_its_first_and_last_frames_differ(tmp_path: Path, png: Path) -> None:
    out = tmp_path / "zoom.mp4"
    render_zoom(out, image=png, width=320, height=180, seconds=1.0)

    frames = decoded_frames(out)
    first = frames[0].to_ndarray(format="rgb24").astype(np.int16)
    last = frames[-1].to_ndarray(format="rgb24").astype(np.int16)
    assert np.abs(first - last).mean() > 1.0


def test_an_avatar_carries_the_speech_and_lasts_as_long_as_it(tmp_path: Path, png: Path, wav: Path) -> None:
    out = tmp_path / "avatar.mp4"
    reported: list[float] = []
    seconds = render_avatar(out, image=png, audio=wav, width=320, height=180, on_progress=reported.append)

    assert seconds == pytest.approx(TONE_SECONDS, abs=0.01)
    probed = probe_media(out)
    assert probed.video_codec == "h264"
    assert probed.audio_codec == "aac"
    assert (probed.width, probed.height) == (320, 180)
    assert probed.seconds == pytest.approx(TONE_SECONDS, abs=0.1)
    assert audio_seconds(out) == pytest.approx(TONE_SECONDS, abs=0.1)
    assert len(decoded_frames(out)) == round(TONE_SECONDS * 24)
    assert reported[-1] == 1.0


def test_an_avatar_refuses_audio_that_is_not_audio(tmp_path: Path, png: Path) -> None:
    with pytest.raises(ValueError):
        render_avatar(tmp_path / "avatar.mp4", image=png, audio=png, width=320, height=180)


def test_a_zoom_refuses_a_file_that_is_not_an_image_and_leaves_nothing_behind(tmp_path: Path, wav: Path) -> None:
    out = tmp_path / "zoom.mp4"
    with pytest.raises(ValueError, match="not an image"):
        render_zoom(out, image=wav, width=320, height=180, seconds=1.0)
    assert not out.exists()


def test_an_upscale_of_something_without_video_fails_and_leaves_nothing_behind(tmp_path: Path, wav: Path) -> None:
    out = tmp_path / "big.mp4"
    with pytest.raises(ValueError):
        render_upscale(out, video=wav, width=640, height=360)
    assert not out.exists()


def test_an_upscale_keeps_the_duration_and_frame_count_at_the_new_size(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "big.mp4"
    reported: list[float] = []
    seconds = render_upscale(out, video=clip, width=640, height=360, on_progress=reported.append)

    assert seconds == pytest.approx(2.0, abs=0.05)
    probed = probe_media(out)
    assert probed.video_codec == "h264"
    assert (probed.width, probed.height) == (640, 360)
    assert probed.seconds == pytest.approx(2.0, abs=0.1)
    assert not probed.has_audio
    assert len(decoded_frames(out)) == 48
    assert reported[-1] == 1.0


def test_an_upscale_carries_the_audio_track_along(tmp_path: Path, png: Path, wav: Path) -> None:
    talking = tmp_path / "avatar.mp4"
    render_avatar(talking, image=png, audio=wav, width=320, height=180)
    out = tmp_path / "big.mp4"
    seconds = render_upscale(out, video=talking, width=640, height=360)

    probed = probe_media(out)
    assert probed.has_audio and probed.audio_codec == "aac"
    assert (probed.width, probed.height) == (640, 360)
    assert seconds == pytest.approx(TONE_SECONDS, abs=0.05)
    assert probed.seconds == pytest.approx(TONE_SECONDS, abs=0.1)
    assert audio_seconds(out) == pytest.approx(TONE_SECONDS, abs=0.1)


def test_probing_a_png_reports_a_still_image_without_a_duration(png: Path) -> None:
    probed = probe_media(png)

    assert probed.seconds is None
    assert probed.has_video and not probed.has_audio
    assert (probed.width, probed.height) == (200, 300)
    assert probed.video_codec == "png"


def test_probing_a_wav_reports_audio_only_with_its_length(wav: Path) -> None:
    probed = probe_media(wav)

    assert probed.has_audio and not probed.has_video
    assert probed.seconds == pytest.approx(TONE_SECONDS, abs=0.01)
    assert probed.width is None and probed.height is None


@pytest.mark.parametrize("words", [3, 5_000], ids=["short", "long enough for ffmpeg to call it ansi art"])
def test_probing_a_text_file_says_it_is_not_media(tmp_path: Path, words: int) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("lorem ipsum dolor " * words)

    with pytest.raises(ValueError, match="not a media file: notes.txt"):
        probe_media(path)
