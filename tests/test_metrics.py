"""Evaluation metrics: parity with the release, a hand-computed case, per-video AUCs."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from utils.errors import InputError
from utils.metrics import frame_metrics, frame_scores, precision_recall

RELEASE_KEYS = ("auc_all", "auc_abn", "far_all", "far_abn", "eer", "pr_auc", "ap")


def tiny_case():
    """3 snippets scored 0.2, 0.6, 0.9; snippet 1 anomalous in its first 8 frames, snippet 2 in all 16."""
    gt = np.zeros(48)
    gt[16:24] = 1
    gt[32:48] = 1
    return np.array([0.2, 0.6, 0.9]), gt


def test_parity_with_release(parity_dir):
    case = np.load(parity_dir / "metrics_case.npz")
    result = frame_metrics(case["snippet_scores"], case["frame_gt"])
    for key in RELEASE_KEYS:
        assert result[key] == pytest.approx(float(case[key]), abs=1e-9), key
    assert result["auc_abn"] != pytest.approx(result["auc_all"], abs=1e-6)  # the grouping matters in this case


def test_frame_scores_repeat_16():
    np.testing.assert_array_equal(frame_scores(np.array([0.1, 0.7])), [0.1] * 16 + [0.7] * 16)


def test_hand_computed_case():
    scores, gt = tiny_case()
    # 24 normal frames (16 at 0.2, 8 at 0.6), 24 anomalous (8 at 0.6, 16 at 0.9):
    # AUC = (16*24 + 8*16 + 0.5*8*8) / (24*24); 8 of 24 normal frames reach 0.5.
    result = frame_metrics(scores, gt, group=2)
    assert result["auc_all"] == pytest.approx(544 / 576, abs=1e-12)
    assert result["far_all"] == pytest.approx(1 / 3, abs=1e-12)
    assert result["auc_abn"] == pytest.approx(544 / 576, abs=1e-12)  # both groups hold anomalies
    # ROC (0,0) -> (0,2/3) -> (1/3,1): 1 - x = 2/3 + x at x = 1/6.
    assert result["eer"] == pytest.approx(1 / 6, abs=1e-9)
    assert result["ap"] == pytest.approx(2 / 3 + 1 / 3 * 0.75, abs=1e-12)
    assert result["pr_auc"] == pytest.approx(1 / 3 * 0.875 + 2 / 3, abs=1e-12)
    grouped = frame_metrics(scores, gt, group=1)  # snippet 0 is a normal group of its own and drops out
    assert grouped["auc_abn"] == pytest.approx((16 * 8 + 0.5 * 8 * 8) / (24 * 8), abs=1e-12)
    assert grouped["far_abn"] == pytest.approx(1.0, abs=1e-12)


def test_far_counts_a_score_of_exactly_half():
    scores, gt = tiny_case()
    assert frame_metrics(np.array([0.2, 0.5, 0.9]), gt)["far_all"] == pytest.approx(1 / 3, abs=1e-12)


def test_far_follows_the_threshold():
    scores, gt = tiny_case()  # normal frames: 16 scored 0.2, 8 scored 0.6
    assert [frame_metrics(scores, gt, threshold=t)["far_all"] for t in (0.1, 0.6, 0.61)] == pytest.approx([1, 1 / 3, 0])


def test_precision_recall_from_counts():
    assert precision_recall(3, 4, 6) == {"precision": 0.75, "recall": 0.5}
    assert precision_recall(0, 0, 0) == {"precision": 0.0, "recall": 0.0}


def test_group_of_only_anomalous_frames_gives_nan():
    only = frame_metrics(np.array([0.2, 0.9]), np.r_[np.zeros(16), np.ones(16)], group=1)
    assert np.isnan(only["auc_abn"]) and np.isnan(only["far_abn"])


def test_per_video_against_sklearn():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 30, size=12)
    stops = np.cumsum(lengths)
    ranges = np.stack([stops - lengths, stops], axis=1)
    scores = rng.random(stops[-1])
    gt = np.zeros(16 * stops[-1])
    for v, (a, b) in enumerate(ranges * 16):
        if v % 3 == 1:
            start = int(rng.integers(a, b - 8))
            gt[start:start + int(rng.integers(1, b - start))] = 1
        if v == 10:
            gt[a:b] = 1  # fully anomalous: no per-video AUC
    result = frame_metrics(scores, gt, ranges)
    frames = frame_scores(scores)
    mask = np.zeros(len(gt), dtype=bool)
    for v, (a, b) in enumerate(ranges * 16):
        single_class = gt[a:b].min() == gt[a:b].max()
        assert (result["per_video_auc"][v] is None) == single_class
        if not single_class:
            assert result["per_video_auc"][v] == pytest.approx(roc_auc_score(gt[a:b], frames[a:b]), abs=1e-12)
        mask[a:b] = gt[a:b].any()
    assert result["auc_abn_video"] == pytest.approx(roc_auc_score(gt[mask], frames[mask]), abs=1e-12)
    assert len(result["per_video_auc"]) == len(ranges)


@pytest.mark.parametrize("gt_frames, problem", [(47, "48 (16 per snippet)"), (48, "both normal and anomalous")])
def test_bad_ground_truth_names_the_file(gt_frames, problem):
    scores = np.array([0.2, 0.6, 0.9])
    with pytest.raises(InputError, match="gt-ucf.npy: ") as error:
        frame_metrics(scores, np.zeros(gt_frames), gt_path="gt-ucf.npy")
    assert problem in str(error.value)


def test_bad_ranges_and_scores():
    scores, gt = tiny_case()
    with pytest.raises(InputError, match="test_ranges.npy: video 1"):
        frame_metrics(scores, gt, np.array([[0, 2], [2, 4]]), ranges_path="test_ranges.npy")
    with pytest.raises(InputError, match="snippet_scores"):
        frame_metrics(np.array([0.2, np.nan, 0.9]), gt)
    with pytest.raises(InputError, match="0/1"):
        frame_metrics(scores, gt * 2)
