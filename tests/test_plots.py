"""Per-video score plots: one file per anomalous video, named after it, titled with its own frame AUC."""
import numpy as np
from sklearn.metrics import roc_auc_score

from utils.plots import plot_roc, plot_videos, safe_name, video_title


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
    plot_roc(scores, gt, tmp_path / "roc.png")
    assert (tmp_path / "roc.png").stat().st_size > 0


def test_title_carries_the_videos_own_auc():
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 0])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.5, 0.05])
    assert video_title("Arson011", labels, scores) == f"Arson011: AUC {roc_auc_score(labels, scores):.4f}"
    assert video_title("x", labels, scores) == "x: AUC 0.8667"  # 13 of 15 pairs ordered: by hand
    assert video_title("all", np.ones(4), scores[:4]) == "all: AUC n/a (one class only)"


def test_safe_name():
    assert safe_name("Normal_Videos/Normal 01.mp4") == "Normal_Videos_Normal_01.mp4"
    assert safe_name("..") == "video"
