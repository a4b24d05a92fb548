"""Small test videos written with PyAV, and a frame-index marker that survives compression.

``write_video(path, marked_frames(30))`` writes 30 frames; ``frame_index(decoded)`` reads
each decoded frame's index back. Everything here is for tests only.
"""
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

MARKER_BASE, MARKER_STEP = 10, 6  # frame k is a constant grey 10 + 6k: k = 0..40


def marked_frames(n: int, height: int = 48, width: int = 64, noise: int = 0) -> np.ndarray:
    """n -> (n, H, W, 3) uint8 RGB; frame k is grey MARKER_BASE + MARKER_STEP * k, plus seeded grey
    noise in [-noise, noise] per pixel (noise <= 5 keeps the marker readable and compressors busy)."""
    if not 0 <= n <= 41:
        raise ValueError(f"marked_frames: {n} frames, the marker holds at most 41")
    levels = MARKER_BASE + MARKER_STEP * np.arange(n)
    texture = np.random.default_rng(0).integers(-noise, noise + 1, (n, height, width))
    grey = (levels[:, None, None] + texture).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=3)


def frame_index(frame: np.ndarray) -> int:
    """(H, W, 3) uint8 decoded frame -> the index k its grey level encodes (nearest level)."""
    return int(round((float(frame.mean()) - MARKER_BASE) / MARKER_STEP))


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode (T, H, W, 3) RGB or (T, H, W) grey uint8 frames into ``path`` (container from its suffix).

    ``pts`` (with ``time_base``, default 1/fps) sets each frame's timestamp by hand: a
    variable frame rate. ``options`` go to the encoder (e.g. {"qmax": "4"}), except "movflags"
    (e.g. "faststart"), which goes to the container. Zero frames write a header-only file
    (use .avi: mp4 and Matroska then hold no readable video stream).
    """
    path = Path(path)
    options = dict(options or {})
    container_options = {"movflags": options.pop("movflags")} if "movflags" in options else {}
    source_format = "gray" if frames.ndim == 3 else "rgb24"
    with av.open(str(path), "w", options=container_options) as out:
        stream = out.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.codec_context.thread_count = 1  # one encoder thread: frames in a fixed order
        if pts is not None:
            stream.codec_context.time_base = time_base or Fraction(1, fps)
        out.start_encoding()
        for k, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format=source_format)
            if pts is not None:
                frame.pts, frame.time_base = pts[k], stream.codec_context.time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_audio(path: str | Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    """A silent mono PCM audio-only file, no video stream (use a .wav or .mkv path)."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        samples = np.zeros((1, int(seconds * rate)), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path
