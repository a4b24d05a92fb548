"""A video re-encoded with its anomaly scores drawn on the frames: a score bar, and a red frame during events."""
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from utils.io import atomic_path

MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}  # the file types it writes
GREEN, RED, WHITE, DARK = (60, 200, 80), (230, 40, 40), (255, 255, 255), (20, 20, 20)


def draw_scores(frames: np.ndarray, scores: np.ndarray, alarm: np.ndarray, threshold: float) -> np.ndarray:
    """``(t, H, W, 3)`` uint8 frames, ``(t,)`` scores in [0, 1], ``(t,)`` bool in-event -> frames with, along the
    bottom, a bar as long as the score (green below ``threshold``, red at or above; a white tick at the threshold)
    and, during an event, a red border."""
    out = frames.copy()
    t, height, width, _ = out.shape
    bar, border = max(4, height // 24), max(2, min(height, width) // 60)
    filled = np.round(np.clip(scores, 0, 1) * width).astype(int)
    colour = np.where((scores >= threshold)[:, None], np.array(RED), np.array(GREEN)).astype(np.uint8)  # (t, 3)
    row = np.empty((t, width, 3), dtype=np.uint8)  # the bar, one row per frame
    row[:] = DARK
    mask = np.arange(width)[None, :] < filled[:, None]  # (t, W)
    row[mask] = np.repeat(colour, mask.sum(1), axis=0)
    row[:, min(width - 1, int(round(threshold * width)))] = WHITE
    out[:, height - bar:] = row[:, None]
    if alarm.any():
        on = out[alarm]
        on[:, :border], on[:, height - bar - border:height - bar] = RED, RED
        on[:, :, :border], on[:, :, width - border:] = RED, RED
        out[alarm] = on
    return out


class AnnotatedVideo:
    """H.264 encoder of annotated frames at ``fps`` into an open container; see :func:`annotated_video`."""

    def __init__(self, container: av.container.OutputContainer, fps: float) -> None:
        self.container, self.fps = container, Fraction(fps).limit_denominator(1001 * 1000)
        self.stream = None

    def write(self, frames: np.ndarray, scores: np.ndarray, alarm: np.ndarray, threshold: float) -> None:
        """Draw on and encode ``(t, H, W, 3)`` uint8 frames (sizes cropped to even numbers for yuv420p)."""
        frames = draw_scores(frames, scores, alarm, threshold)
        frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
        if self.stream is None:
            self.stream = self.container.add_stream("libx264", rate=self.fps)
            self.stream.height, self.stream.width = frames.shape[1:3]
            self.stream.pix_fmt = "yuv420p"
        for frame in frames:
            self.container.mux(self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame),
                                                                              format="rgb24")))

    def flush(self) -> None:
        """Encode the frames the encoder still holds."""
        if self.stream is not None:
            self.container.mux(self.stream.encode(None))


@contextmanager
def annotated_video(path: str | Path, fps: float) -> Iterator[AnnotatedVideo]:
    """``with annotated_video(path, fps) as out: out.write(frames, scores, alarm, threshold)``: the file is written
    whole or not at all (temp file, renamed once the encoder is flushed and the container closed)."""
    path = Path(path)
    with atomic_path(path) as temp, av.open(temp, "w", format=MUXERS[path.suffix.lower()]) as container:
        out = AnnotatedVideo(container, fps)
        yield out
        out.flush()
