"""Anomaly times of a video: extract → score (the one scoring path) → ``scores.csv``, ``events.json``, a timeline.

``run_test.py --video`` calls :func:`score_video` for each file of a folder, a live source (``rtsp://…``) or a
file read at its own frame rate (``--stream``): snippets are scored as they complete, ``scores.csv`` grows row by
row and events are reported as soon as they close, so the same code watches a camera.
"""
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dataset.features import ArrayFeatures
from engine.scoring import ScoreFn, score_snippets
from utils.errors import InputError
from utils.events import Event, EventTracker
from utils.io import atomic_open, save_json
from utils.plots import plot_timeline, safe_name
from utils.progress import progress_bar
from video.annotate import annotated_video
from video.decode import VideoError, probe, read_frames
from video.extract import Extractor, Progress
from video.presets import SNIPPET

THUMBNAILS, THUMBNAIL_HEIGHT = 6, 96  # the timeline's strip: the highest event peaks


@dataclass(frozen=True)
class EventRules:
    """``--threshold``, ``--min_gap`` and ``--min_length`` (seconds)."""
    threshold: float = 0.5
    min_gap: float = 0.0
    min_length: float = 0.0


@dataclass
class VideoReport:
    """What scoring one video found."""
    name: str
    video: str
    fps: float
    frames: int = 0
    snippet_scores: list[float] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    compute_seconds: float = 0.0  # extraction and scoring, without waiting for frames
    stopped: str = ""  # why it ended early: "interrupted", or a live source's error
    warnings: list[str] = field(default_factory=list)  # what decoding met: damaged packets, a truncated file
    thumbnails: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (time, frame) at the event peaks

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    def frame_scores(self) -> np.ndarray:
        """``(frames,)``: each frame's snippet score; frames after the last snippet (a preset that drops them)
        take the last snippet's."""
        snippets = np.minimum(np.arange(self.frames) // SNIPPET, len(self.snippet_scores) - 1)
        return np.asarray(self.snippet_scores, dtype=np.float32)[snippets]

    def summary(self) -> dict:
        scores = np.asarray(self.snippet_scores)
        peak = int(scores.argmax())
        return {"video": self.video, "fps": self.fps, "frames": self.frames, "seconds": round(self.seconds, 3),
                "snippets": len(scores), "max_score": round(float(scores[peak]), 4),
                "max_score_time": round((peak + 0.5) * SNIPPET / self.fps, 3), "stopped": self.stopped or None,
                "warnings": self.warnings, "events": [e.as_dict() for e in self.events]}


def resolve_extraction(settings: dict | None, backbone: str | None, preset: str | None, crops: int | None,
                       fps: float | None, ckpt: str) -> dict:
    """How to extract features for a checkpoint: the flags given, else the record its sidecar keeps of the training
    features' extraction (``extraction``), else the release's I3D defaults for crops and preset; a checkpoint
    without a record needs ``--backbone``. ``notes``: a line for each flag given that departs from the record, and
    for crops taken from no record at all."""
    settings = settings or {}
    record = settings.get("extraction") or {}
    backbone = backbone or record.get("backbone")
    if backbone is None:
        raise InputError(ckpt, "no record of how its training features were extracted (a checkpoint main.py did not "
                               "write on extract_features.py output, such as the authors'): pass --backbone "
                               "(i3d_r50 for the released I3D features) and --weights")
    same = backbone == record.get("backbone")
    recorded = {"crops": record.get("crops") or settings.get("crops"), "preset": record.get("preset") if same else None,
                "fps": record.get("fps")}
    how = {"backbone": backbone, "preset": preset or recorded["preset"], "crops": crops or recorded["crops"] or 10,
           "fps": fps or recorded["fps"], "weights": record.get("weights") if same else None,
           "recorded_backbone": record.get("backbone")}
    return {**how, "notes": extraction_notes(how, recorded, {"crops": crops, "preset": preset, "fps": fps},
                                             bool(record))}


def extraction_notes(how: dict, recorded: dict, given: dict, has_record: bool) -> list[str]:
    """One line per setting given (``given``: the flags, None where absent) that differs from the checkpoint's
    training features (``recorded``), and one when the crops come from no record."""
    notes = []
    if given["crops"] and recorded["crops"] and given["crops"] != recorded["crops"]:
        g, r = given["crops"], recorded["crops"]
        speed = f" and is {g / r:g}× faster" if g > r else f"; --crops {g} is {r / g:g}× faster, its scores differ"
        notes.append(f"note: --crops {g}, but the checkpoint was trained on {r}-crop features (--crops {r} matches "
                     f"them{speed})")
    elif not given["crops"] and not recorded["crops"]:
        notes.append(f"note: no record of the crops of the checkpoint's training features: {how['crops']} crops (the "
                     "released features'); a 1-crop checkpoint takes --crops 1, ten times faster")
    if given["preset"] and recorded["preset"] and given["preset"] != recorded["preset"]:
        notes.append(f"note: --preset {given['preset']}, but the checkpoint's training features were made with "
                     f"{recorded['preset']}")
    if has_record and given["fps"] and given["fps"] != recorded["fps"]:
        made = f"at {recorded['fps']:g} frames/s" if recorded["fps"] else "at each video's own frame rate"
        notes.append(f"note: --fps {given['fps']:g}, but the checkpoint's training features were made {made}")
    return notes


def score_video(extractor: Extractor, score: ScoreFn, video: str, name: str, out_dir: Path, rules: EventRules,
                device: torch.device, live: bool = False, paced: bool = False,
                on_event: Callable[[Event], None] | None = None, annotate: str | None = None) -> VideoReport:
    """Score ``video`` into ``out_dir``: ``scores.csv`` (a row per frame), ``events.json``, ``timeline.png`` and,
    with ``annotate`` (a file name), the video re-encoded with its scores drawn on. ``live``: a source read as it
    comes (rows flushed as scored; the source failing or Ctrl-C ends it with every file complete; no second pass
    over the video, so no thumbnails or annotation); ``paced``: frames released at the video's own rate, as a
    camera would (a file watched as if live). VideoError when nothing could be scored."""
    info = probe(video)
    report = VideoReport(name, video, extractor.fps or info.fps or 25.0)
    tracker = EventTracker(rules.threshold, rules.min_gap, rules.min_length)
    progress = Progress()

    def closed(events: list[Event]) -> None:
        report.events += events
        for event in events:
            if on_event:
                on_event(event)

    if live:
        out_dir.mkdir(parents=True, exist_ok=True)
    expected = round(info.seconds * report.fps / SNIPPET) if info.seconds else None
    with ExitStack() as stack:
        rows = stack.enter_context(open(out_dir / "scores.csv", "w") if live
                                   else atomic_open(out_dir / "scores.csv", "w"))
        bar = stack.enter_context(progress_bar(total=expected, desc=name, unit="snippet", leave=False, disable=live))
        rows.write("frame,time,snippet,score\n")
        try:
            for batch in extractor.features(video, progress, pace=report.fps if paced else None):
                for value in score_snippets(score, ArrayFeatures(batch), device=device):
                    closed(tracker.feed(*write_snippet(rows, report, float(value), progress.frames)))
                bar.update(len(batch))
                if live:
                    rows.flush()
        except KeyboardInterrupt:
            report.stopped = "interrupted"
        except VideoError as e:
            if not (live and report.snippet_scores):
                raise
            report.stopped = f"the source stopped: {e}"
        if live and progress.decode.truncated and not report.stopped:
            report.stopped = f"the source stopped: {progress.decode.truncated}"
        report.warnings = [w for w in progress.decode.warnings() if not (live and w == progress.decode.truncated)]
        if not report.snippet_scores:
            raise VideoError(report.stopped or "no snippet to score")
        if not report.stopped:  # frames a preset drops after the last snippet take its score
            for frame in range(report.frames, progress.frames):
                write_row(rows, frame, report.fps, len(report.snippet_scores) - 1, report.snippet_scores[-1])
            report.frames = max(report.frames, progress.frames)
    closed(tracker.close())
    report.compute_seconds = progress.seconds - progress.wait_seconds
    save_json(out_dir / "events.json", report.summary())
    thumbnails = report.thumbnails = [] if live else second_pass(video, extractor.fps, report, rules, out_dir, annotate)
    frame_times = np.arange(report.frames) / report.fps
    plot_timeline(frame_times, report.frame_scores(), rules.threshold, report.events, out_dir / "timeline.png",
                  thumbnails, title=f"{name}: {len(report.events)} event(s)")
    return report


def write_row(rows, frame: int, fps: float, snippet: int, value: float) -> None:
    rows.write(f"{frame},{frame / fps:.3f},{snippet},{value:.6f}\n")


def write_snippet(rows, report: VideoReport, value: float, decoded: int) -> tuple[float, float, float]:
    """The rows of the next snippet's real frames (not its padding); its ``(start, end, score)`` in seconds."""
    snippet, first = len(report.snippet_scores), report.frames
    report.snippet_scores.append(value)
    count = max(1, min(SNIPPET, decoded - first))
    for frame in range(first, first + count):
        write_row(rows, frame, report.fps, snippet, value)
    report.frames = first + count
    return first / report.fps, report.frames / report.fps, value


def second_pass(video: str, fps: float | None, report: VideoReport, rules: EventRules, out_dir: Path,
                annotate: str | None) -> list[tuple[float, np.ndarray]]:
    """Decode the video once more: thumbnails at the highest event peaks and, with ``annotate``, the annotated
    copy. Returns ``(time, frame)`` thumbnails in time order."""
    scores = report.frame_scores()
    times = np.arange(report.frames) / report.fps
    alarm = np.zeros(report.frames, dtype=bool)
    for event in report.events:
        alarm |= (times >= event.start) & (times < event.end)
    peaks = sorted(report.events, key=lambda e: -e.peak_score)[:THUMBNAILS]
    wanted = {min(int(e.peak_time * report.fps), report.frames - 1): e.peak_time for e in peaks}
    thumbnails = []
    with ExitStack() as stack:
        writer = stack.enter_context(annotated_video(out_dir / annotate, report.fps)) if annotate else None
        bar = stack.enter_context(progress_bar(total=report.frames, desc=f"{report.name}: second pass", unit="frame",
                                               leave=False))
        start = 0
        for chunk in read_frames(video, fps=fps):
            chunk = chunk[: max(0, report.frames - start)]
            if not len(chunk):
                break
            for frame in (f for f in wanted if start <= f < start + len(chunk)):
                step = max(1, chunk.shape[1] // THUMBNAIL_HEIGHT)
                thumbnails.append((wanted[frame], chunk[frame - start, ::step, ::step]))
            if writer:
                span = slice(start, start + len(chunk))
                writer.write(chunk, scores[span], alarm[span], rules.threshold)
            start += len(chunk)
            bar.update(len(chunk))
    return sorted(thumbnails, key=lambda item: item[0])


def print_report(report: VideoReport) -> None:
    """A short table: duration, snippets, max score, and each event's times."""
    s = report.summary()
    print(f"{report.name}: {s['seconds']:.1f} s, {s['snippets']} snippets, max score {s['max_score']:.3f} at "
          f"{s['max_score_time']:.1f} s, {len(report.events)} event(s)" + (f" ({report.stopped})" if report.stopped
                                                                             else ""))
    for line in report.warnings:
        print(f"  warning: {line}")
    for i, event in enumerate(report.events, 1):
        print(f"  {i:>3}  {clock(event.start)} – {clock(event.end)}  ({event.seconds:.1f} s)  "
              f"peak {event.peak_score:.3f} at {clock(event.peak_time)}")


def clock(seconds: float) -> str:
    """``h:mm:ss.s`` (or ``m:ss.s``)."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


def speed_line(report: VideoReport, extractor: Extractor) -> str:
    """Latency (frames buffered + compute) and whether extraction keeps up with the frame rate; when it falls behind,
    the remedies that ``extractor`` does not use yet."""
    batch_size = extractor.batch_size
    per_snippet = report.compute_seconds / max(1, len(report.snippet_scores))
    video_per_snippet = SNIPPET / report.fps
    ratio = video_per_snippet / per_snippet if per_snippet else float("inf")
    remedies = [flag for flag, applies in (("--crops 1", extractor.crops > 1), ("--amp bf16", extractor.amp == "off"),
                                           ("a GPU", extractor.device.type == "cpu")) if applies]
    advice = f" (try {', '.join(remedies[:-1])}{' or ' if len(remedies) > 1 else ''}{remedies[-1]})" if remedies else ""
    return (f"latency: {SNIPPET * batch_size} frames buffered ({video_per_snippet * batch_size:.2f} s) + "
            f"{per_snippet * batch_size:.2f} s compute; "
            + (f"keeps up ({ratio:.1f}× the frame rate)" if ratio >= 1 else
               f"falls behind: {ratio:.2f}× the frame rate{advice}"))


def live_name(source: str) -> str:
    """A folder name for a live source or a watched file: ``rtsp://cam-3/stream1`` → ``cam-3_stream1``."""
    return safe_name(source.split("://", 1)[-1].replace("/", "_")) if "://" in source else Path(source).stem


def write_summaries(out_dir: Path, reports: list[VideoReport]) -> None:
    """``OUT/videos.json``: every scored video's summary (length, peak score, events), by name."""
    save_json(out_dir / "videos.json", {r.name: r.summary() for r in reports})
