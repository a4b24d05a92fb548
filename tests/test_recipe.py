"""``--recipe improved``: selected.pkl chosen with no test label (last.pkl's weights, the C2FPL fallback when the
Scorer learned nothing; the scorer's moving average and score fusion when asked for), its settings, resume, and
run_test.py --run_dir; the release recipe writes no selected.pkl."""
import contextlib
import io
import json
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import main
import run_test
from dataset import synthetic
from dataset.features import open_features
from dataset.prepare import synthetic_spec
from engine import trainer
from model.checkpoint import model_settings
from model.frd import FRDUVAD, ModelConfig
from model.scorer import Scorer
from test_interrupt import interrupt_optimizer_step
from test_train import TINY
from utils.checkpoint import read_settings, save_checkpoint
from utils.config import parse_config
from utils.errors import InputError

# 11 iterations (one epoch), evaluations at 3, 6, 9, 11; the average starts after iteration int(0.5 · 11) = 5.
IMPROVED = [*TINY, "--aux", "c2fpl", "--max_epoch", "1", "--recipe", "improved"]
RUN = [*IMPROVED, "--ema_decay", "0.995", "--ema_start", "0.5", "--score_fusion", "0.25"]  # not the defaults
ITERATIONS, START, DECAY = 11, 5, 0.995
RELEASE_SETTINGS = {"feature_size": 256, "cross_clip": 4, "Vitblock_num": 2, "crops": 2}


def data_flags(files: dict, gt) -> list[str]:
    """The synthetic files given one by one, so that the ground truth can be another file."""
    keys = ("train_features", "train_ranges", "test_features", "test_ranges")
    return [*(x for key in keys for x in (f"--{key}", str(files[key]))), "--test_gt", str(gt)]


def train(out, data: list[str], c2fpl_dir, *extra: str, run: list[str] = RUN,
          callbacks: tuple[trainer.Callback, ...] = ()) -> tuple[list[dict], str]:
    """main.py with ``run`` (the recipe with its average and fusion) into ``out``: its metrics.jsonl records and what
    it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main.main([*run, *data, "--output_dir", str(out), "--c2fpl_dir", str(c2fpl_dir), *extra], callbacks)
    return records(out), printed.getvalue()


def records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The improved recipe trained twice, with the true test ground truth and with a shuffled one (each with its own
    C2FPL stage); the true run also records the scorer's weights after every step."""
    root = tmp_path_factory.mktemp("recipe")
    files = synthetic.ensure(root / "data", synthetic_spec(parse_config(TINY)))
    gt = np.load(files["test_gt"])
    shuffled = root / "shuffled_gt.npy"
    np.save(shuffled, np.random.default_rng(0).permutation(gt))
    steps = []

    class ScorerAfterEachStep(trainer.Callback):
        def on_step_end(self, run):
            steps.append({k: v.detach().clone() for k, v in run.model.scorer.state_dict().items()})

    true = data_flags(files, files["test_gt"])
    true_records, printed = train(root / "true", true, root / "c2fpl_true", callbacks=(ScorerAfterEachStep(),))
    shuffled_records, _ = train(root / "shuffled", data_flags(files, shuffled), root / "c2fpl_shuffled")
    return {"root": root, "data": true, "files": files, "true": (root / "true", true_records, printed),
            "shuffled": (root / "shuffled", shuffled_records), "steps": steps}


def load(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def test_no_test_label_reaches_the_improved_recipes_choice(runs):
    (true, true_records, _), (shuffled, shuffled_records) = runs["true"], runs["shuffled"]
    assert [r["auc_all"] for r in true_records] != [r["auc_all"] for r in shuffled_records]  # the labels differ
    for name in ("selected.pkl", "selected.yaml", "last.pkl", "last.yaml"):
        assert (true / name).read_bytes() == (shuffled / name).read_bytes(), name
    selected = read_settings(true / "selected.pkl")
    check = selected.pop("fallback")
    disagree = check["spearman"] is None or check["spearman"] < 0.75  # the recipe's --agreement
    fusion = 1.0 if check["learned_nothing"] else 0.1 if disagree else 0.25  # its --disagree_fusion; RUN's fusion
    assert selected == {**RELEASE_SETTINGS, "score_fusion": fusion}
    train_snippets = open_features(runs["files"]["train_features"], runs["files"]["train_ranges"]).n_snippets
    assert check["snippets"] == train_snippets and check["learned_nothing"] == (check["flagged"] == 0)
    saved = parse_config(["--config", str(true / "config.yaml")])
    assert (saved.recipe, saved.ema_decay, saved.ema_start, saved.keep_train_mode, saved.aux_fallback) == (
        "improved", 0.995, 0.5, False, True)


OPENED: list[str] | None = None  # the paths opened while a test records them (the audit hook below)


def record_opens(event: str, args: tuple) -> None:
    if event == "open" and OPENED is not None and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(record_opens)  # hooks stay for the life of the process: this one records only inside a test


def test_the_recipe_never_opens_the_ground_truth(runs):
    """The improved recipe run without a test set opens no file of it (Python's audit hook sees every open, numpy's
    included), and writes the same selected.pkl, byte for byte, as the run that evaluates on the test set."""
    global OPENED
    root, flags = runs["root"], runs["data"]
    train_only = flags[:flags.index("--test_features")]
    test_files = {os.path.realpath(flags[flags.index(key) + 1]) for key in ("--test_features", "--test_ranges",
                                                                           "--test_gt")}
    OPENED = []
    try:
        history, _ = train(root / "no_test", train_only, root / "c2fpl_no_test")
    finally:
        opened, OPENED = OPENED, None
    assert os.path.realpath(train_only[1]) in opened  # the hook sees the training features being read
    assert not test_files & set(opened)
    assert "auc_all" not in history[-1]
    for name in ("selected.pkl", "selected.yaml"):
        assert (root / "no_test" / name).read_bytes() == (runs["true"][0] / name).read_bytes(), name


def test_selected_holds_the_scorers_moving_average_by_hand(runs):
    out, history, _ = runs["true"]
    steps = runs["steps"]
    assert history[-1]["iteration"] == len(steps) == ITERATIONS
    selected, last = load(out / "selected.pkl"), load(out / "last.pkl")
    assert list(selected) == list(last)
    for key, weights in steps[-1].items():
        torch.testing.assert_close(last[f"scorer.{key}"], weights, rtol=0, atol=0)
        average = steps[START][key]  # the weights after iteration START + 1, taken as they are
        for later in steps[START + 1:]:
            average = DECAY * average + (1 - DECAY) * later[key]
        torch.testing.assert_close(selected[f"scorer.{key}"], average, rtol=0, atol=1e-6)
        assert not torch.equal(selected[f"scorer.{key}"], last[f"scorer.{key}"])
    assert all(torch.equal(selected[k], last[k]) for k in last if not k.startswith("scorer."))


def test_average_rule_on_a_sequence_of_weights():
    scorer = Scorer(4)
    average = trainer.ScorerAverage(scorer, decay=0.5, start=2)
    for iteration in range(1, 6):  # the weights are all `iteration` after step `iteration`
        with torch.no_grad():
            for p in scorer.parameters():
                p.fill_(float(iteration))
        average.update(scorer, iteration)
        if iteration == 2:
            assert average.scorer_state() is None  # nothing averaged up to the start
    state = average.scorer_state()
    assert set(state) == {f"scorer.{k}" for k in scorer.state_dict()}
    for value in state.values():  # 3, then 0.5·3 + 0.5·4 = 3.5, then 0.5·3.5 + 0.5·5
        assert torch.equal(value, torch.full_like(value, 4.25))
    resumed = trainer.ScorerAverage(Scorer(4), decay=0.5, start=2)
    resumed.load_state_dict(average.state_dict())
    with torch.no_grad():
        for p in scorer.parameters():
            p.fill_(6.0)
    resumed.update(scorer, 6)  # 0.5·4.25 + 0.5·6
    assert all(torch.equal(v, torch.full_like(v, 5.125)) for v in resumed.scorer_state().values())


def mlp(x: torch.Tensor, layers: list[torch.nn.Linear]) -> torch.Tensor:
    """Linear+ReLU layers, a sigmoid at the end, mean over crops: the scorers' inference written out."""
    for layer in layers[:-1]:
        x = F.relu(x @ layer.weight.T + layer.bias)
    return torch.sigmoid(x @ layers[-1].weight.T + layers[-1].bias).mean(dim=1).squeeze(-1)


def test_fusion_by_hand():
    torch.manual_seed(0)
    model = FRDUVAD(ModelConfig(256, 4, 0, aux="none", score_fusion=0.25)).train()
    x = torch.randn(5, 3, 256)
    scorer = mlp(x, [model.scorer.fc1, model.scorer.fc2, model.scorer.classifier])
    c2fpl = mlp(x, [model.scorer_c2fpl.fc1, model.scorer_c2fpl.fc2, model.scorer_c2fpl.fc3])
    torch.testing.assert_close(model.score(x), 0.75 * scorer + 0.25 * c2fpl)
    assert model.training and model.scorer.training
    plain = FRDUVAD(ModelConfig(256, 4, 0, aux="none"))
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain.score(x), scorer)
    with pytest.raises(ValueError, match=r"score_fusion must be in \[0, 1\], got 1.5"):
        FRDUVAD(ModelConfig(256, 4, 0, score_fusion=1.5))


def test_score_fusion_round_trips_through_the_settings_file(tmp_path):
    torch.manual_seed(1)
    config = ModelConfig(256, 4, 0, aux="none", score_fusion=0.25)
    trained = FRDUVAD(config).eval()
    path = tmp_path / "fused.pkl"
    save_checkpoint(path, trained.state_dict(), model_settings(config, crops=2))
    assert read_settings(path) == {"feature_size": 256, "cross_clip": 4, "Vitblock_num": 0, "crops": 2,
                                   "score_fusion": 0.25}
    model = run_test.load_model(str(path), torch.device("cpu"))
    x = torch.randn(4, 2, 256)
    assert model.config.score_fusion == 0.25
    torch.testing.assert_close(model.score(x), 0.75 * trained.scorer(x).squeeze(-1)
                               + 0.25 * trained.scorer_c2fpl(x).squeeze(-1))
    plain = tmp_path / "plain.pkl"
    save_checkpoint(plain, trained.state_dict(), model_settings(ModelConfig(256, 4, 0), crops=2))
    assert "score_fusion" not in read_settings(plain)  # absent means 0: the files of before read as they did
    assert run_test.load_model(str(plain), torch.device("cpu")).config.score_fusion == 0.0
    authors = tmp_path / "authors.pkl"
    torch.save({k: v for k, v in trained.state_dict().items() if k.startswith("scorer.")}, authors)
    assert run_test.load_model(str(authors), torch.device("cpu")).config.score_fusion == 0.0
    (tmp_path / "fused.yaml").write_text("feature_size: 256\ncross_clip: 4\nVitblock_num: 0\nscore_fusion: 2\n")
    with pytest.raises(InputError, match=r"fused\.yaml: score_fusion must be a number in \[0, 1\], got 2"):
        run_test.load_model(str(path), torch.device("cpu"))
    scorer_only = tmp_path / "scorer.pkl"
    save_checkpoint(scorer_only, {k: v for k, v in trained.state_dict().items() if k.startswith("scorer.")},
                    model_settings(config, crops=2))
    with pytest.raises(InputError, match=r"scorer\.yaml: score_fusion needs the C2FPL classifier's weights"):
        run_test.load_model(str(scorer_only), torch.device("cpu"))


def test_recipe_defaults_and_their_overrides(tmp_path):
    release = parse_config([])
    assert (release.recipe, release.ema_decay, release.keep_train_mode, release.score_fusion) == (
        "release", 0.0, False, 0.0)
    improved = parse_config(["--recipe", "improved"])
    assert (improved.ema_decay, improved.keep_train_mode, improved.score_fusion, improved.aux_fallback) == (
        0.0, False, 0.001, True)
    assert (release.disagree_fusion, improved.disagree_fusion, improved.agreement) == (0.0, 0.1, 0.75)
    without = parse_config(["--recipe", "improved", "--aux", "none"])
    assert (without.aux_fallback, without.score_fusion, without.disagree_fusion) == (False, 0.0, 0.0)
    user = tmp_path / "mine.yaml"
    user.write_text("recipe: improved\nema_decay: 0.9\n")
    mine = parse_config(["--config", str(user), "--keep_train_mode", "True", "--aux_fallback", "False"])
    assert (mine.ema_decay, mine.keep_train_mode, mine.aux_fallback, mine.score_fusion) == (0.9, True, False, 0.001)
    for argv, needle in ((["--ema_decay", "0.9"], "--ema_decay: the average goes into selected.pkl"),
                         (["--aux_fallback", "True"], "--aux_fallback: .* only --recipe improved writes"),
                         (["--recipe", "improved", "--aux", "none", "--aux_fallback", "True"],
                          "--aux_fallback: .* needs --aux c2fpl"),
                         (["--recipe", "improved", "--ema_decay", "1"], r"--ema_decay: must be in \[0, 1\)"),
                         (["--score_fusion", "0.5"], "--score_fusion: .* only --recipe improved writes"),
                         (["--recipe", "improved", "--aux", "none", "--score_fusion", "0.5"],
                          "--score_fusion: .* needs --aux c2fpl"),
                         (["--score_fusion", "1.5"], r"--score_fusion: must be in \[0, 1\]"),
                         (["--disagree_fusion", "0.1"], "--disagree_fusion: .* only --recipe improved writes"),
                         (["--recipe", "improved", "--aux", "none", "--disagree_fusion", "0.1"],
                          "--disagree_fusion: .* needs --aux c2fpl"),
                         (["--recipe", "improved", "--agreement", "1.5"], r"--agreement: .* must be in \[-1, 1\]")):
        with pytest.raises(InputError, match=needle):
            parse_config(argv)


def test_release_recipe_writes_no_selected_checkpoint(runs, capsys):
    root = runs["root"]
    out = root / "release"
    history, printed = train(out, runs["data"], root / "c2fpl_true", "--recipe", "release", "--max_iters", "3",
                             run=IMPROVED)
    names = {p.name for p in out.iterdir()}
    assert "selected.pkl" not in names and "selected.yaml" not in names
    assert read_settings(out / "last.pkl") == RELEASE_SETTINGS
    assert "no test label" not in printed
    run_test.main(["--run_dir", str(out)])
    table = capsys.readouterr().out.splitlines()
    assert table[-1] == f"report -> {out / 'test_report.html'}"
    assert [line.split()[0] for line in table[2:-1]] == [f"best_ckpt_{history[-1]['auc_all']:.4f}.pkl", "last.pkl"]


def test_run_dir_compares_the_runs_checkpoints(runs, tmp_path, capsys):
    out, history, printed = runs["true"]
    compared, single = tmp_path / "run.json", tmp_path / "selected.json"
    run_test.main(["--run_dir", str(out), "--metrics_out", str(compared)])
    table = capsys.readouterr().out
    run_test.main(["--config", str(out / "config.yaml"), "--ckpt_path", str(out / "selected.pkl"),
                   "--metrics_out", str(single)])
    checkpoints = json.loads(compared.read_text())["checkpoints"]
    best = max(r["auc_all"] for r in history)
    assert list(checkpoints) == [f"best_ckpt_{best:.4f}.pkl", "last.pkl", "selected.pkl"]
    assert [m["label_free"] for m in checkpoints.values()] == [False, True, True]
    assert checkpoints[f"best_ckpt_{best:.4f}.pkl"]["auc_all"] == pytest.approx(best, abs=1e-12)
    assert checkpoints["last.pkl"]["auc_all"] == pytest.approx(history[-1]["auc_all"], abs=1e-12)
    selected = json.loads(single.read_text())["auc_all"]
    assert checkpoints["selected.pkl"]["auc_all"] == pytest.approx(selected, abs=1e-12)
    assert f"best_ckpt_{best:.4f}.pkl" in table and "no (best on test: selected with test labels)" in table
    assert f"selected with no test label  {selected:.4f}" in printed  # main.py's summary


def test_interrupted_improved_run_resumes_like_the_uninterrupted_one(runs, monkeypatch):
    reference, expected, _ = runs["true"]
    root = runs["root"]
    out = root / "interrupted"
    interrupt_optimizer_step(monkeypatch, call=8, signal_after=False)  # iteration 7: two steps averaged
    with pytest.raises(trainer.Interrupted):
        train(out, runs["data"], root / "c2fpl_true")
    monkeypatch.undo()
    assert int(torch.load(out / "resume.pt", weights_only=True)["average"]["n_averaged"]) == 7 - START
    main.main(["--resume", str(out / "resume.pt")])
    assert records(out) == expected
    for name in ("last.pkl", "selected.pkl"):
        resumed, uninterrupted = load(out / name), load(reference / name)
        assert resumed.keys() == uninterrupted.keys()
        assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), name


def test_improved_defaults_train_like_release_and_select_last(runs):
    """The improved recipe's defaults change no step of training nor evaluation: its metrics, best_ckpt_*.pkl and
    last.pkl are the release recipe's, byte for byte, and selected.pkl holds last.pkl's weights, scored by the C2FPL
    classifier alone (``score_fusion`` 1, in place of the recipe's 0.001) exactly when the Scorer flags no training
    snippet (three steps in, it flags none)."""
    root = runs["root"]
    release, improved = root / "release_3", root / "improved_3"
    train(release, runs["data"], root / "c2fpl_true", "--recipe", "release", "--max_iters", "3", run=IMPROVED)
    train(improved, runs["data"], root / "c2fpl_true", "--max_iters", "3", run=IMPROVED)
    assert (improved / "last.pkl").read_bytes() == (release / "last.pkl").read_bytes()
    assert records(improved) == records(release)  # the same evaluations: the fusion is selected.pkl's alone
    best = sorted(p.name for p in release.glob("best_ckpt_*.pkl"))
    assert best and sorted(p.name for p in improved.glob("best_ckpt_*.pkl")) == best
    assert (improved / best[0]).read_bytes() == (release / best[0]).read_bytes()
    selected, last = load(improved / "selected.pkl"), load(improved / "last.pkl")
    assert selected.keys() == last.keys() and all(torch.equal(selected[k], last[k]) for k in last)
    settings = read_settings(improved / "selected.pkl")
    assert settings["fallback"]["flagged"] == 0 and settings["fallback"]["learned_nothing"] is True
    assert settings["score_fusion"] == 1.0
    trained, fallback = (run_test.load_model(str(improved / name), torch.device("cpu")) for name in
                         ("last.pkl", "selected.pkl"))
    x = torch.randn(6, 2, 256)
    torch.testing.assert_close(fallback.score(x), trained.scorer_c2fpl(x).squeeze(-1))


@pytest.mark.parametrize("bias, flagged", [(-100.0, 0.0), (100.0, 1.0)])
def test_scorer_check_sees_a_scorer_that_flags_nothing(runs, bias, flagged):
    """A Scorer whose output bias drowns its input flags no training snippet (learned nothing) or every one."""
    torch.manual_seed(0)
    model = FRDUVAD(ModelConfig(256, 4, 2, aux="c2fpl")).train()
    with torch.no_grad():
        model.scorer.classifier.bias.fill_(bias)
    source = open_features(runs["files"]["train_features"], runs["files"]["train_ranges"])
    check = trainer.scorer_check(model, source, torch.device("cpu"), "off", seed=0)
    assert check == {"snippets": source.n_snippets, "flagged": flagged, "spread": 0.0,
                     "learned_nothing": flagged == 0.0}
    assert model.training  # the check leaves the mode as it found it


def test_fusion_weight_one_scores_with_the_c2fpl_classifier_alone():
    torch.manual_seed(2)
    model = FRDUVAD(ModelConfig(256, 4, 0, aux="none", score_fusion=1.0)).eval()
    x = torch.randn(5, 3, 256)
    c2fpl = mlp(x, [model.scorer_c2fpl.fc1, model.scorer_c2fpl.fc2, model.scorer_c2fpl.fc3])
    torch.testing.assert_close(model.score(x), c2fpl)
    torch.testing.assert_close(model.score(x, fusion=0.0), model.scorer(x).squeeze(-1))
