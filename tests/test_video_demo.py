"""The video demo end to end, small: generated videos → stand-in I3D features → C2FPL → FRD-UVAD → a scored video."""
import json
from pathlib import Path

import numpy as np
import yaml

import main
import run_test
from video.demo import STANDIN_RECORD, STANDIN_WEIGHTS, demo_dir
from utils.config import parse_config


def printed_auc(printed: str, row: str) -> float:
    """The AUC on the line of main.py's summary table that starts with ``row``."""
    return float(next(line for line in printed.splitlines() if line.startswith(row)).split()[-1])


def test_video_demo_small_detects_its_anomalies_above_the_feature_norm(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # data/video_demo/ and ckpt/ go here
    args = ["--dataset_name", "video_demo", "--synth_train_videos", "4", "--synth_test_videos", "2",
            "--max_epoch", "2", "--max_seqlen", "8", "--snapshot", "5", "--output_dir", "out", "--device", "cpu"]
    main.main(args)
    printed = capsys.readouterr().out
    assert "STAND-IN weights" in printed and "test frame AUC" in printed
    norm, best = printed_auc(printed, "feature norm"), printed_auc(printed, "FRD-UVAD, aux none, best")
    print(f"feature norm {norm:.4f}, FRD-UVAD best {best:.4f}")
    assert best >= 0.75 and best > norm  # a constant Scorer gives 0.5, the dense stand-in features gave 0.27-0.5
    root = demo_dir(parse_config(args))
    assert (root / STANDIN_WEIGHTS).is_file()
    train_list = (root / "features" / "train" / "features.list").read_text().split()
    assert len(train_list) == 4 and np.load(root / "features" / "train" / train_list[0]).shape[1:] == (1, 2048)
    record = json.loads((root / STANDIN_RECORD).read_text())
    assert record["how"]["videos"] == ["train_000"] and record["snippets"] > 0  # never a test video
    features = np.concatenate([np.load(root / "features" / "train" / name) for name in train_list])
    assert 0.1 < features.mean() < 3  # a trained net's scale; the parity rule's statistics alone give about 22
    settings = yaml.safe_load(Path("out/last.yaml").read_text())
    assert settings["feature_size"] == 2048 and settings["extraction"]["backbone"] == "i3d_r50"
    assert settings["extraction"]["crops"] == 1 and settings["extraction"]["preset"] == "rtfm"
    records = [json.loads(line) for line in Path("out/metrics.jsonl").read_text().splitlines()]
    assert records and all(0 <= r["auc_all"] <= 1 for r in records if "auc_all" in r)
    assert f"--weights {root / STANDIN_WEIGHTS}" in printed  # the next command, as printed
    video = sorted((root / "videos" / "test").glob("*.mp4"))[0]
    run_test.main(["--video", str(video), "--ckpt_path", "out/last.pkl", "--weights", str(root / STANDIN_WEIGHTS),
                   "--output_dir", "scored"])
    rows = Path(f"scored/{video.stem}/scores.csv").read_text().splitlines()
    labels = json.loads((root / "videos" / "test_labels.json").read_text())
    assert len(rows) - 1 == next(v["frames"] for v in labels if v["name"] == video.stem)  # a row per frame
