"""Video files -> RGB frames with PyAV, streamed in chunks, optionally resampled by timestamp.

Bad files raise ``VideoError`` with a one-line reason (the caller names the file):
"no such file", "not a video file (invalid data)", "no video stream", "no frames",
"decoding failed after 12 frames (...)", "truncated: 6 of 40 frames decoded".

Truncation rule: a file is truncated when the decoded frames fall short of what the
container states by more than 10% and by more than 2 frames: its frame count when it
states one (mp4, avi), else its duration (Matroska/WebM; the container's duration only
when the video is its one stream, as an audio track may run longer; a video whose first
frame comes late is measured from time 0, as Matroska states durations).
"""
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np

SHORTFALL = 0.1  # a file decoding under 90% of its stated length is truncated ...
SLACK_FRAMES = 2  # ... when more than this many frames are missing


class VideoError(Exception):
    """A video that cannot be read; the message is a one-line reason."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: size, average frame rate (0.0 if unknown), frame count and length if stated
    (Matroska's length counts from time 0, including any delay before the first frame)."""
    path: str
    width: int
    height: int
    fps: float
    frames: int | None
    seconds: float | None


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    """An open container with at least one video stream; VideoError otherwise."""
    try:
        container = av.open(os.fspath(path))
    except FileNotFoundError:
        raise VideoError("no such file") from None
    except IsADirectoryError:
        raise VideoError("is a directory, not a video file") from None
    except PermissionError:
        raise VideoError("permission denied") from None
    except av.error.InvalidDataError:
        raise VideoError("not a video file (invalid data)") from None
    except av.error.EOFError:
        raise VideoError("not a video file (ends before its header is complete)") from None
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"cannot open ({getattr(e, 'strerror', None) or e})") from None
    if not container.streams.video:
        container.close()
        raise VideoError("no video stream")
    return container


def _stated_seconds(container: av.container.InputContainer) -> float | None:
    """The video stream's duration, or the container's when the video is its only stream; None if unstated."""
    stream = container.streams.video[0]
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def _rate(stream: av.video.stream.VideoStream) -> Fraction | None:
    """The stream's frame rate: its average, else FFmpeg's guess; None when neither is known."""
    return stream.average_rate or stream.guessed_rate or stream.base_rate or None


def probe(path: str | os.PathLike) -> VideoInfo:
    """The container's description of ``path`` without decoding; VideoError when it has no video stream."""
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = _rate(stream)
        return VideoInfo(
            path=os.fspath(path),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(rate) if rate else 0.0,
            frames=stream.frames or None,
            seconds=_stated_seconds(container),
        )


def _truncation(container: av.container.InputContainer, decoded: int, decoded_seconds: float) -> str | None:
    """The reason the file counts as truncated (see the module docstring), or None."""
    stream = container.streams.video[0]
    if stream.frames:
        stated = stream.frames
        if decoded < (1 - SHORTFALL) * stated and stated - decoded > SLACK_FRAMES:
            return f"truncated: {decoded} of {stated} frames decoded"
        return None
    stated_seconds, rate = _stated_seconds(container), _rate(stream)
    if stated_seconds and rate:
        missing = stated_seconds - decoded_seconds
        if decoded_seconds < (1 - SHORTFALL) * stated_seconds and missing * rate > SLACK_FRAMES:
            return f"truncated: {decoded_seconds:.2f} s of {stated_seconds:.2f} s decoded"
    return None


def _timed_frames(container: av.container.InputContainer) -> Iterator[tuple[av.VideoFrame, Fraction, Fraction]]:
    """Decoded frames in presentation order with their start time and duration in seconds (first frame at 0).

    A frame without a timestamp follows its predecessor by one frame period of the stream's rate.
    Raises VideoError at the end when nothing decoded or the file proves truncated.
    """
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads; frames still come out in presentation order
    rate = _rate(stream)
    period = 1 / rate if rate else Fraction(1, 25)
    start = previous = None
    decoded, end = 0, Fraction(0)
    try:
        for frame in container.decode(stream):
            if frame.pts is not None and frame.time_base:
                time = frame.pts * frame.time_base
            else:
                time = previous + period if previous is not None else Fraction(0)
            start = time if start is None else start
            duration = frame.duration * frame.time_base if frame.duration and frame.time_base else period
            # seconds decoded, from time 0 when the video starts later (Matroska states its duration from 0)
            previous, decoded, end = time, decoded + 1, time - min(start, 0) + duration
            yield frame, time - start, duration
    except av.error.FFmpegError as e:
        raise VideoError(f"decoding failed after {decoded} frames ({e.strerror or e})") from None
    reason = _truncation(container, decoded, float(end))
    if reason or decoded == 0:
        raise VideoError(reason or "no frames")


def _resampled(timed: Iterator[tuple[av.VideoFrame, Fraction, Fraction]], rate: Fraction) -> Iterator[np.ndarray]:
    """Timed frames -> (H, W, 3) uint8 frames at times k/rate: each the frame on screen then."""
    emitted, held, end = 0, None, Fraction(0)

    def show(until: Fraction) -> Iterator[np.ndarray]:
        nonlocal emitted
        array = None
        while held is not None and emitted < until * rate:
            array = held.to_ndarray(format="rgb24") if array is None else array
            yield array
            emitted += 1

    for frame, time, duration in timed:
        yield from show(time)
        held, end = frame, time + duration
    yield from show(end)


def _chunks(frames: Iterator[np.ndarray], chunk: int) -> Iterator[np.ndarray]:
    """(H, W, 3) frames -> (t, H, W, 3) chunks, t <= chunk; VideoError when the frame size changes. The frames
    decoded before an error are handed over first (a live source that drops keeps what it sent)."""
    pending: list[np.ndarray] = []
    first = None
    try:
        for array in frames:
            first = array.shape if first is None else first
            if array.shape != first:
                raise VideoError(f"frame size changes mid-video: {first[1]}x{first[0]}, "
                                 f"then {array.shape[1]}x{array.shape[0]}")
            pending.append(array)
            if len(pending) == chunk:
                yield np.stack(pending)
                pending.clear()
    except VideoError:
        if pending:
            yield np.stack(pending)
        raise
    if pending:
        yield np.stack(pending)


def read_frames(path: str | os.PathLike, fps: float | None = None, chunk: int = 32) -> Iterator[np.ndarray]:
    """Frames of ``path`` as (t, H, W, 3) uint8 RGB chunks, t <= chunk, in presentation order.

    ``fps=R`` resamples by timestamp: output frame k is the frame shown at time k/R after the
    first frame (a frame is shown from its timestamp until the next one's; the last one for its
    duration). Memory holds one chunk. VideoError for a bad file, "no frames" when nothing
    decodes; a truncated file raises once its decodable frames are read.
    """
    if chunk < 1:
        raise ValueError(f"read_frames: chunk must be >= 1, got {chunk}")
    if fps is not None and not fps > 0:
        raise ValueError(f"read_frames: fps must be > 0, got {fps}")
    with _open(path) as container:
        timed = _timed_frames(container)
        if fps is None:
            frames = (frame.to_ndarray(format="rgb24") for frame, _, _ in timed)
        else:
            frames = _resampled(timed, Fraction(fps).limit_denominator(1_000_000))
        yield from _chunks(frames, chunk)
