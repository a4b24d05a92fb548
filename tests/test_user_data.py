"""The user's own files: never mixed with the synthetic default; the checkpoint or the files decide the
feature size; one synthetic folder per specification; missing real files point to docs/data.md."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import main
import run_test
from dataset import synthetic
from model.frd import FRDUVAD, ModelConfig
from utils.errors import InputError

TINY = ["--synth_train_videos", "6", "--synth_test_videos", "4", "--synth_crops", "2"]


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    """Run from an empty folder, so that anything a command generates by default lands there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def user_files(folder: Path, feature_size: int = 512, n: int = 50) -> dict[str, str]:
    """A 2-crop feature set of 5 videos of 10 snippets, its ranges and frame labels (video 1 anomalous)."""
    rng = np.random.default_rng(0)
    features = rng.random((n, 2, feature_size), dtype=np.float32)
    features[12:18] += 1.0
    gt = np.zeros(16 * n)
    gt[16 * 12:16 * 18] = 1
    ranges = np.stack([np.arange(0, n, 10), np.arange(10, n + 1, 10)], axis=1).astype(np.int64)
    paths = {"features": folder / "mine.npy", "gt": folder / "gt.npy", "ranges": folder / "ranges.npy"}
    for key, value in zip(paths, (features, gt, ranges)):
        np.save(paths[key], value)
    return {k: str(v) for k, v in paths.items()}


def scorer_checkpoint(path: Path, feature_size: int) -> str:
    torch.manual_seed(0)
    torch.save(FRDUVAD(ModelConfig(feature_size, 4, 2, aux="none")).state_dict(), path)
    return str(path)


def test_run_test_on_the_users_files_only(in_tmp, capsys):
    files = user_files(in_tmp)
    ckpt = scorer_checkpoint(in_tmp / "mine512.pkl", 512)
    run_test.main(["--ckpt_path", ckpt, "--test_features", files["features"], "--test_gt", files["gt"]])
    assert "50 test snippets" in capsys.readouterr().out
    assert not (in_tmp / "data").exists()  # no synthetic data made


def test_the_checkpoint_decides_the_feature_size(in_tmp):
    files = user_files(in_tmp)
    ckpt = scorer_checkpoint(in_tmp / "mine512.pkl", 512)
    with pytest.raises(InputError, match=r"mine512\.pkl: checkpoint for feature size 512, but --feature_size 256"):
        run_test.main(["--ckpt_path", ckpt, "--test_features", files["features"], "--test_gt", files["gt"],
                       "--feature_size", "256"])
    (in_tmp / "small").mkdir()
    small = user_files(in_tmp / "small", feature_size=256)
    with pytest.raises(InputError, match=r"mine512\.pkl: checkpoint for feature size 512, but .*mine\.npy has "
                                         r"features of size 256"):
        run_test.main(["--ckpt_path", ckpt, "--test_features", small["features"], "--test_gt", small["gt"]])


def test_c2fpl_stage_needs_only_training_features_and_ranges(in_tmp):
    files = user_files(in_tmp)
    out = in_tmp / "c2fpl"
    main.main(["--stage", "c2fpl", "--train_features", files["features"], "--train_ranges", files["ranges"],
               "--c2fpl_epochs", "1", "--output_dir", str(out)])
    summary = json.loads((out / "c2fpl_summary.json").read_text())
    assert summary["snippets"] == 50 and "classifier_test" not in summary
    assert torch.load(out / "c2fpl_classifier.pkl", weights_only=True)["fc1.weight"].shape == (512, 512)
    assert not (in_tmp / "data").exists()


def test_one_synthetic_folder_per_specification(in_tmp):
    main.main(["--stage", "c2fpl", *TINY, "--c2fpl_epochs", "1", "--output_dir", "a"])
    main.main(["--stage", "c2fpl", *TINY, "--c2fpl_epochs", "1", "--feature_size", "512", "--output_dir", "b"])
    folders = sorted(p.name for p in (in_tmp / "data" / "synthetic").iterdir())
    assert folders == ["256d-2crop-6+4videos-seed0-x0.1", "512d-2crop-6+4videos-seed0-x0.1"]
    first = in_tmp / "data" / "synthetic" / folders[0] / "concat_UCF.npy"
    assert np.load(first, mmap_mode="r").shape[-1] == 256


def test_a_synthetic_folder_of_another_specification_is_never_overwritten(tmp_path):
    spec = synthetic.SyntheticSpec(n_train_videos=4, n_test_videos=2, n_crops=1)
    synthetic.ensure(tmp_path, spec)
    before = (tmp_path / "concat_UCF.npy").read_bytes()
    other = synthetic.SyntheticSpec(n_train_videos=4, n_test_videos=2, n_crops=1, feature_size=512)
    with pytest.raises(InputError, match=r"holds the synthetic dataset 256d-1crop-4\+2videos-seed0-x0\.1, not "
                                         r"512d-1crop-4\+2videos-seed0-x0\.1; choose another --synthetic_dir"):
        synthetic.ensure(tmp_path, other)
    assert (tmp_path / "concat_UCF.npy").read_bytes() == before


def test_a_missing_real_file_points_to_the_readme(in_tmp):
    with pytest.raises(InputError, match=r'^dataset/ucfcrime/concat_UCF\.npy: file not found \(see docs/data\.md, '
                                         r'"Where the real files come from"\)$'):
        main.main(["--dataset_name", "ucfcrime"])
    with pytest.raises(InputError, match=r'^best_ckpt/ucfcrime/best_ckpt_0\.8212\.pkl: checkpoint file not found '
                                         r'\(see docs/data\.md, "Where the real files come from"\)$'):
        run_test.main(["--dataset_name", "ucfcrime"])
