"""Frame-level test ground truth (16 frames per snippet) and its alignment with the features.

A length mismatch between labels and features is never silent: policy ``"error"``
stops with both lengths named; policy ``"truncate"`` keeps the shorter of the two,
per video when per-video labels (a pickle) and video lengths are known, else at the end.
"""
import os
import pickle
from dataclasses import dataclass

import numpy as np

from dataset.features import FeatureSource, open_features, read_npy, video_key
from utils.errors import InputError
from utils.ranges import ranges_from_lengths
from utils.snippet import FRAMES_PER_SNIPPET

POLICIES = ("error", "truncate")
UCF_TEST_FRAMES = {1_114_144: "RTFM's, 69,634 snippets", 1_109_680: "DeepMIL's, 69,355 snippets"}


@dataclass
class FrameGroundTruth:
    """Labels aligned with feature rows.

    labels: ``(16·n,)`` float64 0/1 frame labels.
    n_snippets: ``n``, the snippets that carry labels.
    rows: ``(n,)`` int64 feature rows the labels belong to, in order (snippet ``j`` of the
        labels is feature row ``rows[j]``; ``arange(n)`` unless videos were cut).
    ranges: ``(V, 2)`` per-video [from, to) in label-snippet space (``0 .. n``), or None.
    """

    labels: np.ndarray
    n_snippets: int
    rows: np.ndarray
    ranges: np.ndarray | None


@dataclass
class TestSet:
    """Test features with aligned labels: score ``source`` at ``rows``, compare with ``labels``.

    labels ``(16·n_snippets,)``; rows ``(n_snippets,)``; ranges ``(V, 2)`` in score space or None.
    """

    __test__ = False

    source: FeatureSource
    labels: np.ndarray
    ranges: np.ndarray | None
    n_snippets: int
    rows: np.ndarray


def _check_labels(path: str, labels: np.ndarray, what: str = "", n_snippets: int | None = None) -> np.ndarray:
    """0/1 frame labels as float64; ``n_snippets``, when known, names the expected length in the error."""
    if labels.ndim != 1:
        raise InputError(path, f"expected 1-D frame labels{what}, got shape {labels.shape}")
    if labels.dtype.hasobject or not (np.issubdtype(labels.dtype, np.number) or labels.dtype == bool):
        raise InputError(path, f"expected numeric 0/1 frame labels{what}, got dtype {labels.dtype}")
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if bad.size:
        raise InputError(path, f"frame labels{what} must be 0 or 1, frame {bad[0]} is {labels[bad[0]]} "
                               f"({bad.size} such frames)")
    if what == "" and len(labels) == 0:
        raise InputError(path, "no frame labels (empty array)")
    if len(labels) % FRAMES_PER_SNIPPET:
        expected = "" if n_snippets is None else (f"; the {n_snippets} feature snippets need "
                                                  f"{FRAMES_PER_SNIPPET * n_snippets} frame labels")
        raise InputError(path, f"{len(labels)} frame labels{what} is not a multiple of {FRAMES_PER_SNIPPET} "
                               f"({FRAMES_PER_SNIPPET} frames per snippet){expected}")
    return labels.astype(np.float64)


def _load_npy(path: str, n_snippets: int) -> np.ndarray:
    return _check_labels(path, read_npy(path, mmap_mode=None), n_snippets=n_snippets)


def _load_pickle(path: str, video_names: list[str] | None) -> list[np.ndarray]:
    """Per-video label arrays in ``video_names`` order from a pickled dict name -> labels."""
    if video_names is None:
        raise InputError(path, "per-video labels (a pickle) need the test videos' names: use the per-video "
                               "layout (a list file) or a .npy ground truth")
    try:
        with open(path, "rb") as f:
            table = pickle.load(f)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except Exception as e:  # an unpickling failure can raise almost any type
        raise InputError(path, f"unreadable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(table, dict):
        raise InputError(path, f"expected a dict video name -> frame labels, got {type(table).__name__}")
    by_key = {}
    for name, labels in table.items():
        key = video_key(str(name))
        if key in by_key:
            raise InputError(path, f"two entries for video {key!r}")
        by_key[key] = labels
    out = []
    for name in video_names:
        key = video_key(name)
        if key not in by_key:
            raise InputError(path, f"no labels for video {key!r} ({len(by_key)} videos in the file)")
        out.append(_check_labels(path, np.asarray(by_key[key]), f" of video {key!r}"))
    return out


def _mismatch(path: str, n_gt: int, n_snippets: int) -> InputError:
    frames_gt, frames_feat = FRAMES_PER_SNIPPET * n_gt, FRAMES_PER_SNIPPET * n_snippets
    message = (f"ground truth has {frames_gt} frames ({n_gt} snippets), the features have {n_snippets} snippets "
               f"({frames_feat} frames): {abs(n_gt - n_snippets)} snippets "
               f"{'more' if n_gt > n_snippets else 'fewer'} in the ground truth")
    if frames_gt in UCF_TEST_FRAMES or frames_feat in UCF_TEST_FRAMES:
        message += ("; two UCF-Crime ground truths circulate, 1,114,144 frames (RTFM's) and 1,109,680 "
                    "(DeepMIL's): use the one made for these features")
    return InputError(path, message + "; or use --gt_mismatch truncate")


def _cut_ranges(ranges: np.ndarray, n: int) -> np.ndarray:
    """``ranges`` cut at snippet ``n``; videos that start at or after ``n`` are dropped."""
    kept = ranges[ranges[:, 0] < n]
    return np.stack([kept[:, 0], np.minimum(kept[:, 1], n)], axis=1)


def load_frame_gt(path: str, n_snippets: int, policy: str = "error", video_names: list[str] | None = None,
                  video_lengths: np.ndarray | None = None) -> FrameGroundTruth:
    """Frame labels ``(16·n,)`` for features of ``n_snippets`` rows (``.npy`` 1-D, or ``.pkl`` name -> labels).

    ``video_names`` (list order) are needed for a pickle; ``video_lengths`` ``(V,)`` (snippets per video,
    contiguous from row 0) let a pickle be checked and cut per video.
    """
    path = str(path)
    if policy not in POLICIES:
        raise InputError("ground truth policy", f"{policy!r} is not one of {', '.join(POLICIES)}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        per_video = None
        labels = _load_npy(path, n_snippets)
    elif suffix in (".pkl", ".pickle"):
        per_video = _load_pickle(path, video_names)
        labels = np.concatenate(per_video)
    else:
        raise InputError(path, "expected frame labels as .npy (1-D) or .pkl/.pickle (dict video -> labels)")
    lengths = None if video_lengths is None else np.asarray(video_lengths, dtype=np.int64)
    if per_video is not None and lengths is not None:
        if len(lengths) != len(per_video):
            raise InputError(path, f"{len(per_video)} videos of labels for {len(lengths)} feature videos")
        return _align_per_video(path, per_video, lengths, policy)
    n_gt = len(labels) // FRAMES_PER_SNIPPET
    if n_gt != n_snippets and policy == "error":
        raise _mismatch(path, n_gt, n_snippets)
    n = min(n_gt, n_snippets)
    if lengths is not None:
        ranges = _cut_ranges(ranges_from_lengths(lengths), n)
    elif per_video is not None:
        ranges = _cut_ranges(ranges_from_lengths(np.array([len(v) // FRAMES_PER_SNIPPET for v in per_video])), n)
    else:
        ranges = None
    return FrameGroundTruth(labels[:FRAMES_PER_SNIPPET * n], n, np.arange(n, dtype=np.int64), ranges)


def _align_per_video(path: str, per_video: list[np.ndarray], lengths: np.ndarray, policy: str) -> FrameGroundTruth:
    n_gt = np.array([len(v) // FRAMES_PER_SNIPPET for v in per_video], dtype=np.int64)
    bad = np.flatnonzero(n_gt != lengths)
    if bad.size and policy == "error":
        v = int(bad[0])
        raise InputError(path, f"video {v} has {len(per_video[v])} frame labels ({n_gt[v]} snippets) but "
                               f"{lengths[v]} feature snippets ({bad.size} videos differ); "
                               f"or use --gt_mismatch truncate")
    used = np.minimum(n_gt, lengths)
    starts = ranges_from_lengths(lengths)[:, 0]
    rows = np.concatenate([np.arange(s, s + n, dtype=np.int64) for s, n in zip(starts, used)])
    labels = np.concatenate([v[:FRAMES_PER_SNIPPET * n] for v, n in zip(per_video, used)])
    ranges = ranges_from_lengths(used)
    return FrameGroundTruth(labels, int(used.sum()), rows, ranges[used > 0])


def load_test_set(features: str | None, gt: str, ranges: str | None = None, policy: str = "error",
                  list_file: str | None = None, root: str | None = None) -> TestSet:
    """Open test features (either layout) and their frame labels, aligned under ``policy``."""
    source = open_features(features, ranges, list_file, root)
    names = getattr(source, "video_names", None)
    lengths = None if names is None else np.diff(source.ranges, axis=1)[:, 0]
    truth = load_frame_gt(gt, source.n_snippets, policy, names, lengths)
    if truth.ranges is None and source.ranges is not None:
        truth.ranges = _cut_ranges(source.ranges, truth.n_snippets)
    return TestSet(source, truth.labels, truth.ranges, truth.n_snippets, truth.rows)
