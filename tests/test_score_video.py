"""run_test.py --video / --stream: the anomaly times of videos, against hand-made cases and run_test's own scoring."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import extract_features
import run_test
from deploy.score import EventRules, score_video
from model.checkpoint import model_settings
from model.frd import FRDUVAD, ModelConfig
from tests.test_extract import moving_square
from tests.videos import write_video
from utils.checkpoint import save_checkpoint
from utils.errors import InputError
from utils.events import Event, EventTracker, find_events
from video.annotate import annotated_video, draw_scores
from video.backbones import I3DResNet50, build_backbone
from video.decode import read_frames
from video.extract import Extractor
from video.presets import PRESETS

RECORD = {"backbone": "i3d_r50", "preset": "rtfm", "crops": 1, "fps": None, "amp": "off"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """Stand-in I3D weights, a 2048-d checkpoint whose settings record the extraction, and two videos."""
    root = tmp_path_factory.mktemp("video_scoring")
    torch.manual_seed(0)
    torch.save(I3DResNet50().state_dict(), root / "w.pth")
    model = FRDUVAD(ModelConfig(2048, cross_clip=4, vitblock_num=1, aux="none"))
    with torch.no_grad():  # a scorer whose scores spread over (0, 1) on these features
        model.scorer.fc1.weight.mul_(20)
    save_checkpoint(root / "last.pkl", model.state_dict(), model_settings(model.config, 1, extraction=RECORD))
    save_checkpoint(root / "authors.pkl", {k: v for k, v in model.state_dict().items() if k.startswith("scorer.")})
    videos = root / "videos"
    videos.mkdir()
    write_video(videos / "a.mp4", moving_square(40))
    write_video(videos / "b.mp4", moving_square(37, height=60, width=80))
    return {"root": root, "weights": str(root / "w.pth"), "ckpt": str(root / "last.pkl"), "videos": videos}


def read_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_events_by_hand():
    starts, ends = [0.5 * i for i in range(10)], [0.5 * i + 0.5 for i in range(10)]
    scores = [0.0, 0.9, 0.6, 0.2, 0.7, 0.0, 0.0, 0.0, 0.8, 0.1]
    assert find_events(starts, ends, scores) == [Event(0.5, 1.5, 0.9, 0.75), Event(2.0, 2.5, 0.7, 2.25),
                                                 Event(4.0, 4.5, 0.8, 4.25)]
    assert find_events(starts, ends, scores, min_gap=0.6) == [Event(0.5, 2.5, 0.9, 0.75), Event(4.0, 4.5, 0.8, 4.25)]
    assert find_events(starts, ends, scores, min_gap=0.6, min_length=1.0) == [Event(0.5, 2.5, 0.9, 0.75)]
    assert find_events(starts, ends, scores, threshold=0.95) == []
    tracker = EventTracker(0.5, min_gap=1.0)  # an event is final as soon as the gap after it reaches min_gap
    assert tracker.feed(0.0, 0.5, 0.9) == [] and tracker.feed(0.5, 1.0, 0.1) == []
    assert tracker.feed(1.0, 1.5, 0.1) == [Event(0.0, 0.5, 0.9, 0.25)] and tracker.close() == []


def test_draw_scores_by_hand():
    frames = np.full((2, 24, 20, 3), 100, dtype=np.uint8)
    out = draw_scores(frames, np.array([0.25, 0.75]), np.array([False, True]), threshold=0.5)
    bar = out[:, -4:]  # bar height max(4, 24 // 24)
    assert (bar[0, :, :5] == (60, 200, 80)).all()  # 0.25 · 20 = 5 px green
    assert (bar[0, :, 5:10] == (20, 20, 20)).all() and (bar[0, :, 11:] == (20, 20, 20)).all()
    assert (bar[1, :, :10] == (230, 40, 40)).all() and (bar[1, :, 11:15] == (230, 40, 40)).all()  # 15 px red
    assert (bar[:, :, 10] == 255).all()  # the threshold tick at 0.5 · 20
    assert (out[0, :20] == 100).all() and (out[1, 0] == (230, 40, 40)).all() and (out[1, 10, 0] == (230, 40, 40)).all()
    assert (out[1, 10, 10] == 100).all()


def test_video_scores_equal_run_tests_on_extracted_features(setup, tmp_path, capsys):
    features = tmp_path / "features"
    extract_features.main(["--videos", str(setup["videos"]), "--output_dir", str(features), "--weights",
                           setup["weights"], "--crops", "1", "--device", "cpu"])
    run_test.main(["--ckpt_path", setup["ckpt"], "--split", "train", "--train_list", str(features / "features.list"),
                   "--scores_out", str(tmp_path / "s.npy")])
    expected = np.load(tmp_path / "s.npy")
    out = tmp_path / "out"
    run_test.main(["--video", str(setup["videos"]), "--ckpt_path", setup["ckpt"], "--output_dir", str(out),
                   "--weights", setup["weights"], "--threshold", str(float(np.median(expected)))])
    printed = capsys.readouterr().out
    assert "2 scored, 0 not" in printed
    got = []
    for name, frames in (("a", 40), ("b", 37)):
        rows = read_rows(out / name / "scores.csv")
        assert [int(r["frame"]) for r in rows] == list(range(frames))  # one row per decoded frame
        assert [int(r["snippet"]) for r in rows] == [f // 16 for f in range(frames)]
        np.testing.assert_allclose([float(r["time"]) for r in rows], np.arange(frames) / 25, atol=1e-3)
        snippet_scores = [float(rows[16 * s]["score"]) for s in range(-(-frames // 16))]
        got += snippet_scores
        summary = json.loads((out / name / "events.json").read_text())
        starts = [16 * s / 25 for s in range(len(snippet_scores))]
        ends = [min(16 * (s + 1), frames) / 25 for s in range(len(snippet_scores))]
        events = find_events(starts, ends, snippet_scores, float(np.median(expected)), min_gap=1.0)
        assert summary["events"] == [e.as_dict() for e in events] and summary["frames"] == frames
        assert (out / name / "timeline.png").stat().st_size > 0
        assert f"{name}: {frames / 25:.1f} s, {len(snippet_scores)} snippets" in printed
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert set(json.loads((out / "videos.json").read_text())) == {"a", "b"}


def test_annotated_copy(setup, tmp_path):
    out = tmp_path / "out"
    run_test.main(["--video", str(setup["videos"] / "a.mp4"), "--ckpt_path", setup["ckpt"], "--output_dir", str(out),
                   "--weights", setup["weights"], "--threshold", "0", "--annotate", "scored.mp4"])
    frames = np.concatenate(list(read_frames(out / "a" / "scored.mp4")))
    assert frames.shape == (40, 48, 64, 3)
    assert (frames[:, 0, :, 0].astype(int) - frames[:, 0, :, 1] > 100).all()  # threshold 0: a red border throughout


def test_annotated_video_is_written_whole_or_not_at_all(tmp_path):
    frames, scores = np.zeros((8, 32, 48, 3), dtype=np.uint8), np.linspace(0, 1, 8)
    with annotated_video(tmp_path / "whole.mp4", 25) as out:
        out.write(frames, scores, scores > 0.5, 0.5)
    assert len(np.concatenate(list(read_frames(tmp_path / "whole.mp4")))) == 8
    with pytest.raises(RuntimeError, match="cut short"):
        with annotated_video(tmp_path / "cut.mp4", 25) as out:
            out.write(frames, scores, scores > 0.5, 0.5)
            raise RuntimeError("cut short")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole.mp4"]


def test_authors_checkpoint_needs_the_backbone(setup, tmp_path):
    authors = str(setup["root"] / "authors.pkl")
    args = ["--video", str(setup["videos"] / "a.mp4"), "--output_dir", str(tmp_path / "out"),
            "--weights", setup["weights"], "--crops", "1"]
    with pytest.raises(InputError, match="no record of how its training features were extracted.*--backbone"):
        run_test.main(args + ["--ckpt_path", authors])
    run_test.main(args + ["--ckpt_path", authors, "--backbone", "i3d_r50"])
    assert len(read_rows(tmp_path / "out" / "a" / "scores.csv")) == 40


def test_feature_size_mismatch_names_both(setup, tmp_path):
    with pytest.raises(InputError, match="checkpoint for feature size 256, but i3d_r50 gives 2048-d features"):
        run_test.main(["--video", str(setup["videos"]), "--ckpt_path", "best_ckpt/synthetic/best_ckpt_0.9532.pkl",
                       "--output_dir", str(tmp_path), "--backbone", "i3d_r50", "--weights", setup["weights"]])


def test_bad_videos_are_one_line_each_and_leave_nothing(setup, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "good.mp4", moving_square(20))
    (videos / "text.mp4").write_text("not a video")
    run_test.main(["--video", str(videos), "--ckpt_path", setup["ckpt"], "--output_dir", str(tmp_path / "out"),
                   "--weights", setup["weights"]])
    printed = capsys.readouterr().out
    assert "1 scored, 1 not" in printed and "failed: " in printed and "text.mp4: not a video file" in printed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good", "report.html", "videos.json"]


def scorer(setup) -> tuple[Extractor, FRDUVAD]:
    model = run_test.load_model(setup["ckpt"], torch.device("cpu"))
    return Extractor(build_backbone("i3d_r50", setup["weights"]), PRESETS["rtfm"], crops=1, batch_size=1), model


def test_live_interrupt_leaves_complete_files(setup, tmp_path):
    extractor, model = scorer(setup)
    calls = []

    def score(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return model.score(x)

    path = write_video(tmp_path / "cam.mp4", moving_square(41))
    report = score_video(extractor, score, str(path), "cam", tmp_path / "cam", EventRules(0.0), torch.device("cpu"),
                         live=True)
    assert report.stopped == "interrupted" and len(report.snippet_scores) == 2
    assert len(read_rows(tmp_path / "cam" / "scores.csv")) == 32
    summary = json.loads((tmp_path / "cam" / "events.json").read_text())
    assert summary["stopped"] == "interrupted" and summary["events"] == [{"start": 0.0, "end": 1.28,
                                                                           "peak_score": summary["max_score"],
                                                                           "peak_time": summary["max_score_time"]}]


def test_live_source_that_drops_ends_cleanly(setup, tmp_path):
    extractor, model = scorer(setup)
    whole = write_video(tmp_path / "full.mp4", moving_square(41), options={"movflags": "faststart"}).read_bytes()
    cut = tmp_path / "dropped.mp4"
    cut.write_bytes(whole[: int(len(whole) * 0.7)])
    report = score_video(extractor, model.score, str(cut), "dropped", tmp_path / "dropped", EventRules(),
                         torch.device("cpu"), live=True)
    assert report.stopped.startswith("the source stopped: truncated") and report.snippet_scores
    rows = read_rows(tmp_path / "dropped" / "scores.csv")
    assert len(rows) == report.frames and json.loads((tmp_path / "dropped" / "events.json").read_text())["stopped"]


def test_paced_stream_scores_as_the_file(setup, tmp_path):
    extractor, model = scorer(setup)
    path = str(setup["videos"] / "b.mp4")
    live = score_video(extractor, model.score, path, "b", tmp_path / "live", EventRules(), torch.device("cpu"),
                       live=True, paced=True)
    offline = score_video(extractor, model.score, path, "b", tmp_path / "file", EventRules(), torch.device("cpu"))
    assert live.seconds == pytest.approx(37 / 25) and live.compute_seconds > 0
    np.testing.assert_allclose(live.snippet_scores, offline.snippet_scores, rtol=1e-5)
