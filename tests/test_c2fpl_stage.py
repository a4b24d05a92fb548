"""The C2FPL stage: its files, their reuse, and that they load into FRD-UVAD training."""
import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from dataset.features import open_features
from dataset.prepare import open_test, open_train, prepare
from engine import c2fpl_stage
from engine.interrupt import Interrupted
from model.checkpoint import load_into
from model.frd import FRDUVAD, ModelConfig
from utils.checkpoint import load_state_dict_file, read_settings
from utils.config import Config, parse_config
from utils.errors import InputError
from utils.metrics import frame_metrics

TINY = ["--synth_train_videos", "12", "--synth_test_videos", "6", "--synth_crops", "2", "--c2fpl_epochs", "2"]


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    root = tmp_path_factory.mktemp("c2fpl")
    cfg = prepare(parse_config([*TINY, "--synthetic_dir", str(root / "data")]))
    train, test = open_train(cfg), open_test(cfg)
    paths = c2fpl_stage.run_stage(cfg, train, test, root / "out", torch.device("cpu"))
    return cfg, train, test, root / "out", paths


def test_stage_writes_labels_classifier_and_summary(stage):
    cfg, train, _, _, paths = stage
    labels = np.load(paths["pseudo_labels"])
    assert labels.shape == (train.n_snippets,) and labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1}
    videos = np.load(paths["video_labels"])
    assert videos.shape == (len(train.ranges),)
    summary = json.loads(paths["summary"].read_text())
    assert summary["anomalous_snippets"] == int(labels.sum())
    assert summary["anomalous_videos"] == int(videos.sum())
    truth = np.load(cfg.train_truth)
    hit = np.sum((labels == 1) & (truth == 1))
    assert 0 < hit < labels.sum() and hit < truth.sum()  # precision and recall are neither 0 nor 1 here
    assert summary["pseudo_labels_vs_truth"] == pytest.approx({"precision": hit / labels.sum(),
                                                               "recall": hit / truth.sum()})


def test_summary_holds_the_classifiers_own_test_metrics(stage):
    _, _, test, _, paths = stage
    classifier = c2fpl_stage.C2FPLClassifier(test.source.feature_size)
    classifier.load_state_dict(torch.load(paths["classifier"], weights_only=True))
    with torch.no_grad():
        scores = classifier.eval()(torch.from_numpy(test.source.gather(test.rows))).squeeze(-1).numpy()
    expected = frame_metrics(scores, test.labels, test.ranges)
    reported = json.loads(paths["summary"].read_text())["classifier_test"]
    assert {"auc_all", "auc_abn", "far_all", "ap"} <= reported.keys()
    for key, value in reported.items():
        assert value == pytest.approx(expected[key], abs=1e-6, nan_ok=True), key


def test_stage_files_load_into_training(stage):
    cfg, train, _, _, paths = stage
    assert read_settings(paths["classifier"]) == {"feature_size": cfg.feature_size, "crops": train.n_crops}
    model = FRDUVAD(ModelConfig(cfg.feature_size, 4, 2, aux="c2fpl"))
    assert load_into(model, load_state_dict_file(paths["classifier"])) == "c2fpl"
    x = torch.from_numpy(train.gather(np.arange(8)))
    expected = c2fpl_stage.C2FPLClassifier(cfg.feature_size)
    expected.load_state_dict(torch.load(paths["classifier"], weights_only=True))
    torch.testing.assert_close(model.scorer_c2fpl(x), expected.eval()(x))
    labels = np.load(paths["pseudo_labels"])
    with_labels = FRDUVAD(ModelConfig(cfg.feature_size, 4, 2, aux="labels"))
    first = max(int(np.argmax(labels == 1)) - 3, 0)  # windows across the first anomalous snippet: 0s and 1s
    windows = torch.from_numpy(np.stack([np.arange(4) + first + i for i in range(3)]))
    given = torch.from_numpy(labels.astype(np.float32))[windows]
    assert 0 < given.sum() < given.numel()
    out = with_labels.training_step(torch.rand(3, 2, 4, cfg.feature_size), given)
    assert torch.equal(out.aux_labels, given) and torch.equal(out.pseudo_labels, out.recon_labels * given)


def test_classifier_keys_are_the_release_layout(stage, parity_dir):
    _, _, _, _, paths = stage
    layout = json.loads((parity_dir / "state_dict_layout_2048.json").read_text())["cross_clip=4,Vitblock_num=8"]
    expected = [k.removeprefix("scorer_c2fpl.") for k in layout if k.startswith("scorer_c2fpl.")]
    assert list(torch.load(paths["classifier"], weights_only=True)) == expected


def test_stage_is_reused_for_the_same_inputs_and_redone_otherwise(stage):
    cfg, train, test, out, paths = stage
    stamps = {k: os.stat(p).st_mtime_ns for k, p in paths.items()}
    c2fpl_stage.run_stage(cfg, train, None, out, torch.device("cpu"))
    assert {k: os.stat(p).st_mtime_ns for k, p in paths.items()} == stamps
    for flags in (["--c2fpl_lr", "0.02"], ["--c2fpl_milestones", "15"], ["--c2fpl_window", "0.3"]):
        changed = parse_config([*TINY, *flags])
        changed.train_features, changed.train_ranges = cfg.train_features, cfg.train_ranges
        c2fpl_stage.run_stage(changed, train, None, out, torch.device("cpu"))
        assert os.stat(paths["summary"]).st_mtime_ns != stamps["summary"], flags
        stamps["summary"] = os.stat(paths["summary"]).st_mtime_ns


def test_interrupted_stage_continues_to_the_same_classifier(stage, tmp_path, monkeypatch):
    cfg, train, test, _, _ = stage
    paths = c2fpl_stage.run_stage(cfg, train, test, tmp_path / "uninterrupted", torch.device("cpu"))
    out = tmp_path / "out"
    real_step, calls = torch.optim.SGD.step, []
    batches_per_epoch = -(-train.n_snippets // cfg.c2fpl_batch_size)

    def step(self, *args, **kwargs):  # Ctrl-C in the middle of the second epoch
        calls.append(1)
        if len(calls) == batches_per_epoch + 2:
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    with pytest.raises(Interrupted, match=f"kept the pseudo labels and the classifier after epoch 1/2 in {out}; "
                                          "run the same command again to continue"):
        c2fpl_stage.run_stage(cfg, train, test, out, torch.device("cpu"))
    assert (out / c2fpl_stage.PARTIAL).is_file() and not (out / c2fpl_stage.FILES["summary"]).exists()
    np.testing.assert_array_equal(np.load(out / c2fpl_stage.FILES["pseudo_labels"]), np.load(paths["pseudo_labels"]))
    calls.clear()
    logged = []
    continued = c2fpl_stage.run_stage(cfg, train, test, out, torch.device("cpu"), log=logged.append)
    assert logged[:2] == [f"C2FPL: reusing the pseudo labels in {out} (same inputs and settings)",
                          "C2FPL: continuing the classifier from epoch 1/2 ..."]  # the labels are not made again
    assert len(calls) == batches_per_epoch  # the second epoch only, from its start
    assert not (out / c2fpl_stage.PARTIAL).exists()
    weights = torch.load(continued["classifier"], weights_only=True)
    expected = torch.load(paths["classifier"], weights_only=True)
    assert weights.keys() == expected.keys() and all(torch.equal(weights[k], expected[k]) for k in weights)
    summary, expected_summary = (json.loads(p.read_text()) for p in (continued["summary"], paths["summary"]))
    assert summary["classifier_test"] == expected_summary["classifier_test"]


def test_stage_interrupted_while_labelling_keeps_nothing(stage, tmp_path):
    cfg, train, _, _, _ = stage

    def interrupted(line: str) -> None:  # Ctrl-C as the labelling starts
        if line.startswith("C2FPL: pseudo labels from"):
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="before the pseudo labels were written: nothing kept"):
        c2fpl_stage.run_stage(cfg, train, None, tmp_path, torch.device("cpu"), log=interrupted)
    assert not list(tmp_path.iterdir())


def test_a_folder_written_with_the_earlier_classifier_name_is_reused(stage, tmp_path):
    cfg, train, test, _, _ = stage
    old = tmp_path / "old"
    c2fpl_stage.run_stage(cfg, train, test, old, torch.device("cpu"))
    for suffix in (".pkl", ".yaml"):
        (old / f"c2fpl_classifier{suffix}").rename(old / f"UCFfinal{suffix}")
    logged = []
    reused = c2fpl_stage.run_stage(cfg, train, test, old, torch.device("cpu"), log=logged.append)
    assert logged == [f"C2FPL: reusing {old} (same inputs and settings)"]
    assert reused["classifier"] == old / "UCFfinal.pkl"

def test_stage_needs_ranges(stage, tmp_path):
    cfg, _, _, _, _ = stage
    no_ranges = open_features(cfg.train_features)
    with pytest.raises(InputError, match="--train_ranges: C2FPL needs"):
        c2fpl_stage.run_stage(cfg, no_ranges, None, tmp_path, torch.device("cpu"))


def test_classifier_learns_separable_labels(tmp_path):
    rng = np.random.default_rng(0)
    labels = (rng.random(600) < 0.3).astype(np.uint8)
    x = rng.random((600, 2, 256), dtype=np.float32)
    x[labels == 1, :, :32] += 1.0
    np.save(tmp_path / "x.npy", x)
    classifier = c2fpl_stage.train_classifier(open_features(str(tmp_path / "x.npy")), labels, seed=0,
                                              recipe=Config().c2fpl_recipe)
    with torch.no_grad():
        scores = classifier(torch.from_numpy(x)).squeeze(-1).numpy()
    assert roc_auc_score(labels, scores) > 0.9


def test_classifier_training_leaves_the_callers_random_state(stage):
    _, train, _, _, paths = stage
    torch.manual_seed(123)
    before = torch.get_rng_state()
    recipe = dataclasses.replace(Config().c2fpl_recipe, epochs=1)
    c2fpl_stage.train_classifier(train, np.load(paths["pseudo_labels"]), seed=0, recipe=recipe)
    assert torch.equal(torch.get_rng_state(), before)


def test_classifier_trains_with_the_configured_recipe(stage, monkeypatch):
    _, train, _, _, paths = stage
    cfg = parse_config(["--c2fpl_lr", "0.5", "--c2fpl_momentum", "0.25", "--c2fpl_nesterov", "False",
                        "--c2fpl_weight_decay", "0.001", "--c2fpl_milestones", "1,3", "--c2fpl_gamma", "0.5",
                        "--c2fpl_batch_size", "50", "--c2fpl_epochs", "2"])
    real_step, steps, epochs = torch.optim.SGD.step, [], []

    def step(self, *args, **kwargs):
        steps.append(1)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    c2fpl_stage.train_classifier(train, np.load(paths["pseudo_labels"]), seed=0, recipe=cfg.c2fpl_recipe,
                                 on_epoch=epochs.append)
    assert len(steps) == 2 * -(-train.n_snippets // 50) and [e["epoch"] for e in epochs] == [1, 2]
    group = epochs[-1]["optimizer"]["param_groups"][0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.25, False, 0.001)
    assert [e["optimizer"]["param_groups"][0]["lr"] for e in epochs] == pytest.approx([0.25, 0.25])
    assert epochs[-1]["scheduler"]["gamma"] == 0.5 and sorted(epochs[-1]["scheduler"]["milestones"]) == [1, 3]
