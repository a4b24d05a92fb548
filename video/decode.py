"""Video files -> RGB frames as players show them, with PyAV, streamed in chunks.

The frames are the video's presentation timeline (video/timeline.py): at the stream's nominal rate, or on the
``fps`` grid, an empty or missing slot showing the frame before it; turned upright as the display matrix says.
Files that cannot be read raise ``VideoError`` with a one-line reason (the caller names the file): "no such file",
"not a video file (invalid data)", "no video stream", "no frames". A damaged or truncated stream is read as far as
it goes, what happened noted in a ``DecodeReport`` (video/reader.py).
"""
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np

from video.reader import DecodeReport, TimedFrames, frame_rate, stated_seconds
from video.timeline import at_nominal_rate, on_grid


class VideoError(Exception):
    """A video that cannot be read; the message is a one-line reason."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: size as shown (rotation applied), average frame rate (0.0 if unknown), frame
    count and length if stated (Matroska's length counts from time 0, including any delay before the first
    frame)."""
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


def _first_rotation(container: av.container.InputContainer) -> int:
    """The display matrix's rotation of the first frame (degrees counterclockwise); 0 when none decodes."""
    try:
        for frame in container.decode(container.streams.video[0]):
            return frame.rotation
    except av.error.FFmpegError:
        pass
    return 0


def quarter_turns(rotation: float) -> int:
    """The display matrix's rotation (degrees counterclockwise) as quarter turns 0-3, as players apply it; any
    angle that is not a multiple of 90 degrees is left as is (0), as most players do."""
    turns = round(rotation / 90)
    return turns % 4 if turns * 90 == rotation else 0


def upright(array: np.ndarray, rotation: float) -> np.ndarray:
    """(H, W, 3) frame -> the frame turned as players show it (see :func:`quarter_turns`)."""
    turns = quarter_turns(rotation)
    return np.rot90(array, turns) if turns else array


def probe(path: str | os.PathLike) -> VideoInfo:
    """The container's description of ``path``, the size as shown (after rotation; the first frame is decoded to
    learn it); VideoError when it has no video stream."""
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = frame_rate(stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        quarter_turn = quarter_turns(_first_rotation(container)) % 2
        return VideoInfo(
            path=os.fspath(path),
            width=height if quarter_turn else width,
            height=width if quarter_turn else height,
            fps=float(rate) if rate else 0.0,
            frames=stream.frames or None,
            seconds=stated_seconds(container),
        )


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


def read_frames(path: str | os.PathLike, fps: float | None = None, chunk: int = 32,
                report: DecodeReport | None = None) -> Iterator[np.ndarray]:
    """Frames of ``path`` as (t, H, W, 3) uint8 RGB chunks, t <= chunk: its presentation timeline.

    Without ``fps``: at the stream's nominal rate, every decoded frame once, an empty or missing slot (a dropped
    frame, a damaged packet, a pause of a variable-rate video) repeating the frame before it; a constant-rate video
    gives its frames one to one. ``fps=R``: output frame k is the frame on screen at k/R after the first frame (a
    frame is shown from its timestamp until the next one's; the last one until the stream's end). Memory holds
    one chunk. VideoError for a file that cannot be read and "no frames" when nothing decodes; a damaged or
    truncated file is read as far as it goes, ``report`` (filled as the frames are read) saying what happened.
    """
    if chunk < 1:
        raise ValueError(f"read_frames: chunk must be >= 1, got {chunk}")
    if fps is not None and not fps > 0:
        raise ValueError(f"read_frames: fps must be > 0, got {fps}")
    report = report if report is not None else DecodeReport()
    with _open(path) as container:
        timed = TimedFrames(container, report)
        if fps is None:
            slots = at_nominal_rate(timed, frame_rate(container.streams.video[0]) or Fraction(25), timed.end)
        else:
            slots = on_grid(timed, Fraction(fps).limit_denominator(1_000_000), timed.end)
        yield from _chunks(_shown(slots, report), chunk)
        if report.decoded == 0:
            why = timed.stopped or (f"{report.damaged} packet(s) refused by the decoder" if report.damaged else "")
            raise VideoError(f"no frames ({why})" if why else "no frames")


def _shown(slots: Iterator[tuple[av.VideoFrame, int]], report: DecodeReport) -> Iterator[np.ndarray]:
    """Each frame converted to upright RGB once, handed out as many times as the timeline shows it."""
    for frame, times in slots:
        if times == 0:
            report.unshown += 1
            continue
        report.rotation = 90 * quarter_turns(frame.rotation)
        array = upright(frame.to_ndarray(format="rgb24"), frame.rotation)
        for k in range(times):
            report.shown, report.repeated = report.shown + 1, report.repeated + (k > 0)
            yield array
