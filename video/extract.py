"""One video → its snippet features ``(N, C, D)``, streamed: decoding overlaps the backbone.

A background thread decodes, resizes and cuts 16-frame snippets into batches; the caller's
thread crops, scales and runs the backbone. Memory holds a few batches, whatever the length.
"""
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from utils.device import autocast
from video.backbones import Backbone
from video.decode import VideoError, read_frames
from video.reader import DecodeReport
from video.presets import Preset


class TooShort(VideoError):
    """The preset refuses the video (too few frames): reported as skipped, not as failed."""


@dataclass
class Progress:
    """What one video's extraction saw: frames read (the timeline's), snippets made, what decoding met (damage,
    truncation, repeated slots), and where the time went."""
    frames: int = 0
    snippets: int = 0
    wait_seconds: float = 0.0  # the backbone waiting for decoded snippets: decoding not hidden by overlap
    seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    decode: DecodeReport = field(default_factory=DecodeReport)


@dataclass(frozen=True)
class Extractor:
    """The settings of one extraction: backbone, preset, crops, snippets per forward pass, device, precision."""
    backbone: Backbone
    preset: Preset
    crops: int = 10
    batch_size: int = 4
    device: torch.device = torch.device("cpu")
    amp: str = "off"
    fps: float | None = None
    chunk: int = 32  # frames decoded and resized at a time (fewer: less waiting on a live source)

    def features(self, path: str, progress: Progress | None = None, pace: float | None = None) -> Iterator[np.ndarray]:
        """Batches ``(s, C, D)`` float32 of the video's snippets, in order; VideoError when it cannot be read,
        TooShort when the preset refuses it (nothing is yielded then). ``pace``: release frames no faster than
        this many per second, as a camera would (to try live scoring on a file)."""
        progress = progress if progress is not None else Progress()
        batches: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()
        producer = threading.Thread(target=self._decode, args=(path, batches, stop, progress, pace), daemon=True)
        producer.start()
        try:
            while True:
                start = time.perf_counter()
                item = batches.get()
                progress.wait_seconds += time.perf_counter() - start
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    break
                yield self.embed(item)
        finally:
            stop.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                try:
                    batches.get_nowait()
                except queue.Empty:
                    producer.join(0.05)
            progress.seconds = time.perf_counter() - progress.started

    @property
    def settings(self) -> dict:
        """What decides the features' values (recorded beside them, and beside checkpoints trained on them)."""
        return {"backbone": self.backbone.name, "weights": self.backbone.weights_id, "preset": self.preset.name,
                "crops": self.crops, "fps": self.fps, "amp": self.amp}

    @torch.inference_mode()
    def embed(self, snippets: torch.Tensor) -> np.ndarray:
        """``(S, 16, h, w, 3)`` uint8 resized snippets -> ``(S, C, D)`` float32 features."""
        clips = self.preset.crops(snippets, self.crops)  # (S, C, 3, T, crop, crop)
        s, c = clips.shape[:2]
        clips = clips.flatten(0, 1).to(self.device, non_blocking=True)
        if self.backbone.channels_last:
            clips = clips.contiguous(memory_format=torch.channels_last_3d)
        with autocast(self.device, self.amp):
            out = self.backbone.net(clips)
        return out.float().reshape(s, c, -1).cpu().numpy()

    def _decode(self, path: str, batches: queue.Queue, stop: threading.Event, progress: Progress,
                pace: float | None) -> None:
        """The producer: frames → resized chunks → snippets → batches of ``batch_size`` on ``batches``."""
        def resized() -> Iterator[torch.Tensor]:
            for chunk in read_frames(path, fps=self.fps, chunk=self.chunk, report=progress.decode):
                if pace:
                    time.sleep(max(0.0, progress.started + (progress.frames + len(chunk)) / pace - time.perf_counter()))
                progress.frames += len(chunk)
                yield self.preset.resize(chunk)

        def put(item: object) -> bool:
            while not stop.is_set():
                try:
                    batches.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            pending: list[torch.Tensor] = []
            for snippet in self.preset.snippets(resized()):
                pending.append(snippet)
                progress.snippets += 1
                if len(pending) == self.batch_size:
                    if not put(torch.stack(pending)):
                        return
                    pending = []
            if pending and not put(torch.stack(pending)):
                return
            reason = self.preset.refusal(progress.frames)
            put(TooShort(reason) if reason else None)
        except BaseException as e:  # handed to the consumer, which raises it
            put(e)
