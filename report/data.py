"""What each kind of report shows, as plain JSON-able dicts (the page draws them; no HTML here).

Score series travel packed (:func:`pack`): uint16 levels between the series' lowest and highest value, base64,
about 2.7 bytes per snippet; a video longer than ``SERIES_POINTS`` snippets is max-pooled to that many points (its
peaks survive). ROC and precision-recall curves are thinned to what a 400-pixel chart can show.
"""
import base64
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence
from urllib.parse import quote

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

from utils.events import Event
from utils.metrics import frame_scores
from utils.plots import anomalous_spans
from utils.snippet import FRAMES_PER_SNIPPET

SERIES_POINTS = 2000  # the most points one video's curve keeps; longer videos are max-pooled
CURVE_CELLS = 400  # ROC / PR curves keep one point per cell of a CURVE_CELLS × CURVE_CELLS grid they pass through
THUMBNAIL_HEIGHT, JPEG_QUALITY = 72, 70
# The metrics of an evaluation, in the order shown: key, name, what it means.
METRICS = (
    ("auc_all", "AUC", "Frame-level area under the ROC curve over every test frame: the chance that a random "
                       "anomalous frame scores above a random normal one (0.5 is chance, 1 is perfect). The "
                       "field's headline number for UCF-Crime, ShanghaiTech and Avenue."),
    ("ap", "AP", "Average precision over every test frame (scikit-learn's step sum under the precision-recall "
                 "curve): how clean the top of the ranking is. XD-Violence's headline number; low when anomalies "
                 "are rare and false alarms many."),
    ("auc_abn", "AUC_abn", "AUC over the release's groups of consecutive snippets (128 by default) that hold any "
                           "anomalous frame, as the release computes it."),
    ("auc_abn_video", "AUC_abn per video", "AUC over the frames of the videos that hold an anomaly: can the model "
                                           "find the event inside its video, normal videos left out."),
    ("far_all", "FAR", "False alarm rate: the share of normal frames scored at or above the alarm threshold."),
    ("far_abn", "FAR_abn", "The false alarm rate inside the groups that hold an anomaly."),
    ("eer", "EER", "Equal error rate: where the false positive rate equals the miss rate on the ROC curve "
                   "(lower is better)."),
    ("pr_auc", "PR AUC", "Trapezoid area under the precision-recall curve (AP's smoother cousin)."),
)
MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
        ".mkv": "video/x-matroska", ".ogv": "video/ogg", ".ogg": "video/ogg", ".avi": "video/x-msvideo"}


@dataclass
class Evaluated:
    """One checkpoint's test scores: ``scores (N,)`` per snippet, ``metrics`` as ``frame_metrics`` returns them,
    ``label_free``: whether the checkpoint was chosen without test labels (None: not known)."""
    name: str
    scores: np.ndarray
    metrics: dict
    label_free: bool | None = None


class ScoredVideo(Protocol):
    """What scoring one video found (``deploy.score.VideoReport``)."""
    name: str
    video: str
    fps: float
    frames: int
    snippet_scores: list[float]
    events: list[Event]
    thumbnails: list[tuple[float, np.ndarray]]

    def summary(self) -> dict: ...


def clean(value):
    """``value`` with numpy scalars and arrays made plain and NaN/Inf made None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def pack(values: Sequence[float] | np.ndarray) -> dict:
    """``(n,)`` values → ``{"n", "lo", "hi", "q"}``: ``q`` base64 of little-endian uint16 levels,
    value ≈ lo + level / 65535 · (hi − lo) (to 1/131070 of the range)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64).reshape(-1))
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    levels = np.zeros(v.size) if hi == lo else (v - lo) / (hi - lo) * 65535
    q = np.rint(levels).astype("<u2").tobytes()
    return {"n": int(v.size), "lo": lo, "hi": hi, "q": base64.b64encode(q).decode("ascii")}


def pooled(values: np.ndarray, limit: int = SERIES_POINTS) -> tuple[np.ndarray, int]:
    """``(n,)`` → at most ``limit`` values, each the max of ``step`` consecutive ones; returns them and ``step``."""
    step = max(1, math.ceil(len(values) / limit))
    return (values if step == 1 else np.maximum.reduceat(values, np.arange(0, len(values), step))), step


def thin(x: np.ndarray, y: np.ndarray, cells: int = CURVE_CELLS) -> dict:
    """A curve's points, one per grid cell it passes through (the first and last kept), rounded to 1e-4."""
    key = np.rint(x * cells) * (cells + 1) + np.rint(y * cells)
    keep = np.r_[True, key[1:] != key[:-1]]
    keep[-1] = True
    return {"x": np.round(x[keep], 4).tolist(), "y": np.round(y[keep], 4).tolist()}


def video_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Frame AUC of one video, None when it holds a single class."""
    return float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else None


def worst_first(videos: list[dict]) -> list[int]:
    """Indices of ``videos`` worst first: anomalous ones by the first checkpoint's AUC (lowest first), then normal
    ones by their highest score (highest first), then the wholly anomalous ones by their highest score (lowest
    first: the missed)."""
    def key(i: int) -> tuple:
        v = videos[i]
        if v["auc"][0] is not None:
            return 0, v["auc"][0]
        return (1, -v["max"][0]) if v["gt_share"] == 0 else (2, v["max"][0])
    return sorted(range(len(videos)), key=key)


def evaluation_data(evaluated: Sequence[Evaluated], labels: np.ndarray, ranges: np.ndarray | None,
                    names: Sequence[str] | None, threshold: float, title: str, info: dict) -> dict:
    """An evaluation of one or more checkpoints on one test set: ``labels (16 N,)`` frame labels, ``ranges (V, 2)``
    snippet ranges (None: the test set as one video), ``names (V,)`` (default ``video_0000`` …)."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    n = len(labels) // FRAMES_PER_SNIPPET
    ranges = np.array([[0, n]]) if ranges is None else np.asarray(ranges)
    if names is None or len(names) != len(ranges):
        names = [f"video_{v:04d}" for v in range(len(ranges))]
    checkpoints = []
    for e in evaluated:
        scores = frame_scores(e.scores)
        fpr, tpr, _ = roc_curve(labels, scores)
        precision, recall, _ = precision_recall_curve(labels, scores)
        checkpoints.append({"name": e.name, "label_free": e.label_free,
                            "metrics": {k: e.metrics[k] for k, _, _ in METRICS if k in e.metrics},
                            "roc": thin(fpr, tpr), "pr": thin(recall[::-1], precision[::-1])})
    videos = []
    for name, (a, b) in zip(names, ranges):
        video_labels = labels[FRAMES_PER_SNIPPET * a:FRAMES_PER_SNIPPET * b]
        series = [pooled(np.asarray(e.scores[a:b], dtype=np.float64)) for e in evaluated]
        videos.append({"name": str(name), "frames": len(video_labels), "gt_share": float(video_labels.mean()),
                       "spans": [[int(s), int(t)] for s, t in anomalous_spans(video_labels)],
                       "auc": [video_auc(video_labels, np.repeat(e.scores[a:b], FRAMES_PER_SNIPPET))
                               for e in evaluated],
                       "max": [float(np.max(e.scores[a:b])) for e in evaluated],
                       "step": series[0][1], "scores": [pack(values) for values, _ in series]})
    for rank, i in enumerate(worst_first(videos)):
        videos[i]["worst"] = rank + 1
    return clean({"kind": "evaluation", "title": title, "info": info, "threshold": threshold,
                  "frames_per_snippet": FRAMES_PER_SNIPPET,
                  "meanings": [[k, name, meaning] for k, name, meaning in METRICS], "checkpoints": checkpoints,
                  "videos": videos})


def thumbnail(frame: np.ndarray) -> str:
    """An ``(h, w, 3)`` uint8 frame as a small JPEG data URI (``THUMBNAIL_HEIGHT`` pixels high at most)."""
    from PIL import Image  # matplotlib's own dependency

    image = Image.fromarray(np.ascontiguousarray(frame))
    if image.height > THUMBNAIL_HEIGHT:
        image = image.resize((max(1, round(image.width * THUMBNAIL_HEIGHT / image.height)), THUMBNAIL_HEIGHT))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def link(path: Path, start: Path) -> str:
    """``path`` as a URL relative to the folder ``start`` (an absolute ``file://`` URL across drives)."""
    try:
        return quote(Path(os.path.relpath(path.resolve(), start.resolve())).as_posix())
    except ValueError:
        return path.resolve().as_uri()


def videos_data(reports: Sequence[ScoredVideo], out_dir: Path, rules: dict, annotate: str | None,
                title: str) -> dict:
    """A batch of scored videos whose files are in ``out_dir/<name>/``: ``rules`` the event settings (threshold,
    min_gap, min_length), ``annotate`` the annotated copies' file name (when made)."""
    videos = []
    for r in reports:
        folder = out_dir / r.name
        files = {name: folder / name for name in ("scores.csv", "events.json", "timeline.png")}
        if annotate and (folder / annotate).is_file():
            files["annotated"] = folder / annotate
        values, step = pooled(np.asarray(r.snippet_scores, dtype=np.float64))
        live = "://" in r.video
        source = None if live else Path(r.video)
        summary = r.summary()
        videos.append({"name": r.name, "video": r.video, "fps": r.fps, "frames": r.frames,
                       "seconds": summary["seconds"], "snippets": summary["snippets"],
                       "max": summary["max_score"], "max_time": summary["max_score_time"],
                       "stopped": summary["stopped"], "events": summary["events"],
                       "step": step, "scores": pack(values),
                       "thumbs": [{"t": round(t, 3), "src": thumbnail(frame)} for t, frame in r.thumbnails],
                       "links": {k: link(p, out_dir) for k, p in files.items() if p.is_file()},
                       "src": None if source is None else link(source, out_dir),
                       "mime": None if source is None else MIME.get(source.suffix.lower(), "")})
    return clean({"kind": "videos", "title": title, "rules": rules, "frames_per_snippet": FRAMES_PER_SNIPPET,
                  "videos": videos})


def training_data(history: Sequence[dict], settings: dict, select: str, title: str) -> dict:
    """A training run's learning curves: ``history`` one record per snapshot (metrics.jsonl's lines), ``settings``
    its configuration, ``select`` the metrics key that chose the best checkpoint."""
    records = [{k: v for k, v in h.items() if k != "per_video_auc"} for h in history]
    return clean({"kind": "training", "title": title, "settings": settings, "select": select,
                  "meanings": [[k, name, meaning] for k, name, meaning in METRICS], "history": records})
