"""Frame-level evaluation as the release computes it, plus the per-video versions.

Frame scores are snippet scores repeated 16 times. ``auc_abn`` and ``far_abn`` use
the release's definition: snippets in consecutive groups of 128 (its evaluation
batches, ``--auc_abn_group``), a group counts as abnormal if any of its frames is anomalous.
The false alarm rates count normal frames scored >= 0.5 (``--label_threshold``).
"""
import os

import numpy as np
from scipy.optimize import brentq
from sklearn.metrics import (
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from utils.config import Config
from utils.errors import InputError
from utils.ranges import check_ranges
from utils.snippet import FRAMES_PER_SNIPPET


def frame_scores(snippet_scores: np.ndarray) -> np.ndarray:
    """(N,) snippet scores -> (16 N,) frame scores."""
    return np.repeat(np.asarray(snippet_scores).reshape(-1), FRAMES_PER_SNIPPET)


def _auc_or_nan(gt: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC, NaN when ``gt`` holds a single class."""
    return float(roc_auc_score(gt, scores)) if 0 < gt.sum() < len(gt) else float("nan")


def _false_alarm_rate(gt: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """Fraction of normal frames scored >= ``threshold``; NaN without normal frames."""
    normal = gt == 0
    return float(np.mean(scores[normal] >= threshold)) if normal.any() else float("nan")


def precision_recall(hits: float, predicted: float, true: float) -> dict[str, float]:
    """Precision and recall of 0/1 labels from counts: ``hits`` true positives among ``predicted`` positive
    labels and ``true`` actual positives (a count of 0 counts as 1, giving 0 rather than NaN)."""
    return {"precision": hits / max(predicted, 1), "recall": hits / max(true, 1)}


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """The x where FPR = 1 - TPR on a ROC curve (root of 1 - x - TPR(x), TPR linearly interpolated)."""
    return float(brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0))


def _check_inputs(scores: np.ndarray, gt: np.ndarray, gt_where: object) -> None:
    """(16 N,) frame scores and ground truth: finite scores, matching length, 0/1 labels, both classes."""
    if not np.isfinite(scores).all():
        raise InputError("snippet_scores", "contain NaN or Inf")
    if len(gt) != len(scores):
        raise InputError(gt_where, f"{len(gt)} frames, but {len(scores) // FRAMES_PER_SNIPPET} snippets "
                                   f"need {len(scores)} ({FRAMES_PER_SNIPPET} per snippet)")
    if not np.isin(gt, (0, 1)).all():
        raise InputError(gt_where, "frame ground truth must be 0/1")
    if gt.min() == gt.max():
        raise InputError(gt_where, f"every frame is {int(gt[0])}: AUC needs both normal and anomalous frames")


def frame_metrics(snippet_scores: np.ndarray, frame_gt: np.ndarray, ranges: np.ndarray | None = None,
                  group: int = Config.auc_abn_group, *, threshold: float = Config.label_threshold,
                  gt_path: str | os.PathLike | None = None,
                  ranges_path: str | os.PathLike | None = None) -> dict[str, float | list]:
    """(N,) snippet scores, (16 N,) 0/1 frame labels[, (V, 2) snippet ranges] -> metrics.

    Keys: auc_all, auc_abn (in abnormal groups of ``group`` snippets), far_all, far_abn (FPR at score
    >= ``threshold``), eer, ap (sklearn average precision), pr_auc (trapezoid under recall/precision);
    with ranges also auc_abn_video (frames of videos holding any anomalous frame) and per_video_auc
    (one entry per video, None for single-class videos, i.e. all normal ones).
    A metric over a frame set without both classes is NaN; ground truth with a single
    class overall, or of the wrong length, is an InputError.
    """
    snippet_scores = np.asarray(snippet_scores).reshape(-1)
    scores = frame_scores(snippet_scores)
    gt = np.asarray(frame_gt).reshape(-1)
    _check_inputs(scores, gt, gt_path or "frame_gt")
    gt = gt.astype(np.int64)

    fpr, tpr, _ = roc_curve(gt, scores)
    precision, recall, _ = precision_recall_curve(gt, scores)
    snippet_abnormal = gt.reshape(-1, FRAMES_PER_SNIPPET).any(axis=1)
    group_ids = np.arange(len(snippet_scores)) // group
    abnormal_groups = np.bincount(group_ids, weights=snippet_abnormal) > 0
    in_abnormal_group = np.repeat(abnormal_groups[group_ids], FRAMES_PER_SNIPPET)
    metrics: dict[str, float | list] = {
        "auc_all": float(auc(fpr, tpr)),
        "auc_abn": _auc_or_nan(gt[in_abnormal_group], scores[in_abnormal_group]),
        "far_all": _false_alarm_rate(gt, scores, threshold),
        "far_abn": _false_alarm_rate(gt[in_abnormal_group], scores[in_abnormal_group], threshold),
        "eer": equal_error_rate(fpr, tpr),
        "ap": float(average_precision_score(gt, scores)),
        "pr_auc": float(auc(recall, precision)),
    }
    if ranges is not None:
        ranges = check_ranges(ranges_path or "ranges", ranges, len(snippet_scores))
        frames = ranges * FRAMES_PER_SNIPPET
        per_video = [_auc_or_nan(gt[a:b], scores[a:b]) for a, b in frames]
        anomalous_video = np.zeros(len(gt), dtype=bool)
        for a, b in frames:
            anomalous_video[a:b] |= bool(gt[a:b].any())
        metrics["auc_abn_video"] = _auc_or_nan(gt[anomalous_video], scores[anomalous_video])
        metrics["per_video_auc"] = [None if np.isnan(v) else v for v in per_video]
    return metrics
