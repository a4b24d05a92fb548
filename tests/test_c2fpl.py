"""C2FPL pseudo labels: parity with the release, direct-loop oracles, edge cases."""
import warnings

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from dataset.c2fpl import (best_window_start, coarse_video_labels, fine_snippet_labels, pseudo_labels,
                           snippet_norms, video_statistics)
from utils.errors import InputError


def oracle_window(p, w):
    """The text, literally: first start with the largest sum of |p[t+1] - p[t]|, t = s .. s+w-2."""
    best, best_start = None, None
    for s in range(len(p) - w + 1):
        score = 0.0
        for t in range(s, s + w - 1):
            score += abs(p[t + 1] - p[t])
        if best is None or score > best:
            best, best_start = score, s
    return best_start


def oracle_fine(norms, ranges, video_labels, fraction):
    normal = np.concatenate([norms[a:b] for (a, b), v in zip(ranges, video_labels) if v == 0])
    mean, std = normal.mean(), normal.std(ddof=1)
    labels = np.zeros(len(norms), dtype=np.uint8)
    for (a, b), v in zip(ranges, video_labels):
        w = int((b - a) * fraction)
        if v == 1 and w > 0:
            s = oracle_window(norm.pdf(norms[a:b], mean, std), w)
            labels[a + s:a + s + w] = 1
    return labels


def oracle_coarse(stats, nu):
    def mixture():
        return GaussianMixture(2, covariance_type="spherical", max_iter=150, random_state=0)
    component = mixture().fit(stats).predict(stats)
    anomalous_component = int(stats[component == 1, 1].mean() >= stats[component == 0, 1].mean())
    labels = (component == anomalous_component).astype(int)
    while labels.sum() / (labels == 0).sum() < nu:
        normal = [i for i in range(len(labels)) if labels[i] == 0]
        scores = mixture().fit(stats[normal]).score_samples(stats[normal])
        threshold = np.percentile(scores, 3)
        for i, score in zip(normal, scores):
            if score < threshold:
                labels[i] = 1
    return labels


def tie_prone_densities(rng, kind, T):
    """Plateaus, repeats and few distinct levels: windows tie, and cumsum differences round apart."""
    if kind == 0:
        return rng.choice([0.1, 0.2, 0.3, 0.7], size=T)
    if kind == 1:
        return np.tile(rng.random(int(rng.integers(1, 5))), T)[:T]
    if kind == 2:
        return rng.choice([0.1, 0.2, 0.3], size=T) * rng.choice([1.0, 1e-9], size=T)
    return np.repeat(rng.random(int(rng.integers(1, 4))), T)[:T]


def random_layout(rng, n_videos, low=1, high=40):
    lengths = rng.integers(low, high, size=n_videos)
    stops = np.cumsum(lengths)
    return np.stack([stops - lengths, stops], axis=1)


def test_parity_with_release(parity_dir):
    case = np.load(parity_dir / "c2fpl_case.npz")
    video_labels, snippet_labels = pseudo_labels(case["features"], case["ranges"],
                                                 float(case["window_fraction"]), float(case["nu"]))
    np.testing.assert_array_equal(video_labels, case["video_labels"])
    np.testing.assert_array_equal(snippet_labels, case["snippet_labels"])


def test_window_choice_equals_direct_loop_on_ties():
    rng = np.random.default_rng(0)
    naive_mismatches = 0
    for i in range(1200):
        T = int(rng.integers(2, 60))
        p = tie_prone_densities(rng, i % 4, T) if i % 5 else rng.random(T)
        w = int(rng.integers(1, T + 1))
        expected = oracle_window(p, w)
        assert best_window_start(p, w) == expected, (p.tolist(), w)
        cum = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(p)))])
        naive_mismatches += int(np.argmax(cum[w - 1:] - cum[:T - w + 1])) != expected
    assert naive_mismatches > 0  # the cases do hit the rounding hazard of a plain cumsum argmax


def test_fine_labels_equal_direct_transcription():
    rng = np.random.default_rng(1)
    for trial in range(40):
        ranges = random_layout(rng, int(rng.integers(3, 12)))
        n = rng.choice([1.0, 1.5, 2.0, 4.0], size=ranges[-1, 1]) if trial % 2 else rng.gamma(2.0, size=ranges[-1, 1])
        video_labels = rng.integers(0, 2, size=len(ranges))
        video_labels[0] = 0
        fraction = float(rng.choice([0.2, 0.35, 0.5, 1.0]))
        np.testing.assert_array_equal(fine_snippet_labels(n, ranges, video_labels, fraction),
                                      oracle_fine(n, ranges, video_labels, fraction))


def test_short_videos_window_length():
    ranges = np.array([[0, 20], [20, 24], [24, 30]])  # T = 20 normal, T = 4 (w = 0), T = 6 (w = 1)
    n = np.random.default_rng(2).gamma(2.0, size=30)
    labels = fine_snippet_labels(n, ranges, np.array([0, 1, 1]), 0.2)
    assert labels[20:24].sum() == 0
    np.testing.assert_array_equal(labels[24:30], [1, 0, 0, 0, 0, 0])
    assert labels.dtype == np.uint8 and labels[:20].sum() == 0


def test_video_statistics_and_single_snippet_video():
    rng = np.random.default_rng(3)
    ranges = np.concatenate([[[0, 1]], random_layout(rng, 30, 1, 50) + 1])
    n = rng.gamma(2.0, size=ranges[-1, 1] + 5)  # trailing snippets outside every video are ignored
    stats = video_statistics(n, ranges)
    for (a, b), (mean, var) in zip(ranges, stats):
        assert mean == pytest.approx(n[a:b].mean(), rel=1e-12)
        assert var == pytest.approx(n[a:b].var(ddof=1) if b - a > 1 else 0.0, rel=1e-10, abs=1e-300)
    assert stats[0, 1] == 0.0 and np.isfinite(stats).all()


def test_coarse_refinement_loop_equals_direct_transcription():
    rng = np.random.default_rng(4)
    for nu in (0.5, 1.0, 1.7):
        stats = np.stack([rng.gamma(5.0, size=60), rng.gamma(2.0, size=60)], axis=1)
        stats[:6] *= 4.0  # a few clear outliers, so the first split is lopsided and the loop runs
        labels = coarse_video_labels(stats, nu=nu)
        np.testing.assert_array_equal(labels, oracle_coarse(stats, nu))
        assert labels.sum() / (labels == 0).sum() >= nu


def test_coarse_stops_without_enough_normal_videos():
    rng = np.random.default_rng(5)
    stats = np.stack([rng.gamma(5.0, size=40), rng.gamma(2.0, size=40)], axis=1)
    labels = coarse_video_labels(stats, nu=1e9)
    assert 1 <= (labels == 0).sum() < 2


def test_identical_videos_are_deterministic():
    block = np.random.default_rng(6).standard_normal((10, 3, 8)).astype(np.float32)
    features = np.concatenate([block] * 6)
    ranges = np.stack([np.arange(6) * 10, np.arange(1, 7) * 10], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = pseudo_labels(features, ranges)
        second = pseudo_labels(features, ranges)
        stats_only = coarse_video_labels(np.ones((6, 2)))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(first[0], np.zeros(6))  # no split and no outlier: every video normal
    np.testing.assert_array_equal(stats_only, np.zeros(6))


@pytest.mark.parametrize("ranges, problem", [
    ([[1, 10], [10, 20]], "video 0 starts at snippet 1: contiguous ranges must start at snippet 0"),
    ([[0, 10], [11, 20]], "ranges are not contiguous: video 1 starts at 11, video 0 ends at 10"),
    ([[0, 10], [5, 20]], "video 1 range [5, 20) overlaps or precedes video 0 [0, 10)"),
    ([[0, 10], [10, 10]], "video 1 has range [10, 10): T = 0 snippets"),
    ([[0, 10], [10, 21]], "video 1 range [10, 21) runs past the end of the features (20 snippets)"),
    ([[0.0, 10.0], [10.0, 20.0]], "expected integer video ranges"),
    ([0, 10, 20], "expected video ranges shaped (V, 2), got shape (3,)"),
])
def test_bad_ranges_name_the_file(ranges, problem):
    features = np.ones((20, 2, 4), dtype=np.float32)
    with pytest.raises(InputError) as error:
        pseudo_labels(features, np.array(ranges), ranges_path="nalist.npy")
    assert str(error.value).startswith(f"nalist.npy: {problem}") and "\n" not in str(error.value)


def test_non_finite_features_are_rejected():
    features = np.ones((20, 2, 4), dtype=np.float32)
    features[7, 1, 2] = np.nan
    with pytest.raises(InputError, match="concat.npy: snippet 7"):
        pseudo_labels(features, np.array([[0, 10], [10, 20]]), features_path="concat.npy")


def test_chunked_norms_on_memmap_equal_unchunked(tmp_path):
    rng = np.random.default_rng(7)
    data = (rng.standard_normal((1003, 10, 33)) * 3).astype(np.float32)
    path = tmp_path / "features.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=data.shape)
    out[:] = data
    out.flush()
    mapped = np.load(path, mmap_mode="r")
    whole = snippet_norms(mapped, chunk_rows=len(data))
    for chunk_rows in (1, 7, 256):
        np.testing.assert_array_equal(snippet_norms(mapped, chunk_rows=chunk_rows), whole)
    exact = (data.astype(np.float64) ** 2).sum(-1).mean(-1)
    np.testing.assert_allclose(whole, exact, rtol=1e-13)
    np.testing.assert_allclose(snippet_norms(data[:, 0]), (data[:, 0].astype(np.float64) ** 2).sum(-1), rtol=1e-13)
