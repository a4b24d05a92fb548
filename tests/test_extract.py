"""extract_features.py end to end on videos written here: layouts, resume, bad input, the decoder adding nothing."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import extract_features
from dataset.features import PerVideoFeatures
from tests.videos import write_audio, write_video
from utils.errors import InputError
from video.backbones import I3DResNet50, build_backbone
from video.decode import read_frames
from video.extract import Extractor
from video.files import find_videos
from video.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]


def moving_square(n: int, height: int = 48, width: int = 64) -> np.ndarray:
    """(n, H, W, 3) uint8: a bright square crossing a dark noisy frame, so every snippet differs."""
    rng = np.random.default_rng(n)
    frames = rng.integers(0, 40, size=(n, height, width, 3), dtype=np.uint8)
    for k in range(n):
        x = (3 * k) % (width - 12)
        frames[k, 10:22, x:x + 12] = (220, 180, 60)
    return frames


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Stand-in I3D weights (a seeded random init), in the layout of i3d_r50_kinetics.pth."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "i3d_standin.pth"
    torch.save({k: v for k, v in I3DResNet50().state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Two good videos in a tree, and four bad files."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "a.mp4", moving_square(40))
    (root / "sub").mkdir()
    write_video(root / "sub" / "b.avi", moving_square(20), codec="mpeg4")
    bad = root / "bad"
    bad.mkdir()
    whole = write_video(bad / "whole.mp4", moving_square(40)).read_bytes()
    (bad / "whole.mp4").unlink()
    (bad / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (bad / "text.mp4").write_text("not a video\n")
    write_audio(bad / "audio.mkv")
    write_video(bad / "empty.mp4", np.zeros((0, 48, 64, 3), np.uint8))
    return root


def run(argv: list[str], capsys) -> tuple[int, str]:
    """extract_features.main, its exit status and its printed output."""
    try:
        extract_features.main(argv)
        status = 0
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().out


def test_file_features_equal_frames_fed_as_tensor(weights, tmp_path):
    """Decoding, streaming, batching and padding add nothing: the features of a file equal the backbone's
    output on its decoded frames, padded and cropped by hand."""
    path = write_video(tmp_path / "v.mp4", moving_square(37))
    backbone = build_backbone("i3d_r50", str(weights))
    preset = PRESETS["rtfm"]
    got = np.concatenate(list(Extractor(backbone, preset, crops=1, batch_size=2).features(str(path))))
    frames = np.concatenate(list(read_frames(path)))
    assert len(frames) == 37
    frames = np.concatenate([frames, np.repeat(frames[-1:], 48 - 37, axis=0)])  # the last frame repeated
    snippets = preset.resize(frames).reshape(3, 16, *preset.resize(frames[:1]).shape[1:])
    clips = preset.crops(snippets, 1).flatten(0, 1)
    with torch.inference_mode():
        expected = backbone.net(clips.contiguous(memory_format=torch.channels_last_3d)
                                if backbone.channels_last else clips).reshape(3, 1, -1).numpy()
    assert got.shape == (3, 1, 2048)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_folder_layouts_summary_and_bad_files(videos, weights, tmp_path, capsys):
    out = tmp_path / "features"
    status, printed = run(["--videos", str(videos), "--output_dir", str(out), "--weights", str(weights),
                           "--crops", "1", "--device", "cpu", "--concat"], capsys)
    assert status == 1  # some videos failed; the others were extracted
    assert "2 extracted, 0 skipped, 4 failed" in printed
    for name in ("truncated.mp4", "text.mp4", "audio.mkv", "empty.mp4"):
        assert sum(name in line for line in printed.splitlines()) == 1, name
    assert np.load(out / "a_i3d.npy").shape == (3, 1, 2048)  # 40 frames: 2 snippets + a padded one
    assert np.load(out / "sub" / "b_i3d.npy").shape == (2, 1, 2048)
    assert (out / "features.list").read_text().split() == ["a_i3d.npy", "sub/b_i3d.npy"]
    info = json.loads((out / "videos.json").read_text())
    assert [(v["frames"], v["snippets"], v["fps"]) for v in info] == [(40, 3, 25.0), (20, 2, 25.0)]
    assert info[0]["settings"]["preset"] == "rtfm" and info[0]["seconds"] == pytest.approx(1.6)
    assert not (out / "bad").exists() and not [p for p in out.rglob("*") if p.name.startswith(".")]
    features = PerVideoFeatures(out / "features.list")  # the layout main.py reads
    assert (features.n_snippets, features.n_crops, features.feature_size) == (5, 1, 2048)
    concat = np.load(out / "concat.npy")
    np.testing.assert_array_equal(concat, np.concatenate([np.load(out / "a_i3d.npy"),
                                                          np.load(out / "sub" / "b_i3d.npy")]))
    np.testing.assert_array_equal(np.load(out / "nalist.npy"), [[0, 3], [3, 5]])
    assert np.load(out / "nalist.npy").dtype == np.int64


def test_rerun_skips_and_changed_settings_extract_again(videos, weights, tmp_path, capsys):
    out, video = tmp_path / "f", str(videos / "a.mp4")
    args = ["--videos", video, "--output_dir", str(out), "--weights", str(weights), "--device", "cpu"]
    assert run(args + ["--crops", "1"], capsys)[0] == 0
    stamp = os.stat(out / "a_i3d.npy").st_mtime_ns
    status, printed = run(args + ["--crops", "1"], capsys)
    assert status == 0 and "0 extracted, 1 skipped, 0 failed" in printed
    assert os.stat(out / "a_i3d.npy").st_mtime_ns == stamp
    assert (out / "features.list").read_text() == "a_i3d.npy\n"  # a skipped video stays in the list
    status, printed = run(args + ["--crops", "5"], capsys)
    assert "1 extracted" in printed and np.load(out / "a_i3d.npy").shape == (3, 5, 2048)


def test_gowtham_refuses_a_short_video_as_skipped(weights, tmp_path, capsys):
    path = write_video(tmp_path / "short.mp4", moving_square(16))
    status, printed = run(["--videos", str(path), "--output_dir", str(tmp_path / "f"), "--weights", str(weights),
                           "--preset", "gowtham", "--crops", "1", "--device", "cpu"], capsys)
    assert status == 0 and "0 extracted, 1 skipped, 0 failed" in printed and "short.mp4" in printed
    assert not (tmp_path / "f" / "short_i3d.npy").exists()
    assert (tmp_path / "f" / "features.list").read_text() == ""


def test_list_file_and_names(videos, tmp_path):
    listing = tmp_path / "videos.txt"
    listing.write_text(f"{videos / 'a.mp4'}\n\n{videos / 'sub' / 'b.avi'}\n")
    assert [name for _, name in find_videos(str(listing))] == ["a", "sub/b"]
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "a.avi").write_bytes(b"")
    with pytest.raises(InputError, match="a.mp4: writes the same feature file as .*a.avi"):
        find_videos(str(tmp_path))
    with pytest.raises(InputError, match="no such file"):
        find_videos(str(tmp_path / "missing"))


@pytest.mark.parametrize("argv, message", [
    ([], "--weights"),
    (["--backbone", "r3d_18", "--preset", "gowtham"], "--preset: applies to i3d_r50"),
    (["--batch_size", "0"], "--batch_size"),
])
def test_bad_command_lines_stop_before_work(videos, tmp_path, argv, message):
    with pytest.raises(InputError, match=message):
        extract_features.main(["--videos", str(videos), "--output_dir", str(tmp_path / "f")] + argv)
    assert not (tmp_path / "f").exists()


def test_torchrun_shares_the_videos(videos, weights, tmp_path):
    """Two processes: each video extracted once, one list and videos.json, the same features as one process."""
    out = tmp_path / "f"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "extract_features.py", "--videos", str(videos), "--output_dir", str(out),
                           "--weights", str(weights), "--crops", "1", "--device", "cpu"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0  # the bad files fail
    assert done.stdout.count("2 extracted, 0 skipped, 4 failed") == 1, done.stdout + done.stderr
    assert (out / "features.list").read_text().split() == ["a_i3d.npy", "sub/b_i3d.npy"]
    single = Extractor(build_backbone("i3d_r50", str(weights)), PRESETS["rtfm"], crops=1)
    np.testing.assert_allclose(np.load(out / "sub" / "b_i3d.npy"),
                               np.concatenate(list(single.features(str(videos / "sub" / "b.avi")))),
                               rtol=1e-5, atol=1e-4)
