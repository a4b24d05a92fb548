"""The command line as a user runs it: ``main.py --stage data`` and its errors."""
import subprocess
import sys

import numpy as np

from conftest import ROOT
from dataset.synthetic import FILES

TINY = ["--synth_train_videos", "6", "--synth_test_videos", "4", "--synth_crops", "2"]


def run(*argv: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *argv], cwd=cwd, capture_output=True, text=True)


def test_stage_data_writes_the_dataset_and_the_config(tmp_path):
    out = tmp_path / "syn"
    result = run("--stage", "data", "--output_dir", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    for name in FILES.values():
        assert (out / name).is_file()
    assert "synth_train_videos: 6" in (out / "config.yaml").read_text()
    assert np.load(out / FILES["train_features"], mmap_mode="r").shape[1:] == (2, 256)


def test_bad_input_is_one_line_naming_the_problem(tmp_path):
    result = run("--dataset_name", "ucfcrime", "--train_features", str(tmp_path / "none.npy"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'none.npy'}: file not found (see docs/data.md, \"Where the real files come from\")"]
