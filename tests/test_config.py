"""Configuration: release flags, YAML layers and their precedence, bad values."""
import pytest

from utils.config import Config, build_parser, parse_config, str2bool
from utils.errors import InputError

RELEASE_FLAGS = ("dataset_name", "feature_pretrain_model", "feature_modal", "cross_clip", "lab", "lab_type", "beta",
                 "delta", "Vitblock_num", "max_seqlen", "max_epoch", "Lambda", "lr", "snapshot", "seed",
                 "feature_size", "ckpt_path", "config")


def test_release_flags_exist():
    text = build_parser().format_help()
    for flag in RELEASE_FLAGS:
        assert f"--{flag}" in text


@pytest.mark.parametrize("text,value", [("False", False), ("True", True), ("false", False), ("1", True), ("0", False)])
def test_release_booleans(text, value):
    assert str2bool(text) is value
    assert parse_config(["--lab", text]).lab is value


def test_bad_boolean_is_rejected():
    with pytest.raises(SystemExit):
        parse_config(["--lab", "maybe"])


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


@pytest.mark.parametrize("argv,needle", [
    (["--dataset_name", "kinetics"], "unknown dataset"),
    (["--Lambda", "1_1"], "three weights"),
    (["--cross_clip", "3"], "1, 2 or 4"),
    (["--max_seqlen", "0"], "positive"),
    (["--device", "tpu"], "auto, cpu"),
])
def test_bad_values(argv, needle):
    with pytest.raises(InputError, match=needle):
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
