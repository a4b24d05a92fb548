"""A run that learned nothing says so, in metrics.jsonl and at the end of main.py, with the features' scale as the
likely cause when it is off; a run that learned something says nothing."""
import json
import math

import numpy as np
import pytest

import main
from utils.learning import I3D_SCALE, feature_scale, learning_problems

TRAIN = ["--Vitblock_num", "2", "--max_seqlen", "48", "--snapshot", "3", "--max_epoch", "2", "--aux", "none"]
HEALTHY = {"snippets": 270, "flagged": 0.2, "spread": 0.3, "learned_nothing": False}


def record(loss: float, pseudo: int, total: int = 100) -> dict:
    return {"loss": loss, "pseudo_labels": pseudo, "recon_labels": pseudo, "aux_labels": total, "labels_total": total}


def test_feature_scale_by_hand():
    x = np.zeros((3, 2, 4), dtype=np.float32)
    x[:, 0] = 2.0  # crop 0: norm 4 over √4 = 2; crop 1: 0 -> 1 per snippet
    x[2] *= 10  # an outlier snippet does not move the median
    assert feature_scale(x) == pytest.approx(1.0) and feature_scale(x[:, 0]) == pytest.approx(2.0)


def test_learning_something_is_no_problem():
    assert learning_problems([record(3.0, 5), record(1.0, 7)], HEALTHY, I3D_SCALE, 2048) is None


def test_no_pseudo_label_and_a_silent_scorer_on_large_features_blame_the_scale():
    silent = {"snippets": 2540, "flagged": 0.0, "spread": 0.0, "learned_nothing": True}
    found = learning_problems([record(1500.0, 0, 1270), record(1600.0, 0, 1270)], silent, 100 * I3D_SCALE, 2048)
    assert found["findings"] == [
        "0 of 2540 pseudo labels anomalous (reconstruction 0, auxiliary 2540)",
        "the Scorer flags none of 2540 training snippets (every score the same)",
        "the loss did not fall (1500 at the first snapshot, 1600 at the last)"]
    assert found["likely_cause"].startswith(f"feature scale: a typical training snippet has norm "
                                            f"{100 * I3D_SCALE * math.sqrt(2048):.4g}, I3D features about "
                                            f"{I3D_SCALE * math.sqrt(2048):.3g} at 2048 dimensions (100×)")


def test_a_silent_scorer_on_features_of_the_right_scale_names_other_causes():
    silent = {"snippets": 300, "flagged": 0.0, "spread": 0.02, "learned_nothing": True}
    found = learning_problems([record(3.0, 4), record(1.0, 2)], silent, I3D_SCALE, 256)
    assert found["findings"] == ["the Scorer flags none of 300 training snippets (score spread 0.02)"]
    assert found["likely_cause"].startswith("not the feature scale")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny synthetic dataset, and its features times 1000."""
    root = tmp_path_factory.mktemp("tiny")
    main.main(["--stage", "data", "--output_dir", str(root), "--synth_train_videos", "6", "--synth_test_videos", "4",
               "--synth_crops", "2"])
    np.save(root / "large.npy", np.load(root / "concat_UCF.npy") * 1000)
    return root


def train(tiny, features: str, out, capsys) -> tuple[list[dict], str]:
    main.main([*TRAIN, "--train_features", str(tiny / features), "--train_ranges", str(tiny / "nalist.npy"),
               "--output_dir", str(out)])
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()], capsys.readouterr().out


def test_training_on_features_a_thousand_times_too_large_warns_in_metrics_and_at_the_end(tiny, tmp_path, capsys):
    records, printed = train(tiny, "large.npy", tmp_path / "run", capsys)
    assert all("learned_nothing" not in r for r in records[:-1])
    problems = records[-1]["learned_nothing"]
    assert "the Scorer flags none of 270 training snippets (every score the same)" in problems["findings"]
    assert problems["likely_cause"].startswith("feature scale:") and problems["scorer_check"]["learned_nothing"]
    assert problems["feature_norm"] > 1000 * problems["i3d_norm"] / 10
    assert f"\nwarning: training learned nothing: {'; '.join(problems['findings'])}\n" in printed
    assert f"likely cause: {problems['likely_cause']}" in printed


def test_training_on_the_features_as_made_says_nothing(tiny, tmp_path, capsys):
    records, printed = train(tiny, "concat_UCF.npy", tmp_path / "run", capsys)
    assert not any("learned_nothing" in r for r in records) and "warning" not in printed
