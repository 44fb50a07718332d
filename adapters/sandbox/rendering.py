"""Adapters ring: the offline sandbox provider's renderer; may import PyAV, numpy, Pillow, no other `application`/`adapters` code."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.container
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

ProgressCallback = Callable[[float], None]

_PRESET = "veryfast"
_PROGRESS_REPORTS = 20
_AUDIO_BIT_RATE = 128_000
_AUDIO_FRAME_SAMPLES = 1024

_GRADIENT_PERIOD_SECONDS = 16.0
_GRADIENT_COARSENESS = 4
_TEXT_FADE_SECONDS = 0.5
_ZOOM_END = 1.15
_BREATH_DEPTH = 0.012
_BREATH_PERIOD_SECONDS = 4.0


class _Progress:
    def __init__(self, total: int, report: ProgressCallback | None) -> None:
        self._total = max(1, total)
        self._report = report
        self._step = max(1, self._total // _PROGRESS_REPORTS)

    def advance(self, done: int) -> None:
        if self._report is not None and done % self._step == 0 and done < self._total:
            self._report(done / self._total)

    def finish(self) -> None:
        if self._report is not None:
            self._report(1.0)


@dataclass(frozen=True)
class _DecodedAudio:
    frames: list[av.AudioFrame]
    rate: int
    layout: str
    samples: int

    @property
    def seconds(self) -> float:
        return self.samples / self.rate


class _Mp4Writer:
    """An H.264 (+ optional AAC) MP4 whose video frame i has pts i in a 1/fps time base."""

    def __init__(
        self,
        out: Path,
        *,
        width: int,
        height: int,
        fps: Fraction,
        audio_rate: int | None = None,
        audio_layout: str | None = None,
    ) -> None:
        self._out = out
        self._container: av.container.OutputContainer = av.open(str(out), mode="w", format="mp4")
        self._video = self._container.add_stream(
            "libx264",
            rate=fps,
            width=width,
            height=height,
            pix_fmt="yuv420p",
            time_base=1 / fps,
            options={"preset": _PRESET, "crf": "23"},
        )
        self._audio: av.AudioStream | None = None
        if audio_rate is not None:
            self._audio = self._container.add_stream("aac", rate=audio_rate)
            self._audio.layout = audio_layout or "mono"
            self._audio.bit_rate = _AUDIO_BIT_RATE
            self._audio.time_base = Fraction(1, audio_rate)
        self._video_time_base = 1 / fps
        self._frames_written = 0

    def __enter__(self) -> _Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._flush()
        except BaseException:
            self._container.close()
            self._out.unlink(missing_ok=True)
            raise
        self._container.close()
        if exc_type is not None:
            # A half-written MP4 has no moov atom and would only confuse whoever finds it.
            self._out.unlink(missing_ok=True)

    def write_video(self, frame: av.VideoFrame) -> None:
        # PyAV rebases pts from the frame's own time base, and decoded frames carry their source's.
        frame.time_base = self._video_time_base
        frame.pts = self._frames_written
        self._frames_written += 1
        self._container.mux(self._video.encode(frame))

    def write_audio(self, frame: av.AudioFrame) -> None:
        if self._audio is None:
            raise RuntimeError("this writer has no audio stream")
        self._container.mux(self._audio.encode(frame))

    def _flush(self) -> None:
        self._container.mux(self._video.encode(None))
        if self._audio is not None:
            self._container.mux(self._audio.encode(None))


def render_text_card(
    out: Path,
    *,
    text: str,
    width: int,
    height: int,
    seconds: float,
    fps: int = 24,
    on_progress: ProgressCallback | None = None,
) -> None:
    total = _frame_count(seconds, fps)
    period = 2 * width
    gradient = _periodic_gradient(width, height, period)
    layer = _TextLayer.render(text, width, height)
    shift_per_frame = period / (_GRADIENT_PERIOD_SECONDS * fps)
    fade_frames = max(1, round(_TEXT_FADE_SECONDS * fps))
    progress = _Progress(total, on_progress)
    with _Mp4Writer(out, width=width, height=height, fps=Fraction(fps)) as writer:
        for index in range(total):
            offset = round(index * shift_per_frame) % period
            picture = np.ascontiguousarray(gradient[:, offset : offset + width])
            if layer is not None:
                layer.composite_onto(picture, opacity=min(1.0, (index + 1) / fade_frames))
            writer.write_video(av.VideoFrame.from_ndarray(picture, format="rgb24"))
            progress.advance(index + 1)
    progress.finish()


def render_zoom(
    out: Path,
    *,
    image: Path,
    width: int,
    height: int,
    seconds: float,
    fps: int = 24,
    on_progress: ProgressCallback | None = None,
) -> None:
    total = _frame_count(seconds, fps)
    source = _cover(_open_rgb(image), width, height, headroom=_ZOOM_END)
    progress = _Progress(total, on_progress)
    with _Mp4Writer(out, width=width, height=height, fps=Fraction(fps)) as writer:
        for index in range(total):
            done = index / (total - 1) if total > 1 else 0.0
            zoom = 1.0 + (_ZOOM_END - 1.0) * done
            writer.write_video(_zoomed_frame(source, width, height, zoom))
            progress.advance(index + 1)
    progress.finish()


def render_avatar(
    out: Path,
    *,
    image: Path,
    audio: Path,
    width: int,
    height: int,
    fps: int = 24,
    on_progress: ProgressCallback | None = None,
) -> float:
    speech = _decode_audio(audio)
    total = _frame_count(speech.seconds, fps)
    headroom = 1.0 + 2 * _BREATH_DEPTH
    source = _cover(_open_rgb(image), width, height, headroom=headroom)
    progress = _Progress(total, on_progress)
    pending = iter(speech.frames)
    next_audio = next(pending, None)
    with _Mp4Writer(
        out,
        width=width,
        height=height,
        fps=Fraction(fps),
        audio_rate=speech.rate,
        audio_layout=speech.layout,
    ) as writer:
        for index in range(total):
            now = index / fps
            while next_audio is not None and next_audio.pts / speech.rate <= now:
                writer.write_audio(next_audio)
                next_audio = next(pending, None)
            breath = 0.5 - 0.5 * math.cos(2 * math.pi * now / _BREATH_PERIOD_SECONDS)
            writer.write_video(_zoomed_frame(source, width, height, 1.0 + _BREATH_DEPTH * breath))
            progress.advance(index + 1)
        while next_audio is not None:
            writer.write_audio(next_audio)
            next_audio = next(pending, None)
    progress.finish()
    return speech.seconds


def render_upscale(
    out: Path,
    *,
    video: Path,
    width: int,
    height: int,
    on_progress: ProgressCallback | None = None,
) -> float:
    with av.open(str(video)) as source:
        if not source.streams.video:
            raise ValueError(f"no video stream in {video.name}")
        video_in = source.streams.video[0]
        video_in.thread_type = "AUTO"
        fps = Fraction(video_in.average_rate or video_in.guessed_rate or 24)
        audio_in = source.streams.audio[0] if source.streams.audio else None
        resampler: av.AudioResampler | None = None
        audio_rate: int | None = None
        audio_layout: str | None = None
        if audio_in is not None:
            audio_rate, audio_layout = _audio_target(audio_in)
            resampler = av.AudioResampler(
                format="fltp", layout=audio_layout, rate=audio_rate, frame_size=_AUDIO_FRAME_SAMPLES
            )
        progress = _Progress(_expected_frames(source, video_in, fps), on_progress)
        frames = 0
        audio_samples = 0
        streams = [video_in] if audio_in is None else [video_in, audio_in]
        with _Mp4Writer(
            out,
            width=width,
            height=height,
            fps=fps,
            audio_rate=audio_rate,
            audio_layout=audio_layout,
        ) as writer:
            for packet in source.demux(streams):
                if packet.stream.type == "video":
                    for frame in packet.decode():
                        writer.write_video(frame.reformat(width=width, height=height, format="yuv420p"))
                        frames += 1
                        progress.advance(frames)
                elif resampler is not None and audio_rate is not None:
                    for decoded in packet.decode():
                        for chunk in resampler.resample(decoded):
                            audio_samples = _stamp(chunk, audio_samples, audio_rate)
                            writer.write_audio(chunk)
            if frames == 0:
                raise ValueError(f"no decodable video frames in {video.name}")
            if resampler is not None and audio_rate is not None:
                for chunk in resampler.resample(None):
                    audio_samples = _stamp(chunk, audio_samples, audio_rate)
                    writer.write_audio(chunk)
    progress.finish()
    return float(frames / fps)


def _frame_count(seconds: float, fps: int) -> int:
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    total = round(seconds * fps)
    if total < 1:
        raise ValueError(f"{seconds} s is too short for a single frame at {fps} fps")
    return total


def _expected_frames(source: av.container.InputContainer, stream: av.VideoStream, fps: Fraction) -> int:
    if stream.frames:
        return stream.frames
    if stream.duration and stream.time_base is not None:
        return max(1, round(stream.duration * stream.time_base * fps))
    if source.duration:
        return max(1, round(source.duration / av.time_base * fps))
    return 1


def _periodic_gradient(width: int, height: int, period: int) -> NDArray[np.uint8]:
    """A diagonal colour band repeating every `period` columns, `period + width` wide so any window slices cleanly."""
    # The gradient is smooth: computing it at a quarter of the size and upscaling looks the same and is ~10x cheaper.
    coarse_width = (period + width) // _GRADIENT_COARSENESS + 2
    coarse_height = height // _GRADIENT_COARSENESS + 2
    columns = np.arange(coarse_width, dtype=np.float32)[np.newaxis, :] * _GRADIENT_COARSENESS
    rows = np.arange(coarse_height, dtype=np.float32)[:, np.newaxis] * _GRADIENT_COARSENESS
    phase = (columns + 0.5 * rows) / period
    colour = np.stack([0.5 + 0.5 * np.cos(2 * np.pi * (phase + shift)) for shift in (0.0, 0.33, 0.67)], axis=-1)
    # Mid-tone range and a darker bottom keep white text legible on every hue.
    shade = (1.0 - 0.35 * np.minimum(rows / max(1, height - 1), 1.0))[..., np.newaxis]
    coarse = Image.fromarray((colour * 150.0 * shade + 35.0).clip(0, 255).astype(np.uint8))
    full = coarse.resize(
        (coarse_width * _GRADIENT_COARSENESS, coarse_height * _GRADIENT_COARSENESS), Image.Resampling.BILINEAR
    )
    return np.asarray(full)[:height, : period + width]


class _TextLayer:
    def __init__(self, top: int, left: int, rgba: NDArray[np.uint8]) -> None:
        self._top = top
        self._left = left
        colour = rgba[..., :3].astype(np.uint16)
        # Alpha on a 0..256 scale lets blending divide by a shift instead of by 255.
        alpha = rgba[..., 3:4].astype(np.uint16)
        alpha += alpha >> 7
        # Contiguous three-channel operands and a reused buffer make the per-frame blend ~5x faster than broadcasting.
        self._alpha = np.ascontiguousarray(np.broadcast_to(alpha, colour.shape))
        self._inverse_alpha = 256 - self._alpha
        self._premultiplied = colour * self._alpha
        self._scratch = np.empty(colour.shape, dtype=np.uint16)

    @classmethod
    def render(cls, text: str, width: int, height: int) -> _TextLayer | None:
        words = text.split()
        if not words:
            return None
        font, lines, line_height = _fit_text(words, width, height)
        block_height = line_height * len(lines)
        block_width = max(font.getlength(line) for line in lines)
        pad = max(6, line_height // 2)
        layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        top = (height - block_height) / 2
        draw.rounded_rectangle(
            (
                (width - block_width) / 2 - pad,
                top - pad,
                (width + block_width) / 2 + pad,
                top + block_height + pad,
            ),
            radius=pad,
            fill=(0, 0, 0, 110),
        )
        stroke = max(1, line_height // 20)
        for number, line in enumerate(lines):
            draw.text(
                (width / 2, top + number * line_height + line_height / 2),
                line,
                font=font,
                fill=(255, 255, 255, 255),
                anchor="mm",
                stroke_width=stroke,
                stroke_fill=(0, 0, 0, 200),
            )
        pixels = np.asarray(layer)
        box = layer.getbbox()
        if box is None:
            return None
        left, upper, right, lower = box
        return cls(upper, left, pixels[upper:lower, left:right])

    def composite_onto(self, picture: NDArray[np.uint8], *, opacity: float) -> None:
        rows, columns = self._scratch.shape[:2]
        window = picture[self._top : self._top + rows, self._left : self._left + columns]
        blended = self._scratch
        if opacity >= 1.0:
            np.multiply(window, self._inverse_alpha, out=blended)
            np.add(blended, self._premultiplied, out=blended)
        else:
            level = min(255, round(opacity * 256))
            alpha = (self._alpha * level) >> 8
            np.multiply(window, 256 - alpha, out=blended)
            blended += ((self._premultiplied.astype(np.uint32) * level) >> 8).astype(np.uint16)
        np.right_shift(blended, 8, out=blended)
        window[...] = blended


def _fit_text(
    words: list[str], width: int, height: int
) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, list[str], int]:
    max_width = width * 0.84
    max_height = height * 0.8
    largest = max(12, height // 10)
    smallest = max(10, height // 28)
    size = largest
    while True:
        font = ImageFont.load_default(size=size)
        line_height = math.ceil(size * 1.3)
        lines = _wrap(words, font, max_width)
        fits = line_height * len(lines) <= max_height
        if fits or size <= smallest:
            break
        size = max(smallest, int(size * 0.88))
    capacity = max(1, int(max_height // line_height))
    if len(lines) > capacity:
        lines = lines[:capacity]
        lines[-1] = _ellipsised(lines[-1], font, max_width)
    return font, lines, line_height


def _wrap(words: list[str], font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in _breakable(words, font, max_width):
        candidate = f"{current} {word}" if current else word
        if current and font.getlength(candidate) > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _breakable(
    words: list[str], font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float
) -> Iterator[str]:
    for word in words:
        while font.getlength(word) > max_width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and font.getlength(word[:cut]) > max_width:
                cut -= 1
            yield word[:cut]
            word = word[cut:]
        yield word


def _ellipsised(line: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float) -> str:
    while line and font.getlength(line + "...") > max_width:
        line = line[:-1]
    return line.rstrip() + "..."


def _open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as picture:
            return picture.convert("RGB")
    except UnidentifiedImageError as error:
        raise ValueError(f"not an image: {path.name}") from error


def _cover(picture: Image.Image, width: int, height: int, *, headroom: float) -> Image.Image:
    """Centre-crop to the frame's aspect and resize once to `headroom` times the frame; per-frame crops only shrink."""
    target = width / height
    source_width, source_height = picture.size
    if source_width / source_height > target:
        crop_width, crop_height = source_height * target, float(source_height)
    else:
        crop_width, crop_height = float(source_width), source_width / target
    left = (source_width - crop_width) / 2
    top = (source_height - crop_height) / 2
    size = (math.ceil(width * headroom), math.ceil(height * headroom))
    return picture.resize(
        size, Image.Resampling.LANCZOS, box=(left, top, left + crop_width, top + crop_height)
    )


def _zoomed_frame(source: Image.Image, width: int, height: int, zoom: float) -> av.VideoFrame:
    source_width, source_height = source.size
    box_width = source_width / zoom
    box_height = source_height / zoom
    left = (source_width - box_width) / 2
    top = (source_height - box_height) / 2
    picture = source.resize(
        (width, height), Image.Resampling.BILINEAR, box=(left, top, left + box_width, top + box_height)
    )
    return av.VideoFrame.from_image(picture)


def _audio_target(stream: av.AudioStream) -> tuple[int, str]:
    rate = 44_100 if stream.rate and stream.rate % 11_025 == 0 else 48_000
    layout = "mono" if stream.codec_context.channels == 1 else "stereo"
    return rate, layout


def _stamp(frame: av.AudioFrame, offset: int, rate: int) -> int:
    frame.pts = offset
    frame.time_base = Fraction(1, rate)
    return offset + frame.samples


def _decode_audio(path: Path) -> _DecodedAudio:
    try:
        source = av.open(str(path))
    except av.FFmpegError as error:
        raise ValueError(f"not an audio file: {path.name}") from error
    with source:
        if not source.streams.audio:
            raise ValueError(f"no audio stream in {path.name}")
        stream = source.streams.audio[0]
        rate, layout = _audio_target(stream)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=_AUDIO_FRAME_SAMPLES)
        frames: list[av.AudioFrame] = []
        samples = 0
        for decoded in source.decode(stream):
            for chunk in resampler.resample(decoded):
                samples = _stamp(chunk, samples, rate)
                frames.append(chunk)
        for chunk in resampler.resample(None):
            samples = _stamp(chunk, samples, rate)
            frames.append(chunk)
    if samples == 0:
        raise ValueError(f"no decodable audio in {path.name}")
    return _DecodedAudio(frames=frames, rate=rate, layout=layout, samples=samples)
