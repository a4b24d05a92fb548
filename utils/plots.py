"""ROC curve and per-video score curves with the ground-truth spans shaded (matplotlib, Agg backend)."""
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from utils.config import Config  # noqa: E402
from utils.io import atomic_open  # noqa: E402
from utils.metrics import frame_scores  # noqa: E402
from utils.snippet import FRAMES_PER_SNIPPET  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_roc(snippet_scores: np.ndarray, frame_gt: np.ndarray, path: Path, title: str = "") -> None:
    """All-frames ROC of ``(N,)`` snippet scores against ``(16 N,)`` frame labels, into ``path``."""
    _save(roc_figure(snippet_scores, frame_gt, title), path)


def roc_figure(snippet_scores: np.ndarray, frame_gt: np.ndarray, title: str = "") -> plt.Figure:
    """The figure of :func:`plot_roc`: its first line is the ROC curve, labelled with the AUC."""
    scores = frame_scores(snippet_scores)
    fpr, tpr, _ = roc_curve(frame_gt, scores)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(frame_gt, scores):.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title or "ROC, all frames")
    ax.legend(loc="lower right")
    return fig


def anomalous_spans(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame spans where ``labels (F,)`` is 1."""
    edges = np.diff(np.concatenate([[0], labels.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def plot_videos(snippet_scores: np.ndarray, frame_gt: np.ndarray, ranges: np.ndarray, out_dir: Path,
                names: list[str] | None = None, threshold: float = Config.label_threshold) -> list[Path]:
    """One PNG per test video holding an anomaly, ``<name>.png``: frame scores over time, the alarm line at
    ``threshold``, ground-truth spans shaded; the title names the video and its frame AUC. ``names``: ``(V,)``
    video names (default ``video_0000`` …)."""
    scores = frame_scores(snippet_scores)
    names = names if names is not None and len(names) == len(ranges) else [f"video_{v:04d}" for v in range(len(ranges))]
    written = []
    for name, (a, b) in zip(names, ranges):
        frames = slice(FRAMES_PER_SNIPPET * a, FRAMES_PER_SNIPPET * b)
        labels, video_scores = frame_gt[frames], scores[frames]
        if not labels.any():
            continue
        path = Path(out_dir) / f"{safe_name(name)}.png"
        _save(video_figure(name, labels, video_scores, threshold), path)
        written.append(path)
    return written


def video_figure(name: str, labels: np.ndarray, scores: np.ndarray, threshold: float) -> plt.Figure:
    """One video's figure of :func:`plot_videos` from its ``(F,)`` frame labels and scores: the ground-truth spans
    shaded, the scores (the line labelled "anomaly score") and the alarm line at ``threshold``."""
    fig, ax = plt.subplots(figsize=(7, 2.6))
    for i, (start, stop) in enumerate(anomalous_spans(labels)):
        ax.axvspan(start, stop, color="tab:red", alpha=0.2, linewidth=0, label="ground truth" if i == 0 else None)
    ax.plot(np.arange(len(labels)), scores, color="tab:blue", linewidth=1, label="anomaly score")
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8, label=f"alarm threshold {threshold:g}")
    ax.set(xlim=(0, len(labels)), ylim=(-0.02, 1.02), xlabel="frame", ylabel="anomaly score",
           title=video_title(name, labels, scores))
    ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    return fig


def video_title(name: str, labels: np.ndarray, scores: np.ndarray) -> str:
    """``"<name>: AUC 0.9123"`` from one video's ``(F,)`` frame labels and scores (n/a when one class only)."""
    if labels.all() or not labels.any():
        return f"{name}: AUC n/a (one class only)"
    return f"{name}: AUC {roc_auc_score(labels, scores):.4f}"


def safe_name(name: str) -> str:
    """A video name usable as a file name (path separators and odd characters replaced by ``_``)."""
    return re.sub(r"[^\w.+-]", "_", name).strip(".") or "video"


def plot_timeline(times: np.ndarray, scores: np.ndarray, threshold: float, events: list, path: Path,
                  thumbnails: list[tuple[float, np.ndarray]] = (), title: str = "") -> None:
    """One video's ``(F,)`` frame scores over its ``(F,)`` times (s): the alarm line, ``events`` (with ``start`` /
    ``end`` seconds) shaded, and above it a strip of ``(time, (h, w, 3) uint8 frame)`` thumbnails at the peaks."""
    rows = {"nrows": 2, "gridspec_kw": {"height_ratios": [1, 2]}} if len(thumbnails) else {"nrows": 1}
    fig, axes = plt.subplots(figsize=(9, 4.2 if len(thumbnails) else 2.8), **rows)
    ax = axes[-1] if len(thumbnails) else axes
    for i, event in enumerate(events):
        ax.axvspan(event.start, event.end, color="tab:red", alpha=0.2, linewidth=0, label="event" if i == 0 else None)
    ax.plot(times, scores, color="tab:blue", linewidth=1, label="anomaly score")
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8, label=f"threshold {threshold:g}")
    end = float(times[-1]) if len(times) else 1.0
    ax.set(xlim=(0, max(end, 1e-3)), ylim=(-0.02, 1.02), xlabel="time (s)", ylabel="anomaly score")
    ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    if len(thumbnails):
        strip = axes[0]
        height = min(image.shape[0] for _, image in thumbnails)
        images = [image[:height] for _, image in thumbnails]
        strip.imshow(np.concatenate([np.pad(im, ((0, 0), (0, 4), (0, 0)), constant_values=255) for im in images], 1))
        centres = np.cumsum([im.shape[1] + 4 for im in images]) - np.array([im.shape[1] + 4 for im in images]) / 2
        strip.set_xticks(centres, [f"peak {t:.1f} s" for t, _ in thumbnails], fontsize="small")
        strip.set_yticks([])
        strip.set_title(title)
    else:
        ax.set_title(title)
    _save(fig, path)
