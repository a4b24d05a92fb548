"""ROC curve and per-video score curves with the ground-truth spans shaded (matplotlib, Agg backend)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from utils.io import atomic_open  # noqa: E402
from utils.metrics import frame_scores  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_roc(snippet_scores: np.ndarray, frame_gt: np.ndarray, path: Path, title: str = "") -> None:
    """All-frames ROC of ``(N,)`` snippet scores against ``(16 N,)`` frame labels, into ``path``."""
    scores = frame_scores(snippet_scores)
    fpr, tpr, _ = roc_curve(frame_gt, scores)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(frame_gt, scores):.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title or "ROC, all frames")
    ax.legend(loc="lower right")
    _save(fig, path)


def anomalous_spans(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame spans where ``labels (F,)`` is 1."""
    edges = np.diff(np.concatenate([[0], labels.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def plot_videos(snippet_scores: np.ndarray, frame_gt: np.ndarray, ranges: np.ndarray, out_dir: Path) -> list[Path]:
    """One PNG per test video holding an anomaly: frame scores over time, ground-truth spans shaded."""
    scores = frame_scores(snippet_scores)
    written = []
    for v, (a, b) in enumerate(ranges):
        labels = frame_gt[16 * a:16 * b]
        if not labels.any():
            continue
        fig, ax = plt.subplots(figsize=(7, 2.4))
        for start, stop in anomalous_spans(labels):
            ax.axvspan(start, stop, color="tab:red", alpha=0.2, linewidth=0)
        ax.plot(np.arange(len(labels)), scores[16 * a:16 * b], color="tab:blue", linewidth=1)
        ax.set(xlim=(0, len(labels)), ylim=(-0.02, 1.02), xlabel="frame", ylabel="anomaly score",
               title=f"test video {v} (shaded: ground truth)")
        path = Path(out_dir) / f"video_{v:04d}.png"
        _save(fig, path)
        written.append(path)
    return written
