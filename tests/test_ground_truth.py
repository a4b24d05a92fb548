"""Frame ground truth: formats, the 16-frames-per-snippet alignment, policies and bad input."""
import pickle

import numpy as np
import pytest

from dataset.ground_truth import load_frame_gt, load_test_set
from utils.errors import InputError

LENGTHS = np.array([3, 2, 4])                          # snippets per test video


def frame_labels(lengths, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random(16 * t) < 0.3).astype(np.float32) for t in lengths]


def save_gt(tmp_path, labels, name="gt.npy"):
    np.save(tmp_path / name, labels)
    return str(tmp_path / name)


def save_pickle(tmp_path, table, name="gt.pkl"):
    with open(tmp_path / name, "wb") as f:
        pickle.dump(table, f)
    return str(tmp_path / name)


def test_npy_matching_length(tmp_path):
    labels = np.concatenate(frame_labels(LENGTHS))
    truth = load_frame_gt(save_gt(tmp_path, labels), 9)
    assert truth.n_snippets == 9 and truth.labels.dtype == np.float64
    np.testing.assert_array_equal(truth.labels, labels)
    assert truth.rows.tolist() == list(range(9)) and truth.ranges is None


def test_length_mismatch_is_an_error_naming_both_lengths(tmp_path):
    path = save_gt(tmp_path, np.zeros(16 * 9))
    with pytest.raises(InputError, match=r"gt\.npy: ground truth has 144 frames \(9 snippets\), the features "
                                         r"have 10 snippets \(160 frames\): 1 snippets fewer"):
        load_frame_gt(path, 10)


def test_ucf_versions_are_named(tmp_path):
    path = save_gt(tmp_path, np.zeros(1_109_680, np.uint8))
    with pytest.raises(InputError, match=r"gt\.npy: .*1109680 frames \(69355 snippets\).* 69634 snippets.*"
                                         r"279 snippets fewer.*1,114,144 frames \(RTFM's\) and 1,109,680"):
        load_frame_gt(path, 69_634)


def test_truncate_policy_keeps_the_shorter(tmp_path):
    labels = np.concatenate(frame_labels(LENGTHS))
    path = save_gt(tmp_path, labels)
    longer_features = load_frame_gt(path, 11, "truncate")
    assert longer_features.n_snippets == 9 and len(longer_features.labels) == 144
    shorter_features = load_frame_gt(path, 7, "truncate", video_lengths=np.array([3, 2, 2]))
    assert shorter_features.n_snippets == 7
    np.testing.assert_array_equal(shorter_features.labels, labels[:112])
    assert shorter_features.ranges.tolist() == [[0, 3], [3, 5], [5, 7]]


@pytest.mark.parametrize("policy", ["error", "truncate"])
def test_not_a_multiple_of_16(tmp_path, policy):
    path = save_gt(tmp_path, np.zeros(16 * 9 + 5))
    with pytest.raises(InputError, match=r"gt\.npy: 149 frame labels is not a multiple of 16 \(16 frames per snippet\); "
                                            r"the 9 feature snippets need 144 frame labels$"):
        load_frame_gt(path, 9, policy)


@pytest.mark.parametrize("value", [2.0, 0.5, -1.0, np.nan])
def test_values_not_0_1(tmp_path, value):
    labels = np.zeros(16 * 9)
    labels[37] = value
    with pytest.raises(InputError, match=r"gt\.npy: frame labels must be 0 or 1, frame 37 is"):
        load_frame_gt(save_gt(tmp_path, labels), 9)


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match=r"gt\.npy: expected 1-D frame labels"):
        load_frame_gt(save_gt(tmp_path, np.zeros((9, 16))), 9)
    with pytest.raises(InputError, match=r"missing\.npy: file not found"):
        load_frame_gt(str(tmp_path / "missing.npy"), 9)
    (tmp_path / "gt.csv").write_text("0,1")
    with pytest.raises(InputError, match=r"gt\.csv: expected frame labels as \.npy"):
        load_frame_gt(str(tmp_path / "gt.csv"), 9)
    with pytest.raises(InputError, match=r"^ground truth policy: 'pad' is not one of error, truncate$"):
        load_frame_gt(save_gt(tmp_path, np.zeros(16)), 1, "pad")


def test_pickle_follows_the_video_order(tmp_path):
    per_video = frame_labels(LENGTHS)
    path = save_pickle(tmp_path, {"B.mp4": per_video[1], "C": per_video[2], "A": per_video[0]})
    truth = load_frame_gt(path, 9, video_names=["A_i3d", "B", "C_i3d__0"], video_lengths=LENGTHS)
    np.testing.assert_array_equal(truth.labels, np.concatenate(per_video))
    assert truth.ranges.tolist() == [[0, 3], [3, 5], [5, 9]]


def test_pickle_with_a_missing_video(tmp_path):
    path = save_pickle(tmp_path, {"A": np.zeros(48), "C": np.zeros(64)})
    with pytest.raises(InputError, match=r"gt\.pkl: no labels for video 'B'"):
        load_frame_gt(path, 9, video_names=["A", "B", "C"])


def test_pickle_needs_video_names(tmp_path):
    with pytest.raises(InputError, match=r"gt\.pkl: per-video labels \(a pickle\) need"):
        load_frame_gt(save_pickle(tmp_path, {"A": np.zeros(48)}), 3)


def test_pickle_per_video_mismatch(tmp_path):
    per_video = frame_labels([3, 3, 4])                # video 1 has one snippet more than its features
    path = save_pickle(tmp_path, dict(zip("ABC", per_video)))
    with pytest.raises(InputError, match=r"gt\.pkl: video 1 has 48 frame labels \(3 snippets\) but 2 feature "
                                         r"snippets \(1 videos differ\)"):
        load_frame_gt(path, 9, video_names=list("ABC"), video_lengths=LENGTHS)
    truth = load_frame_gt(path, 9, "truncate", video_names=list("ABC"), video_lengths=LENGTHS)
    assert truth.n_snippets == 9 and truth.rows.tolist() == list(range(9))
    np.testing.assert_array_equal(truth.labels, np.concatenate([per_video[0], per_video[1][:32], per_video[2]]))


def test_pickle_per_video_truncate_skips_feature_rows(tmp_path):
    per_video = frame_labels([3, 1, 4])                # video 1 is one snippet short in the labels
    path = save_pickle(tmp_path, dict(zip("ABC", per_video)))
    truth = load_frame_gt(path, 9, "truncate", video_names=list("ABC"), video_lengths=LENGTHS)
    assert truth.n_snippets == 8 and truth.rows.tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    assert truth.ranges.tolist() == [[0, 3], [3, 4], [4, 8]]
    np.testing.assert_array_equal(truth.labels, np.concatenate(per_video))


def test_load_test_set_concatenated_with_ranges(tmp_path):
    features = np.random.default_rng(0).standard_normal((9, 2, 4)).astype(np.float32)
    np.save(tmp_path / "test.npy", features)
    np.save(tmp_path / "ranges.npy", np.array([[0, 3], [3, 5], [5, 9]]))
    labels = np.concatenate(frame_labels([3, 2, 3]))   # one snippet short at the end
    gt = save_gt(tmp_path, labels)
    with pytest.raises(InputError, match=r"gt\.npy: ground truth has 128 frames"):
        load_test_set(str(tmp_path / "test.npy"), gt, str(tmp_path / "ranges.npy"))
    test = load_test_set(str(tmp_path / "test.npy"), gt, str(tmp_path / "ranges.npy"), policy="truncate")
    assert test.n_snippets == 8 and test.ranges.tolist() == [[0, 3], [3, 5], [5, 8]]
    np.testing.assert_array_equal(test.labels, labels)
    np.testing.assert_array_equal(test.source.gather(test.rows), features[:8])


def test_load_test_set_per_video_with_pickle(tmp_path):
    features = np.random.default_rng(0).standard_normal((9, 2, 4)).astype(np.float32)
    names = ["Abuse028_x264", "Normal_1", "Normal_2"]
    for name, (a, b) in zip(names, [(0, 3), (3, 5), (5, 9)]):
        np.save(tmp_path / f"{name}_i3d.npy", features[a:b])
    (tmp_path / "test.list").write_text("\n".join(f"{n}_i3d.npy" for n in names))
    per_video = frame_labels(LENGTHS)
    gt = save_pickle(tmp_path, dict(zip(names, per_video)))
    test = load_test_set(None, gt, list_file=str(tmp_path / "test.list"))
    assert test.n_snippets == 9 and test.ranges.tolist() == [[0, 3], [3, 5], [5, 9]]
    np.testing.assert_array_equal(test.labels, np.concatenate(per_video))
    np.testing.assert_array_equal(test.source.gather(test.rows), features)
