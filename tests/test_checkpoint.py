"""Checkpoint saving and loading: release layout, tolerant key handling, one-line errors, atomic saves."""
import json

import pytest
import torch

from model.checkpoint import CheckpointError, detect_kind, infer_config, load_into, model_config, model_settings
from model.frd import FRDUVAD, ModelConfig
from model.scorer import C2FPLClassifier
from utils.checkpoint import load_state_dict_file, read_settings, remove_checkpoint, save_checkpoint, settings_path
from utils.errors import InputError


def fresh(seed: int, feature_size: int = 256, vb: int = 2) -> FRDUVAD:
    torch.manual_seed(seed)
    return FRDUVAD(ModelConfig(feature_size, 4, vb))


def assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def load_file(model: FRDUVAD, path) -> str:
    return load_into(model, load_state_dict_file(path), source=path)


def test_full_round_trip(tmp_path):
    src, dst = fresh(0), fresh(1)
    save_checkpoint(tmp_path / "best_ckpt.pkl", src.state_dict())
    assert load_file(dst, tmp_path / "best_ckpt.pkl") == "full"
    assert_same(dst.state_dict(), src.state_dict())


def test_wrapped_and_module_prefixed(tmp_path):
    src, dst = fresh(0), fresh(1)
    wrapped = {"model": {f"module.{k}": v for k, v in src.state_dict().items()},
               "optimizer": {"state": {}, "param_groups": []}, "iteration": 7}
    save_checkpoint(tmp_path / "train.pt", wrapped)
    assert load_file(dst, tmp_path / "train.pt") == "full"
    assert_same(dst.state_dict(), src.state_dict())
    save_checkpoint(tmp_path / "sd.pt", {"state_dict": src.state_dict()})
    assert load_state_dict_file(tmp_path / "sd.pt").keys() == src.state_dict().keys()


@pytest.mark.parametrize("prefix", ["scorer.", "", "module.scorer.", "module."])
def test_scorer_only(tmp_path, prefix):
    src, dst = fresh(0), fresh(1)
    before = dst.state_dict()
    save_checkpoint(tmp_path / "scorer.pkl", {prefix + k: v for k, v in src.scorer.state_dict().items()})
    assert load_file(dst, tmp_path / "scorer.pkl") == "scorer"
    assert_same(dst.scorer.state_dict(), src.scorer.state_dict())
    assert_same(dst.decoder.state_dict(), {k[8:]: v for k, v in before.items() if k.startswith("decoder.")})


@pytest.mark.parametrize("prefix", ["", "scorer_c2fpl.", "module."])
def test_c2fpl_into_the_auxiliary_slot(tmp_path, prefix):
    torch.manual_seed(5)
    c2fpl, dst = C2FPLClassifier(256), fresh(1)
    save_checkpoint(tmp_path / "UCFfinal.pkl", {prefix + k: v for k, v in c2fpl.state_dict().items()})
    assert load_file(dst, tmp_path / "UCFfinal.pkl") == "c2fpl"
    assert_same(dst.scorer_c2fpl.state_dict(), c2fpl.state_dict())
    assert all(not p.requires_grad for p in dst.scorer_c2fpl.parameters())


def one_line_error(model: FRDUVAD, sd: dict, path) -> str:
    save_checkpoint(path, sd)
    with pytest.raises(CheckpointError) as info:
        load_file(model, path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def test_rejects_wrong_feature_size(tmp_path):
    message = one_line_error(fresh(0), fresh(1, feature_size=512).state_dict(), tmp_path / "big.pkl")
    assert "feature_size 256, checkpoint 512" in message
    assert "shape" in message and "(32, 32) vs (16, 16)" in message


def test_rejects_wrong_feature_size_for_c2fpl(tmp_path):
    message = one_line_error(fresh(0), C2FPLClassifier(2048).state_dict(), tmp_path / "UCFfinal.pkl")
    assert "c2fpl checkpoint" in message and "checkpoint 2048" in message


def test_rejects_missing_keys(tmp_path):
    sd = fresh(0, vb=8).state_dict()
    message = one_line_error(fresh(1, vb=4), sd, tmp_path / "deep.pkl")
    assert "unexpected 44: decoder.decoder_blocks.4" in message and "(+41 more)" in message
    message = one_line_error(fresh(1, vb=8), fresh(0, vb=4).state_dict(), tmp_path / "shallow.pkl")
    assert "expected 112 keys, found 68" in message and "missing 44" in message


def test_rejects_extra_keys(tmp_path):
    sd = dict(fresh(0).state_dict(), **{"scorer.extra.weight": torch.zeros(3)})
    message = one_line_error(fresh(1), sd, tmp_path / "extra.pkl")
    assert "unexpected 1: scorer.extra.weight" in message and "missing" not in message


def test_rejects_unreadable_files(tmp_path):
    (tmp_path / "junk.pkl").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pkl: not a readable torch checkpoint"):
        load_state_dict_file(tmp_path / "junk.pkl")
    with pytest.raises(InputError, match="nothing.pkl: checkpoint file not found"):
        load_state_dict_file(tmp_path / "nothing.pkl")
    save_checkpoint(tmp_path / "list.pkl", [torch.zeros(1)])
    with pytest.raises(InputError, match="not a state dict"):
        load_state_dict_file(tmp_path / "list.pkl")


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "best_ckpt.pkl"
    original = fresh(0).state_dict()
    save_checkpoint(path, original)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, fresh(1).state_dict())
    monkeypatch.undo()
    assert_same(load_state_dict_file(path), original)
    assert [p.name for p in tmp_path.iterdir()] == ["best_ckpt.pkl"]


def test_saved_checkpoint_has_the_release_layout(parity_dir, tmp_path):
    layout = json.loads((parity_dir / "state_dict_layout_2048.json").read_text())["cross_clip=4,Vitblock_num=8"]
    save_checkpoint(tmp_path / "ckpt.pkl", FRDUVAD(ModelConfig(2048, 4, 8)).state_dict())
    sd = load_state_dict_file(tmp_path / "ckpt.pkl")
    assert {k: list(v.shape) for k, v in sd.items()} == layout
    assert list(sd) == list(layout)


def test_infer_config():
    assert infer_config(fresh(0, vb=8).state_dict()) == {"feature_size": 256, "cross_clip": None, "vitblock_num": 8}
    assert infer_config(fresh(0, vb=0).state_dict())["vitblock_num"] == 0
    scorer_only = {f"scorer.{k}": v for k, v in fresh(0).scorer.state_dict().items()}
    assert infer_config(scorer_only) == {"feature_size": 256, "cross_clip": None, "vitblock_num": None}
    assert detect_kind(scorer_only) == "scorer"
    assert detect_kind(C2FPLClassifier(32).state_dict()) == "c2fpl"


def test_settings_travel_with_the_checkpoint(tmp_path):
    config = ModelConfig(512, cross_clip=2, vitblock_num=6, lab=True, aux="labels", bank_capacity=7)
    settings = model_settings(config, crops=10, backbone="i3d_r50", preset="rtfm")
    save_checkpoint(tmp_path / "last.pkl", {"w": torch.zeros(1)}, settings)
    assert settings_path(tmp_path / "last.pkl") == tmp_path / "last.yaml"
    assert (tmp_path / "last.yaml").read_text() == ("feature_size: 512\ncross_clip: 2\nVitblock_num: 6\ncrops: 10\n"
                                                    "backbone: i3d_r50\npreset: rtfm\n")
    read = read_settings(tmp_path / "last.pkl")
    assert read == settings  # unknown keys come back as they are
    assert model_config(read, "last.yaml") == ModelConfig(512, 2, 6, aux="none")
    assert read_settings(tmp_path / "other.pkl") is None
    remove_checkpoint(tmp_path / "last.pkl")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("text,problem", [
    ("feature_size: 256\ncross_clip: two\n", "cross_clip must be an integer >= 0, got 'two'"),
    ("feature_size: -256\n", "feature_size must be an integer >= 0, got -256"),
    ("crops: true\n", "crops must be an integer >= 0, got True"),
    ("- 256\n", "expected a mapping of model settings (feature_size, cross_clip, Vitblock_num, crops)"),
    ("feature_size: [256\n", "not readable YAML"),
])
def test_bad_settings_are_one_line_errors(tmp_path, text, problem):
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(InputError) as info:
        read_settings(tmp_path / "m.pkl")
    assert str(info.value) == f"{tmp_path / 'm.yaml'}: {problem}"


def test_failed_checkpoint_save_keeps_the_settings_consistent(tmp_path, monkeypatch):
    settings = model_settings(ModelConfig(256, 4, 2), crops=2)
    save_checkpoint(tmp_path / "last.pkl", fresh(0).state_dict(), settings)

    def broken_save(obj, f):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "last.pkl", fresh(1).state_dict(), settings)
    monkeypatch.undo()
    assert read_settings(tmp_path / "last.pkl") == settings
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pkl", "last.yaml"]
