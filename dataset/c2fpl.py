"""C2FPL coarse-to-fine pseudo labels (Al-lahham et al., WACV 2024), without any label.

Per snippet the crop-averaged squared L2 norm ``n``; per video ``(mean(n), var(n))``.
Coarse: a 2-component spherical Gaussian mixture splits the videos, then the
lowest-likelihood normal videos move to the anomalous set until
``#anomalous / #normal >= nu``. Fine: in each anomalous video the window of
``int(T * window_fraction)`` snippets whose density under the normal snippets'
1-D Gaussian changes the most is labelled 1.
"""
import os

import numpy as np
from scipy.stats import norm
from sklearn.mixture import GaussianMixture

from dataset.features import FeatureSource
from utils.errors import InputError
from utils.progress import progress_bar
from utils.ranges import check_ranges

MIXTURE = dict(n_components=2, covariance_type="spherical", max_iter=150)
OUTLIER_PERCENTILE = 3.0
MIN_NORMAL_VIDEOS = 2  # a 2-component mixture needs at least two samples


def snippet_norms(features: "np.ndarray | FeatureSource", chunk_rows: int = 4096) -> np.ndarray:
    """(N, C, D) or (N, D) features (np.memmap or a FeatureSource) -> (N,) float64 mean over crops of sum over D of x².

    Reads ``chunk_rows`` snippets at a time; squares are accumulated in float64
    without a float64 copy of the chunk, so memory stays bounded for any N. A progress bar shows when it takes
    more than a few seconds (large feature files).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if isinstance(features, FeatureSource):
        n, read = features.n_snippets, lambda a, b: features.gather(np.arange(a, b))
    elif features.ndim in (2, 3):
        n, read = len(features), lambda a, b: np.asarray(features[a:b])
    else:
        raise ValueError(f"features must be (N, C, D) or (N, D), got shape {features.shape}")
    norms = np.empty(n, dtype=np.float64)
    with progress_bar(total=n, desc="feature norms", unit="snippet", unit_scale=True, delay=3, leave=False,
                  dynamic_ncols=True) as bar:
        for start in range(0, n, chunk_rows):
            chunk = read(start, min(start + chunk_rows, n))
            sq = np.einsum("ncd,ncd->nc" if chunk.ndim == 3 else "nd,nd->n", chunk, chunk, dtype=np.float64)
            norms[start:start + len(chunk)] = sq.mean(axis=1) if sq.ndim == 2 else sq
            bar.update(len(chunk))
    return norms


def video_statistics(norms: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """(N,) norms, (V, 2) contiguous ranges (``check_ranges``) -> (V, 2) float64 [mean, unbiased var] per video.

    A single-snippet video has variance 0 (ddof=1 would make it NaN and break the mixture).
    """
    starts, lengths = ranges[:, 0], ranges[:, 1] - ranges[:, 0]
    n = norms[: ranges[-1, 1]]
    mean = np.add.reduceat(n, starts) / lengths
    squares = np.add.reduceat((n - np.repeat(mean, lengths)) ** 2, starts)
    var = np.divide(squares, lengths - 1, out=np.zeros_like(squares), where=lengths > 1)
    return np.stack([mean, var], axis=1)


def _fit_mixture(stats: np.ndarray, seed: int) -> GaussianMixture:
    return GaussianMixture(**MIXTURE, random_state=seed).fit(stats)


def coarse_video_labels(stats: np.ndarray, nu: float = 1.0, seed: int = 0) -> np.ndarray:
    """(V, 2) [mean, var] -> (V,) int64, 1 = anomalous video.

    The initial anomalous component is the one whose videos have the larger mean
    variance (on a tie, component 1); if the mixture puts every video in one
    component, all start normal. The refinement stops as soon as
    ``#anomalous / #normal >= nu``, fewer than two normal videos remain, or no
    video moves (the next refit would see the same data and move none either).
    """
    component = _fit_mixture(stats, seed).predict(stats)
    counts = np.bincount(component, minlength=2)
    if counts.min() == 0:
        anomalous = np.zeros(len(stats), dtype=bool)
    else:
        mean_var = [stats[component == k, 1].mean() for k in (0, 1)]
        anomalous = component == (0 if mean_var[0] > mean_var[1] else 1)
    while True:
        normal = np.flatnonzero(~anomalous)
        if len(normal) < MIN_NORMAL_VIDEOS or anomalous.sum() / len(normal) >= nu:
            break
        scores = _fit_mixture(stats[normal], seed).score_samples(stats[normal])
        outliers = normal[scores < np.percentile(scores, OUTLIER_PERCENTILE)]
        if len(outliers) == 0:
            break
        anomalous[outliers] = True
    return anomalous.astype(np.int64)


def normal_density(norms: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Gaussian pdf of ``norms``; a zero or undefined ``std`` gives the point-mass limit (1 where n == mean)."""
    if np.isfinite(std) and std > 0:
        return norm.pdf(norms, loc=mean, scale=std)
    return (norms == mean).astype(np.float64)


def _sequential_window_sums(steps: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Left-to-right float64 sums of ``steps[s:s+length]`` for each s in ``starts``, in bounded blocks."""
    block = max(1, (1 << 20) // length)
    sums = np.empty(len(starts))
    offsets = np.arange(length)
    for i in range(0, len(starts), block):
        rows = steps[starts[i:i + block, None] + offsets]
        sums[i:i + block] = np.cumsum(rows, axis=1)[:, -1]
    return sums


def best_window_start(density: np.ndarray, w: int) -> int:
    """(T,) densities, window length 1 <= w <= T -> first start s maximising sum_{t=s}^{s+w-2} |p[t+1] - p[t]|.

    Window scores come from a cumulative sum (O(T)); every window whose score is
    within the cumsum's rounding bound of the best is re-summed left to right, so
    the choice (ties included) is that of the direct loop.
    """
    steps = np.abs(np.diff(density))
    n_starts = len(density) - w + 1
    if w == 1 or not steps.any():
        return 0
    cum = np.concatenate([[0.0], np.cumsum(steps)])
    scores = cum[w - 1:w - 1 + n_starts] - cum[:n_starts]
    tolerance = 4.0 * (len(density) + 1) * np.finfo(np.float64).eps * cum[-1]
    candidates = np.flatnonzero(scores >= scores.max() - tolerance)
    if len(candidates) == 1:
        return int(candidates[0])
    exact = _sequential_window_sums(steps, candidates, w - 1)
    return int(candidates[np.argmax(exact)])


def fine_snippet_labels(norms: np.ndarray, ranges: np.ndarray, video_labels: np.ndarray,
                        window_fraction: float = 0.2) -> np.ndarray:
    """(N,) norms, (V, 2) ranges, (V,) video labels -> (N,) uint8 snippet labels.

    The density model is a Gaussian (mean, unbiased std) over all snippets of normal
    videos; each anomalous video gets one window of ``int(T * window_fraction)`` ones.
    """
    labels = np.zeros(len(norms), dtype=np.uint8)
    is_normal = np.repeat(np.asarray(video_labels) == 0, ranges[:, 1] - ranges[:, 0])
    normal_norms = norms[: ranges[-1, 1]][is_normal]
    std = normal_norms.std(ddof=1) if len(normal_norms) > 1 else np.nan
    density = normal_density(norms, normal_norms.mean() if len(normal_norms) else np.nan, std)
    for start, stop in ranges[np.asarray(video_labels) != 0]:
        w = int((stop - start) * window_fraction)
        if w > 0:
            s = start + best_window_start(density[start:stop], w)
            labels[s:s + w] = 1
    return labels


def pseudo_labels(features: "np.ndarray | FeatureSource", ranges: np.ndarray, window_fraction: float = 0.2,
                  nu: float = 1.0, *, ranges_path: str | os.PathLike | None = None,
                  features_path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, D) features, (V, 2) ranges -> ((V,) int64 video labels, (N,) uint8 snippet labels).

    Snippets after the last range belong to no video and get label 0.
    """
    if not 0.0 <= window_fraction <= 1.0:
        raise InputError("window_fraction", f"must be in [0, 1], got {window_fraction}")
    if not (np.isfinite(nu) and nu >= 0):
        raise InputError("nu", f"must be a finite number >= 0, got {nu}")
    if isinstance(features, FeatureSource):
        n_snippets, features_path = features.n_snippets, features_path or features.path
    elif features.ndim in (2, 3):
        n_snippets = len(features)
    else:
        raise InputError(features_path or "features", f"expected (N, C, D) or (N, D), got shape {features.shape}")
    ranges = check_ranges(ranges_path or "ranges", ranges, n_snippets, contiguous=True)
    norms = snippet_norms(features)
    bad = np.flatnonzero(~np.isfinite(norms))
    if len(bad):
        raise InputError(features_path or "features", f"snippet {bad[0]} has NaN or Inf values")
    video_labels = coarse_video_labels(video_statistics(norms, ranges), nu=nu)
    return video_labels, fine_snippet_labels(norms, ranges, video_labels, window_fraction)
