"""Configuration: release flags, YAML layers and their precedence, bad values, the help text."""
import dataclasses
import re
import subprocess
import sys
from dataclasses import fields

import pytest

import run_test
from conftest import ROOT
from utils.config import GROUPS, C2FPLRecipe, Config, build_parser, parse_config, str2bool
from utils.errors import InputError

RELEASE_FLAGS = ("dataset_name", "feature_pretrain_model", "feature_modal", "cross_clip", "lab", "lab_type", "beta",
                 "delta", "Vitblock_num", "max_seqlen", "max_epoch", "Lambda", "lr", "snapshot", "seed",
                 "feature_size", "ckpt_path", "config")


def test_release_flags_exist():
    listed = set(re.findall(r"^  (--\w+)", build_parser().format_help(), re.M))
    assert {f"--{flag}" for flag in RELEASE_FLAGS} <= listed


@pytest.mark.parametrize("text,value", [("False", False), ("True", True), ("false", False), ("1", True), ("0", False)])
def test_release_booleans(text, value):
    assert str2bool(text) is value
    assert parse_config(["--lab", text]).lab is value


def test_bad_boolean_is_rejected():
    with pytest.raises(InputError, match=r"^--lab: expected True or False, got 'maybe'$"):
        parse_config(["--lab", "maybe"])


@pytest.mark.parametrize("argv,message", [
    (["--aux", "x"], "--aux: expected one of c2fpl, frd, none, got 'x'"),
    (["--lab_type", "strong"], "--lab_type: expected wlab or slab, got 'strong'"),
    (["--max_seqlen", "many"], "--max_seqlen: expected an integer, got 'many'"),
    (["--lr", "fast"], "--lr: expected a number, got 'fast'"),
    (["--lab"], "--lab: expected one argument"),
    (["--no_such_flag", "3"], "unrecognized arguments: --no_such_flag 3 (--help lists the flags)"),
])
def test_command_line_errors_are_one_line(argv, message):
    with pytest.raises(InputError) as caught:
        parse_config(argv)
    assert str(caught.value) == message


def test_command_line_error_prints_one_line_and_no_usage():
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "--lab", "maybe"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode in (1, 2) and done.stdout == ""
    assert done.stderr.splitlines() == ["error: --lab: expected True or False, got 'maybe'"]


@pytest.mark.parametrize("argv", [["--feature_modal", "flow"], ["--feature_modal", "combine"],
                                  ["--feature_pretrain_model", "c3d"]])
def test_only_rgb_i3d_features(argv):
    with pytest.raises(InputError, match=rf"^{argv[0]}: this implementation supports RGB I3D features only"):
        parse_config(argv)
    cfg = parse_config(["--feature_modal", "rgb", "--feature_pretrain_model", "i3d"])
    assert (cfg.feature_modal, cfg.feature_pretrain_model) == ("rgb", "i3d")


def test_only_rgb_i3d_features_in_yaml(tmp_path):
    user = tmp_path / "flow.yaml"
    user.write_text("feature_modal: flow\n")
    with pytest.raises(InputError, match=r"flow\.yaml: feature_modal: this implementation supports RGB I3D"):
        parse_config(["--config", str(user)])


def test_every_setting_carries_its_help_group_and_choices():
    for f in fields(Config):
        if f.name == "given":  # not a setting: what the user gave
            continue
        text = f.metadata.get("help", "")
        assert text and text != f.name and len(text.split()) >= 4, f.name
        assert text[0].isupper() or text.startswith("torch."), f.name
        assert text.endswith("."), f.name
        assert f.metadata.get("group") in GROUPS, f.name
        if f.metadata.get("choices"):
            assert f.default in f.metadata["choices"], f.name


def help_of(capsys, argv, extra=None) -> str:
    with pytest.raises(SystemExit) as done:
        parse_config([*argv, "--help"], extra=extra)
    assert done.value.code == 0
    return capsys.readouterr().out


def flag_help(text: str, flag: str) -> str:
    """One flag's help entry, whitespace collapsed."""
    entry = re.search(rf"^  {flag} .*?(?=^  -|^\S|\Z)", text, re.M | re.S)
    assert entry, flag
    return " ".join(entry.group(0).split())


def listed_flags(text: str) -> set[str]:
    return set(re.findall(r"^  (--\w+)", text, re.M))


def test_help_shows_the_chosen_datasets_defaults(capsys, tmp_path):
    synthetic = help_of(capsys, [])
    assert "(default: 2)" in flag_help(synthetic, "--Vitblock_num")
    assert "(default: 64)" in flag_help(synthetic, "--max_seqlen")
    assert "(default: 256)" in flag_help(synthetic, "--feature_size")
    ucf = help_of(capsys, ["--dataset_name", "ucf"])
    assert "(default: 8)" in flag_help(ucf, "--Vitblock_num")
    assert "(default: 320)" in flag_help(ucf, "--max_seqlen")
    assert "(default: 2048)" in flag_help(ucf, "--feature_size")
    assert "(default: dataset/ucfcrime/concat_UCF.npy)" in flag_help(ucf, "--train_features")
    user = tmp_path / "mine.yaml"
    user.write_text("dataset_name: shanghaitech\nVitblock_num: 4\n")
    mine = help_of(capsys, ["--config", str(user)])
    assert "(default: 4)" in flag_help(mine, "--Vitblock_num")
    assert "(default: shanghaitech)" in flag_help(mine, "--dataset_name")
    for title in ("data", "synthetic dataset", "model", "training", "auxiliary scorer", "evaluation", "performance"):
        assert f"\n{title}:\n" in synthetic


def test_help_of_main_from_the_command_line():
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "--dataset_name", "ucfcrime", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert "(default: 8)" in flag_help(done.stdout, "--Vitblock_num")
    assert max(len(line) for line in done.stdout.splitlines()) <= 100


TRAINING_ONLY = ("--lr", "--max_epoch", "--snapshot", "--lab", "--lab_type", "--beta", "--delta", "--Lambda",
                 "--Vitblock_num", "--cross_clip", "--resume", "--aux", "--aux_ckpt", "--c2fpl_window",
                 "--checkpoint_blocks", "--keep_train_mode", "--max_iters", "--num_workers", "--stage")
EVALUATION = ("--dataset_name", "--config", "--feature_size", "--test_features", "--test_gt", "--train_features",
              "--synthetic_dir", "--ckpt_path", "--device", "--amp", "--compile", "--eval_batch_size", "--split",
              "--metrics_out", "--scores_out", "--plot", "--save_pseudo_labels")


def test_run_test_help_lists_what_evaluation_uses(capsys):
    text = help_of(capsys, [], extra=run_test.extra_parser())
    flags = listed_flags(text)
    assert set(EVALUATION) <= flags and not flags & set(TRAINING_ONLY)
    assert "Which split to score" in flag_help(text, "--split")
    assert "--split" in text.split("\nevaluation:\n")[1].split("\n\n")[0]
    assert listed_flags(help_of(capsys, [])) >= set(TRAINING_ONLY)  # main.py lists them
    # Still accepted (the training flags of a run's command line), just not listed.
    cfg = parse_config(["--lr", "0.5", "--lab", "True", "--Vitblock_num", "2"], extra=run_test.extra_parser())
    assert (cfg.lr, cfg.lab, cfg.Vitblock_num) == (0.5, True, 2)


def test_the_config_remembers_the_settings_the_user_gave(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text("beta: 0.3\n")
    cfg = parse_config(["--lab", "True", "--config", str(user)])
    assert cfg.given == {"lab", "config", "beta"}
    assert dataclasses.replace(cfg, lab=False).given == cfg.given and "given" not in cfg.to_yaml()
    assert parse_config(["--split", "train", "--feature_size", "8"], extra=run_test.extra_parser()).given == {
        "feature_size"}
    assert parse_config(["--dataset_name", "ucfcrime"]).given == {"dataset_name"}  # not configs/ucfcrime.yaml's


def test_dataset_yaml_then_user_yaml_then_cli(tmp_path):
    base = parse_config(["--dataset_name", "ucfcrime"])
    assert (base.max_seqlen, base.Vitblock_num, base.cross_clip, base.lab) == (320, 8, 4, False)
    assert base.train_features == "dataset/ucfcrime/concat_UCF.npy"
    user = tmp_path / "mine.yaml"
    user.write_text("dataset_name: ucfcrime\nmax_seqlen: 100\nbeta: 0.3\nlab: 'True'\n")
    layered = parse_config(["--config", str(user)])
    assert (layered.dataset_name, layered.max_seqlen, layered.beta, layered.lab) == ("ucfcrime", 100, 0.3, True)
    assert layered.train_features == "dataset/ucfcrime/concat_UCF.npy"
    cli = parse_config(["--config", str(user), "--max_seqlen", "7", "--lab", "False"])
    assert (cli.max_seqlen, cli.beta, cli.lab) == (7, 0.3, False)


def test_builtin_defaults_when_no_yaml_sets_them():
    cfg = parse_config(["--dataset_name", "ucfcrime"])
    assert cfg.lr == Config.lr and cfg.delta == 0.5 and cfg.Lambda == "1_1_1"
    assert parse_config([]).dataset_name == "synthetic"


def test_aliases():
    assert parse_config(["--dataset_name", "ucf"]).dataset_name == "ucfcrime"
    assert parse_config(["--dataset_name", "shanghai"]).dataset_name == "shanghaitech"


def test_literal_hyperparameters_keep_their_published_values():
    cfg = parse_config([])
    assert (cfg.adamw_beta1, cfg.adamw_beta2, cfg.label_threshold, cfg.auc_abn_group) == (0.9, 0.95, 0.5, 128)
    assert cfg.c2fpl_recipe == C2FPLRecipe(lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4,
                                           milestones=(15, 25), gamma=0.1, batch_size=128, epochs=20)


def test_c2fpl_recipe_from_flags_and_yaml(tmp_path):
    cfg = parse_config(["--c2fpl_milestones", " 3, 9 ", "--c2fpl_nesterov", "False", "--c2fpl_batch_size", "64"])
    recipe = cfg.c2fpl_recipe
    assert (recipe.milestones, recipe.nesterov, recipe.batch_size) == ((3, 9), False, 64)
    assert parse_config(["--c2fpl_milestones", ""]).c2fpl_recipe.milestones == ()
    user = tmp_path / "mine.yaml"
    user.write_text("c2fpl_milestones: 10,20\nadamw_beta2: 0.999\n")  # unquoted: YAML reads a string
    mine = parse_config(["--config", str(user)])
    assert mine.c2fpl_recipe.milestones == (10, 20) and mine.adamw_beta2 == 0.999


@pytest.mark.parametrize("argv,needle", [
    (["--dataset_name", "kinetics"], "unknown dataset"),
    (["--Lambda", "1_1"], "three weights"),
    (["--cross_clip", "3"], "1, 2 or 4"),
    (["--max_seqlen", "0"], "positive"),
    (["--device", "tpu"], "auto, cpu"),
    (["--c2fpl_milestones", "15;25"], "--c2fpl_milestones: expected epochs >= 1 separated by commas like 15,25"),
    (["--c2fpl_milestones", "0,25"], "--c2fpl_milestones: expected epochs >= 1"),
    (["--adamw_beta2", "1.0"], "--adamw_beta2: must be in [0, 1), got 1.0"),
    (["--c2fpl_momentum", "0", "--c2fpl_nesterov", "True"], "--c2fpl_nesterov: Nesterov momentum needs"),
    (["--c2fpl_batch_size", "0"], "--c2fpl_batch_size: must be positive"),
    (["--c2fpl_weight_decay", "-1"], "--c2fpl_weight_decay: must be >= 0"),
    (["--auc_abn_group", "0"], "--auc_abn_group: must be positive"),
])
def test_bad_values(argv, needle):
    with pytest.raises(InputError, match=re.escape(needle)):
        parse_config(argv)


def test_bad_yaml(tmp_path):
    unknown = tmp_path / "u.yaml"
    unknown.write_text("max_seqlenn: 3\n")
    with pytest.raises(InputError, match=r"u\.yaml: unknown setting\(s\) max_seqlenn"):
        parse_config(["--config", str(unknown)])
    wrong = tmp_path / "w.yaml"
    wrong.write_text("lab_type: strong\n")
    with pytest.raises(InputError, match=r"w\.yaml: lab_type"):
        parse_config(["--config", str(wrong)])
    with pytest.raises(InputError, match="config file not found"):
        parse_config(["--config", str(tmp_path / "missing.yaml")])


def test_lambdas_and_yaml_roundtrip(tmp_path):
    cfg = parse_config(["--Lambda", "1_0.5_2"])
    assert cfg.lambdas == (1.0, 0.5, 2.0)
    saved = tmp_path / "config.yaml"
    saved.write_text(cfg.to_yaml())
    again = parse_config(["--config", str(saved)])
    assert again.config == str(saved)
    again.config = None
    assert again == cfg
