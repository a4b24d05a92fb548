"""Training and evaluation end to end on a tiny synthetic set: outputs, resume, errors, run_test.py."""
import dataclasses
import json

import numpy as np
import pytest
import torch

import main
import run_test
from dataset import synthetic
from dataset.prepare import open_test, prepare, synthetic_spec
from engine.scoring import score_snippets
from engine.trainer import TrainingError, TrainingProgress
from model.checkpoint import CheckpointError, model_settings
from model.frd import FRDUVAD, ModelConfig
from utils.checkpoint import read_settings, save_checkpoint
from utils.config import parse_config
from utils.errors import InputError
from utils.metrics import frame_metrics

TINY = ["--synth_train_videos", "10", "--synth_test_videos", "6", "--synth_crops", "2", "--c2fpl_epochs", "1",
        "--Vitblock_num", "2", "--max_seqlen", "48", "--snapshot", "3", "--max_epoch", "2", "--aux", "none"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("synthetic"))


def train(data_dir, out, *extra):
    main.main([*TINY, "--synthetic_dir", data_dir, "--output_dir", str(out), *extra])
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def full_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, train(data_dir, out)


def test_run_writes_every_output(full_run):
    out, records = full_run
    names = {p.name for p in out.iterdir()}
    best = f"best_ckpt_{max(r['auc_all'] for r in records):.4f}"
    assert names == {"last.pkl", "last.yaml", f"{best}.pkl", f"{best}.yaml", "metrics.jsonl", "result.txt",
                     "config.yaml", "resume.pt", "report.html"}
    iterations = [r["iteration"] for r in records]
    assert iterations[:-1] == list(range(3, 3 * len(iterations), 3)) and iterations[-1] >= iterations[-2]
    assert records[-1]["epoch"] == 2
    for key in ("auc_all", "auc_abn", "far_all", "eer", "ap", "Lre", "Ldi", "Ls", "pseudo_labels", "bank_size",
                "pseudo_precision", "pseudo_recall"):
        assert key in records[0]
    trained = {"feature_size": 256, "cross_clip": 4, "Vitblock_num": 2, "crops": 2}  # TINY
    assert read_settings(out / "last.pkl") == read_settings(out / f"{best}.pkl") == trained
    last, final = torch.load(out / "last.pkl", weights_only=True), torch.load(out / "resume.pt", weights_only=True)
    assert last.keys() == final["model"].keys() and all(torch.equal(last[k], final["model"][k]) for k in last)
    assert not torch.equal(last["scorer.fc1.weight"], FRDUVAD(ModelConfig(256, 4, 2)).state_dict()["scorer.fc1.weight"])
    assert (out / "result.txt").read_text().splitlines()[-1] == (
        f"best AUC {max(r['auc_all'] for r in records):.4f} at iteration "
        f"{max(records, key=lambda r: r['auc_all'])['iteration']} ({best}.pkl)")


def test_resumed_run_ends_like_the_uninterrupted_one(data_dir, full_run, tmp_path):
    out, records = full_run
    interrupted = tmp_path / "interrupted"
    first = train(data_dir, interrupted, "--max_iters", "3")
    assert [r["iteration"] for r in first] == [3]
    main.main(["--resume", str(interrupted / "resume.pt")])
    resumed = [json.loads(line) for line in (interrupted / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in resumed] == [r["iteration"] for r in records]
    for a, b in zip(resumed, records):
        assert a["auc_all"] == b["auc_all"] and a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    last_a = torch.load(interrupted / "last.pkl", weights_only=True)
    last_b = torch.load(out / "last.pkl", weights_only=True)
    for key in last_b:
        torch.testing.assert_close(last_a[key], last_b[key], rtol=0, atol=0)


def test_existing_run_is_never_overwritten(data_dir, full_run):
    out, _ = full_run
    before = (out / "metrics.jsonl").read_text()
    with pytest.raises(InputError, match="already holds a run"):
        train(data_dir, out)
    assert (out / "metrics.jsonl").read_text() == before


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data_dir, tmp_path, monkeypatch):
    out = tmp_path / "nan"
    train(data_dir, out, "--max_iters", "3")
    good = (out / "last.pkl").read_bytes()
    real_step = torch.optim.AdamW.step

    def poisoned(self, *args, **kwargs):
        result = real_step(self, *args, **kwargs)
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", poisoned)
    with pytest.raises(TrainingError, match="non-finite loss"):
        main.main(["--resume", str(out)])
    assert (out / "last.pkl").read_bytes() == good


def test_run_test_reproduces_the_training_evaluation(data_dir, full_run, tmp_path):
    out, records = full_run
    metrics_out, scores_out = tmp_path / "m.json", tmp_path / "s.npy"
    run_test.main([*TINY, "--synthetic_dir", data_dir, "--ckpt_path", str(out / "last.pkl"),
                   "--metrics_out", str(metrics_out), "--scores_out", str(scores_out), "--plot", str(tmp_path / "p")])
    metrics = json.loads(metrics_out.read_text())
    assert metrics["auc_all"] == pytest.approx(records[-1]["auc_all"], abs=1e-12)
    scores = np.load(scores_out)
    assert scores.dtype == np.float32 and len(metrics["per_video_auc"]) == 6
    assert (tmp_path / "p" / "roc.png").is_file() and list((tmp_path / "p").glob("video_*.png"))


def test_train_split_labels_feed_the_frd_auxiliary(data_dir, full_run, tmp_path):
    out, _ = full_run
    labels_file = tmp_path / "labels.npy"
    run_test.main([*TINY, "--synthetic_dir", data_dir, "--ckpt_path", str(out / "last.pkl"), "--split", "train",
                   "--save_pseudo_labels", str(labels_file)])
    labels = np.load(labels_file)
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1}
    for value in (0, 1):
        np.save(labels_file, np.full_like(labels, value))
        record = train(data_dir, tmp_path / f"frd{value}", "--aux", "frd", "--aux_labels", str(labels_file),
                       "--max_iters", "3")[-1]
        assert record["aux_labels"] == value * record["labels_total"]
        assert record["pseudo_labels"] == value * record["recon_labels"]


@pytest.mark.parametrize("extra,needle", [
    (["--aux", "frd", "--aux_labels", "missing.npy"], "auxiliary labels file not found"),
    (["--Vitblock_num", "3"], "valid"),
])
def test_cli_errors(data_dir, tmp_path, extra, needle):
    with pytest.raises(InputError, match=needle):
        train(data_dir, tmp_path / "bad", *extra)
    assert not (tmp_path / "bad" / "metrics.jsonl").exists()


def test_run_test_rejects_a_checkpoint_of_another_feature_size(data_dir, tmp_path):
    files = synthetic.ensure(data_dir, synthetic_spec(parse_config(TINY)))  # 256-d features
    big = tmp_path / "big.pkl"
    torch.save(FRDUVAD(ModelConfig(512, 4, 2)).state_dict(), big)
    test_files = ["--test_features", str(files["test_features"]), "--test_gt", str(files["test_gt"])]
    with pytest.raises(InputError) as error:
        run_test.main([*TINY, *test_files, "--ckpt_path", str(big)])
    assert str(error.value) == (f"{big}: checkpoint for feature size 512, but {files['test_features']} has features "
                                "of size 256")
    with pytest.raises(InputError) as error:
        run_test.main([*TINY, *test_files, "--ckpt_path", str(big), "--feature_size", "256"])
    assert str(error.value) == f"{big}: checkpoint for feature size 512, but --feature_size 256"


def test_run_test_refuses_a_synthetic_folder_of_another_feature_size(data_dir, tmp_path):
    synthetic.ensure(data_dir, synthetic_spec(parse_config(TINY)))  # 256-d features
    torch.save(FRDUVAD(ModelConfig(512, 4, 2)).state_dict(), tmp_path / "big.pkl")
    with pytest.raises(InputError, match=r"holds the synthetic dataset 256d-2crop-10\+6videos-seed0-x0\.1, not 512d"):
        run_test.main([*TINY, "--synthetic_dir", data_dir, "--ckpt_path", str(tmp_path / "big.pkl")])


def test_run_test_without_arguments_evaluates_the_shipped_checkpoint(tmp_path, monkeypatch, capsys):
    from conftest import ROOT
    from utils.config import parse_config

    (tmp_path / "best_ckpt").symlink_to(ROOT / "best_ckpt")  # the synthetic data is generated under tmp_path
    monkeypatch.chdir(tmp_path)
    shipped = parse_config([]).ckpt_path
    assert shipped.startswith("best_ckpt/synthetic/best_ckpt_") and (ROOT / shipped).is_file()
    run_test.main([])
    assert (tmp_path / "data" / "synthetic").is_dir()
    auc = float(capsys.readouterr().out.split("AUC ")[1].split()[0])
    assert auc == pytest.approx(float(shipped.rsplit("_", 1)[1].removesuffix(".pkl")), abs=5e-5)


def test_run_test_takes_scorer_only_and_dataparallel_checkpoints(data_dir, full_run, tmp_path):
    out, records = full_run
    full = torch.load(out / "last.pkl", weights_only=True)
    torch.save({k.removeprefix("scorer."): v for k, v in full.items() if k.startswith("scorer.")}, tmp_path / "s.pkl")
    torch.save({f"module.{k}": v for k, v in full.items()}, tmp_path / "dp.pkl")
    for name in ("s.pkl", "dp.pkl"):
        run_test.main([*TINY, "--synthetic_dir", data_dir, "--ckpt_path", str(tmp_path / name),
                       "--metrics_out", str(tmp_path / "m.json")])
        assert json.loads((tmp_path / "m.json").read_text())["auc_all"] == pytest.approx(records[-1]["auc_all"])


def test_run_test_rebuilds_the_model_of_the_settings(data_dir, tmp_path):
    """cross_clip cannot be read off the weights (MSA and MCA blocks have the same ones): the settings say it."""
    torch.manual_seed(3)
    config = ModelConfig(256, cross_clip=2, vitblock_num=2, aux="none")
    trained = FRDUVAD(config).eval()
    path = tmp_path / "cc2.pkl"
    save_checkpoint(path, trained.state_dict(), model_settings(config, crops=2, backbone="i3d"))
    assert read_settings(path) == {"feature_size": 256, "cross_clip": 2, "Vitblock_num": 2, "crops": 2,
                                   "backbone": "i3d"}
    model = run_test.load_model(str(path), torch.device("cpu"))
    assert model.config == config
    x = torch.rand(3, 2, 2, 256)
    torch.testing.assert_close(model.reconstruct(x), trained.reconstruct(x), rtol=0, atol=0)
    metrics_out = tmp_path / "m.json"
    run_test.main([*TINY, "--synthetic_dir", data_dir, "--ckpt_path", str(path), "--metrics_out", str(metrics_out)])
    test = open_test(prepare(parse_config([*TINY, "--synthetic_dir", data_dir])))
    expected = frame_metrics(score_snippets(trained.score, test.source, test.rows), test.labels, test.ranges)
    assert json.loads(metrics_out.read_text())["auc_all"] == expected["auc_all"]


def test_run_test_names_settings_that_do_not_fit(full_run, tmp_path):
    out, _ = full_run
    path = tmp_path / "last.pkl"
    path.write_bytes((out / "last.pkl").read_bytes())
    (tmp_path / "last.yaml").write_text("feature_size: 256\ncross_clip: 4\nVitblock_num: 4\ncrops: 2\n")
    with pytest.raises(CheckpointError, match=r"last\.pkl: full checkpoint does not fit .* missing 22: "
                                         r"decoder\.decoder_blocks\.2\."):
        run_test.load_model(str(path), torch.device("cpu"))
    (tmp_path / "last.yaml").write_text("feature_size: 256\ncross_clip: 3\nVitblock_num: 2\n")
    with pytest.raises(InputError, match=r"last\.yaml: no model for cross_clip=3, Vitblock_num=2"):
        run_test.load_model(str(path), torch.device("cpu"))
    (tmp_path / "last.yaml").write_text("feature_size: 256\ncrops: 2\n")
    with pytest.raises(CheckpointError, match=r"last\.yaml: no cross_clip, Vitblock_num: not the settings of an FRD-UVAD"):
        run_test.load_model(str(path), torch.device("cpu"))


def test_run_test_applies_the_metric_settings(data_dir, full_run, tmp_path):
    out, _ = full_run
    metrics_file, scores_file = tmp_path / "m.json", tmp_path / "s.npy"
    run_test.main([*TINY, "--synthetic_dir", data_dir, "--ckpt_path", str(out / "last.pkl"), "--auc_abn_group", "8",
                   "--label_threshold", "0.3", "--metrics_out", str(metrics_file), "--scores_out", str(scores_file)])
    reported = json.loads(metrics_file.read_text())
    test = open_test(prepare(parse_config([*TINY, "--synthetic_dir", data_dir])))
    scores = np.load(scores_file)
    expected = frame_metrics(scores, test.labels, test.ranges, 8, threshold=0.3)
    default = frame_metrics(scores, test.labels, test.ranges)
    for key in ("auc_abn", "far_all"):
        assert reported[key] == pytest.approx(expected[key], abs=1e-12)
    assert (reported["auc_abn"], reported["far_all"]) != (default["auc_abn"], default["far_all"])


def test_resume_files_that_name_the_best_value_best_auc_still_load():
    older = {"iteration": 6, "epoch": 1, "batch_in_epoch": 0, "best_auc": 0.91, "best_iteration": 3,
             "best_file": "best_ckpt_0.9100.pkl", "history": []}
    progress = TrainingProgress.from_state(older)
    assert (progress.best_value, progress.best_iteration, progress.iteration) == (0.91, 3, 6)
    assert TrainingProgress.from_state(dataclasses.asdict(progress)) == progress
