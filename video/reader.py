"""Packets → decoded frames with their presentation times; damaged packets skipped and counted; how far the
stream reached, and whether it stopped before the length its container states.

A packet the decoder refuses (corrupt bytes) is skipped: the frames around it still decode, and the timeline shows
the previous frame in its place. The stream is truncated when reading stops on an error, or when its packets end
short of the stated length by more than 10% and more than 2 frames (the frame count when stated (mp4, avi), else
the duration (Matroska/WebM; the container's only when the video is its one stream, as an audio track may run
longer); lengths count from time 0, as Matroska states them).
"""
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av

SHORTFALL = 0.1  # a stream ending under 90% of its stated length is truncated ...
SLACK_FRAMES = 2  # ... when more than this many frames are missing
MAX_DAMAGED_IN_A_ROW = 250  # this many refused packets with no frame between: the decoder has failed


@dataclass
class DecodeReport:
    """What reading one video saw, filled in as it is read."""
    decoded: int = 0  # frames the decoder gave
    shown: int = 0  # frames handed out: the timeline's
    repeated: int = 0  # handed-out frames repeating the one before (an empty or missing slot, or upsampling)
    unshown: int = 0  # decoded frames no slot showed (two in one slot of the --fps grid)
    damaged: int = 0  # packets the decoder refused, skipped
    truncated: str = ""  # why the stream ended before its stated length, or ""
    rotation: int = 0  # degrees counterclockwise the frames were turned (0, 90, 180, 270), as the display matrix says

    def warnings(self) -> list[str]:
        """One line per thing a user should know: the frames read are used all the same."""
        lines = [self.truncated] if self.truncated else []
        if self.damaged:
            lines.append(f"{self.damaged} damaged packet(s) skipped, the previous frame shown in their place")
        return lines


def frame_rate(stream: av.video.stream.VideoStream) -> Fraction | None:
    """The stream's frame rate: its average, else FFmpeg's guess; None when neither is known."""
    return stream.average_rate or stream.guessed_rate or stream.base_rate or None


def stated_seconds(container: av.container.InputContainer) -> float | None:
    """The video stream's duration, or the container's when the video is its only stream; None if unstated."""
    stream = container.streams.video[0]
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


class TimedFrames:
    """Iterate for ``(time, frame)``: decoded frames in presentation order, time in seconds since the first frame
    (a frame without a timestamp follows its predecessor by one frame period). Afterwards ``end()`` is when the
    stream stops being shown, since the first frame, and ``report`` says what happened: a damaged or cut stream
    raises nothing, it ends early (``stopped`` says on which error, if any)."""

    def __init__(self, container: av.container.InputContainer, report: DecodeReport) -> None:
        self.container, self.stream, self.report = container, container.streams.video[0], report
        rate = frame_rate(self.stream)
        self.period = 1 / rate if rate else Fraction(1, 25)
        self.first: Fraction | None = None  # the first frame's time
        self.last_end = Fraction(0)  # the latest end of a frame or a packet (empty ones included)
        self.stopped = ""  # the error reading stopped on

    def end(self) -> Fraction:
        return self.last_end - (self.first or 0)

    def __iter__(self) -> Iterator[tuple[Fraction, av.VideoFrame]]:
        self.stream.thread_type = "AUTO"  # frame and slice threads; frames still come out in presentation order
        previous = None
        for frame in self._decoded():
            time_base = frame.time_base or self.stream.time_base  # frames the decoder gives at the end have none
            if frame.pts is not None and time_base:
                time = frame.pts * time_base
            else:
                time = previous + self.period if previous is not None else Fraction(0)
            duration = frame.duration * time_base if frame.duration and time_base else self.period
            self.first = time if self.first is None else self.first
            self.last_end = max(self.last_end, time + duration)
            self.report.decoded += 1
            previous = time
            yield time - self.first, frame
        self.report.truncated = self._truncation()

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Frames from every packet the decoder accepts, then the decoder's last ones."""
        in_a_row = 0
        try:
            for packet in self.container.demux(self.stream):
                self._reached(packet)
                if packet.size == 0:  # an empty slot (or the end): nothing to decode; sending it would end decoding
                    continue
                try:
                    frames = self.stream.decode(packet)
                except av.error.FFmpegError as e:
                    self.report.damaged, in_a_row = self.report.damaged + 1, in_a_row + 1
                    if in_a_row >= MAX_DAMAGED_IN_A_ROW:
                        self.stopped = f"decoding failed: {e.strerror or e}"
                        return
                    continue
                in_a_row = 0 if frames else in_a_row
                yield from frames
        except av.error.FFmpegError as e:
            self.stopped = f"reading stopped: {e.strerror or e}"
        try:
            yield from self.stream.decode(None)
        except av.error.FFmpegError:
            self.report.damaged += 1

    def _reached(self, packet: av.Packet) -> None:
        """Note how far the stream's packets reach (an empty one, a slot with no new picture, counts)."""
        time = packet.pts if packet.pts is not None else packet.dts
        if time is not None and packet.time_base:
            duration = packet.duration * packet.time_base if packet.duration else self.period
            self.last_end = max(self.last_end, time * packet.time_base + duration)

    def _truncation(self) -> str:
        """The reason the stream counts as truncated (see the module docstring), or ""."""
        reached = float(self.last_end - min(self.first or 0, 0))  # from time 0
        stated = stated_seconds(self.container)
        if self.stream.frames and not stated:
            stated = self.stream.frames * float(self.period)
        if self.stopped:
            return f"truncated: {self.stopped} at {reached:.2f} s" + (f" of {stated:.2f} s" if stated else "")
        if stated and reached < (1 - SHORTFALL) * stated and (stated - reached) / float(self.period) > SLACK_FRAMES:
            return f"truncated: the stream ends at {reached:.2f} s of {stated:.2f} s"
        return ""
