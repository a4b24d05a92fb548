"""Output paths that cannot be written stop every command before any work, with one line naming the path."""
import subprocess
import sys

import pytest

import extract_features
import main
import run_test
from conftest import ROOT
from utils.errors import InputError
from utils.outputs import check_outputs

CKPT = str(ROOT / "best_ckpt" / "synthetic" / "best_ckpt_0.9532.pkl")


@pytest.fixture
def a_file(tmp_path, monkeypatch):
    """An existing file where a folder is expected; the working folder is ``tmp_path`` (where work would land)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "taken"
    path.write_text("a user's file")
    return path


def nothing_written(tmp_path, a_file) -> bool:
    return sorted(p.name for p in tmp_path.iterdir()) == ["taken"] and a_file.read_text() == "a user's file"


def test_main_output_dir_that_is_a_file_is_one_line_before_any_work(tmp_path, a_file):
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--output_dir", str(a_file)], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {a_file}: is an existing file, not a folder (--output_dir names "
                                          "the folder to write into)"]
    assert nothing_written(tmp_path, a_file)  # no synthetic dataset generated, no ckpt/


@pytest.mark.parametrize("flag", ["--output_dir", "--c2fpl_dir", "--synthetic_dir"])
def test_main_every_output_folder_is_checked_before_any_work(tmp_path, a_file, flag):
    with pytest.raises(InputError, match=f"^{a_file}: is an existing file, not a folder \\({flag} "):
        main.main([flag, str(a_file), "--stage", "c2fpl" if flag == "--c2fpl_dir" else "train"])
    assert nothing_written(tmp_path, a_file)


def test_main_output_dir_under_a_file_names_the_file(tmp_path, a_file):
    with pytest.raises(InputError, match=f"^{a_file}: is a file, so --output_dir {a_file / 'run'} cannot be created"):
        main.main(["--output_dir", str(a_file / "run")])


def test_run_test_video_output_dir_that_is_a_file_stops_before_extraction(tmp_path, a_file):
    with pytest.raises(InputError, match=f"^{a_file}: is an existing file, not a folder \\(--output_dir"):
        run_test.main(["--video", str(tmp_path / "clip.mp4"), "--ckpt_path", CKPT, "--backbone", "r2plus1d_18",
                       "--output_dir", str(a_file)])
    assert nothing_written(tmp_path, a_file)


def test_run_test_plot_and_output_files_are_checked_before_scoring(tmp_path, a_file):
    with pytest.raises(InputError, match=f"^{a_file}: is an existing file, not a folder \\(--plot"):
        run_test.main(["--ckpt_path", CKPT, "--plot", str(a_file)])
    with pytest.raises(InputError, match=f"^{tmp_path}: is a folder, not a file \\(--metrics_out"):
        run_test.main(["--ckpt_path", CKPT, "--metrics_out", str(tmp_path)])
    with pytest.raises(InputError, match=f"^{a_file}: is a file, so --scores_out {a_file / 's.npy'} cannot"):
        run_test.main(["--ckpt_path", CKPT, "--scores_out", str(a_file / "s.npy")])
    assert nothing_written(tmp_path, a_file)


def test_extract_features_output_dir_that_is_a_file_is_refused(tmp_path, a_file):
    with pytest.raises(InputError, match=f"^{a_file}: is an existing file, not a folder \\(--output_dir"):
        extract_features.main(["--videos", str(tmp_path), "--output_dir", str(a_file), "--backbone", "r2plus1d_18"])


def test_folders_and_files_that_can_be_made_pass(tmp_path):
    check_outputs({"--output_dir": str(tmp_path / "new" / "deeper"), "--plot": None},
                  {"--metrics_out": str(tmp_path / "new" / "m.json")})
    assert not (tmp_path / "new").exists()  # checking creates nothing
