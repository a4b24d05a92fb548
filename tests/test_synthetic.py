"""Synthetic I3D-like data: layout, determinism, caching, and the properties FRD-UVAD relies on."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

from dataset.c2fpl import pseudo_labels
from dataset.synthetic import (
    FILES, LENGTHS_PATH, MANIFEST, SyntheticSpec, _frame_gt, _plan, ensure, generate, norm_score_auc,
)
from utils.errors import InputError

TINY = SyntheticSpec(seed=3, n_train_videos=12, n_test_videos=8, length_scale=0.02, max_length=24)


@pytest.fixture(scope="module")
def default_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic_default")
    generate(out, SyntheticSpec())
    return out


def load(out: Path) -> dict[str, np.ndarray]:
    return {key: np.load(out / name, mmap_mode="r") for key, name in FILES.items()}


def squared_norms(features: np.ndarray) -> np.ndarray:
    return np.square(np.asarray(features, dtype=np.float64)).sum(-1).mean(-1)


def video_ranges_from_gt(arrays: dict[str, np.ndarray]) -> list[tuple[int, int, float]]:
    """(from, to, frame coverage) for every test video."""
    gt = np.asarray(arrays["test_gt"])
    return [(a, b, float(gt[16 * a:16 * b].mean())) for a, b in arrays["test_ranges"]]


def test_generate_is_byte_for_byte_deterministic(tmp_path):
    generate(tmp_path / "a", TINY)
    generate(tmp_path / "b", TINY)
    for name in [*FILES.values(), MANIFEST]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    generate(tmp_path / "c", SyntheticSpec(**{**TINY.__dict__, "seed": 4}))
    name = FILES["test_features"]
    assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()


def test_layout_is_consistent(default_dir):
    spec, arrays = SyntheticSpec(), load(default_dir)
    train, test = arrays["train_features"], arrays["test_features"]
    assert train.dtype == test.dtype == np.float32
    assert train.shape[1:] == test.shape[1:] == (spec.n_crops, spec.feature_size)
    splits = [("train_ranges", train, spec.n_train_videos), ("test_ranges", test, spec.n_test_videos)]
    for key, features, n_videos in splits:
        ranges = arrays[key]
        assert ranges.dtype == np.int64 and ranges.shape == (n_videos, 2)
        assert ranges[0, 0] == 0 and ranges[-1, 1] == features.shape[0]
        np.testing.assert_array_equal(ranges[1:, 0], ranges[:-1, 1])
        lengths = ranges[:, 1] - ranges[:, 0]
        assert lengths.min() >= spec.min_length and lengths.max() <= spec.max_length
    assert arrays["test_gt"].dtype == np.float32 and arrays["test_gt"].shape == (16 * test.shape[0],)
    assert set(np.unique(arrays["test_gt"])) == {0.0, 1.0}
    assert arrays["train_truth"].dtype == np.uint8 and arrays["train_truth"].shape == (train.shape[0],)
    assert set(np.unique(arrays["train_truth"])) == {0, 1}
    manifest = json.loads((default_dir / MANIFEST).read_text())
    assert SyntheticSpec(**manifest["spec"]) == SyntheticSpec() and manifest["files"] == FILES
    assert manifest["train_snippets"] == train.shape[0] and manifest["test_snippets"] == test.shape[0]
    assert 6000 <= train.shape[0] <= 10000 and 3000 <= test.shape[0] <= 5000


def test_features_are_non_negative_finite_and_somewhat_sparse(default_dir):
    arrays = load(default_dir)
    for key in ("train_features", "test_features"):
        x = np.asarray(arrays[key])
        assert np.isfinite(x).all() and x.min() == 0.0
        assert 0.1 < (x == 0).mean() < 0.7


def test_half_the_videos_anomalous_with_10_to_45_percent_coverage(default_dir):
    arrays = load(default_dir)
    test_videos = video_ranges_from_gt(arrays)
    anomalous = [cov > 0 for _, _, cov in test_videos]
    assert sum(anomalous) == len(test_videos) // 2
    assert anomalous == sorted(anomalous, reverse=True), "anomalous test videos must come first"
    assert all(0.10 <= cov <= 0.45 for _, _, cov in test_videos if cov > 0)
    gt = np.asarray(arrays["test_gt"])
    starts = np.flatnonzero(np.diff(np.r_[0.0, gt]) == 1)
    assert (starts % 16 != 0).mean() > 0.5, "events must be at frame granularity"

    truth = np.asarray(arrays["train_truth"])
    coverage = np.array([truth[a:b].mean() for a, b in arrays["train_ranges"]])
    assert (coverage > 0).sum() == len(coverage) // 2
    assert coverage[coverage > 0].min() >= 0.05 and coverage.max() <= 0.55


def test_train_truth_is_the_half_overlap_rule(tmp_path):
    generate(tmp_path, TINY)
    train, _ = _plan(TINY)
    frames = _frame_gt(train).reshape(-1, 16)
    truth = np.load(tmp_path / FILES["train_truth"])
    np.testing.assert_array_equal(truth, (frames.sum(1) >= 8).astype(np.uint8))
    assert truth.any() and not truth.all()


def test_norm_baseline_auc_is_informative_but_not_trivial(default_dir):
    auc = norm_score_auc(default_dir)
    assert 0.60 <= auc <= 0.80
    arrays = load(default_dir)
    naive = roc_auc_score(arrays["test_gt"], np.repeat(squared_norms(arrays["test_features"]), 16))
    assert norm_score_auc(default_dir, chunk_rows=37) == pytest.approx(naive, abs=1e-12)
    assert auc == pytest.approx(naive, abs=1e-12)


def test_anomalous_videos_have_more_variable_norms(default_dir):
    arrays = load(default_dir)
    n = squared_norms(arrays["train_features"])
    truth = np.asarray(arrays["train_truth"])
    stats = np.array([[n[a:b].mean(), n[a:b].var(ddof=1)] for a, b in arrays["train_ranges"]])
    is_anomalous = np.array([truth[a:b].any() for a, b in arrays["train_ranges"]])
    assert roc_auc_score(is_anomalous, stats[:, 1]) > 0.65
    labels = GaussianMixture(2, covariance_type="spherical", max_iter=150, random_state=0).fit_predict(stats)
    flagged = labels == np.argmax([stats[labels == k, 1].mean() for k in range(2)])
    assert is_anomalous[flagged].mean() > 0.6


def test_c2fpl_pseudo_labels_beat_the_base_rate(default_dir):
    arrays = load(default_dir)
    truth, ranges = np.asarray(arrays["train_truth"]), arrays["train_ranges"]
    video_labels, snippet_labels = pseudo_labels(arrays["train_features"], ranges)
    is_anomalous = np.array([truth[a:b].any() for a, b in ranges])
    assert is_anomalous[video_labels == 1].mean() >= 0.7
    hits = truth[snippet_labels == 1]
    assert hits.mean() >= 0.4 and hits.mean() > 2 * truth.mean()
    assert hits.sum() / truth.sum() >= 0.25


def test_anomalous_events_change_the_norm_against_their_own_video(default_dir):
    arrays = load(default_dir)
    n = squared_norms(arrays["train_features"])
    truth = np.asarray(arrays["train_truth"]).astype(bool)
    contrast, wiggle = [], []
    for a, b in arrays["train_ranges"]:
        inside, video = truth[a:b], np.log(n[a:b])
        if inside.any() and not inside.all():
            contrast.append(abs(video[inside].mean() - video[~inside].mean()))
        elif not inside.any():
            wiggle.append(np.abs(np.diff(video)).mean())
    assert np.median(contrast) > 6 * np.median(wiggle)


def test_anomalies_are_learnable_by_reconstruction(default_dir):
    arrays = load(default_dir)
    train = np.asarray(arrays["train_features"]).mean(1)
    test = np.asarray(arrays["test_features"]).mean(1)
    pca = PCA(32, random_state=0).fit(train)
    error = np.square(pca.inverse_transform(pca.transform(test)) - test).mean(1)
    assert roc_auc_score(arrays["test_gt"], np.repeat(error, 16)) > norm_score_auc(default_dir) + 0.1


def test_crops_are_correlated_views(default_dir):
    x = np.asarray(load(default_dir)["train_features"][::50], dtype=np.float64)
    upper = np.triu_indices(x.shape[1], 1)
    corr = np.array([np.corrcoef(snippet)[upper].mean() for snippet in x])
    assert 0.8 < corr.mean() < 0.99


def test_features_are_smooth_in_time(default_dir):
    arrays = load(default_dir)
    x = np.asarray(arrays["train_features"]).mean(1)
    x = x - x.mean(0)
    ranges = arrays["train_ranges"]
    a, b = ranges[0, 0], ranges[0, 1]
    c = ranges[-1, 0]
    neighbours = np.mean([np.corrcoef(x[i], x[i + 1])[0, 1] for i in range(a, b - 1)])
    strangers = np.mean([np.corrcoef(x[a + i], x[c + i])[0, 1] for i in range(min(b - a, 8))])
    assert neighbours > 0.6 and neighbours > strangers + 0.2


def test_ensure_reuses_matching_files_and_completes_unfinished_ones(tmp_path):
    paths = ensure(tmp_path, TINY)
    assert set(paths) == set(FILES) and all(p.is_file() for p in paths.values())
    stamps = {key: os.stat(p).st_mtime_ns for key, p in paths.items()}
    assert ensure(tmp_path, TINY) == paths
    assert {key: os.stat(p).st_mtime_ns for key, p in paths.items()} == stamps

    before = paths["test_features"].read_bytes()
    other = SyntheticSpec(**{**TINY.__dict__, "seed": TINY.seed + 1})
    with pytest.raises(InputError, match="holds the synthetic dataset"):
        ensure(tmp_path, other)
    assert SyntheticSpec(**json.loads((tmp_path / MANIFEST).read_text())["spec"]) == TINY
    assert paths["test_features"].read_bytes() == before

    paths["train_truth"].unlink()
    ensure(tmp_path, TINY)
    assert paths["train_truth"].is_file() and paths["test_features"].read_bytes() == before


def test_bad_spec_and_bad_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="feature_size"):
        SyntheticSpec(feature_size=100)
    with pytest.raises(InputError, match="anomalous_fraction"):
        SyntheticSpec(anomalous_fraction=1.0)
    for types in [(), ("motion", "motion"), ("motion", "theft")]:
        with pytest.raises(InputError, match="anomaly_types"):
            SyntheticSpec(anomaly_types=types)
    with pytest.raises(InputError, match="not found"):
        norm_score_auc(tmp_path)
    generate(tmp_path, TINY)
    gt = np.load(tmp_path / FILES["test_gt"])
    np.save(tmp_path / FILES["test_gt"], gt[:-16])
    with pytest.raises(InputError, match=FILES["test_gt"]):
        norm_score_auc(tmp_path)


def test_shipped_lengths_are_the_ucf_crime_training_lengths():
    lengths = np.load(LENGTHS_PATH)
    assert lengths.dtype == np.int32 and lengths.shape == (1609,)
    assert lengths.sum() == 779951 and lengths.min() == 7 and lengths.max() == 61032
    assert np.median(lengths) == 140
    ranges = Path(__file__).resolve().parents[2] / "shared" / "data" / "ucf_crime_train_ranges.npy"
    if ranges.is_file():
        np.testing.assert_array_equal(lengths, np.diff(np.load(ranges), axis=1).ravel())


def test_ensure_never_overwrites_files_it_did_not_write(tmp_path):
    users = tmp_path / FILES["train_features"]
    users.write_bytes(b"the user's real features")
    with pytest.raises(InputError, match=r"not written by the synthetic generator.*nothing was overwritten"):
        ensure(tmp_path, TINY)
    assert users.read_bytes() == b"the user's real features"


def test_anomalous_fraction_and_types(tmp_path):
    spec = SyntheticSpec(**{**TINY.__dict__, "anomalous_fraction": 0.25, "anomaly_types": ("burst", "motion")})
    assert spec.name == TINY.name + "-anomalous0.25-burst+motion"
    generate(tmp_path, spec)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    for split, n in (("train", spec.n_train_videos), ("test", spec.n_test_videos)):
        kinds = manifest[f"{split}_anomaly_types"]
        n_anomalous = min(max(round(0.25 * n), 1), n - 1)
        assert kinds[n_anomalous:] == [None] * (n - n_anomalous)
        assert set(kinds[:n_anomalous]) <= {"burst", "motion"} and None not in kinds[:n_anomalous]
    arrays = load(tmp_path)
    covered = [gt for _, _, gt in video_ranges_from_gt(arrays)]
    n_test = min(max(round(0.25 * spec.n_test_videos), 1), spec.n_test_videos - 1)
    assert all(c > 0 for c in covered[:n_test]) and not any(covered[n_test:])


def test_a_manifest_from_before_the_anomaly_settings_is_reused(tmp_path):
    paths = generate(tmp_path, TINY)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    del manifest["spec"]["anomaly_types"]
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    before = paths["test_features"].stat().st_mtime_ns
    ensure(tmp_path, TINY)
    assert paths["test_features"].stat().st_mtime_ns == before
    with pytest.raises(InputError, match="holds the synthetic dataset"):
        ensure(tmp_path, SyntheticSpec(**{**TINY.__dict__, "anomaly_types": ("motion",)}))
