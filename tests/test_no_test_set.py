"""Your own features and no test set (--dataset_name custom): training without any evaluation, last.pkl with the
extraction record beside it, metrics.jsonl of losses and pseudo-label counts, resume, one-line errors."""
import contextlib
import io
import json
import shutil

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import main
import run_test
from engine import trainer
from model.scorer import C2FPLClassifier
from utils.checkpoint import load_state_dict_file, read_settings
from utils.config import RECIPES
from utils.errors import InputError


LENGTHS = [20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 30, 30]  # 350 snippets: 6 batches of (at most) 64 per epoch
N, CROSS_CLIP, BATCH = sum(LENGTHS), 4, 64
SETTINGS = {"backbone": "r3d_18", "weights": "0123abcd", "preset": "r3d_18", "crops": 2, "fps": None, "amp": "off"}
# C2FPL labels the whole of the videos it finds anomalous, here exactly the four with a span of larger features
# (nu 0.5), so that its classifier fires on those spans only: an auxiliary label count worth checking by hand.
RUN = ["--dataset_name", "custom", "--max_seqlen", str(BATCH), "--max_epoch", "2", "--snapshot", "6",
       "--Vitblock_num", "2", "--c2fpl_epochs", "10", "--c2fpl_window", "1.0", "--c2fpl_nu", "0.5", "--device", "cpu"]


def write_videos(folder, lengths, settings, seed=0):
    """extract_features.py's per-video output: ``<name>_i3d.npy`` (T, 2, 256), features.list, videos.json; every
    third video has a span of 8 snippets of larger features."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    record = []
    for v, t in enumerate(lengths):
        x = 0.1 * rng.random((t, 2, 256), dtype=np.float32)
        if v % 3 == 0:
            x[t // 3:t // 3 + 8] += 1.0
        np.save(folder / f"v{v}_i3d.npy", x)
        record.append({"video": f"videos/v{v}.mp4", "features": f"v{v}_i3d.npy", "snippets": t,
                       "settings": settings[v] if isinstance(settings, list) else settings})
    (folder / "features.list").write_text("".join(f"{r['features']}\n" for r in record))
    (folder / "videos.json").write_text(json.dumps(record))
    return folder / "features.list"


def train(out, *extra, callbacks: tuple[trainer.Callback, ...] = ()):
    """main.py into ``out``: its metrics.jsonl records and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main.main([*RUN, "--output_dir", str(out), *extra], callbacks)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()], printed.getvalue()


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """The training list and a shared C2FPL folder (the stage runs once, then is reused)."""
    root = tmp_path_factory.mktemp("own")
    return {"folder": root / "features", "list": str(write_videos(root / "features", LENGTHS, SETTINGS)),
            "c2fpl": str(root / "c2fpl")}


class Evaluations(trainer.Callback):
    """The iterations of the run's evaluations, each checked to have no test set to score."""

    def __init__(self) -> None:
        self.iterations: list[int] = []

    def on_evaluation_start(self, run: trainer.Trainer) -> None:
        assert run.test is None, "an evaluation with a test set"
        self.iterations.append(run.progress.iteration)


@pytest.fixture(scope="module")
def no_test(own, tmp_path_factory):
    """The run without a test set; no evaluation may have one."""
    out, evaluations = tmp_path_factory.mktemp("no_test"), Evaluations()
    records, printed = train(out, "--train_list", own["list"], "--c2fpl_dir", own["c2fpl"], callbacks=(evaluations,))
    assert evaluations.iterations == [r["iteration"] for r in records]
    return out, records, printed


def concatenated(folder, n_videos):
    """The first ``n_videos`` videos' features of ``folder``, one ``(N, 2, 256)`` array."""
    return np.concatenate([np.load(folder / f"v{v}_i3d.npy") for v in range(n_videos)])


def aux_count(own) -> int:
    """Hand count of the auxiliary labels over one epoch: every window start once, snippets i .. i+3 (a row past
    the end is the start row), each labelled by the C2FPL classifier's crop-averaged probability >= 0.5."""
    features = concatenated(own["folder"], len(LENGTHS))
    classifier = C2FPLClassifier(256)
    classifier.load_state_dict(load_state_dict_file(f"{own['c2fpl']}/c2fpl_classifier.pkl"))
    with torch.no_grad():
        labels = (classifier.eval()(torch.from_numpy(features)).squeeze(-1) >= 0.5).numpy()
    starts = np.arange(N)[:, None]
    rows = starts + np.arange(CROSS_CLIP)
    rows = np.where(rows < N, rows, starts)
    return int(labels[rows].sum())


def scorer_by_hand(out, own) -> np.ndarray:
    """last.pkl's Scorer on every training snippet, crop-averaged: (N,)."""
    model = run_test.load_model(str(out / "last.pkl"), torch.device("cpu"))
    with torch.no_grad():
        return model.scorer.eval()(torch.from_numpy(concatenated(own["folder"], len(LENGTHS)))).squeeze(-1).numpy()


def classifier_by_hand(out, own) -> np.ndarray:
    """last.pkl's C2FPL classifier on every training snippet, crop-averaged: (N,)."""
    model = run_test.load_model(str(out / "last.pkl"), torch.device("cpu"))
    x = torch.from_numpy(concatenated(own["folder"], len(LENGTHS)))
    with torch.no_grad():
        return model.scorer_c2fpl.eval()(x).squeeze(-1).numpy()


def selected_fusion(out, own) -> tuple[float, float]:
    """The two scorers' Spearman correlation on the training snippets, and the fusion weight the recipe takes."""
    rho = float(spearmanr(scorer_by_hand(out, own), classifier_by_hand(out, own)).statistic)
    recipe = RECIPES["improved"]
    return rho, recipe["disagree_fusion"] if rho < recipe["agreement"] else recipe["score_fusion"]


def selected_flagged(out, own) -> float:
    return float(np.mean(scorer_by_hand(out, own) >= 0.5))


def selected_spread(out, own) -> float:
    return float(np.std(scorer_by_hand(out, own)))


def test_training_without_a_test_set(own, no_test):
    out, records, printed = no_test
    assert {p.name for p in out.iterdir()} == {"config.yaml", "last.pkl", "last.yaml", "selected.pkl", "selected.yaml",
                                               "metrics.jsonl", "resume.pt",
                                               "report.html"}  # configs/custom.yaml: recipe improved
    assert [(r["iteration"], r["epoch"]) for r in records] == [(6, 1), (12, 2)]  # one snapshot per epoch
    assert not [k for r in records for k in r if k.startswith(("auc", "ap", "far", "eer", "pr_"))]
    expected_aux = aux_count(own)
    assert expected_aux > 0
    for r in records:  # each record covers exactly one epoch: N windows of 4 snippets
        assert r["labels_total"] == N * CROSS_CLIP
        assert r["aux_labels"] == expected_aux
        assert 0 < r["recon_labels"] <= r["labels_total"] / 2  # error >= mean + std: at most half (Cantelli)
        assert 0 <= r["pseudo_labels"] <= min(r["recon_labels"], r["aux_labels"])
        assert r["Ldi"] == 0 and r["bank_size"] == 0 and r["Lre"] > 0 and r["Ls"] >= 0
        assert r["loss"] == pytest.approx(r["Lre"] + r["Ldi"] + r["Ls"], rel=1e-5)  # --Lambda 1_1_1
    # The files decide the feature size (configs/custom.yaml says 2048); the extraction record lies beside.
    selected = read_settings(out / "selected.pkl")
    rho, fusion = selected_fusion(out, own)
    assert selected.pop("fallback") == {"snippets": N, "flagged": pytest.approx(selected_flagged(out, own), abs=1e-6),
                                        "spread": pytest.approx(selected_spread(out, own), abs=1e-5),
                                        "learned_nothing": False, "spearman": pytest.approx(rho, abs=1e-5)}
    assert selected == {"feature_size": 256, "cross_clip": 4, "Vitblock_num": 2, "crops": 2, "score_fusion": fusion,
                        "extraction": SETTINGS}
    assert read_settings(f"{own['c2fpl']}/c2fpl_classifier.pkl")["extraction"] == SETTINGS
    assert "no test set given: nothing was evaluated, so no AUC is reported" in printed
    assert "baselines (feature norm, C2FPL classifier alone) skipped: they need a test set" in printed
    assert f"the checkpoint to use: {out / 'selected.pkl'}" in printed
    model = run_test.load_model(str(out / "selected.pkl"), torch.device("cpu"))
    assert (model.config.feature_size, model.config.vitblock_num, model.config.score_fusion) == (256, 2, fusion)
    assert model.score(torch.zeros(3, 2, 256)).shape == (3,)


def test_the_weights_are_those_of_the_same_run_with_a_test_set(own, no_test, tmp_path):
    out, records, _ = no_test
    test_list = write_videos(tmp_path / "test", [16, 24], SETTINGS, seed=1)
    gt = np.zeros(16 * 40, dtype=np.float32)
    gt[16 * 5:16 * 13] = 1
    np.save(tmp_path / "gt.npy", gt)
    with_test, _ = train(tmp_path / "run", "--train_list", own["list"], "--c2fpl_dir", own["c2fpl"],
                         "--test_list", str(test_list), "--test_gt", str(tmp_path / "gt.npy"))
    assert all("auc_all" in r for r in with_test) and list((tmp_path / "run").glob("best_ckpt_*.pkl"))
    for a, b in zip(with_test, records, strict=True):
        assert {k: v for k, v in a.items() if k in b} == b
    for name in ("last.pkl", "selected.pkl"):
        mine, reference = (torch.load(d / name, weights_only=True) for d in (tmp_path / "run", out))
        assert mine.keys() == reference.keys() and all(torch.equal(mine[k], reference[k]) for k in mine), name


def test_resume_without_a_test_set_ends_like_the_uninterrupted_run(own, no_test, tmp_path):
    out, records, _ = no_test
    first, _ = train(tmp_path / "run", "--train_list", own["list"], "--c2fpl_dir", own["c2fpl"], "--max_iters", "6")
    assert [r["iteration"] for r in first] == [6] and (tmp_path / "run" / "resume.pt").is_file()
    with contextlib.redirect_stdout(io.StringIO()):
        main.main(["--resume", str(tmp_path / "run" / "resume.pt")])
    resumed = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert resumed == records
    for name in ("last.pkl", "selected.pkl"):
        mine, reference = (torch.load(d / name, weights_only=True) for d in (tmp_path / "run", out))
        assert all(torch.equal(mine[k], reference[k]) for k in reference), name


def test_the_concatenated_file_alone_finds_its_ranges_and_record(own, tmp_path):
    folder = tmp_path / "concat"
    folder.mkdir()
    np.save(folder / "concat.npy", concatenated(own["folder"], 3))
    ends = np.cumsum(LENGTHS[:3])
    np.save(folder / "nalist.npy", np.stack([ends - LENGTHS[:3], ends], axis=1).astype(np.int64))
    shutil.copy(own["folder"] / "videos.json", folder / "videos.json")
    with contextlib.redirect_stdout(io.StringIO()):
        main.main(["--dataset_name", "custom", "--train_features", str(folder / "concat.npy"), "--stage", "c2fpl",
                   "--c2fpl_epochs", "1", "--output_dir", str(tmp_path / "c2fpl"), "--device", "cpu"])
    assert json.loads((tmp_path / "c2fpl" / "c2fpl_summary.json").read_text())["videos"] == 3
    assert f"train_ranges: {folder / 'nalist.npy'}" in (tmp_path / "c2fpl" / "config.yaml").read_text()
    assert read_settings(tmp_path / "c2fpl" / "c2fpl_classifier.pkl") == {"feature_size": 256, "crops": 2,
                                                                  "extraction": SETTINGS}


def test_videos_extracted_with_different_settings_stop_with_one_line(tmp_path):
    other = {**SETTINGS, "crops": 10, "preset": "rtfm"}
    listed = write_videos(tmp_path / "mixed", LENGTHS[:3], [SETTINGS, SETTINGS, other])
    with pytest.raises(InputError) as error:
        main.main([*RUN, "--train_list", str(listed), "--output_dir", str(tmp_path / "run")])
    assert str(error.value) == (f"{tmp_path / 'mixed' / 'videos.json'}: videos extracted with different settings: "
                                "videos/v0.mp4 has preset r3d_18, crops 2; videos/v2.mp4 has preset rtfm, crops 10")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra,message", [
    ([], "--dataset_name custom: no training features given: pass --train_list OUT/features.list "
         "(extract_features.py's output) or --train_features FILE.npy --train_ranges RANGES.npy"),
    (["--feature_size", "512", "--train_list", "LIST"], "LIST: features have size 256, the configuration says "
                                                        "--feature_size 512"),
])
def test_custom_input_errors_are_one_line(own, tmp_path, extra, message):
    extra = [own["list"] if arg == "LIST" else arg for arg in extra]
    with pytest.raises(InputError) as error:
        main.main(["--dataset_name", "custom", "--output_dir", str(tmp_path / "run"), *extra])
    assert str(error.value) == message.replace("LIST", own["list"])
