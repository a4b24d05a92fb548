"""Video scoring follows the checkpoint's record of its features' extraction; flags that depart from it get a note,
speed advice names only what is not in use, and the summary names only a folder that exists."""
import pytest
import torch

import run_test
from deploy.score import VideoReport, resolve_extraction, speed_line
from model.checkpoint import model_settings
from model.frd import FRDUVAD, ModelConfig
from utils.checkpoint import save_checkpoint
from utils.errors import InputError
from video.backbones import I3DResNet50
from video.extract import Extractor

ONE_CROP = {"feature_size": 2048, "crops": 1,
            "extraction": {"backbone": "i3d_r50", "preset": "rtfm", "crops": 1, "fps": None, "weights": None}}


def test_scoring_follows_the_checkpoints_crops_preset_and_fps_without_a_note():
    how = resolve_extraction(ONE_CROP, None, None, None, None, "last.pkl")
    assert (how["crops"], how["preset"], how["fps"], how["notes"]) == (1, "rtfm", None, [])
    record = {**ONE_CROP, "extraction": {**ONE_CROP["extraction"], "fps": 12.0, "preset": "gowtham"}}
    how = resolve_extraction(record, None, "gowtham", 1, 12.0, "last.pkl")  # given, and the same as the record
    assert (how["crops"], how["preset"], how["fps"], how["notes"]) == (1, "gowtham", 12.0, [])


def test_flags_that_depart_from_the_record_are_followed_with_one_note_each():
    how = resolve_extraction(ONE_CROP, None, "gowtham", 10, 10.0, "last.pkl")
    assert (how["crops"], how["preset"], how["fps"]) == (10, "gowtham", 10.0)
    assert how["notes"] == [
        "note: --crops 10, but the checkpoint was trained on 1-crop features (--crops 1 matches them and is 10× "
        "faster)",
        "note: --preset gowtham, but the checkpoint's training features were made with rtfm",
        "note: --fps 10, but the checkpoint's training features were made at each video's own frame rate"]
    ten = resolve_extraction({"crops": 10}, "i3d_r50", None, 1, None, "authors.pkl")  # settings without a record
    assert ten["notes"] == ["note: --crops 1, but the checkpoint was trained on 10-crop features (--crops 10 matches "
                            "them; --crops 1 is 10× faster, its scores differ)"]


def test_crops_from_no_record_at_all_are_noted():
    how = resolve_extraction(None, "i3d_r50", None, None, None, "authors.pkl")
    assert how["crops"] == 10 and how["notes"] == [
        "note: no record of the crops of the checkpoint's training features: 10 crops (the released features'); a "
        "1-crop checkpoint takes --crops 1, ten times faster"]
    assert resolve_extraction(None, "i3d_r50", None, 1, None, "authors.pkl")["notes"] == []


@pytest.mark.parametrize("crops, amp, device, advice", [
    (10, "off", "cpu", " (try --crops 1, --amp bf16 or a GPU)"),
    (1, "off", "cpu", " (try --amp bf16 or a GPU)"),
    (1, "bf16", "cpu", " (try a GPU)"),
    (1, "bf16", "cuda", "")])
def test_speed_advice_names_only_the_remedies_not_in_use(crops, amp, device, advice):
    report = VideoReport("cam", "cam.mp4", fps=25.0, snippet_scores=[0.1] * 10, compute_seconds=20.0)  # 2 s/snippet
    extractor = Extractor(backbone=None, preset=None, crops=crops, batch_size=1, device=torch.device(device), amp=amp)
    assert speed_line(report, extractor).endswith(f"falls behind: 0.32× the frame rate{advice}")


@pytest.fixture(scope="module")
def one_crop_checkpoint(tmp_path_factory):
    """Stand-in I3D weights and a checkpoint trained on their 1-crop features."""
    root = tmp_path_factory.mktemp("one_crop")
    torch.save(I3DResNet50().state_dict(), root / "w.pth")
    model = FRDUVAD(ModelConfig(2048, cross_clip=4, vitblock_num=1, aux="none"))
    save_checkpoint(root / "last.pkl", model.state_dict(), model_settings(model.config, 1,
                                                                          extraction=ONE_CROP["extraction"]))
    return root


def test_ten_crops_asked_of_a_one_crop_checkpoint_are_noted_and_no_result_names_no_folder(one_crop_checkpoint,
                                                                                          tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "text.mp4").write_text("not a video")
    with pytest.raises(InputError, match="no video scored"):
        run_test.main(["--video", str(videos), "--ckpt_path", str(one_crop_checkpoint / "last.pkl"), "--weights",
                       str(one_crop_checkpoint / "w.pth"), "--crops", "10", "--output_dir", str(tmp_path / "out")])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("note: --crops 10, but the checkpoint was trained on 1-crop features")
    assert printed[1:3] == [f"video 1/1: {videos / 'text.mp4'}", "0 scored, 1 not"]
    assert not (tmp_path / "out").exists()
