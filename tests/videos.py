"""Small test videos written with PyAV, a frame-index marker that survives compression, and what the ffmpeg
command line (a player's reference, where installed) decodes of a file.

``write_video(path, marked_frames(30))`` writes 30 frames; ``frame_index(decoded)`` reads
each decoded frame's index back. Everything here is for tests only.
"""
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

MARKER_BASE, MARKER_STEP = 10, 6  # frame k is a constant grey 10 + 6k: k = 0..40
FINE_STEP = 3  # a step of 3 holds 82 frames, for codecs that keep flat grey within 1 level (lossless, cinepak)


def marked_frames(n: int, height: int = 48, width: int = 64, noise: int = 0, step: int = MARKER_STEP) -> np.ndarray:
    """n -> (n, H, W, 3) uint8 RGB; frame k is grey MARKER_BASE + step * k, plus seeded grey
    noise in [-noise, noise] per pixel (noise <= 5 keeps the marker readable and compressors busy)."""
    if not 0 <= MARKER_BASE + step * (n - 1) <= 250:
        raise ValueError(f"marked_frames: {n} frames, a step of {step} holds at most {240 // step + 1}")
    levels = MARKER_BASE + step * np.arange(n)
    texture = np.random.default_rng(0).integers(-noise, noise + 1, (n, height, width))
    grey = (levels[:, None, None] + texture).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=3)


def frame_index(frame: np.ndarray, step: int = MARKER_STEP) -> int:
    """(H, W, 3) uint8 decoded frame -> the index k its grey level encodes (nearest level)."""
    return int(round((float(frame.mean()) - MARKER_BASE) / step))


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    options: dict[str, str] | None = None,
    rotation: int = 0,
    audio_first: bool = False,
) -> Path:
    """Encode (T, H, W, 3) RGB or (T, H, W) grey uint8 frames into ``path`` (container from its suffix).

    ``pts`` (with ``time_base``, default 1/fps) sets each frame's timestamp by hand: a
    variable frame rate; in an AVI, the slots between two timestamps are written as empty
    "dropped frame" entries. ``options`` go to the encoder (e.g. {"qmax": "4"}), except "movflags"
    (e.g. "faststart"), which goes to the container. ``rotation``: a display matrix turning the
    picture that many degrees counterclockwise (as a phone records upright). ``audio_first``: a
    silent audio track as stream 0, the video as stream 1. Zero frames write a header-only file
    (use .avi: mp4 and Matroska then hold no readable video stream).
    """
    path = Path(path)
    options = dict(options or {})
    container_options = {"movflags": options.pop("movflags")} if "movflags" in options else {}
    source_format = "gray" if frames.ndim == 3 else "rgb24"
    with av.open(str(path), "w", options=container_options) as out:
        audio = out.add_stream("aac", rate=8000, layout="mono") if audio_first else None
        stream = out.add_stream(codec, rate=fps, options=options)
        if rotation:
            stream.set_display_rotation(rotation)
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
        if audio is not None:
            _silence(out, audio, len(frames) / fps)
    return path


def _silence(out: av.container.OutputContainer, audio: av.audio.stream.AudioStream, seconds: float) -> None:
    """``seconds`` of silence into ``audio`` (fltp, in frames of the encoder's size)."""
    size, samples = audio.codec_context.frame_size or 1024, int(seconds * audio.rate)
    for start in range(0, samples, size):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, size), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = audio.rate, start
        out.mux(audio.encode(frame))
    out.mux(audio.encode(None))


def damaged_copy(path: str | Path, target: str | Path, start: float = 0.45, end: float = 0.55) -> Path:
    """A copy of ``path`` whose bytes from fraction ``start`` to ``end`` of the file are seeded random garbage."""
    data = bytearray(Path(path).read_bytes())
    first, last = int(len(data) * start), int(len(data) * end)
    data[first:last] = np.random.default_rng(0).integers(0, 256, last - first, dtype=np.uint8).tobytes()
    Path(target).write_bytes(bytes(data))
    return Path(target)


def avi_index(path: str | Path) -> list[int]:
    """The sizes of an AVI's video index entries (``idx1``, chunks ``00dc``/``00db``), read from the bytes."""
    data = Path(path).read_bytes()
    at = data.rindex(b"idx1")
    size = int.from_bytes(data[at + 4:at + 8], "little")
    entries = [data[k:k + 16] for k in range(at + 8, at + 8 + size, 16)]
    return [int.from_bytes(e[12:16], "little") for e in entries if e[:4] in (b"00dc", b"00db")]


FFMPEG = shutil.which("ffmpeg") and shutil.which("ffprobe")


def ffmpeg_frames(path: str | Path, width: int, height: int, *args: str) -> np.ndarray:
    """(T, height, width, 3) uint8: the frames the ffmpeg command line decodes of ``path`` (rotation applied, as
    it does by default), with the output options ``args`` (e.g. "-vf", "fps=15")."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", *args, "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def ffprobe_frame_times(path: str | Path) -> list[float]:
    """The presentation times of the decoded frames, as ffprobe reports them."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
                          "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True).stdout
    return [float(line) for line in out.split()]


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
