"""The plots: the ROC curve and one score curve per anomalous video, their content and their files."""
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from utils.plots import plot_roc, plot_videos, roc_figure, safe_name, video_figure, video_title


def test_one_png_per_anomalous_video_named_after_it(tmp_path):
    rng = np.random.default_rng(0)
    ranges = np.array([[0, 4], [4, 10], [10, 13]])
    gt = np.zeros(16 * 13)
    gt[16 * 5:16 * 7] = 1  # video "b" only
    gt[16 * 12:16 * 13] = 1  # and video "c/d"
    scores = rng.random(13).astype(np.float32)
    written = plot_videos(scores, gt, ranges, tmp_path, names=["a", "b", "c/d"])
    assert [p.name for p in written] == ["b.png", "c_d.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)
    assert [p.name for p in plot_videos(scores, gt, ranges, tmp_path / "x")] == ["video_0001.png", "video_0002.png"]
    height, width, _ = plt.imread(written[0]).shape
    assert 100 < height < width / 2  # the wide time axis of a score curve
    plot_roc(scores, gt, tmp_path / "roc.png")
    height, width, _ = plt.imread(tmp_path / "roc.png").shape
    assert 300 < width and 0.8 < height / width < 1.25  # the square ROC figure


def test_roc_figure_draws_the_frames_roc_curve():
    rng = np.random.default_rng(1)
    gt = np.repeat(rng.random(20) < 0.3, 16).astype(np.float64)
    scores = rng.random(20)
    fig = roc_figure(scores, gt)
    curve = fig.axes[0].lines[0]
    fpr, tpr, _ = roc_curve(gt, np.repeat(scores, 16))
    np.testing.assert_array_equal(curve.get_xdata(), fpr)
    np.testing.assert_array_equal(curve.get_ydata(), tpr)
    assert curve.get_label() == f"AUC {roc_auc_score(gt, np.repeat(scores, 16)):.4f}"
    plt.close(fig)


def test_video_figure_draws_the_scores_the_threshold_and_the_true_spans():
    labels = np.zeros(64)
    labels[16:40] = 1
    scores = np.linspace(0, 1, 64)
    fig = video_figure("b", labels, scores, threshold=0.3)
    ax = fig.axes[0]
    line = next(line for line in ax.lines if line.get_label() == "anomaly score")
    np.testing.assert_array_equal(line.get_xdata(), np.arange(64))
    np.testing.assert_array_equal(line.get_ydata(), scores)
    alarm = next(line for line in ax.lines if line.get_label() == "alarm threshold 0.3")
    assert list(alarm.get_ydata()) == [0.3, 0.3]
    (span,) = ax.patches
    assert (span.get_x(), span.get_x() + span.get_width()) == (16, 40)
    assert ax.get_title() == video_title("b", labels, scores)
    plt.close(fig)


def test_title_carries_the_videos_own_auc():
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 0])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.5, 0.05])
    assert video_title("Arson011", labels, scores) == f"Arson011: AUC {roc_auc_score(labels, scores):.4f}"
    assert video_title("x", labels, scores) == "x: AUC 0.8667"  # 13 of 15 pairs ordered: by hand
    assert video_title("all", np.ones(4), scores[:4]) == "all: AUC n/a (one class only)"


def test_safe_name():
    assert safe_name("Normal_Videos/Normal 01.mp4") == "Normal_Videos_Normal_01.mp4"
    assert safe_name("..") == "video"
